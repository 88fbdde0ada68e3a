package api

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// poke calls the methods of a request, its response and its socket that
// change nothing a test looks at, from whatever goroutine it runs on,
// during the exchange or after it (where they fail as for a closed
// connection). With the methods the rounds call themselves (pokedElsewhere)
// it covers every exported method: TestPokeCoversEveryMethod checks.
func poke(req *IncomingMessage, res *ServerResponse) {
	res.GetHeader("Content-Type")
	res.HasHeader("X-Early")
	res.GetHeaders()
	res.HeadersSent()
	res.RemoveHeader("X-None")
	res.SetHeaderValues("X-Multi", []string{"a", "b"}) // may lose to End: ErrHeadersSent
	res.WriteHead(200, "")                             // the status the round sends anyway
	res.AddTrailers(Header{"X-Trailer", "t"})          // sent only with a chunked body
	res.WriteInformation(103, Header{"Link", "</a>"})  // interim: the client skips it
	res.WriteContinue()
	res.Retain() // nothing without ReuseMessages
	res.OnDrain(func() {})
	res.OnTimeout(func() {})
	res.SetTimeout(time.Minute, nil)
	_ = res.Socket()
	req.SetTimeout(time.Minute, nil)
	req.OnTimeout(func() {})
	req.OnError(func(error) {})
	req.OnData(func([]byte) {})
	req.Header("host")
	req.HeaderValues("host")
	req.Trailer("x-none")
	s := req.Socket
	s.RemoteAddress()
	s.RemotePort()
	s.LocalAddress()
	s.LocalPort()
	s.OnClose(func() {})
	s.OnError(func(error) {})
	s.OnTimeout(func() {})
	s.OnData(func([]byte) {})
	s.Write([]byte("x")) // refused: not an upgraded socket
	s.SetNoDelay(true)
	s.SetKeepAlive(true, time.Minute)
	s.SetTimeout(time.Minute, nil)
	s.TLS() // nil: a plain connection
}

// pokedElsewhere lists the exported methods the rounds of
// callsFromOtherGoroutines call themselves, from goroutines (or, for
// Headers, from the callbacks' goroutine its doc allows), and Socket.End,
// which closes the connection and has a test of its own.
var pokedElsewhere = map[string]bool{
	"IncomingMessage.OnClose": true, "IncomingMessage.OnEnd": true, "IncomingMessage.Pause": true,
	"IncomingMessage.Resume": true, "IncomingMessage.Headers": true,
	"ServerResponse.SetHeader": true, "ServerResponse.OnFinish": true, "ServerResponse.OnClose": true,
	"ServerResponse.Write": true, "ServerResponse.End": true,
	"Socket.Destroy": true, "Socket.End": true,
}

// TestPokeCoversEveryMethod: every exported method of IncomingMessage,
// ServerResponse and Socket is called by poke or listed in
// pokedElsewhere, so a method added later fails here until the
// any-goroutine test calls it.
func TestPokeCoversEveryMethod(t *testing.T) {
	src, err := os.ReadFile("threading_test.go")
	if err != nil {
		t.Fatal(err)
	}
	body := string(src)
	body = body[strings.Index(body, "func poke("):]
	body = body[:strings.Index(body, "\n}\n")]
	for _, v := range []any{&IncomingMessage{}, &ServerResponse{}, &Socket{}} {
		typ := reflect.TypeOf(v)
		for i := 0; i < typ.NumMethod(); i++ {
			name := typ.Method(i).Name
			full := typ.Elem().Name() + "." + name
			if !pokedElsewhere[full] && !strings.Contains(body, "."+name+"(") {
				t.Errorf("%s is neither called by poke nor listed in pokedElsewhere", full)
			}
		}
	}
}

// exchangeCounts counts the server-side callbacks of one request.
type exchangeCounts struct {
	handler, end, reqClose, resClose, finish, endCB atomic.Int64
	goFinish, goClose                               atomic.Int64 // listeners added from goroutines
	received                                        atomic.Int64
}

// TestCallsFromOtherGoroutines drives the request, response, socket and
// client methods from goroutines other than the loop, while the loop runs
// the exchange's callbacks and after they returned: `go req.Resume()`
// after a Pause in OnData (on both sides, with bodies of up to 3 MB), `go
// res.End()` from the handler, SetHeader, Write and End from goroutines,
// Destroy of the server's socket from a goroutine in the middle of a body.
// Under -race it must report nothing; every callback runs exactly once (or
// never, where the exchange was destroyed first) and every body arrives
// whole.
func TestCallsFromOtherGoroutines(t *testing.T) {
	t.Run("loop", func(t *testing.T) { callsFromOtherGoroutines(t, quiet()) })
	workers := quiet()
	workers.Workers = 2
	t.Run("workers", func(t *testing.T) { callsFromOtherGoroutines(t, workers) })
}

func callsFromOtherGoroutines(t *testing.T, opts *Options) {
	const rounds = 100
	var counts [rounds]exchangeCounts
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		i, _ := strconv.Atoi(req.URL[1:])
		c := &counts[i]
		c.handler.Add(1)
		go res.SetHeader("X-Early", "1") // may lose to End: then ErrHeadersSent
		// Listeners added from goroutines, before or after their event
		// fired: once each all the same.
		go res.OnFinish(func() { c.goFinish.Add(1) })
		go req.OnClose(func() { c.goClose.Add(1) })
		go poke(req, res) // the other methods, from a goroutine, while the exchange runs
		req.Headers()     // the callbacks' goroutine only
		req.OnClose(func() {
			c.reqClose.Add(1)
			go poke(req, res) // and after it: they fail as for a closed connection
		})
		res.OnClose(func() { c.resClose.Add(1) })
		res.OnFinish(func() { c.finish.Add(1) })
		if req.Method == "GET" {
			go res.End([]byte("got"), func(error) { c.endCB.Add(1) })
			req.OnEnd(func() { c.end.Add(1) })
			return
		}
		var destroyed atomic.Bool
		req.OnData(func(chunk []byte) {
			n := c.received.Add(int64(len(chunk)))
			req.Pause()
			go req.Resume()
			if i%10 == 9 && n > 64<<10 && !destroyed.Swap(true) {
				go req.Socket.Destroy()
			}
		})
		req.OnEnd(func() {
			c.end.Add(1)
			go func() { // after the callback has returned
				res.SetHeader("Content-Type", "text/plain")
				res.Write([]byte(strconv.FormatInt(c.received.Load(), 10)), nil)
				req.Pause()
				req.Resume()
				res.Write(bytes.Repeat([]byte("r"), 256<<10), nil)
				res.End(nil, func(error) { c.endCB.Add(1) })
			}()
		})
	}, opts)
	host, port := splitAddr(t, listen(t, srv))
	a := testAgent(t, AgentOptions{})

	type clientCounts struct {
		response, end, finish, errs, closes, sockets atomic.Int64
		body                                         atomic.Int64
		lastErr                                      atomic.Value
	}
	var client [rounds]clientCounts
	var wg sync.WaitGroup
	run := func(i int) {
		defer wg.Done()
		cc := &client[i]
		size := 256 << 10
		if i%25 == 0 {
			size = 3 << 20
		}
		method := "POST"
		if i%5 == 4 {
			method, size = "GET", 0
		}
		closed := make(chan struct{})
		req, err := Request(RequestOptions{Host: host, Port: port, Agent: a, Method: method, Path: "/" + strconv.Itoa(i)},
			func(res *IncomingMessage) {
				cc.response.Add(1)
				go res.SetTimeout(time.Minute, nil)
				go res.OnError(func(error) {})
				res.OnData(func(chunk []byte) {
					cc.body.Add(int64(len(chunk)))
					res.Pause()
					go res.Resume()
				})
				res.OnEnd(func() { cc.end.Add(1) })
			})
		if err != nil {
			t.Error(err)
			return
		}
		req.OnSocket(func(*Socket) { cc.sockets.Add(1) })
		go func() { // the client request's other methods, from a goroutine
			req.GetHeader("Content-Length")
			req.SetTimeout(time.Minute, nil)
			req.OnTimeout(func() {})
			req.OnDrain(func() {})
			req.OnInformation(func(Information) {})
		}()
		req.OnFinish(func() { cc.finish.Add(1) })
		req.OnError(func(err error) { cc.lastErr.Store(err); cc.errs.Add(1) })
		req.OnClose(func() {
			if cc.closes.Add(1) == 1 {
				close(closed)
			}
		})
		go func() { // the body from a goroutine of its own, in pieces
			if size > 0 {
				req.SetHeader("Content-Length", strconv.Itoa(size))
			}
			piece := bytes.Repeat([]byte("b"), 64<<10)
			for sent := 0; sent < size; sent += len(piece) {
				req.Write(piece, nil)
			}
			req.End(nil, nil)
		}()
		select {
		case <-closed:
		case <-time.After(30 * time.Second):
			t.Errorf("round %d: the request did not close", i)
		}
	}
	for i := 0; i < rounds; i += 4 {
		for j := i; j < i+4 && j < rounds; j++ {
			wg.Add(1)
			go run(j)
		}
		wg.Wait()
	}

	// Every exchange has closed on the client; the server's close waits
	// for its connections, so its events have all fired once it is done
	// (listeners added late, after an exchange was over, run on goroutines
	// of their own: waitFor gives them time).
	a.Destroy()
	done := make(chan error, 1)
	srv.Close(func(err error) { done <- err })
	if err := <-done; err != nil && !errors.Is(err, ErrNotRunning) {
		t.Fatal(err)
	}
	for i := 0; i < rounds; i++ {
		c, cc := &counts[i], &client[i]
		destroyed := i%10 == 9 && i%5 != 4
		what := fmt.Sprintf("round %d (destroyed %v)", i, destroyed)
		one := func(name string, n int64) {
			if n != 1 {
				t.Errorf("%s: %s ran %d times; want once", what, name, n)
			}
		}
		if !waitFor(10*time.Second, func() bool { return c.goClose.Load() >= 1 }) {
			t.Errorf("%s: the close listener added from a goroutine never ran", what)
		}
		one("handler", c.handler.Load())
		one("req OnClose added from a goroutine", c.goClose.Load())
		one("req OnClose", c.reqClose.Load())
		one("res OnClose", c.resClose.Load())
		one("client OnClose", cc.closes.Load())
		one("client OnSocket", cc.sockets.Load())
		if destroyed {
			if c.finish.Load() != 0 || c.goFinish.Load() != 0 || cc.errs.Load() != 1 {
				t.Errorf("%s: finish %d, client errors %d; want 0 and 1", what, c.finish.Load(), cc.errs.Load())
			}
			continue
		}
		if err, _ := cc.lastErr.Load().(error); err != nil {
			t.Errorf("%s: client error %v", what, err)
		}
		one("req OnEnd", c.end.Load())
		one("res OnFinish", c.finish.Load())
		if !waitFor(10*time.Second, func() bool { return c.goFinish.Load() >= 1 }) {
			t.Errorf("%s: the finish listener added from a goroutine never ran", what)
		}
		one("res OnFinish added from a goroutine", c.goFinish.Load())
		one("res End callback", c.endCB.Load())
		one("client OnFinish", cc.finish.Load())
		one("client response", cc.response.Load())
		one("client response OnEnd", cc.end.Load())
	}
}
