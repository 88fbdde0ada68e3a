package poller

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loophttp/loophttp/engine"
)

// The TLS server over real sockets, against crypto/tls and net/http
// clients.

func startTLS(t *testing.T, cfg Config, h engine.Handler) *Server {
	t.Helper()
	if cfg.TLS == nil {
		cfg.TLS = serverTLS()
	}
	return startServer(t, cfg, h)
}

// httpsClient returns a net/http client that trusts the test certificate.
func httpsClient(t *testing.T) *http.Client {
	cfg := clientTLS()
	cfg.NextProtos = []string{"http/1.1"}
	tr := &http.Transport{TLSClientConfig: cfg}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// TestTLSNetHTTPClient: net/http's client gets large bodies both ways,
// intact (sha256), over one kept-alive connection; ALPN says http/1.1.
func TestTLSNetHTTPClient(t *testing.T) {
	s := startTLS(t, Config{}, &bulk{})
	cl := httpsClient(t)
	base := "https://" + s.Addr().String()
	var reused atomic.Int64
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if i.Reused {
			reused.Add(1)
		}
	}}
	const down = 8 << 20
	for i := 0; i < 3; i++ {
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", fmt.Sprintf("%s/bytes/%d", base, down), nil)
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		resp.Body.Close()
		if err != nil || n != down || [32]byte(h.Sum(nil)) != patternSum(down) {
			t.Fatalf("GET %d bytes: got %d, %v, sum match %v", down, n, err, [32]byte(h.Sum(nil)) == patternSum(down))
		}
		if resp.TLS == nil || resp.TLS.NegotiatedProtocol != "http/1.1" {
			t.Fatalf("TLS state %+v; want ALPN http/1.1", resp.TLS)
		}
	}
	const up = 6 << 20
	body := make([]byte, up)
	pattern(body, 0)
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "POST", base+"/sum", bytes.NewReader(body))
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("%d %x", up, patternSum(up)); string(got) != want {
		t.Fatalf("POST /sum answered %q; want %q", got, want)
	}
	if reused.Load() != 3 {
		t.Fatalf("%d of 4 requests reused the connection; want 3", reused.Load())
	}
	if st := s.Stats(); st.TLSHandshakes != 1 {
		t.Fatalf("%d handshakes; want 1", st.TLSHandshakes)
	}
}

// TestTLSVersionsAndResumption: TLS 1.2 and 1.3 are both served, and a
// client with a session cache resumes.
func TestTLSVersionsAndResumption(t *testing.T) {
	s := startTLS(t, Config{}, &bulk{})
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cfg := clientTLS()
		cfg.MinVersion, cfg.MaxVersion = v, v
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		for i := 0; i < 2; i++ {
			c := rawTLS(t, s, cfg)
			fmt.Fprintf(c, "GET /bytes/5 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
			resp := readAllFrom(t, c)
			if !bytes.HasSuffix(resp, patternBytes(5)) || !bytes.HasPrefix(resp, []byte("HTTP/1.1 200")) {
				t.Fatalf("version %x: response %q", v, resp)
			}
			st := c.ConnectionState()
			if st.Version != v {
				t.Fatalf("negotiated %x; want %x", st.Version, v)
			}
			if st.DidResume != (i == 1) {
				t.Fatalf("version %x, connection %d: DidResume = %v", v, i, st.DidResume)
			}
		}
	}
}

// patternBytes returns the first n bytes of the pattern.
func patternBytes(n int) []byte {
	b := make([]byte, n)
	pattern(b, 0)
	return b
}

// TestTLSPipelinedAndHalfClose: 16 pipelined requests in one write are all
// answered in order; a peer that shuts its write side (TCP) after its
// requests, and one that sends close_notify after them, still gets every
// answer, then the server's close_notify and end.
func TestTLSPipelinedAndHalfClose(t *testing.T) {
	s := startTLS(t, Config{}, &bulk{})
	for _, mode := range []string{"keep open", "TCP half-close", "close_notify"} {
		t.Run(mode, func(t *testing.T) {
			raw, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			c := tls.Client(raw, clientTLS())
			var reqs strings.Builder
			for i := 1; i <= 16; i++ {
				fmt.Fprintf(&reqs, "GET /bytes/%d HTTP/1.1\r\nHost: a\r\n\r\n", i*1000)
			}
			if _, err := io.WriteString(c, reqs.String()); err != nil {
				t.Fatal(err)
			}
			switch mode {
			case "TCP half-close":
				raw.(*net.TCPConn).CloseWrite()
			case "close_notify":
				c.CloseWrite()
			}
			r := bufio.NewReader(c)
			for i := 1; i <= 16; i++ {
				status, n, sum := readBody(t, c, r, 0)
				if status != 200 || n != int64(i*1000) || sum != patternSum(int64(i*1000)) {
					t.Fatalf("response %d: %d, %d bytes, sum ok %v", i, status, n, sum == patternSum(int64(i*1000)))
				}
			}
			if mode == "keep open" {
				return
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if n, err := r.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("after the answers: %d bytes, %v; want EOF (close_notify)", n, err)
			}
		})
	}
}

// TestTLSSlowReaderGetsItAll: a 16 MiB response to a client that reads
// it late and slowly arrives whole: the ciphertext waits in the pending
// buffer and the handler is held by backpressure meanwhile.
func TestTLSSlowReaderGetsItAll(t *testing.T) {
	const n = 16 << 20
	h := &bulk{ended: make(chan string, 4)}
	s := startTLS(t, Config{Engine: engine.Config{KeepAliveTimeout: time.Second, IdleTimeout: 2 * time.Second}}, h)
	c := rawTLS(t, s, nil)
	fmt.Fprintf(c, "GET /bytes/%d HTTP/1.1\r\nHost: a\r\n\r\n", n)
	r := bufio.NewReader(c)
	if _, err := r.Peek(1); err != nil {
		t.Fatal(err)
	}
	// Read nothing more for a while: the handler must be held meanwhile.
	select {
	case <-h.ended:
		t.Fatal("the handler wrote all 16 MiB to a client that reads nothing: no backpressure")
	case <-time.After(300 * time.Millisecond):
	}
	status, got, sum := readBody(t, c, r, 12<<20)
	if status != 200 || got != n || sum != patternSum(n) {
		t.Fatalf("got %d, %d bytes, sum ok %v", status, got, sum == patternSum(n))
	}
	// Keep-alive: the connection serves the next request.
	fmt.Fprintf(c, "GET /bytes/7 HTTP/1.1\r\nHost: a\r\n\r\n")
	if status, got, _ := readBody(t, c, r, 0); status != 200 || got != 7 {
		t.Fatalf("next request: %d, %d bytes", status, got)
	}
}

// TestTLSPlainHTTPGets400: a plain HTTP request to the TLS port is
// answered 400 with Go's words, then the connection closes with a FIN.
func TestTLSPlainHTTPGets400(t *testing.T) {
	s := startTLS(t, Config{}, &bulk{})
	c := dial(t, s)
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || string(body) != "Client sent an HTTP request to an HTTPS server.\n" || !resp.Close {
		t.Fatalf("got %d %q close %v", resp.StatusCode, body, resp.Close)
	}
	expectEOF(t, c, r)
	if st := s.Stats(); st.TLSPlain != 1 {
		t.Fatalf("TLSPlain = %d; want 1", st.TLSPlain)
	}
	// The port still speaks TLS.
	tc := rawTLS(t, s, nil)
	fmt.Fprintf(tc, "GET /bytes/3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if resp := readAllFrom(t, tc); !bytes.HasPrefix(resp, []byte("HTTP/1.1 200")) {
		t.Fatalf("a TLS request after it: %q", resp)
	}
}

// clientHello returns the bytes of a real TLS ClientHello.
func clientHello(t *testing.T) []byte {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	go func() {
		c := tls.Client(a, clientTLS())
		_ = c.Handshake()
	}()
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(b, buf); err != nil {
		t.Fatal(err)
	}
	rest := make([]byte, int(buf[3])<<8|int(buf[4]))
	if _, err := io.ReadFull(b, rest); err != nil {
		t.Fatal(err)
	}
	b.Close()
	return append(buf, rest...)
}

// TestTLSHandshakeTimeout: a peer that connects and sends nothing, one that
// sends half a hello and one that sends a whole hello and then nothing are
// each closed at the handshake timeout, not before.
func TestTLSHandshakeTimeout(t *testing.T) {
	const timeout = 400 * time.Millisecond
	s := startTLS(t, Config{HandshakeTimeout: timeout}, &bulk{})
	hello := clientHello(t)
	for _, tc := range []struct {
		name string
		send []byte
	}{{"nothing", nil}, {"half a hello", hello[:len(hello)/2]}, {"a hello", hello}} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, s)
			start := time.Now()
			c.Write(tc.send)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err := io.Copy(io.Discard, c) // a whole hello gets the server's flight first
			took := time.Since(start)
			if err != nil && !isReset(err) {
				t.Fatalf("read: %v; want the connection closed", err)
			}
			if took < timeout-50*time.Millisecond || took > timeout+3*time.Second {
				t.Fatalf("closed after %v; want about %v", took, timeout)
			}
		})
	}
	if st := s.Stats(); st.TLSTimeouts != 3 {
		t.Fatalf("TLSTimeouts = %d; want 3", st.TLSTimeouts)
	}
}

func isReset(err error) bool { return err != nil && strings.Contains(err.Error(), "reset") }

// TestTLSHandshakeBound: with one handshake slot, held by a peer that sent
// a hello and stalls, a healthy client waits (with no goroutine) until the
// staller goes, then is served at once; peers that send nothing or half a
// hello hold no slot at all.
func TestTLSHandshakeBound(t *testing.T) {
	s := startTLS(t, Config{MaxHandshakes: 1}, &bulk{})
	hello := clientHello(t)
	for i := 0; i < 20; i++ { // no slot for these
		c := dial(t, s)
		c.Write(hello[:i%2*10])
	}
	handshake := func() error {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", s.Addr().String(), clientTLS())
		if err != nil {
			return err
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /bytes/2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		if resp := readAllFrom(t, c); !bytes.HasPrefix(resp, []byte("HTTP/1.1 200")) {
			return fmt.Errorf("response %q", resp)
		}
		return nil
	}
	if err := handshake(); err != nil {
		t.Fatalf("with only silent peers around: %v", err)
	}
	staller := dial(t, s)
	staller.Write(hello)
	if _, err := bufio.NewReader(staller).Peek(1); err != nil { // the server's flight: the slot is taken
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- handshake() }()
	select {
	case err := <-done:
		t.Fatalf("a handshake ended (%v) while the only slot was held", err)
	case <-time.After(300 * time.Millisecond):
	}
	staller.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting handshake did not get the freed slot")
	}
}

// TestTLSManyStalledHandshakes: 2,000 peers that connect and send nothing,
// half a hello, or a whole hello and then nothing (more of these than
// there are handshake slots) leave healthy TLS clients most of their rate:
// the first two kinds cost no slot, the third is evicted once silent for
// evictAge while connections wait. (Without eviction they held every slot
// until their timeout, a minute here.)
func TestTLSManyStalledHandshakes(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 connections")
	}
	s := startTLS(t, Config{HandshakeTimeout: time.Minute, MaxHandshakes: 256}, &bulk{})
	s.hs.evictAge = 200 * time.Millisecond
	rate := func() float64 {
		var n atomic.Int64
		var wg sync.WaitGroup
		stop := time.Now().Add(time.Second)
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(stop) {
					c, err := tls.Dial("tcp", s.Addr().String(), clientTLS())
					if err != nil {
						t.Error(err)
						return
					}
					fmt.Fprintf(c, "GET /bytes/2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
					io.Copy(io.Discard, c)
					c.Close()
					n.Add(1)
				}
			}()
		}
		wg.Wait()
		return float64(n.Load())
	}
	best := func() float64 { return max(rate(), rate(), rate()) } // see bestRate
	hello := clientHello(t)
	// As TestReliabilitySlowloris: the full run holds the 80%; the
	// short one, under -race on a shared 2-core machine, a floor that
	// starvation still breaks (without the eviction of silent handshakes
	// the rate fell to 47%). Other tests share the machine and can take a
	// window's CPU, so up to three attempts are made (each with its own
	// reference rate): starvation fails all three.
	floor := 0.8
	if !fullRun() {
		floor = 0.6
	}
	var base, under float64
	for attempt := 1; attempt <= 3; attempt++ {
		base, under = stalledHandshakesRates(t, s.Addr().String(), hello, best)
		t.Logf("attempt %d: full handshakes + request: %.0f/s alone, %.0f/s beside 2,000 stalled handshakes", attempt, base, under)
		if under >= floor*base {
			return
		}
	}
	t.Fatalf("healthy rate %.0f/s beside the stalled handshakes; want at least %.0f%% of %.0f/s", under, floor*100, base)
}

// stalledHandshakesRates measures best() alone, then beside 2,000 peers
// that connect to addr and send nothing, half of hello, or hello whole, and
// closes them.
func stalledHandshakesRates(t *testing.T, addr string, hello []byte, best func() float64) (base, under float64) {
	base = best()
	var stalled []net.Conn
	for i := 0; i < 2000; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("stalled peer %d: %v", i, err)
		}
		stalled = append(stalled, c)
		switch i % 7 {
		case 0, 1, 2: // nothing
		case 3, 4, 5:
			c.Write(hello[:len(hello)/2])
		default: // a whole hello: 286 of these hold the 256 slots, then are evicted
			c.Write(hello)
		}
	}
	defer func() {
		for _, c := range stalled {
			c.Close()
		}
	}()
	return base, best()
}

// TestTLSIdleConnectionHoldsNoBuffer: an idle TLS keep-alive connection
// keeps none of the layer's buffers: not the hello's ciphertext, not
// plaintext, and its handshake goroutine has ended. (The hello's buffer
// was kept once: 2 KiB per idle connection.)
func TestTLSIdleConnectionHoldsNoBuffer(t *testing.T) {
	s := startTLS(t, Config{}, &bulk{})
	var conns []*tls.Conn
	for i := 0; i < 4; i++ {
		c := rawTLS(t, s, nil)
		fmt.Fprintf(c, "GET /bytes/10 HTTP/1.1\r\nHost: a\r\n\r\n")
		if status, n, _ := readBody(t, c, bufio.NewReader(c), 0); status != 200 || n != 10 {
			t.Fatalf("response: %d, %d bytes", status, n)
		}
		conns = append(conns, c)
	}
	s.loops.mu.Lock()
	var loops []*loop
	for _, l := range s.loops.m {
		loops = append(loops, l)
	}
	s.loops.mu.Unlock()
	var seen int
	for _, l := range loops {
		got := make(chan []string, 1)
		if err := l.el.Execute(context.Background(), gnetTask(func() {
			var held []string
			for c := range l.openConns {
				seen++
				tl := c.tls
				switch {
				case tl == nil:
					held = append(held, "no TLS layer")
				case tl.state != tlsOpen || tl.shaking:
					held = append(held, fmt.Sprintf("state %d, shaking %v", tl.state, tl.shaking))
				case tl.in != nil || tl.carry != nil || tl.plain != nil || tl.src != nil:
					held = append(held, fmt.Sprintf("in %d, carry %d, plain %v, src %d bytes", cap(tl.in), cap(tl.carry), tl.plain != nil, cap(tl.src)))
				}
			}
			got <- held
		})); err != nil {
			t.Fatal(err)
		}
		if held := <-got; len(held) > 0 {
			t.Fatalf("idle connections hold: %v", held)
		}
	}
	if seen != len(conns) {
		t.Fatalf("%d open connections; want %d", seen, len(conns))
	}
}

// recorder is a net.Conn that keeps every byte read from it.
type recorder struct {
	net.Conn
	got bytes.Buffer
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.got.Write(p[:n])
	return n, err
}

// TestTLSCloseSendsCloseNotify: a connection the server closes (here after
// a Connection: close response) ends with a close_notify alert, before
// the FIN. TLS 1.2 shows the record type of an alert on the wire.
func TestTLSCloseSendsCloseNotify(t *testing.T) {
	s := startTLS(t, Config{}, &bulk{})
	raw, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rec := &recorder{Conn: raw}
	cfg := clientTLS()
	cfg.MaxVersion = tls.VersionTLS12
	c := tls.Client(rec, cfg)
	fmt.Fprintf(c, "GET /bytes/10 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if resp := readAllFrom(t, c); !bytes.HasPrefix(resp, []byte("HTTP/1.1 200")) {
		t.Fatalf("response %q", resp)
	}
	// Walk the records to the last one.
	b := rec.got.Bytes()
	var last byte
	for len(b) >= 5 {
		n := int(b[3])<<8 | int(b[4])
		if len(b) < 5+n {
			t.Fatalf("a record cut short: %d of %d bytes", len(b)-5, n)
		}
		last, b = b[0], b[5+n:]
	}
	if len(b) != 0 || last != 21 { // 21: alert (RFC 5246 §6.2.1)
		t.Fatalf("the last record has type %d (%d bytes left over); want an alert (21)", last, len(b))
	}
}

// stallHandshake opens a connection that sends a whole hello and then
// nothing, and returns it once the server's flight has come (its
// handshake holds a slot), with the reader of what follows.
func stallHandshake(t *testing.T, s *Server) (net.Conn, *bufio.Reader) {
	t.Helper()
	staller := dial(t, s)
	staller.Write(clientHello(t))
	r := bufio.NewReader(staller)
	if _, err := r.Peek(1); err != nil {
		t.Fatal(err)
	}
	return staller, r
}

// TestTLSEvictsSilentHandshake: with one slot, held by a peer that sent a
// hello and then nothing, a healthy client is served once that handshake
// has been silent for evictAge, long before the handshake timeout; the
// silent peer's connection is closed.
func TestTLSEvictsSilentHandshake(t *testing.T) {
	s := startTLS(t, Config{MaxHandshakes: 1, HandshakeTimeout: time.Minute}, &bulk{})
	s.hs.evictAge = 300 * time.Millisecond
	staller, r := stallHandshake(t, s)
	start := time.Now()
	c := rawTLS(t, s, nil)
	took := time.Since(start)
	fmt.Fprintf(c, "GET /bytes/2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if resp := readAllFrom(t, c); !bytes.HasPrefix(resp, []byte("HTTP/1.1 200")) {
		t.Fatalf("response %q", resp)
	}
	if took > 10*time.Second {
		t.Fatalf("the handshake took %v", took)
	}
	staller.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, r); err != nil && !isReset(err) {
		t.Fatalf("the silent peer's connection: %v; want it closed", err)
	}
	if st := s.Stats(); st.TLSEvicted != 1 {
		t.Fatalf("TLSEvicted = %d; want 1", st.TLSEvicted)
	}
}

// tlsHookLog records a TLS server's hooks: "secured" and the errors of
// HandshakeFailed, each with whether it ran inside an event of its
// connection.
type tlsHookLog struct {
	mu     sync.Mutex
	events []string
	errs   []error
}

func (h *tlsHookLog) Opened(*Conn) {}
func (h *tlsHookLog) Closed(*Conn) {}
func (h *tlsHookLog) Secured(c *Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, fmt.Sprintf("secured in-event=%v", c.InEvent()))
}
func (h *tlsHookLog) HandshakeFailed(c *Conn, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, fmt.Sprintf("failed in-event=%v", c.InEvent()))
	h.errs = append(h.errs, err)
}

func (h *tlsHookLog) snapshot() ([]string, []error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.events...), append([]error(nil), h.errs...)
}

// TestTLSHooksSecuredAndEvicted: TLSHooks hear a handshake done (Secured)
// and one evicted to make room (HandshakeFailed with ErrHandshakeEvicted),
// each inside an event of its connection, on the loop.
func TestTLSHooksSecuredAndEvicted(t *testing.T) {
	hooks := &tlsHookLog{}
	s := startServerHooks(t, Config{TLS: serverTLS(), MaxHandshakes: 1, HandshakeTimeout: time.Minute}, &bulk{}, hooks)
	s.hs.evictAge = 300 * time.Millisecond
	staller, r := stallHandshake(t, s)
	c := rawTLS(t, s, nil)
	fmt.Fprintf(c, "GET /bytes/2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if resp := readAllFrom(t, c); !bytes.HasPrefix(resp, []byte("HTTP/1.1 200")) {
		t.Fatalf("response %q", resp)
	}
	staller.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, r); err != nil && !isReset(err) {
		t.Fatalf("the silent peer's connection: %v; want it closed", err)
	}
	events, errs := hooks.snapshot()
	if strings.Join(events, ",") != "failed in-event=true,secured in-event=true" || len(errs) != 1 ||
		!errors.Is(errs[0], ErrHandshakeEvicted) {
		t.Fatalf("hooks heard %q with %v; want the eviction, then the healthy handshake", events, errs)
	}
}
