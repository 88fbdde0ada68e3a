package poller

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/engine"
	"github.com/loophttp/loophttp/internal/leakcheck"
)

// TestMain fails the package if goroutines of the server are left behind.
func TestMain(m *testing.M) {
	leakcheck.Main(m, "loophttp/poller.(*Server)", "gnet/v2.(*eventloop)")
}

// echo answers every request with its body (or "ok" without one); when
// async is set it answers from another goroutine through Submit.
type echo struct {
	mu     sync.Mutex
	bodies map[*engine.Stream]*bytes.Buffer
	async  bool
	closes atomic.Int64
}

func newEcho() *echo { return &echo{bodies: map[*engine.Stream]*bytes.Buffer{}} }

func (e *echo) Request(s *engine.Stream, req *codec.Request) {
	e.mu.Lock()
	e.bodies[s] = new(bytes.Buffer)
	e.mu.Unlock()
}

func (e *echo) Body(s *engine.Stream, chunk []byte) {
	e.mu.Lock()
	e.bodies[s].Write(chunk)
	e.mu.Unlock()
}

func (e *echo) End(s *engine.Stream, _ []codec.Header) {
	e.mu.Lock()
	body := e.bodies[s].Bytes()
	delete(e.bodies, s)
	e.mu.Unlock()
	if len(body) == 0 {
		body = []byte("ok")
	}
	if !e.async {
		s.End(body)
		return
	}
	c, gen := s.Conn().(*Conn), s.Conn().(*Conn).Gen()
	go func() {
		_ = c.Submit(gen, func() { s.End(body) })
	}()
}

func (e *echo) Drain(s *engine.Stream)            {}
func (e *echo) Close(s *engine.Stream, err error) { e.closes.Add(1) }

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startServer(t *testing.T, cfg Config, h engine.Handler) *Server {
	t.Helper()
	return startServerHooks(t, cfg, h, nil)
}

// startServerHooks is startServer with hooks.
func startServerHooks(t *testing.T, cfg Config, h engine.Handler, hooks Hooks) *Server {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	cfg.Loops = 2
	if cfg.Tick == 0 {
		cfg.Tick = 10 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	s, err := Start(cfg, h, hooks)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil && err != ErrServerClosed {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

func dial(t *testing.T, s *Server) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readResponses reads n responses from r and returns their bodies.
func readResponses(t *testing.T, r *bufio.Reader, n int) []string {
	t.Helper()
	var bodies []string
	for i := 0; i < n; i++ {
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i+1, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("response %d body: %v", i+1, err)
		}
		bodies = append(bodies, string(b))
	}
	return bodies
}

func TestPipelinedKeepAliveRawTCP(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(fmt.Sprintf("async=%v", async), func(t *testing.T) {
			h := newEcho()
			h.async = async
			s := startServer(t, Config{}, h)
			c := dial(t, s)
			var req strings.Builder
			for i := 0; i < 16; i++ {
				fmt.Fprintf(&req, "POST /%d HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%d", i, len(fmt.Sprint(i)), i)
			}
			if _, err := io.WriteString(c, req.String()); err != nil {
				t.Fatal(err)
			}
			got := readResponses(t, bufio.NewReader(c), 16)
			for i, b := range got {
				if b != fmt.Sprint(i) {
					t.Fatalf("response %d body %q; want %q (order kept)", i, b, fmt.Sprint(i))
				}
			}
		})
	}
}

func TestNetHTTPClientKeepAlive(t *testing.T) {
	s := startServer(t, Config{}, newEcho())
	var conns atomic.Int64
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conns.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	for i := 0; i < 20; i++ {
		resp, err := client.Post("http://"+s.Addr().String()+"/x", "text/plain", strings.NewReader(fmt.Sprint("body", i)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != fmt.Sprint("body", i) || resp.StatusCode != 200 {
			t.Fatalf("response %d: %d %q", i, resp.StatusCode, b)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 20 sequential requests; want 1 (keep-alive)", n)
	}
}

func TestAsyncCompletionUnderRace(t *testing.T) {
	h := newEcho()
	h.async = true
	s := startServer(t, Config{}, h)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			r := bufio.NewReader(c)
			for i := 0; i < 50; i++ {
				fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n%03d", i)
				resp, err := http.ReadResponse(r, nil)
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				if string(b) != fmt.Sprintf("%03d", i) {
					t.Errorf("got %q", b)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestSubmitAfterCloseIsHarmless: the client resets a connection whose
// request is held; a late Submit for it is refused. (A plain close from
// the client, a FIN, is not read while an answer is owed: a half-closed
// client still gets it. A reset is seen at once, paused or not.)
func TestSubmitAfterCloseIsHarmless(t *testing.T) {
	h, c, st, conn := holdOne(t)
	gen := conn.Gen()
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	<-h.closed
	if err := conn.Submit(gen, func() { st.End([]byte("late")) }); err != ErrConnGone {
		t.Fatalf("Submit after close: %v; want ErrConnGone", err)
	}
}

// holdOne starts a server with a holdHandler, sends it one request and
// returns the handler, the client's connection, and the request's Stream
// and Conn as the handler holds them (the Conn read on the loop: the
// stream goes back to its pool when the connection closes).
func holdOne(t *testing.T) (*holdHandler, net.Conn, *engine.Stream, *Conn) {
	h := &holdHandler{held: make(chan *engine.Stream, 1)}
	c := dial(t, startServer(t, Config{}, h))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	st := <-h.held
	return h, c, st, h.conn.Load()
}

type holdHandler struct {
	held   chan *engine.Stream
	conn   atomic.Pointer[Conn] // the held stream's, set on the loop before it is sent
	closed chan struct{}
	once   sync.Once
}

func (h *holdHandler) Request(s *engine.Stream, req *codec.Request) {}
func (h *holdHandler) Body(s *engine.Stream, chunk []byte)          {}
func (h *holdHandler) End(s *engine.Stream, _ []codec.Header) {
	h.once.Do(func() { h.closed = make(chan struct{}) })
	h.conn.Store(s.Conn().(*Conn))
	h.held <- s
}
func (h *holdHandler) Drain(s *engine.Stream)            {}
func (h *holdHandler) Close(s *engine.Stream, err error) { close(h.closed) }

func TestSlowlorisClosedWhileHealthyServed(t *testing.T) {
	s := startServer(t, Config{Engine: engine.Config{HeadersTimeout: 300 * time.Millisecond}}, newEcho())
	slow := dial(t, s)
	io.WriteString(slow, "GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ")
	start := time.Now()
	healthy := dial(t, s)
	r := bufio.NewReader(healthy)
	for i := 0; i < 10; i++ {
		io.WriteString(healthy, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		readResponses(t, r, 1)
	}
	slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	out, _ := io.ReadAll(slow) // returns when the server closes
	if !strings.HasPrefix(string(out), "HTTP/1.1 408 ") {
		t.Fatalf("slow client got %q; want 408 then close", out)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("slow client closed after %v; want about the 300 ms headers timeout", d)
	}
}

func TestGracefulShutdownLosesNoResponse(t *testing.T) {
	held := make(chan *engine.Stream, 1)
	h := &holdHandler{held: held}
	cfg := Config{Addr: "127.0.0.1:0", Loops: 1, Tick: 10 * time.Millisecond, Logger: quietLogger()}
	s, err := Start(cfg, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	idle, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	st := <-held
	// Make sure the idle connection is open on the loop before the
	// shutdown starts (a connection accepted later is closed at once).
	for s.OpenConns() < 2 {
		runtime.Gosched()
	}
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	// The idle connection is closed by the shutdown.
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := idle.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle connection: read %d, %v; want EOF", n, err)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) with a response in flight", err)
	default:
	}
	conn := st.Conn().(*Conn)
	if err := conn.Submit(conn.Gen(), func() { st.End([]byte("finished")) }); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "finished" || !resp.Close {
		t.Fatalf("in-flight response %q close=%v; want it whole with Connection: close", b, resp.Close)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestThousandConcurrentConnections(t *testing.T) {
	s := startServer(t, Config{}, newEcho())
	const n = 1000
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%d", len(fmt.Sprint(i)), i)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Errorf("conn %d: %v", i, err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			if string(b) != fmt.Sprint(i) {
				t.Errorf("conn %d: body %q", i, b)
			}
		}()
	}
	wg.Wait()
}

func TestListenError(t *testing.T) {
	s := startServer(t, Config{}, newEcho())
	_, err := Start(Config{Addr: s.Addr().String(), Logger: quietLogger()}, newEcho(), nil)
	if err == nil {
		t.Fatal("second listen on the same address succeeded")
	}
}

// TestInEventIsExact: InEvent is true only on the connection's own loop,
// inside one of its events: not from another goroutine (even while the
// loop is inside the event), not from another connection's event.
func TestInEventIsExact(t *testing.T) {
	h := &holdHandler{held: make(chan *engine.Stream, 2)}
	s := startServer(t, Config{Loops: 1}, h)
	a, b := dial(t, s), dial(t, s)
	io.WriteString(a, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	sa := <-h.held
	ca := h.conn.Load()
	io.WriteString(b, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	sb := <-h.held
	cb := h.conn.Load()
	defer func() {
		_ = ca.Submit(ca.Gen(), func() { sa.End(nil) })
		_ = cb.Submit(cb.Gen(), func() { sb.End(nil) })
	}()
	if ca == cb {
		t.Fatal("one Conn for two connections")
	}
	if ca.InEvent() {
		t.Fatal("InEvent true on the test's goroutine")
	}
	results := make(chan [3]bool, 1)
	inside, release := make(chan struct{}), make(chan struct{})
	if err := ca.Submit(ca.Gen(), func() {
		close(inside)
		<-release // the loop stays inside a's event meanwhile
		results <- [3]bool{ca.InEvent(), cb.InEvent(), false}
	}); err != nil {
		t.Fatal(err)
	}
	<-inside
	other := ca.InEvent() // another goroutine, while the loop is inside a's event
	close(release)
	got := <-results
	if !got[0] || got[1] || other {
		t.Fatalf("InEvent: in a's event for a %v, for b %v; from another goroutine meanwhile %v; want true, false, false", got[0], got[1], other)
	}
}
