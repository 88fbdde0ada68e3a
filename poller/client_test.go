package poller

import (
	"bytes"
	"context"
	"errors"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/engine"
)

// result is what a clientCall collected for one exchange.
type result struct {
	status int
	body   []byte
	err    error
	reused bool
}

// clientCall is a ClientHandler for one exchange that reports on done.
type clientCall struct {
	res  result
	done chan result
}

func newCall() *clientCall { return &clientCall{done: make(chan result, 1)} }

func (k *clientCall) Information(*engine.Exchange, *codec.Response) {}
func (k *clientCall) Response(x *engine.Exchange, r *codec.Response) {
	k.res.status = r.Status
	k.res.reused = x.Reused()
}
func (k *clientCall) Body(_ *engine.Exchange, b []byte)    { k.res.body = append(k.res.body, b...) }
func (k *clientCall) End(*engine.Exchange, []codec.Header) {}
func (k *clientCall) Drain(*engine.Exchange)               {}
func (k *clientCall) Timeout(*engine.Exchange)             {}
func (k *clientCall) Close(_ *engine.Exchange, err error)  { k.res.err = err; k.done <- k.res }
func (k *clientCall) wait(t *testing.T) result             { t.Helper(); return waitFor(t, k.done) }
func (k *clientCall) begin(c *Conn, method, body string) error {
	x, err := c.Client().Begin(k, method, "/")
	if err != nil {
		return err
	}
	if err := x.AddField("Host", "localhost"); err != nil {
		return err
	}
	return x.End([]byte(body))
}

func waitFor[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("timed out")
		panic("unreachable")
	}
}

// idleOwner reports connections offered for reuse.
type idleOwner struct{ idle chan *engine.ClientConn }

func (o *idleOwner) Idle(c *engine.ClientConn) { o.idle <- c }

func newTestClient(t *testing.T, hooks ClientHooks) *Client {
	t.Helper()
	cl, err := NewClient(ClientConfig{Loops: 2, Tick: 10 * time.Millisecond, Logger: quietLogger()}, hooks)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// dialConn dials addr and returns the Conn, delivered on its loop.
func dialConn(t *testing.T, cl *Client, addr string, owner engine.ClientOwner) *Conn {
	t.Helper()
	type dialed struct {
		c   *Conn
		err error
	}
	ch := make(chan dialed, 1)
	cl.Dial(context.Background(), addr, owner, func(c *Conn, err error) { ch <- dialed{c, err} })
	d := waitFor(t, ch)
	if d.err != nil {
		t.Fatal(d.err)
	}
	return d.c
}

// runOnLoop runs fn on c's loop and waits for it.
func runOnLoop(t *testing.T, c *Conn, fn func() error) {
	t.Helper()
	errc := make(chan error, 1)
	if err := c.Submit(c.Gen(), func() { errc <- fn() }); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(t, errc); err != nil {
		t.Fatal(err)
	}
}

func TestClientKeepAliveAgainstServer(t *testing.T) {
	s := startServer(t, Config{}, newEcho())
	cl := newTestClient(t, nil)
	owner := &idleOwner{idle: make(chan *engine.ClientConn, 4)}
	c := dialConn(t, cl, s.Addr().String(), owner)
	for i, body := range []string{"", "hello", "world"} {
		k := newCall()
		runOnLoop(t, c, func() error { return k.begin(c, "POST", body) })
		r := k.wait(t)
		want := body
		if want == "" {
			want = "ok"
		}
		if r.err != nil || r.status != 200 || string(r.body) != want || r.reused != (i > 0) {
			t.Fatalf("exchange %d: %+v", i, r)
		}
		waitFor(t, owner.idle)
	}
	if n := s.OpenConns(); n != 1 {
		t.Fatalf("server has %d connections; want the one reused", n)
	}
}

func TestClientDialRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cl := newTestClient(t, nil)
	errc := make(chan error, 1)
	cl.Dial(context.Background(), addr, nil, func(c *Conn, err error) { errc <- err })
	if err := waitFor(t, errc); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial error %v; want ECONNREFUSED", err)
	}
}

// closedHooks counts closed client connections.
type closedHooks struct{ closed chan *Conn }

func (h *closedHooks) Closed(c *Conn) { h.closed <- c }

func TestClientServerClosesIdleConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	hooks := &closedHooks{closed: make(chan *Conn, 1)}
	cl := newTestClient(t, hooks)
	c := dialConn(t, cl, ln.Addr().String(), nil)
	sc := waitFor(t, accepted)
	sc.Close()
	if got := waitFor(t, hooks.closed); got != c {
		t.Fatal("another connection closed")
	}
	if err := c.Submit(c.Gen(), func() {}); !errors.Is(err, ErrConnGone) {
		t.Fatalf("Submit on a closed connection: %v", err)
	}
}

func TestClientCloseAbortsExchanges(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a server that reads and never answers
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(c)
	}()
	cl, err := NewClient(ClientConfig{Loops: 1, Logger: quietLogger()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := dialConn(t, cl, ln.Addr().String(), nil)
	k := newCall()
	runOnLoop(t, c, func() error { return k.begin(c, "GET", "") })
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
	if r := k.wait(t); !errors.Is(r.err, ErrClientClosed) {
		t.Fatalf("exchange ended with %v; want ErrClientClosed", r.err)
	}
	cl.Dial(context.Background(), ln.Addr().String(), nil, func(c *Conn, err error) {
		if !errors.Is(err, ErrClientClosed) {
			t.Errorf("Dial after Close: %v", err)
		}
	})
	ln.Close()
	wg.Wait()
}

// TestInEventAfterTheLoopStopped: once a client's loops have stopped,
// other goroutines may have the identity a loop recorded (its thread,
// which gnet unlocks, or its goroutine's descriptor, which the runtime
// reuses: identity.go); InEvent from them is false and reads nothing the
// loop wrote without synchronisation (the race detector caught a Resume,
// from a goroutine a loop callback had started, reading the loop's
// current connection after an Agent.Destroy). Goroutines started on the
// loops keep asking while the client closes and after.
func TestInEventAfterTheLoopStopped(t *testing.T) {
	srv := startServer(t, Config{}, newEcho())
	cl := newTestClient(t, nil)
	var conns []*Conn
	for range 4 { // both loops, most likely
		conns = append(conns, dialConn(t, cl, srv.Addr().String(), &idleOwner{idle: make(chan *engine.ClientConn, 4)}))
	}
	var wg sync.WaitGroup
	var wrong atomic.Int32
	for _, c := range conns {
		runOnLoop(t, c, func() error {
			for range 25 {
				wg.Add(1)
				go func() { // no happens-before edge from the loop's later writes
					defer wg.Done()
					for range 4000 {
						for _, c := range conns {
							if c.InEvent() {
								wrong.Add(1)
							}
						}
						runtime.Gosched()
					}
				}()
			}
			return nil
		})
	}
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if n := wrong.Load(); n != 0 {
		t.Fatalf("InEvent true %d times on goroutines that are not loops", n)
	}
}
