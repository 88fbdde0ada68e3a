package poller

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// startReuseport starts a server with SO_REUSEPORT and 2 loops (gnet then
// opens one listening socket per loop) on addr.
func startReuseport(t *testing.T, addr string) *Server {
	t.Helper()
	s, err := Start(Config{Addr: addr, Loops: 2, ReusePort: true, Tick: 10 * time.Millisecond, Logger: quietLogger()}, newEcho(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

// reusePortAddr returns a loopback address whose port was free a moment
// ago (gnet binds each loop's socket to the configured address: port 0
// would give each loop a port of its own).
func reusePortAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// getOK sends one request on a new connection to addr and reports whether
// it got an answer; a refused connect is false with the error.
func getOK(addr string) (bool, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return false, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "HTTP/1.1 200 OK\r\n", err
}

// TestShutdownClosesEveryReuseportListener: with SO_REUSEPORT the server
// has a listening socket per loop, and Shutdown closes them all: every
// connect is refused after it.
func TestShutdownClosesEveryReuseportListener(t *testing.T) {
	addr := reusePortAddr(t)
	s := startReuseport(t, addr)
	claimedMu.Lock()
	n := len(s.lns)
	claimedMu.Unlock()
	if n != 2 {
		t.Fatalf("%d listening sockets claimed; want 2 (one per loop)", n)
	}
	if ok, err := getOK(addr); !ok {
		t.Fatalf("before Shutdown: %v", err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The kernel spreads connects over the port's sockets by their
	// addresses: many connects from new ports meet each socket.
	for i := 0; i < 50; i++ {
		if _, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("connect %d after Shutdown: %v; want ECONNREFUSED", i, err)
		}
	}
}

// TestReuseportSiblingsClaimTheirOwn: two servers of one process on the
// same port with SO_REUSEPORT each claim their own listening sockets;
// stopping one leaves the other serving every connect.
func TestReuseportSiblingsClaimTheirOwn(t *testing.T) {
	addr := reusePortAddr(t)
	a := startReuseport(t, addr)
	startReuseport(t, addr)
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if ok, err := getOK(addr); !ok {
			t.Fatalf("connect %d after the sibling's Shutdown: %v", i, err)
		}
	}
}

// TestEngineSurvivesTheListenerClose: gnet treats an accept error as fatal;
// closing the listener under it must not stop the engine. A connection
// held open across the close is still served after it.
func TestEngineSurvivesTheListenerClose(t *testing.T) {
	s := startServer(t, Config{}, newEcho())
	c := dial(t, s)
	r := bufio.NewReader(c)
	io.WriteString(c, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")
	readResponses(t, r, 1)
	s.closeListeners()
	if _, err := net.Dial("tcp", s.Addr().String()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("connect after closeListeners: %v; want ECONNREFUSED", err)
	}
	// gnet stops within milliseconds when an accept fails: it must still
	// run 200 ms later, and serve the connection.
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup's Shutdown
		t.Fatalf("the engine stopped when the listener closed (%v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	io.WriteString(c, "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi")
	if got := readResponses(t, r, 1); got[0] != "hi" {
		t.Fatalf("after the listener closed: %q", got)
	}
}

// TestNoDrainBeforeTheListenersClose: Shutdown marks the server stopping,
// then closes its listening sockets, which takes milliseconds (settle). A
// tick in that window must not drain the connections: a client told
// "Connection: close" then reconnects, its connect meets a listening
// socket about to close, and the kernel resets it (2 requests of a
// rolling restart were lost so). The test puts the server in that window
// (stopping set, listeners open), runs a tick on every loop, and asks on
// a keep-alive connection: the answer must keep the connection.
func TestNoDrainBeforeTheListenersClose(t *testing.T) {
	s := startServer(t, Config{}, newEcho())
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	ask := func() *http.Response {
		t.Helper()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	ask() // the connection is open on its loop

	s.stopping.Store(true) // as Shutdown does before closing the listeners
	ticked := make(chan struct{}, 16)
	loops := 0
	s.loops.each(func(l *loop) gnet.Runnable { return l.tickTask })
	s.loops.each(func(*loop) gnet.Runnable {
		loops++ // each calls this on the caller's goroutine
		return gnet.RunnableFunc(func(context.Context) error { ticked <- struct{}{}; return nil })
	})
	for range loops {
		<-ticked // a loop runs its tasks in order: its tick is done
	}
	if resp := ask(); resp.Close {
		t.Fatal("a tick before the listeners closed drained the connection: its answer says Connection: close")
	}
	s.stopping.Store(false) // the test's cleanup stops the server for real
}
