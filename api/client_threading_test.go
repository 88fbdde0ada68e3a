package api

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// callTally counts the callbacks of one request by name.
type callTally struct {
	mu    sync.Mutex
	calls map[string]int
	errs  []string
	hit   chan string
}

func newTally() *callTally { return &callTally{calls: map[string]int{}, hit: make(chan string, 64)} }

// call records one call of the callback name.
func (k *callTally) call(name string) {
	k.mu.Lock()
	k.calls[name]++
	k.mu.Unlock()
	k.hit <- name
}

// fail records something a callback found wrong.
func (k *callTally) fail(format string, args ...any) {
	k.mu.Lock()
	k.errs = append(k.errs, fmt.Sprintf(format, args...))
	k.mu.Unlock()
}

// wait waits until the callbacks named in want have all been called,
// and fails if any was not in ten seconds.
func (k *callTally) wait(t *testing.T, round int, want []string) {
	t.Helper()
	for {
		k.mu.Lock()
		missing := []string{}
		for _, name := range want {
			if k.calls[name] == 0 {
				missing = append(missing, name)
			}
		}
		k.mu.Unlock()
		if len(missing) == 0 {
			return
		}
		select {
		case <-k.hit:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: never called: %v", round, missing)
		}
	}
}

// check fails unless exactly the callbacks in want ran, once each.
func (k *callTally) check(t *testing.T, round int, want []string) {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, e := range k.errs {
		t.Errorf("round %d: %s", round, e)
	}
	exp := map[string]int{}
	for _, name := range want {
		exp[name] = 1
	}
	var bad []string
	for name, n := range k.calls {
		if n != exp[name] {
			bad = append(bad, fmt.Sprintf("%s×%d", name, n))
		}
	}
	for name := range exp {
		if k.calls[name] == 0 {
			bad = append(bad, name+"×0")
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Errorf("round %d: callbacks not run exactly once: %v", round, bad)
	}
}

// TestClientCallsFromOtherGoroutines drives every exported method of
// ClientRequest, of the client's response and of Agent from goroutines
// other than the loop, while the loop runs the request's callbacks and
// after the request closed: listeners added from goroutines before and
// after their events, Write and End from a goroutine, `go res.Resume()`
// after a Pause in 'data' (the body is 256 KiB), Abort, Destroy and
// Agent.Destroy from goroutines once the response has begun, and
// listeners, writes and ends after 'close'. Under -race it must report
// nothing; every callback runs exactly once (those of events a round's
// outcome rules out, never), and every body arrives whole.
func TestClientCallsFromOtherGoroutines(t *testing.T) {
	const size = 256 << 10
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		var got int
		req.OnData(func(c []byte) { got += len(c) })
		req.OnEnd(func() {
			res.SetHeader("X-Got", fmt.Sprint(got))
			res.Write(bytes.Repeat([]byte("a"), size/2), nil)
			res.End(bytes.Repeat([]byte("b"), size/2), nil)
		})
	}, quiet())
	host, port := splitAddr(t, listen(t, srv))
	const rounds = 100
	for i := 0; i < rounds; i++ {
		mode := []string{"complete", "abort", "destroy", "agent"}[i%4]
		clientRound(t, i, mode, host, port)
	}
}

// clientRound runs one request of TestClientCallsFromOtherGoroutines:
// mode "complete" lets it finish; "abort", "destroy" and "agent" stop it
// from a goroutine once its response head is in, with Abort, Destroy or
// the agent's Destroy.
func clientRound(t *testing.T, round int, mode, host string, port int) {
	const size = 256 << 10
	agent := testAgent(t, AgentOptions{Loops: 1})
	k := newTally()
	body := []byte(strings.Repeat("q", 1000))
	req, err := Request(RequestOptions{Host: host, Port: port, Method: "POST", Agent: agent,
		Headers: map[string]string{"Content-Length": "2000"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got int
	req.OnResponse(func(res *IncomingMessage) {
		k.call("response")
		if res.Header("x-got") != "2000" {
			k.fail("the server got %q bytes; want 2000", res.Header("x-got"))
		}
		_ = res.Headers() // the callbacks' goroutine may build the map
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // the response's methods from another goroutine, while its callbacks run
			defer wg.Done()
			res.Header("content-length")
			res.HeaderValues("x-got")
			res.Trailer("x")
			res.OnTimeout(func() { k.call("res timeout") })
			res.SetTimeout(time.Hour, func() { k.call("res settimeout cb") })
			res.OnError(func(error) { k.call("res error") })
			res.OnClose(func() { k.call("res close") })
			res.OnEnd(func() { k.call("res end") })
			res.Pause()
			if mode == "complete" {
				res.Resume()
			} // else the stop below resumes it
		}()
		res.OnData(func(c []byte) {
			got += len(c)
			res.Pause()
			go res.Resume()
		})
		wg.Wait()
		if mode != "complete" {
			// Stop from a goroutine while the body is paused, before any
			// of it was delivered (the Pause handed over above comes
			// first), so it cannot end first.
			res.Pause()
			go func() {
				switch mode {
				case "abort":
					req.Abort()
				case "destroy":
					req.Destroy(errors.New("enough"))
				case "agent":
					agent.Destroy()
				}
				res.Resume()
			}()
		}
	})
	// The request's methods from another goroutine, racing the start.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		req.OnSocket(func(*Socket) { k.call("socket") })
		req.OnInformation(func(Information) { k.call("information") })
		req.OnContinue(func() { k.call("continue") })
		req.OnFinish(func() { k.call("finish") })
		req.OnError(func(error) { k.call("error") })
		req.OnClose(func() { k.call("close") })
		req.OnTimeout(func() { k.call("timeout") })
		req.OnDrain(func() {})
		req.OnAbort(func() { k.call("abort") })
		req.SetTimeout(time.Hour, nil)
		_ = req.SetHeader("X-Round", fmt.Sprint(round))
		_ = req.GetHeader("x-round")
		_ = req.RemoveHeader("X-None")
	}()
	wg.Wait()
	go func() {
		req.Write(body, func(err error) {
			if err != nil {
				k.fail("Write callback: %v", err)
			}
			k.call("write cb")
		})
		if err := req.End(body, func(err error) {
			if err != nil {
				k.fail("End callback: %v", err)
			}
			k.call("end cb")
		}); err != nil {
			k.fail("End: %v", err)
		}
	}()
	want := []string{"socket", "finish", "write cb", "end cb", "response", "close", "res close"}
	switch mode {
	case "complete":
		want = append(want, "res end")
	case "abort":
		want = append(want, "abort")
	case "destroy", "agent":
		want = append(want, "error", "res error")
	}
	k.wait(t, round, want)
	// After 'close', from another goroutine: late listeners of the events
	// that fire once hear them once (or not at all, for one that did not
	// fire); calls to write fail, and their callbacks run once, not inside
	// the call.
	late := []string{"late close", "late socket", "late finish", "late write cb", "late end cb"}
	wg.Add(1)
	go func() {
		defer wg.Done()
		req.OnClose(func() { k.call("late close") })
		req.OnSocket(func(*Socket) { k.call("late socket") })
		req.OnFinish(func() { k.call("late finish") })
		inWrite := true
		var mu sync.Mutex
		req.Write(body, func(err error) {
			mu.Lock()
			defer mu.Unlock()
			if inWrite {
				k.fail("Write after close called its callback inside the call")
			}
			if !errors.Is(err, ErrWriteAfterEnd) {
				k.fail("Write after close: %v; want ErrWriteAfterEnd", err)
			}
			k.call("late write cb")
		})
		mu.Lock()
		inWrite = false
		mu.Unlock()
		if err := req.End(nil, func(err error) {
			if !errors.Is(err, ErrWriteAfterEnd) {
				k.fail("End after close called back with %v; want ErrWriteAfterEnd", err)
			}
			k.call("late end cb")
		}); !errors.Is(err, ErrWriteAfterEnd) {
			k.fail("End after close: %v; want ErrWriteAfterEnd", err)
		}
		req.Abort()
		req.Destroy(nil)
		req.SetTimeout(time.Second, nil)
	}()
	wg.Wait()
	if mode == "abort" {
		req.OnAbort(func() { k.call("late abort") })
		late = append(late, "late abort")
	}
	if mode == "destroy" || mode == "agent" {
		req.OnError(func(error) { k.call("late error") })
		late = append(late, "late error")
	}
	want = append(want, late...)
	k.wait(t, round, want)
	// A last late listener runs after every call queued before it: once it
	// has, a callback that ran twice has been counted.
	req.OnClose(func() { k.call("barrier") })
	want = append(want, "barrier")
	k.wait(t, round, want)
	k.check(t, round, want)
	if mode == "complete" && got != size {
		t.Errorf("round %d: response body %d bytes; want %d", round, got, size)
	}
	destroyed := make(chan struct{})
	go func() { agent.Destroy(); close(destroyed) }() // from another goroutine, after all
	<-destroyed
}

// TestClientWritesKeepOrder: writes made on the connection's loop go
// straight to the engine, but never ahead of writes made before them and
// still on their way: those given before the connection was bound (sent
// as it binds, around 'socket'), and those handed over from other
// goroutines. The server gets the body in call order.
func TestClientWritesKeepOrder(t *testing.T) {
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		var body []byte
		req.OnData(func(c []byte) { body = append(body, c...) })
		req.OnEnd(func() { res.End(body, nil) })
	}, quiet())
	host, port := splitAddr(t, listen(t, srv))
	agent := testAgent(t, AgentOptions{Loops: 1})
	for i := 0; i < 20; i++ {
		done := make(chan string, 1)
		req, _ := Request(RequestOptions{Host: host, Port: port, Method: "POST", Agent: agent}, func(res *IncomingMessage) {
			var got []byte
			res.OnData(func(c []byte) { got = append(got, c...) })
			res.OnEnd(func() { done <- string(got) })
		})
		wrote := make(chan struct{})
		req.OnSocket(func(*Socket) { // on the loop, before the writes below were sent
			<-wrote // "2" is pending or handed over by now
			req.Write([]byte("3"), func(error) {
				req.Write([]byte("4"), nil) // on the loop, from a write's callback
				handed := make(chan struct{})
				go func() { req.Write([]byte("5"), nil); close(handed) }()
				<-handed
				req.End([]byte("6"), nil) // behind the one handed over
			})
		})
		req.Write([]byte("1"), nil)
		req.Write([]byte("2"), nil)
		close(wrote)
		select {
		case got := <-done:
			if got != "123456" {
				t.Fatalf("round %d: the server got %q; want 123456", i, got)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: no response", i)
		}
	}
}

// TestAgentDestroyFromItsLoop: Agent.Destroy called in a callback of one
// of the agent's own requests, on the loop it would wait for, does not
// hang: it starts the stop and returns, and the request still closes.
func TestAgentDestroyFromItsLoop(t *testing.T) {
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) { res.End([]byte("ok"), nil) }, quiet())
	host, port := splitAddr(t, listen(t, srv))
	a := testAgent(t, AgentOptions{Loops: 1})
	returned, closed := make(chan struct{}), make(chan struct{})
	req, _ := Request(RequestOptions{Host: host, Port: port, Agent: a}, func(*IncomingMessage) {
		a.Destroy()
		close(returned)
	})
	req.OnClose(func() { close(closed) })
	req.End(nil, nil)
	for _, c := range []chan struct{}{returned, closed} {
		select {
		case <-c:
		case <-time.After(10 * time.Second):
			t.Fatal("Destroy on the agent's loop hung")
		}
	}
}
