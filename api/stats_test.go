package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/engine"
)

// countingConn counts the bytes read from a connection.
type countingConn struct {
	net.Conn
	n int
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n += n
	return n, err
}

// statsHandler answers /bytes/{n} with n bytes, /pause by pausing the
// request and signalling paused (never answering), and 404 otherwise.
func statsHandler(paused chan<- struct{}) func(*IncomingMessage, *ServerResponse) {
	return func(req *IncomingMessage, res *ServerResponse) {
		path, _, _ := strings.Cut(req.URL, "?")
		switch {
		case strings.HasPrefix(path, "/bytes/"):
			n, _ := strconv.Atoi(strings.TrimPrefix(path, "/bytes/"))
			res.End(bytes.Repeat([]byte("x"), n), nil)
		case req.URL == "/pause":
			req.Pause()
			paused <- struct{}{}
		default:
			res.StatusCode = 404
			res.End([]byte("not found"), nil)
		}
	}
}

// TestStatsKnownWorkload checks every counter of Server.Stats against a
// workload whose figures are known: requests of known sizes, 404s, two
// protocol errors, a headers timeout, and a paused connection, each on
// real sockets.
func TestStatsKnownWorkload(t *testing.T) {
	paused := make(chan struct{}, 1)
	opts := quiet()
	opts.HeadersTimeout = 200 * time.Millisecond
	srv := CreateServer(statsHandler(paused), opts)
	closed := make(chan struct{}, 8)
	srv.OnConnection(func(s *Socket) { s.OnClose(func() { closed <- struct{}{} }) })
	addr := listen(t, srv)
	if got := srv.Stats(); got.TotalConns != 0 || got.Requests != 0 {
		t.Fatalf("before any connection: %+v", got)
	}

	var sent, received int

	// A: keep-alive, 5 requests of known sizes and 3 for missing pages,
	// pipelined, read back whole.
	sizes := []int{0, 1, 100, 4096, 70000}
	var raw strings.Builder
	for _, n := range sizes {
		raw.WriteString("GET /bytes/" + strconv.Itoa(n) + " HTTP/1.1\r\nHost: a\r\n\r\n")
	}
	for range 3 {
		raw.WriteString("GET /missing HTTP/1.1\r\nHost: a\r\n\r\n")
	}
	a := &countingConn{Conn: dialRaw(t, addr, raw.String())}
	sent += raw.Len()
	br := bufio.NewReader(a)
	for i := range len(sizes) + 3 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		want := 404
		if i < len(sizes) {
			want = 200
			if len(body) != sizes[i] {
				t.Fatalf("response %d: %d body bytes; want %d", i, len(body), sizes[i])
			}
		}
		if resp.StatusCode != want {
			t.Fatalf("response %d: status %d; want %d", i, resp.StatusCode, want)
		}
	}

	// B, C: protocol errors (400 for a bad Content-Length, 505 for
	// HTTP/2.0), read to the server's close. D: half a head, then
	// nothing: the headers timeout answers 408 and closes.
	for _, r := range []struct {
		raw, status string
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n", "400"},
		{"GET / HTTP/2.0\r\nHost: a\r\n\r\n", "505"},
		{"GET / HTTP/1.1\r\n", "408"},
	} {
		c := dialRaw(t, addr, r.raw)
		sent += len(r.raw)
		out, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		received += len(out)
		if !strings.HasPrefix(string(out), "HTTP/1.1 "+r.status+" ") {
			t.Fatalf("%q: got %q; want %s", r.raw, out, r.status)
		}
		c.Close()
	}
	for range 3 {
		<-closed // the server has closed B, C and D
	}

	// E: a request whose handler pauses it: reading stops.
	e := "POST /pause HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n"
	ec := dialRaw(t, addr, e)
	defer func() {
		// A reset: reading is off, so the server would not see a FIN.
		ec.(*net.TCPConn).SetLinger(0)
		ec.Close()
	}()
	sent += len(e)
	<-paused

	received += a.n
	got := srv.Stats()
	want := Stats{
		OpenConns:   2, // A and E
		TotalConns:  5,
		PausedConns: 1, // E
		BytesIn:     uint64(sent),
		BytesOut:    uint64(received),
	}
	want.Requests = uint64(len(sizes) + 3 + 1)
	want.Responses[2] = uint64(len(sizes))
	want.Responses[4] = 3 + 1 + 1 // 404s, 400, 408
	want.Responses[5] = 1
	want.ProtocolErrors[codec.ErrContentLength] = 1
	want.ProtocolErrors[codec.ErrVersionUnsupported] = 1
	want.Timeouts[engine.TimeoutHeaders] = 1
	if got != want {
		t.Fatalf("Stats:\n got %+v\nwant %+v", got, want)
	}
}

// TestStatsAfterClose: the counters stay readable, final, once the server
// has stopped.
func TestStatsAfterClose(t *testing.T) {
	srv := CreateServer(statsHandler(nil), quiet())
	if err := srv.Listen(0, "127.0.0.1", 0, nil); err != nil {
		t.Fatal(err)
	}
	a := srv.Address()
	addr := net.JoinHostPort(a.Address, strconv.Itoa(a.Port))
	out := roundTrip(t, addr, "GET /bytes/3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if !strings.HasSuffix(out, "\r\n\r\nxxx") {
		t.Fatalf("got %q", out)
	}
	done := make(chan error, 1)
	srv.Close(func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := srv.Stats()
	if got.Requests != 1 || got.Responses[2] != 1 || got.TotalConns != 1 || got.OpenConns != 0 || got.BytesOut != uint64(len(out)) {
		t.Fatalf("after close: %+v", got)
	}
}

// TestStatsFromHandler: Stats called by a handler on its loop reads that
// loop in place instead of waiting for itself.
func TestStatsFromHandler(t *testing.T) {
	var srv *Server
	srv = CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		res.End([]byte(strconv.FormatUint(srv.Stats().Requests, 10)), nil)
	}, quiet())
	addr := listen(t, srv)
	_, body := get(t, addr, "/")
	if body != "1" {
		t.Fatalf("got %q; want 1", body)
	}
}

// syncBuffer is a bytes.Buffer safe for the loops and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestAccessLog: with Options.AccessLog, one line per request with its
// method, target, status, body bytes and duration; none without it.
func TestAccessLog(t *testing.T) {
	var log syncBuffer
	opts := quiet()
	opts.AccessLog = slog.New(slog.NewJSONHandler(&log, nil))
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		if req.URL == "/head" {
			res.WriteHead(201, "")
			res.Write([]byte("abc"), nil)
			res.End([]byte("de"), nil)
			return
		}
		statsHandler(nil)(req, res)
	}, opts)
	addr := listen(t, srv)
	reqs := "GET /bytes/7?q=1 HTTP/1.1\r\nHost: a\r\n\r\n" +
		"POST /missing HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi" +
		"GET /head HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	roundTrip(t, addr, reqs)

	type line struct {
		Level, Msg, Method, Target string
		Status                     int
		Bytes                      int64
		Duration                   *int64
	}
	want := []line{
		{Level: "INFO", Msg: "request", Method: "GET", Target: "/bytes/7?q=1", Status: 200, Bytes: 7},
		{Level: "INFO", Msg: "request", Method: "POST", Target: "/missing", Status: 404, Bytes: int64(len("not found"))},
		{Level: "INFO", Msg: "request", Method: "GET", Target: "/head", Status: 201, Bytes: 5},
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines; want %d:\n%s", len(lines), len(want), log.String())
	}
	for i, s := range lines {
		var got line
		if err := json.Unmarshal([]byte(s), &got); err != nil {
			t.Fatalf("line %d: %v: %s", i, err, s)
		}
		if got.Duration == nil || *got.Duration < 0 {
			t.Fatalf("line %d: no duration: %s", i, s)
		}
		got.Duration = nil
		if got != want[i] {
			t.Fatalf("line %d:\n got %+v\nwant %+v", i, got, want[i])
		}
	}
}

// TestAccessLogCutShort: a request whose connection closes before its
// response is logged with status 0 and the error.
func TestAccessLogCutShort(t *testing.T) {
	var log syncBuffer
	opts := quiet()
	opts.AccessLog = slog.New(slog.NewTextHandler(&log, nil))
	closed := make(chan struct{})
	started := make(chan struct{})
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		res.OnClose(func() { close(closed) })
		close(started)
	}, opts)
	addr := listen(t, srv)
	c := dialRaw(t, addr, "GET /never HTTP/1.1\r\nHost: a\r\n\r\n")
	<-started
	c.(*net.TCPConn).SetLinger(0) // a reset: an EOF would wait for the answer
	c.Close()
	<-closed
	s := log.String()
	for _, part := range []string{"msg=request", "method=GET", "target=/never", "status=0", "bytes=0", "duration=", "err="} {
		if !strings.Contains(s, part) {
			t.Fatalf("log %q lacks %q", s, part)
		}
	}
}

// TestStatsConcurrent reads Stats without pause while clients load the
// server and while it closes (-race checks the hand-over from the loops):
// counters never go down, every read returns, and the last read counts
// every request.
func TestStatsConcurrent(t *testing.T) {
	srv := CreateServer(statsHandler(nil), quiet())
	if err := srv.Listen(0, "127.0.0.1", 0, nil); err != nil {
		t.Fatal(err)
	}
	a := srv.Address()
	addr := net.JoinHostPort(a.Address, strconv.Itoa(a.Port))

	stop := make(chan struct{})
	reads := make(chan Stats, 1)
	go func() {
		var last Stats
		defer func() { reads <- last }()
		for {
			st := srv.Stats()
			if st.Requests < last.Requests || st.TotalConns < last.TotalConns || st.BytesOut < last.BytesOut {
				t.Errorf("counters went down: %+v after %+v", st, last)
			}
			last = st
			select {
			case <-stop:
				return
			default:
			}
		}
	}()

	const clients, each = 4, 50
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			br := bufio.NewReader(c)
			for range each {
				io.WriteString(c, "GET /bytes/10 HTTP/1.1\r\nHost: a\r\n\r\n")
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
			}
		}()
	}
	wg.Wait()
	done := make(chan error, 1)
	srv.Close(func(err error) { done <- err }) // Stats keeps reading across the stop
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	close(stop)
	last := <-reads
	final := srv.Stats()
	if final.Requests != clients*each || final.Responses[2] != clients*each || final.OpenConns != 0 || final.TotalConns != clients {
		t.Fatalf("final: %+v", final)
	}
	if last != final {
		t.Fatalf("the last concurrent read %+v differs from the final %+v", last, final)
	}
}
