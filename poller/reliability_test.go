package poller

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/engine"
)

// fdSlack is how many descriptors above baseline a check tolerates: the
// process holds a few briefly for reasons of its own (the runtime's
// poller, a previous test's server finishing its teardown). The tests make
// hundreds of connections or more, so a leak per connection still shows.
const fdSlack = 4

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return len(entries)
}

// baselineFDs counts descriptors after one warm-up request to s, so the
// runtime's own network poller (created by the first dial) is counted.
func baselineFDs(t *testing.T, s *Server) int {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	io.Copy(io.Discard, c)
	c.Close()
	settle(func() bool { return s.OpenConns() == 0 })
	return openFDs(t)
}

// settle waits, yielding, until cond holds or two seconds pass; it reports
// whether cond held. Closes happen asynchronously on the loops.
func settle(cond func() bool) bool {
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		runtime.Gosched()
		time.Sleep(5 * time.Millisecond) // waiting for closes, not synchronising work
	}
	return true
}

// TestChurnLeavesNothingBehind: connect, request, close, many times; the
// server's connections and the process's descriptors return to baseline.
func TestChurnLeavesNothingBehind(t *testing.T) {
	s := startServer(t, Config{}, newEcho())
	cycles := 2000
	if testing.Short() {
		cycles = 300
	}
	fds := baselineFDs(t, s)
	for i := 0; i < cycles; i++ {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		c.Close()
	}
	if !settle(func() bool { return s.OpenConns() == 0 && openFDs(t) <= fds+fdSlack }) {
		t.Fatalf("after %d cycles: %d connections open, %d descriptors (baseline %d)", cycles, s.OpenConns(), openFDs(t), fds)
	}
}

// closeRecorder counts exchanges and how they ended.
type closeRecorder struct {
	mu     sync.Mutex
	starts int
	errs   []error
}

func (r *closeRecorder) Request(s *engine.Stream, req *codec.Request) {
	r.mu.Lock()
	r.starts++
	r.mu.Unlock()
}
func (r *closeRecorder) Body(s *engine.Stream, chunk []byte) {}
func (r *closeRecorder) End(s *engine.Stream, _ []codec.Header) {
	s.Write([]byte("partial")) // the response starts, then the peer vanishes
}
func (r *closeRecorder) Drain(s *engine.Stream) {}
func (r *closeRecorder) Close(s *engine.Stream, err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
}

// TestAbruptDisconnects cuts connections mid-head, mid-body, mid-chunked
// body and mid-response: every exchange that started is closed with an
// error, and nothing stays open.
func TestAbruptDisconnects(t *testing.T) {
	rec := &closeRecorder{}
	s := startServer(t, Config{}, rec)
	cuts := []string{
		"GET / HTTP/1.1\r\nHost: a\r\nX-Half: ",                                    // mid-head: no exchange
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly some",       // mid-body
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", // mid-chunk
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",                                        // mid-response (never ended)
	}
	// Warm up the runtime's network poller with a bare connection (the
	// recorder never finishes a response, so no warm-up request).
	if w, err := net.Dial("tcp", s.Addr().String()); err == nil {
		w.Close()
	}
	settle(func() bool { return s.OpenConns() == 0 })
	fds := openFDs(t)
	const rounds = 50 // 200 connections: a leak per connection shows
	for i := 0; i < rounds; i++ {
		for _, raw := range cuts {
			c, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, raw)
			c.(*net.TCPConn).SetLinger(0) // vanish with a reset
			c.Close()
		}
	}
	if !settle(func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return s.OpenConns() == 0 && len(rec.errs) == rec.starts && rec.starts == 3*rounds
	}) {
		t.Fatalf("open %d, exchanges %d, closes %v", s.OpenConns(), rec.starts, rec.errs)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, err := range rec.errs {
		if err == nil {
			t.Fatalf("an exchange cut short closed without an error: %v", rec.errs)
		}
	}
	if !settle(func() bool { return openFDs(t) <= fds+fdSlack }) {
		t.Fatalf("descriptors %d; baseline %d (+%d tolerated)", openFDs(t), fds, fdSlack)
	}
}

// TestPipelineWithoutReadingIsCutOff: a client that pipelines requests to a
// handler that never answers is closed once its unread input passes the
// bound, and other clients are still served.
func TestPipelineWithoutReadingIsCutOff(t *testing.T) {
	held := make(chan *engine.Stream, 1)
	s := startServer(t, Config{Engine: engine.Config{MaxUnread: 64 << 10}}, &holdHandler{held: held})
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := strings.Repeat("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1000)
	var werr error
	for i := 0; i < 200 && werr == nil; i++ { // up to ~5 MB, far past the bound
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, werr = io.WriteString(c, req)
	}
	if werr == nil {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, werr = io.ReadAll(c)
	}
	// A reset, a broken pipe or EOF means the server closed the
	// connection; only a timeout means it kept it.
	if errors.Is(werr, os.ErrDeadlineExceeded) {
		t.Fatalf("the server kept the connection: %v", werr)
	}
	if !settle(func() bool { return s.OpenConns() == 0 }) {
		t.Fatalf("%d connections still open", s.OpenConns())
	}
}
