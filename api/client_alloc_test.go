package api

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"testing"
	"unsafe"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/engine"
	"github.com/loophttp/loophttp/poller"
)

// echoLength answers every request, at the engine level (no allocation),
// with "Hello, World!" once its body is in.
type echoLength struct{}

var helloBody = []byte("Hello, World!")

func (echoLength) Request(s *engine.Stream, _ *codec.Request) {
	_ = s.SetHead(200, "", []codec.Header{{Name: []byte("Content-Type"), Value: []byte("text/plain")}})
}
func (echoLength) Body(*engine.Stream, []byte)            {}
func (echoLength) End(s *engine.Stream, _ []codec.Header) { _ = s.End(helloBody) }
func (echoLength) Drain(*engine.Stream)                   {}
func (echoLength) Close(*engine.Stream, error)            {}

// allocServer starts an engine-level server that allocates nothing per
// request, closed when t ends, and returns its host and port.
func allocServer(t *testing.T) (string, int) {
	t.Helper()
	srv, err := poller.Start(poller.Config{Addr: "127.0.0.1:0", Loops: 1, Logger: quiet().Logger}, echoLength{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	host, port, _ := net.SplitHostPort(srv.Addr().String())
	p, _ := strconv.Atoi(port)
	return host, p
}

// TestClientAllocs pins the client's allocation budget per keep-alive
// request, counted over a loopback socket against a server that allocates
// nothing, with listeners made once (so that the count is the api's own).
// A request made on the connection's loop (in the 'close' of the one
// before, as a chain of requests does) allocates the ClientRequest, which
// the caller holds, and nothing else; a body given to End is copied into
// a pooled buffer, not a fresh one. A request made on another goroutine
// is handed to the loop: poller.Conn.SubmitConn and gnet's task queue
// allocate three small objects for that.
func TestClientAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("counts allocations over a socket")
	}
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop what it is given")
	}
	host, port := allocServer(t)
	agent := testAgent(t, AgentOptions{Loops: 1, MaxSockets: 1})
	body := bytes.Repeat([]byte("x"), 100)
	for _, tc := range []struct {
		name   string
		method string
		body   []byte
		chain  int // requests per round, each made in the last one's 'close'
		max    float64
	}{
		// 1.1: the first request of each chain is handed to the loop
		// (three allocations), and the loops' ticks allocate a task now
		// and then.
		{"GET on the loop", "GET", nil, 100, 1.1},
		{"POST with End(body) on the loop", "POST", body, 100, 1.1},
		{"GET from another goroutine", "GET", nil, 1, 4},
		{"POST with End(body) from another goroutine", "POST", body, 1, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := RequestOptions{Host: host, Port: port, Method: tc.method, Agent: agent}
			c := &allocChain{opts: opts, body: tc.body, done: make(chan struct{}, 1)}
			c.onData = func(b []byte) { c.n += len(b) }
			c.onRes = func(res *IncomingMessage) { res.OnData(c.onData) }
			c.onClose = c.closed
			round := func() {
				c.left = tc.chain
				c.next()
				<-c.done
			}
			for i := 0; i < 20; i++ { // the connection, the pools
				round()
			}
			got := testing.AllocsPerRun(20, round) / float64(tc.chain)
			if c.bad > 0 || c.err != nil {
				t.Fatalf("%d responses with the wrong body; error %v", c.bad, c.err)
			}
			if got > tc.max {
				t.Errorf("%v allocations per request; want at most %v", got, tc.max)
			}
		})
	}
}

// allocChain makes requests one after the other, each in the 'close' of
// the one before, with listeners made once.
type allocChain struct {
	opts    RequestOptions
	body    []byte
	left    int
	n, bad  int
	err     error
	done    chan struct{}
	onData  func([]byte)
	onRes   func(*IncomingMessage)
	onClose func()
}

func (c *allocChain) next() {
	c.n = 0
	r, err := Request(c.opts, c.onRes)
	if err != nil {
		c.err = err
		c.done <- struct{}{}
		return
	}
	r.OnClose(c.onClose)
	if err := r.End(c.body, nil); err != nil {
		c.err = err
	}
}

func (c *allocChain) closed() {
	if c.n != len(helloBody) {
		c.bad++
	}
	if c.left--; c.left > 0 {
		c.next()
		return
	}
	c.done <- struct{}{}
}

// TestClientRequestSize pins the size of the ClientRequest every request
// allocates (its one allocation, with its response inline) to the 1536-byte
// allocation size class: a field added here costs every request the next
// class (1792 bytes) unless another gives room.
func TestClientRequestSize(t *testing.T) {
	if got, want := unsafe.Sizeof(ClientRequest{}), uintptr(1536); got > want {
		t.Errorf("unsafe.Sizeof(ClientRequest{}) = %d; want at most %d", got, want)
	}
}
