package api

import (
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestClientResponseSetTimeout: a client response's SetTimeout callback
// runs once the connection has been idle for its timeout (Node's
// res.setTimeout), once per idle period, and the request's own timeout
// listeners hear it too.
func TestClientResponseSetTimeout(t *testing.T) {
	// The server sends a head and one byte of a chunked body, then nothing.
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) { res.Write([]byte("."), nil) }, quiet())
	// The response never ends: the server keeps the exchange (a peer that
	// half-closed still gets its answer) until its idle timeout.
	srv.SetTimeout(500*time.Millisecond, nil)
	host, port := splitAddr(t, listen(t, srv))
	fired := make(chan struct{}, 1)
	var resTimeouts, reqTimeouts atomic.Int64
	var req *ClientRequest
	req, err := Request(RequestOptions{Host: host, Port: port, Agent: testAgent(t, AgentOptions{})}, func(res *IncomingMessage) {
		res.SetTimeout(50*time.Millisecond, func() {
			if resTimeouts.Add(1) == 1 {
				fired <- struct{}{}
			}
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	req.OnTimeout(func() { reqTimeouts.Add(1) })
	closed := make(chan struct{})
	req.OnClose(func() { close(closed) })
	req.End(nil, nil)
	select {
	case <-fired:
	case <-time.After(10 * time.Second):
		t.Fatal("the response's SetTimeout callback never ran")
	}
	req.Destroy(nil)
	<-closed
	if reqTimeouts.Load() < 1 {
		t.Errorf("the request's OnTimeout heard %d timeouts; want at least 1", reqTimeouts.Load())
	}
}

// TestGetLateListeners: Get sends the request at once, so listeners added
// after it may come after their event fired (Node's
// `http.get(...).on('error', …)`). Whenever they are added (right away,
// after the loop had time to work, or after the request closed), each
// hears its event exactly once: against a live server 'socket', 'finish'
// and 'close' (and the response's 'end' and 'close', added after they
// fired), against a refused port 'error' and 'close'. Nothing hangs.
func TestGetLateListeners(t *testing.T) {
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) { res.End([]byte("ok"), nil) }, quiet())
	host, live := splitAddr(t, listen(t, srv))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, refused := splitAddr(t, ln.Addr().String())
	ln.Close() // nothing listens there now: connections are refused
	a := testAgent(t, AgentOptions{})

	const rounds = 1000
	var wg sync.WaitGroup
	round := func(i int) {
		defer wg.Done()
		port := live
		if i%2 == 1 {
			port = refused
		}
		var socket, finish, errs, resEnd, resClose atomic.Int64
		resDone := make(chan struct{})
		var response atomic.Pointer[IncomingMessage]
		req, err := Get(RequestOptions{Host: host, Port: port, Agent: a}, func(res *IncomingMessage) {
			response.Store(res)
		})
		if err != nil {
			t.Error(err)
			return
		}
		early := make(chan struct{})
		switch i / 2 % 3 {
		case 1: // let the loop work first
			for j := 0; j < 100; j++ {
				runtime.Gosched()
			}
		case 2: // after the request has closed
			req.OnClose(func() { close(early) })
			select {
			case <-early:
			case <-time.After(10 * time.Second):
				t.Errorf("round %d: the request did not close", i)
				return
			}
		}
		closed := make(chan struct{})
		var closes atomic.Int64
		req.OnSocket(func(*Socket) { socket.Add(1) })
		req.OnFinish(func() { finish.Add(1) })
		req.OnError(func(error) { errs.Add(1) })
		req.OnClose(func() {
			if closes.Add(1) == 1 {
				close(closed)
			}
		})
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Errorf("round %d: OnClose never ran (socket %d finish %d error %d)", i, socket.Load(), finish.Load(), errs.Load())
			return
		}
		if res := response.Load(); res != nil {
			// The response is over: its listeners, added now, run at once.
			res.OnEnd(func() { resEnd.Add(1) })
			res.OnClose(func() {
				if resClose.Add(1) == 1 {
					close(resDone)
				}
			})
			select {
			case <-resDone:
			case <-time.After(10 * time.Second):
				t.Errorf("round %d: the response's late OnClose never ran", i)
				return
			}
		}
		want := [4]int64{1, 1, 0, 1} // socket, finish, error, close
		if port == refused {
			want = [4]int64{0, 0, 1, 1}
		}
		got := [4]int64{socket.Load(), finish.Load(), errs.Load(), closes.Load()}
		if got != want {
			t.Errorf("round %d (refused %v): socket, finish, error, close ran %v times; want %v", i, port == refused, got, want)
		}
		if port == live && (response.Load() == nil || resEnd.Load() != 1 || resClose.Load() != 1) {
			res := response.Load()
			res.st.lmu.Lock()
			dbg := fmt.Sprintf("complete %v fired %b onEnd %d listening %d", res.Complete, res.st.fired.Load(), len(res.st.onEnd), res.st.listening.Load())
			res.st.lmu.Unlock()
			t.Errorf("round %d: response %v, its late end %d, close %d; want once each (%s)", i, response.Load() != nil, resEnd.Load(), resClose.Load(), dbg)
		}
	}
	for i := 0; i < rounds; i += 8 {
		for j := i; j < i+8; j++ {
			wg.Add(1)
			go round(j)
		}
		wg.Wait()
	}
}

// TestClientPanicLogsStack: a client listener's panic is logged with the
// stack of the goroutine that panicked, and the request closes instead of
// the program going down.
func TestClientPanicLogsStack(t *testing.T) {
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) { res.End([]byte("ok"), nil) }, quiet())
	host, port := splitAddr(t, listen(t, srv))
	logs := &syncBuffer{}
	a := NewAgent(AgentOptions{Loops: 1, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	t.Cleanup(a.Destroy)
	closed := make(chan struct{})
	req, _ := Request(RequestOptions{Host: host, Port: port, Agent: a}, func(*IncomingMessage) { panic("listener bug") })
	req.OnClose(func() { close(closed) })
	req.End(nil, nil)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never closed")
	}
	out := logs.String()
	if !strings.Contains(out, "listener bug") || !strings.Contains(out, "stack=") || !strings.Contains(out, "goroutine ") {
		t.Fatalf("log %q; want the panic with its stack", out)
	}
}

// TestClientSocketLateListenersInOrder: listeners added to a client
// connection's Socket after its 'close' run once each, in the order
// added, one at a time (on the client's runner, not each on a goroutine
// of its own, where their order was the scheduler's).
func TestClientSocketLateListenersInOrder(t *testing.T) {
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) { res.End([]byte("ok"), nil) }, quiet())
	host, port := splitAddr(t, listen(t, srv))
	socks := make(chan *Socket, 1)
	closed := make(chan struct{})
	req, _ := Request(RequestOptions{Host: host, Port: port, Agent: testAgent(t, AgentOptions{}),
		Headers: map[string]string{"Connection": "close"}}, nil)
	req.OnSocket(func(s *Socket) { socks <- s; s.OnClose(func() { close(closed) }) })
	req.End(nil, nil)
	s := <-socks
	<-closed
	const n = 50
	var order []int // written by the listeners, one at a time
	all := make(chan struct{})
	for i := range n {
		s.OnClose(func() {
			order = append(order, i)
			if i == n-1 {
				close(all)
			}
		})
	}
	awaitClose(t, all, "the last late 'close' listener")
	for i, got := range order {
		if got != i {
			t.Fatalf("late listeners ran in the order %v; want the order added", order)
		}
	}
}

// TestClientRequestFromEndReusesTheConnection: a request made as the
// previous response ends (from its 'end' listener, before the connection
// is back in the pool) waits for that connection instead of dialing a new
// one: keep-alive is reused however soon the next request comes.
func TestClientRequestFromEndReusesTheConnection(t *testing.T) {
	var conns atomic.Int64
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) { res.End([]byte("ok"), nil) }, quiet())
	srv.OnConnection(func(*Socket) { conns.Add(1) })
	host, port := splitAddr(t, listen(t, srv))
	agent := testAgent(t, AgentOptions{})
	const rounds = 20
	socks := make(chan *Socket, rounds)
	done := make(chan struct{})
	var get func(i int)
	get = func(i int) {
		req, err := Request(RequestOptions{Host: host, Port: port, Agent: agent}, func(m *IncomingMessage) {
			m.OnData(func([]byte) {})
			m.OnEnd(func() {
				if i+1 < rounds {
					get(i + 1) // before the connection is free again
				} else {
					close(done)
				}
			})
		})
		if err != nil {
			t.Error(err)
			return
		}
		req.OnSocket(func(s *Socket) { socks <- s })
		req.End(nil, nil)
	}
	get(0)
	awaitClose(t, done, "the last response")
	first := <-socks
	for i := 1; i < rounds; i++ {
		if s := <-socks; s != first {
			t.Fatalf("request %d came on another connection (%d connections in all); want the kept one", i, conns.Load())
		}
	}
}

// TestClientRequestFromEndWhileBodyUnfinished: when the server answers
// before the request's body is done (and the client never finishes it),
// the connection is not about to be free: a request made from 'end' opens
// another connection instead of waiting for this one.
func TestClientRequestFromEndWhileBodyUnfinished(t *testing.T) {
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) { res.End([]byte("early"), nil) }, quiet())
	host, port := splitAddr(t, listen(t, srv))
	agent := testAgent(t, AgentOptions{})
	second := make(chan int, 1)
	first, err := Request(RequestOptions{Host: host, Port: port, Method: "POST", Agent: agent,
		Headers: map[string]string{"Content-Length": "10"}}, func(m *IncomingMessage) {
		m.OnData(func([]byte) {})
		m.OnEnd(func() {
			req, err := Request(RequestOptions{Host: host, Port: port, Agent: agent}, func(m *IncomingMessage) {
				m.OnData(func([]byte) {})
				m.OnEnd(func() { second <- m.StatusCode })
			})
			if err != nil {
				t.Error(err)
				return
			}
			req.End(nil, nil)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	first.Write([]byte("12345"), nil) // half the body, never finished
	select {
	case status := <-second:
		if status != 200 {
			t.Fatalf("second request: status %d", status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second request waited for a connection whose request never ends")
	}
	first.Destroy(nil)
}
