package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The client's reliability tests: abrupt disconnects, churn, races of
// Abort/Destroy/SetTimeout/Agent.Destroy with the exchange, and
// keep-alive closes racing new requests. See "Reliability tests" in
// README.md.

// clientFDSlack and clientGoroutineSlack are how many descriptors and
// goroutines above baseline a leak check tolerates (the runtime's and the
// testing package's own come and go). Every test makes hundreds of
// connections, so a leak per request or per connection still shows.
const (
	clientFDSlack        = 4
	clientGoroutineSlack = 4
)

// openFDCount counts this process's open file descriptors.
func openFDCount(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return len(entries)
}

// waitFor waits, yielding, until cond holds or d passes; it reports
// whether cond held.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		runtime.Gosched()
		time.Sleep(5 * time.Millisecond) // polling a condition, not synchronising
	}
	return true
}

// liveHeap collects garbage (twice: sync.Pool's victim cache) and returns
// the heap spans in use.
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// errorLog is a slog handler that counts records at Error level (recovered
// panics) and keeps the first.
type errorLog struct {
	n     atomic.Int64
	mu    sync.Mutex
	first string
}

func (l *errorLog) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelError }
func (l *errorLog) Handle(_ context.Context, r slog.Record) error {
	if l.n.Add(1) == 1 {
		var b strings.Builder
		b.WriteString(r.Message)
		r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
		l.mu.Lock()
		l.first = b.String()
		l.mu.Unlock()
	}
	return nil
}
func (l *errorLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *errorLog) WithGroup(string) slog.Handler      { return l }

func (l *errorLog) check(t *testing.T) {
	t.Helper()
	if n := l.n.Load(); n > 0 {
		l.mu.Lock()
		defer l.mu.Unlock()
		t.Fatalf("%d errors logged (recovered panics); the first: %s", n, l.first)
	}
}

// clientBaseline is what a client leak check compares with.
type clientBaseline struct{ fds, goroutines int }

func takeClientBaseline(t *testing.T) clientBaseline {
	t.Helper()
	// A server that has just started may still be starting its loops
	// (gnet boots them after Start returns): take the counts once they
	// have held still for 100 ms (at most 2 s).
	b := clientBaseline{fds: openFDCount(t), goroutines: runtime.NumGoroutine()}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for still, deadline := 0, time.Now().Add(2*time.Second); still < 10 && time.Now().Before(deadline); {
		<-tick.C
		now := clientBaseline{fds: openFDCount(t), goroutines: runtime.NumGoroutine()}
		if now == b {
			still++
			continue
		}
		b, still = now, 0
	}
	return b
}

// agentCounts reads, under the agent's lock, the connections its client
// has open and, over its pools, the connections counted open, idle and the
// requests queued.
func agentCounts(a *Agent) (clientOpen int64, open, free, queued int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.client != nil {
		clientOpen = a.client.OpenConns()
	}
	for _, p := range a.pools {
		open += p.open
		free += len(p.free)
		queued += len(p.queue)
	}
	return clientOpen, open, free, queued
}

// checkAgentSettled fails t unless, within two seconds, every connection
// of a is idle in its pool (none busy, none half-counted) and no request
// waits.
func checkAgentSettled(t *testing.T, a *Agent, what string) {
	t.Helper()
	if !waitFor(2*time.Second, func() bool {
		c, open, free, queued := agentCounts(a)
		return c == int64(open) && open == free && queued == 0
	}) {
		c, open, free, queued := agentCounts(a)
		t.Fatalf("after %s: the client has %d connections open; the pools count %d open, %d idle, %d requests queued",
			what, c, open, free, queued)
	}
}

// destroyAndCheck destroys a and fails t unless, within two seconds, its
// client has no connection left and descriptors and goroutines are back
// to b (with a little slack).
func destroyAndCheck(t *testing.T, a *Agent, b clientBaseline, what string) {
	t.Helper()
	a.mu.Lock()
	cl := a.client
	a.mu.Unlock()
	a.Destroy()
	if cl != nil && cl.OpenConns() != 0 {
		t.Fatalf("after %s: %d client connections open after Agent.Destroy", what, cl.OpenConns())
	}
	if !waitFor(2*time.Second, func() bool {
		return openFDCount(t) <= b.fds+clientFDSlack && runtime.NumGoroutine() <= b.goroutines+clientGoroutineSlack
	}) {
		t.Fatalf("after %s: %d descriptors (baseline %d), %d goroutines (baseline %d)",
			what, openFDCount(t), b.fds, runtime.NumGoroutine(), b.goroutines)
	}
}

// reqTrace records what one request heard.
type reqTrace struct {
	mu        sync.Mutex
	errs      []error
	closes    int
	aborts    int
	status    int
	responses int
	body      []byte
	resErrs   []error
	resEnds   int
	resCloses int
	closed    chan struct{}
}

// trace registers listeners on r that record into a new reqTrace; body
// bytes are kept when keep is set.
func trace(r *ClientRequest, keep bool) *reqTrace {
	tr := &reqTrace{closed: make(chan struct{})}
	r.OnResponse(func(res *IncomingMessage) {
		tr.mu.Lock()
		tr.responses++
		tr.status = res.StatusCode
		tr.mu.Unlock()
		res.OnData(func(c []byte) {
			if keep {
				tr.mu.Lock()
				tr.body = append(tr.body, c...)
				tr.mu.Unlock()
			}
		})
		res.OnEnd(func() { tr.mu.Lock(); tr.resEnds++; tr.mu.Unlock() })
		res.OnError(func(err error) { tr.mu.Lock(); tr.resErrs = append(tr.resErrs, err); tr.mu.Unlock() })
		res.OnClose(func() { tr.mu.Lock(); tr.resCloses++; tr.mu.Unlock() })
	})
	r.OnError(func(err error) { tr.mu.Lock(); tr.errs = append(tr.errs, err); tr.mu.Unlock() })
	r.OnAbort(func() { tr.mu.Lock(); tr.aborts++; tr.mu.Unlock() })
	r.OnClose(func() {
		tr.mu.Lock()
		tr.closes++
		first := tr.closes == 1
		tr.mu.Unlock()
		if first {
			close(tr.closed)
		}
	})
	return tr
}

// wait waits for the request's OnClose; it reports false after d.
func (tr *reqTrace) wait(d time.Duration) bool {
	select {
	case <-tr.closed:
		return true
	case <-time.After(d):
		return false
	}
}

// snapshot returns a copy of what tr recorded.
func (tr *reqTrace) snapshot() reqTrace {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return reqTrace{
		errs: append([]error(nil), tr.errs...), closes: tr.closes, aborts: tr.aborts,
		status: tr.status, responses: tr.responses, body: append([]byte(nil), tr.body...),
		resErrs: append([]error(nil), tr.resErrs...), resEnds: tr.resEnds, resCloses: tr.resCloses,
	}
}

// cutServer is a raw server that answers requests by path: "/ok" with a
// whole response on a kept connection, "/{cut}/{how}" with part of one and
// then the end of the connection, cut "none" (no byte of a response),
// "head" (mid-head), "body" (mid Content-Length body) or "chunked"
// (mid-chunk of a chunked body), how "close" (FIN) or "rst" (a reset, by
// SetLinger(0)).
type cutServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	conns atomic.Int64
}

func startCutServer(t *testing.T) *cutServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &cutServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

var cutParts = map[string]string{
	"none":    "",
	"head":    "HTTP/1.1 200 OK\r\nContent-Type: text/pl",
	"body":    "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome of it",
	"chunked": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n10\r\nsome of",
}

func (s *cutServer) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return
		}
		if req.URL.Path == "/ok" {
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
				return
			}
			continue
		}
		cut, how, _ := strings.Cut(strings.TrimPrefix(req.URL.Path, "/"), "/")
		if part := cutParts[cut]; part != "" {
			io.WriteString(c, part)
		}
		if how == "rst" {
			c.(*net.TCPConn).SetLinger(0)
		}
		return
	}
}

// TestReliabilityClientAbruptDisconnects: a raw server cuts connections
// (FIN or reset) before any byte of the response, mid-head, mid
// Content-Length body and mid-chunk, among whole responses on kept
// connections; GETs and POSTs from 8 goroutines through an agent with 4
// sockets (so requests queue and connections are reused). No panic; every
// request closes exactly once; a cut request hears exactly one error,
// ErrSocketHangUp before a complete head and ErrResponseAborted inside a
// body (which its response hears too, with one 'close' and no 'end');
// afterwards no connection, descriptor or goroutine is left.
func TestReliabilityClientAbruptDisconnects(t *testing.T) {
	srv := startCutServer(t)
	host, port := splitAddr(t, srv.ln.Addr().String())
	logs := &errorLog{}
	a := NewAgent(AgentOptions{Loops: 2, MaxSockets: 4, Logger: slog.New(logs)})
	defer a.Destroy()
	base := takeClientBaseline(t)

	paths := []string{
		"/ok", "/none/close", "/ok", "/head/close", "/body/close", "/chunked/close",
		"/ok", "/none/rst", "/head/rst", "/body/rst", "/chunked/rst",
	}
	requests := size(1100, 44_000)
	const workers = 8
	var next, bad atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var traces []*reqTrace
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(requests) || bad.Load() > 0 {
					return
				}
				tr, err := cutRequest(host, port, a, paths[int(i)%len(paths)], i%3 == 0)
				if tr != nil {
					mu.Lock()
					traces = append(traces, tr)
					mu.Unlock()
				}
				if err != nil {
					if bad.Add(1) == 1 {
						t.Errorf("request %d: %v", i, err)
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	logs.check(t)
	checkAgentSettled(t, a, fmt.Sprintf("%d requests", requests))
	t.Logf("%d requests on %d connections", requests, srv.conns.Load())
	destroyAndCheck(t, a, base, fmt.Sprintf("%d requests", requests))
	checkOnce(t, traces)
}

// checkOnce fails t unless every request closed exactly once and heard
// at most one error, and every response closed exactly once (its 'close'
// follows the request's), now that nothing can fire any more.
func checkOnce(t *testing.T, traces []*reqTrace) {
	t.Helper()
	for i, tr := range traces {
		if o := tr.snapshot(); o.closes != 1 || len(o.errs) > 1 || o.resCloses != o.responses || len(o.resErrs) > 1 || o.aborts > 1 {
			t.Fatalf("request %d: %d 'close', errors %v, %d 'abort', %d response 'close', response errors %v",
				i, o.closes, o.errs, o.aborts, o.resCloses, o.resErrs)
		}
	}
}

// cutRequest makes one request to the cut server and checks its events.
func cutRequest(host string, port int, a *Agent, path string, post bool) (*reqTrace, error) {
	opts := RequestOptions{Host: host, Port: port, Path: path, Agent: a}
	var body []byte
	if post {
		opts.Method, body = "POST", []byte("a body")
	}
	r, err := Request(opts, nil)
	if err != nil {
		return nil, err
	}
	tr := trace(r, true)
	r.End(body, nil)
	if !tr.wait(10 * time.Second) {
		return tr, fmt.Errorf("%s: no 'close' in 10 s", path)
	}
	o := tr.snapshot()
	cut, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	var want error
	switch cut {
	case "ok":
		if o.status != 200 || string(o.body) != "ok" || len(o.errs) != 0 || o.resEnds != 1 {
			return tr, fmt.Errorf("%s: status %d body %q errors %v ends %d", path, o.status, o.body, o.errs, o.resEnds)
		}
	case "none", "head":
		want = ErrSocketHangUp
		if o.responses != 0 {
			return tr, fmt.Errorf("%s: a response (%d) before a complete head", path, o.status)
		}
	case "body", "chunked":
		want = ErrResponseAborted
		if o.responses != 1 || o.resEnds != 0 || len(o.resErrs) != 1 || !errors.Is(o.resErrs[0], ErrResponseAborted) {
			return tr, fmt.Errorf("%s: %d responses, %d ends, response errors %v", path, o.responses, o.resEnds, o.resErrs)
		}
	}
	if want != nil && (len(o.errs) != 1 || !errors.Is(o.errs[0], want)) {
		return tr, fmt.Errorf("%s: errors %v; want exactly one %v", path, o.errs, want)
	}
	if o.closes != 1 {
		return tr, fmt.Errorf("%s: %d 'close' events", path, o.closes)
	}
	return tr, nil
}

// TestReliabilityClientKeepAliveRace: the server closes kept connections
// after 1 ms idle (at its next 50 ms tick), while 8 goroutines send
// requests on them after pauses of 0 to 60 ms, so that requests go out on
// connections the server is closing or has closed. Every GET succeeds
// (the agent sends it again on a new connection when the kept one turns
// out closed as it went out); a POST either succeeds or fails with
// exactly one ErrSocketHangUp; no request hangs, and nothing is left.
func TestReliabilityClientKeepAliveRace(t *testing.T) {
	opts := quiet()
	opts.KeepAliveTimeout = time.Millisecond
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		req.OnEnd(func() { res.End([]byte(req.URL), nil) })
	}, opts)
	var serverConns atomic.Int64
	srv.OnConnection(func(*Socket) { serverConns.Add(1) })
	host, port := splitAddr(t, listen(t, srv))
	logs := &errorLog{}
	a := NewAgent(AgentOptions{Loops: 2, Logger: slog.New(logs)})
	defer a.Destroy()
	base := takeClientBaseline(t)

	perWorker := size(50, 1_000)
	const workers = 8
	var posts, postHangUps atomic.Int64
	var mu sync.Mutex
	var traces []*reqTrace
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; i < perWorker; i++ {
				// A pause, so that some requests meet the server's close:
				// the point of the test, not a synchronisation.
				time.Sleep(time.Duration(rng.IntN(60_000)) * time.Microsecond)
				path := fmt.Sprintf("/%d/%d", w, i)
				opts := RequestOptions{Host: host, Port: port, Path: path, Agent: a}
				var body []byte
				if i%5 == 4 {
					opts.Method, body = "POST", []byte("x")
				}
				r, err := Request(opts, nil)
				if err != nil {
					t.Error(err)
					return
				}
				tr := trace(r, true)
				mu.Lock()
				traces = append(traces, tr)
				mu.Unlock()
				r.End(body, nil)
				if !tr.wait(10 * time.Second) {
					r.mu.Lock()
					t.Errorf("%s %s: no 'close' in 10 s (state %d, bound %v, retried %v)", opts.Method, path, r.state, r.x != nil, r.retried)
					r.mu.Unlock()
					return
				}
				o := tr.snapshot()
				ok := o.status == 200 && string(o.body) == path && len(o.errs) == 0
				if body != nil {
					posts.Add(1)
					if !ok && o.responses == 0 && len(o.errs) == 1 && errors.Is(o.errs[0], ErrSocketHangUp) {
						postHangUps.Add(1)
						continue
					}
				}
				if !ok {
					t.Errorf("%s %s: status %d body %q errors %v", opts.Method, path, o.status, o.body, o.errs)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	logs.check(t)
	checkAgentSettled(t, a, "the requests")
	t.Logf("%d requests on %d server connections; %d of %d POSTs failed with a hang-up",
		workers*perWorker, serverConns.Load(), postHangUps.Load(), posts.Load())
	destroyAndCheck(t, a, base, "the requests")
	checkOnce(t, traces)
}

// churnServer answers every request with its URL and counts the
// connections it has open and has accepted.
func churnServer(t *testing.T) (host string, port int, open, accepted *atomic.Int64) {
	t.Helper()
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		req.OnEnd(func() { res.End([]byte(req.URL), nil) })
	}, quiet())
	open, accepted = &atomic.Int64{}, &atomic.Int64{}
	srv.OnConnection(func(s *Socket) {
		open.Add(1)
		accepted.Add(1)
		s.OnClose(func() { open.Add(-1) })
	})
	host, port = splitAddr(t, listen(t, srv))
	return host, port, open, accepted
}

// TestReliabilityClientChurn: many requests, one at a time and then from 4
// goroutines, through an agent without keep-alive (a connection per
// request: the server must see exactly one per request) and through one
// with keep-alive. Every response is checked; afterwards no connection,
// descriptor or goroutine is left, and the live heap after the run is
// within 2 MiB of its level after the first tenth (a leak of 100 bytes
// per request shows in the full run).
func TestReliabilityClientChurn(t *testing.T) {
	host, port, serverOpen, accepted := churnServer(t)
	logs := &errorLog{}
	closeAgent := NewAgent(AgentOptions{Loops: 2, DisableKeepAlive: true, Logger: slog.New(logs)})
	keepAgent := NewAgent(AgentOptions{Loops: 2, Logger: slog.New(logs)})
	defer closeAgent.Destroy()
	defer keepAgent.Destroy()
	base := takeClientBaseline(t)
	// One request each starts the agents' loops before the heap is
	// measured.
	for _, a := range []*Agent{closeAgent, keepAgent} {
		if o := fetch(t, RequestOptions{Host: host, Port: port, Agent: a}, nil); o.status != 200 {
			t.Fatalf("warm-up: %d %v", o.status, o.errs)
		}
	}
	if !waitFor(2*time.Second, func() bool { return serverOpen.Load() == 1 }) { // the kept one
		t.Fatalf("after the warm-up: %d server connections open; want 1", serverOpen.Load())
	}
	accepted.Store(0)

	perAgent := size(1000, 50_000)
	total := int64(2 * perAgent)
	var done atomic.Int64
	var warm sync.Once
	var warmHeap int64
	start := time.Now()
	run := func(a *Agent, n, workers int) {
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !t.Failed() {
					i := next.Add(1)
					if i > int64(n) {
						return
					}
					if done.Add(1) == total/10 {
						warm.Do(func() { warmHeap = liveHeap() })
					}
					path := "/" + strconv.FormatInt(i, 10)
					r, err := Request(RequestOptions{Host: host, Port: port, Path: path, Agent: a}, nil)
					if err != nil {
						t.Error(err)
						return
					}
					tr := trace(r, true)
					r.End(nil, nil)
					if !tr.wait(10 * time.Second) {
						t.Errorf("%s: no 'close' in 10 s", path)
						return
					}
					if o := tr.snapshot(); o.status != 200 || string(o.body) != path || len(o.errs) != 0 || o.closes != 1 {
						t.Errorf("%s: status %d body %q errors %v closes %d", path, o.status, o.body, o.errs, o.closes)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	run(closeAgent, perAgent/4, 1)
	run(closeAgent, perAgent-perAgent/4, 4)
	if t.Failed() {
		return
	}
	if got := accepted.Load(); got != int64(perAgent) {
		t.Fatalf("%d requests without keep-alive on %d connections; want one each", perAgent, got)
	}
	if !waitFor(2*time.Second, func() bool { c, _, _, _ := agentCounts(closeAgent); return c == 0 && serverOpen.Load() <= 1 }) {
		c, _, _, _ := agentCounts(closeAgent)
		t.Fatalf("without keep-alive: %d client and %d server connections still open (want 0, and at most the keep-alive agent's 1)", c, serverOpen.Load())
	}
	run(keepAgent, perAgent/4, 1)
	run(keepAgent, perAgent-perAgent/4, 4)
	if t.Failed() {
		return
	}
	logs.check(t)
	elapsed := time.Since(start)
	checkAgentSettled(t, keepAgent, "the keep-alive requests")
	heap := liveHeap()
	t.Logf("%d requests in %v (%d connections); heap in use %d KiB after the first tenth, %d KiB at the end",
		total, elapsed.Round(time.Millisecond), accepted.Load(), warmHeap>>10, heap>>10)
	if heap > warmHeap+2<<20 {
		t.Errorf("heap in use grew from %d KiB to %d KiB", warmHeap>>10, heap>>10)
	}
	// Both agents go before the leak check: each running client has its
	// loops and its writability watcher.
	closeAgent.mu.Lock()
	closeClient := closeAgent.client
	closeAgent.mu.Unlock()
	closeAgent.Destroy()
	if closeClient != nil && closeClient.OpenConns() != 0 {
		t.Fatalf("%d client connections open after Agent.Destroy", closeClient.OpenConns())
	}
	destroyAndCheck(t, keepAgent, base, "the requests")
	if !waitFor(2*time.Second, func() bool { return serverOpen.Load() == 0 }) {
		t.Fatalf("%d server connections open after the agents were destroyed", serverOpen.Load())
	}
}

// raceServer answers "/fast" at once, "/slow" from a timer 0 to 4 ms
// later, and "/stream" with eight chunks from timers 1 ms apart.
func raceServer(t *testing.T) (string, int) {
	t.Helper()
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		req.OnEnd(func() {
			switch {
			case strings.HasPrefix(req.URL, "/slow"):
				time.AfterFunc(time.Duration(len(req.URL)%5)*time.Millisecond, func() { res.End([]byte("slow"), nil) })
			case strings.HasPrefix(req.URL, "/stream"):
				var step func(n int)
				step = func(n int) {
					if n == 8 {
						res.End(nil, nil)
						return
					}
					res.Write([]byte("chunk "), nil)
					time.AfterFunc(time.Millisecond, func() { step(n + 1) })
				}
				step(0)
			default:
				res.End([]byte("fast"), nil)
			}
		})
	}, quiet())
	return splitAddr(t, listen(t, srv))
}

// TestReliabilityClientRaces, under -race: requests Abort()ed or
// Destroy()ed from other goroutines at random moments (before End, while
// the response streams, after it completed), a SetTimeout whose listener
// destroys the request racing the response, and, in rounds, Agent.Destroy
// while requests are in flight. No panic or race; every request closes
// exactly once and hears at most one error and at most one 'abort'; the
// requests nothing interferes with succeed; nothing is left.
func TestReliabilityClientRaces(t *testing.T) {
	host, port := raceServer(t)
	logs := &errorLog{}
	base := takeClientBaseline(t)
	a := NewAgent(AgentOptions{Loops: 2, MaxSockets: 8, Logger: slog.New(logs)})
	defer a.Destroy()

	requests := size(800, 40_000)
	const workers = 8
	paths := []string{"/fast", "/slow", "/stream"}
	var next atomic.Int64
	var mu sync.Mutex
	var traces []*reqTrace
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 2))
			for !t.Failed() {
				i := int(next.Add(1))
				if i > requests {
					return
				}
				path := paths[i%len(paths)] + "/" + strconv.Itoa(i)
				r, err := Request(RequestOptions{Host: host, Port: port, Path: path, Agent: a}, nil)
				if err != nil {
					t.Error(err)
					return
				}
				tr := trace(r, false)
				mu.Lock()
				traces = append(traces, tr)
				mu.Unlock()
				delay := time.Duration(rng.IntN(3000)) * time.Microsecond
				action := (i / len(paths)) % 6
				switch action {
				case 0: // Abort at a random moment, maybe before End
					time.AfterFunc(delay, r.Abort)
				case 1: // Destroy at a random moment
					time.AfterFunc(delay, func() { r.Destroy(nil) })
				case 2: // a timeout racing the response, from another goroutine
					time.AfterFunc(delay/4, func() {
						r.SetTimeout(time.Millisecond+delay/2, func() { r.Destroy(errors.New("timed out")) })
					})
				case 3: // Abort and Destroy at once while the response streams
					r.OnResponse(func(*IncomingMessage) {
						go r.Abort()
						go r.Destroy(nil)
					})
				case 4: // Abort and Destroy after the request is over
					r.OnClose(func() {
						go r.Abort()
						go r.Destroy(nil)
					})
				}
				r.End(nil, nil)
				if !tr.wait(10 * time.Second) {
					r.mu.Lock()
					t.Errorf("%s (action %d): no 'close' in 10 s (state %d)", path, action, r.state)
					r.mu.Unlock()
					return
				}
				if o := tr.snapshot(); (action == 4 || action == 5) && (len(o.errs) != 0 || o.status != 200 || o.resEnds != 1) {
					t.Errorf("%s (action %d): status %d, %d ends, errors %v", path, action, o.status, o.resEnds, o.errs)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	checkAgentSettled(t, a, fmt.Sprintf("%d requests", requests))

	// Agent.Destroy while requests are in flight, at a random moment.
	rounds := size(10, 500)
	const inFlight = 24
	rng := rand.New(rand.NewPCG(7, 7))
	for round := 0; round < rounds && !t.Failed(); round++ {
		ra := NewAgent(AgentOptions{Loops: 2, MaxSockets: 8, Logger: slog.New(logs)})
		var batch []*reqTrace
		for i := 0; i < inFlight; i++ {
			path := paths[i%len(paths)] + "/" + strconv.Itoa(i)
			r, err := Request(RequestOptions{Host: host, Port: port, Path: path, Agent: ra}, nil)
			if err != nil {
				t.Fatal(err)
			}
			tr := trace(r, false)
			batch = append(batch, tr)
			r.End(nil, nil)
		}
		destroyed := make(chan struct{})
		time.AfterFunc(time.Duration(rng.IntN(4000))*time.Microsecond, func() { ra.Destroy(); close(destroyed) })
		<-destroyed
		for i, tr := range batch {
			if !tr.wait(10 * time.Second) {
				t.Fatalf("round %d, request %d: no 'close' in 10 s after Agent.Destroy", round, i)
			}
		}
		ra.Destroy() // a request sent again after the first may have started the loops again
		traces = append(traces, batch...)
	}
	logs.check(t)
	destroyAndCheck(t, a, base, "the races")
	checkOnce(t, traces)
	var ok, aborted, failed int
	for _, tr := range traces {
		switch o := tr.snapshot(); {
		case len(o.errs) > 0:
			failed++
		case o.aborts > 0:
			aborted++
		case o.resEnds == 1:
			ok++
		}
	}
	t.Logf("%d requests with Abort, Destroy and SetTimeout racing them, %d rounds of Agent.Destroy with %d requests in flight: %d complete, %d aborted, %d failed",
		requests, rounds, inFlight, ok, aborted, failed)
}
