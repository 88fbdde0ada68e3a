package engine

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/internal/fakeconn"
)

const get = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"

func TestKeepAliveAndPipeliningInOrder(t *testing.T) {
	h := newHarness(t, Config{})
	n := 0
	h.rec.onEnd = func(s *Stream) {
		n++
		s.End([]byte(strings.Repeat("x", n)))
	}
	h.send(get + "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n" + "POST /3 HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nz")
	rs := h.responses()
	if len(rs) != 3 || string(rs[0].Body) != "x" || string(rs[1].Body) != "xx" || string(rs[2].Body) != "xxx" {
		t.Fatalf("responses %+v; want three in order", rs)
	}
	if h.conn.Ended() {
		t.Fatal("keep-alive connection closed")
	}
	if len(h.rec.closes) != 3 || h.rec.closes[0] != nil {
		t.Fatalf("Close calls %v; want three nil", h.rec.closes)
	}
}

func TestResponseFraming(t *testing.T) {
	tests := []struct {
		name, req string
		respond   func(s *Stream)
		check     func(t *testing.T, out string)
	}{
		{"end knows the length", get, func(s *Stream) { s.End([]byte("hello")) }, func(t *testing.T, out string) {
			want(t, out, "Content-Length: 5\r\n", "\r\n\r\nhello")
			dont(t, out, "Transfer-Encoding", "Connection:")
		}},
		{"streaming on 1.1 is chunked", get, func(s *Stream) { s.Write([]byte("he")); s.End([]byte("llo")) }, func(t *testing.T, out string) {
			want(t, out, "Transfer-Encoding: chunked\r\n", "\r\n\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n")
			dont(t, out, "Content-Length")
		}},
		{"streaming on 1.0 closes", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", func(s *Stream) { s.Write([]byte("he")); s.End([]byte("llo")) }, func(t *testing.T, out string) {
			want(t, out, "Connection: close\r\n", "\r\n\r\nhello")
			dont(t, out, "Transfer-Encoding", "Content-Length")
		}},
		{"1.0 keep-alive is echoed", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", func(s *Stream) { s.End([]byte("ok")) }, func(t *testing.T, out string) {
			want(t, out, "Connection: keep-alive\r\n", "Content-Length: 2\r\n")
		}},
		{"head has no body", "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", func(s *Stream) { s.End([]byte("hello")) }, func(t *testing.T, out string) {
			want(t, out, "Content-Length: 5\r\n")
			if !strings.HasSuffix(out, "\r\n\r\n") {
				t.Errorf("HEAD response carries a body: %q", out)
			}
		}},
		{"204 has no body or length", get, func(s *Stream) { s.SetHead(204, "", nil); s.End([]byte("x")) }, func(t *testing.T, out string) {
			want(t, out, "HTTP/1.1 204 No Content\r\n")
			dont(t, out, "Content-Length", "Transfer-Encoding")
			if !strings.HasSuffix(out, "\r\n\r\n") {
				t.Errorf("204 carries a body: %q", out)
			}
		}},
		{"304 has no body", get, func(s *Stream) { s.SetHead(304, "", nil); s.Write([]byte("x")); s.End(nil) }, func(t *testing.T, out string) {
			dont(t, out, "Content-Length", "Transfer-Encoding", "\r\n\r\nx")
		}},
		{"handler content-length is honoured", get, func(s *Stream) {
			s.SetHead(200, "Fine", []codec.Header{{Name: []byte("Content-Length"), Value: []byte("4")}})
			s.Write([]byte("ab"))
			s.End([]byte("cd"))
		}, func(t *testing.T, out string) {
			want(t, out, "HTTP/1.1 200 Fine\r\n", "Content-Length: 4\r\n", "\r\n\r\nabcd")
			dont(t, out, "chunked")
		}},
		{"request close gets connection close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", func(s *Stream) { s.End(nil) }, func(t *testing.T, out string) {
			want(t, out, "Connection: close\r\n", "Content-Length: 0\r\n")
		}},
		{"trailers force chunked", get, func(s *Stream) {
			s.EndTrailers([]byte("b"), []codec.Header{{Name: []byte("X-Sum"), Value: []byte("1")}})
		}, func(t *testing.T, out string) {
			want(t, out, "Transfer-Encoding: chunked\r\n", "1\r\nb\r\n0\r\nX-Sum: 1\r\n\r\n")
		}},
		{"date is present", get, func(s *Stream) { s.End(nil) }, func(t *testing.T, out string) {
			want(t, out, "Date: Tue, 14 Nov 2023 22:13:20 GMT\r\n")
		}},
		{"information before final", get, func(s *Stream) {
			s.WriteInformation(103, []codec.Header{{Name: []byte("Link"), Value: []byte("</a>")}})
			s.End(nil)
		}, func(t *testing.T, out string) {
			if !strings.HasPrefix(out, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n") {
				t.Errorf("got %q", out)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			h.rec.onEnd = tt.respond
			h.send(tt.req)
			tt.check(t, string(h.conn.Out))
		})
	}
}

func want(t *testing.T, out string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%q", s, out)
		}
	}
}

func dont(t *testing.T, out string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if strings.Contains(out, s) {
			t.Errorf("output has %q:\n%q", s, out)
		}
	}
}

func TestHeadRefusesInjection(t *testing.T) {
	h := newHarness(t, Config{})
	var err error
	h.rec.onEnd = func(s *Stream) {
		err = s.SetHead(200, "", []codec.Header{{Name: []byte("X"), Value: []byte("a\r\nSet-Cookie: evil")}})
		s.End(nil)
	}
	h.send(get)
	if !errors.Is(err, codec.ErrFieldValue) || strings.Contains(string(h.conn.Out), "evil") {
		t.Fatalf("SetHead err %v, output %q; want ErrFieldValue and nothing injected", err, h.conn.Out)
	}
}

func TestStreamMisuse(t *testing.T) {
	h := newHarness(t, Config{})
	var errs []error
	h.rec.onEnd = func(s *Stream) {
		s.End(nil)
		_, werr := s.Write([]byte("late"))
		errs = append(errs, werr, s.End(nil), s.SetHead(200, "", nil))
	}
	h.send(get)
	for i, err := range errs {
		if !errors.Is(err, ErrStreamDone) {
			t.Errorf("call %d after End: %v; want ErrStreamDone", i, err)
		}
	}
	if strings.Contains(string(h.conn.Out), "late") {
		t.Errorf("write after End reached the wire")
	}
}

func TestAsyncCompletionAndPipelining(t *testing.T) {
	h := newHarness(t, Config{})
	var held []*Stream
	h.rec.onEnd = func(s *Stream) { held = append(held, s) }
	h.send(get + "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
	if len(held) != 1 || len(h.conn.Out) != 0 {
		t.Fatalf("%d requests held, output %q; want the first only, no output", len(held), h.conn.Out)
	}
	flushes := h.conn.Flushes
	held[0].End([]byte("one")) // later, on the loop
	if len(held) != 2 || h.conn.Flushes == flushes {
		t.Fatalf("after End: %d requests held, flushes %d; want the second taken and a flush", len(held), h.conn.Flushes)
	}
	held[1].End([]byte("two"))
	rs := h.responses()
	if len(rs) != 2 || string(rs[0].Body) != "one" || string(rs[1].Body) != "two" {
		t.Fatalf("responses %+v", rs)
	}
}

func TestHeadersTimeoutSlowloris(t *testing.T) {
	h := newHarness(t, Config{HeadersTimeout: 10 * time.Second})
	h.send("GET / HTTP/1.1\r\nHo")
	if want := h.clock.now.Add(10 * time.Second); !h.conn.Deadline.Equal(want) {
		t.Fatalf("deadline %v; want %v", h.conn.Deadline, want)
	}
	h.clock.advance(9 * time.Second)
	h.send("s") // trickling does not extend the headers timeout
	h.fire()
	if !h.conn.Ended() || !strings.HasPrefix(string(h.conn.Out), "HTTP/1.1 408 ") {
		t.Fatalf("closed %v, output %q; want 408 and close", h.conn.Ended(), h.conn.Out)
	}
	if h.rec.requests != 0 {
		t.Fatal("incomplete head reached the handler")
	}
}

func TestKeepAliveTimeoutClosesQuietly(t *testing.T) {
	h := newHarness(t, Config{KeepAliveTimeout: 5 * time.Second})
	h.send(get)
	h.clock.advance(time.Second)
	out := len(h.conn.Out)
	h.fire()
	if !h.conn.Ended() || len(h.conn.Out) != out {
		t.Fatalf("closed %v, extra output %q; want a quiet close", h.conn.Ended(), h.conn.Out[out:])
	}
}

func TestTimeoutsDisabled(t *testing.T) {
	h := newHarness(t, Config{HeadersTimeout: Disabled, KeepAliveTimeout: Disabled, IdleTimeout: Disabled})
	h.send(get)
	if !h.conn.Deadline.IsZero() {
		t.Fatalf("deadline %v armed with every timeout disabled", h.conn.Deadline)
	}
}

func TestIdleTimeoutDuringSlowResponse(t *testing.T) {
	h := newHarness(t, Config{IdleTimeout: 30 * time.Second})
	h.rec.onEnd = func(s *Stream) {} // never answers
	h.send(get)
	h.fire()
	if !h.conn.Ended() || len(h.rec.closes) != 1 || !errors.Is(h.rec.closes[0], ErrIdleTimeout) {
		t.Fatalf("closed %v, Close calls %v; want closed with ErrIdleTimeout", h.conn.Ended(), h.rec.closes)
	}
}

type keepingHandler struct {
	*recorder
	timeouts int
}

func (k *keepingHandler) Timeout(_ Conn, s *Stream) bool { k.timeouts++; return k.timeouts < 2 }

func TestIdleTimeoutHandlerMayKeep(t *testing.T) {
	h := newHarness(t, Config{IdleTimeout: 30 * time.Second})
	k := &keepingHandler{recorder: h.rec}
	h.sc.h = k
	h.rec.onEnd = func(s *Stream) {}
	h.send(get)
	h.fire()
	if h.conn.Ended() || k.timeouts != 1 {
		t.Fatalf("closed %v after %d timeouts; want kept", h.conn.Ended(), k.timeouts)
	}
	h.fire()
	if !h.conn.Ended() {
		t.Fatal("second timeout did not close")
	}
}

func TestBackpressure(t *testing.T) {
	h := newHarness(t, Config{HighWater: 200}) // the head and first chunk take about 130
	h.conn.HoldOutput = true
	var s0 *Stream
	var ok []bool
	h.rec.onEnd = func(s *Stream) {
		if s0 == nil {
			s0 = s
			for i := 0; i < 4; i++ {
				r, _ := s.Write(bytes.Repeat([]byte("x"), 40))
				ok = append(ok, r)
			}
			return
		}
		s.End([]byte("second"))
	}
	h.send(get + get)
	if ok[0] != true || ok[len(ok)-1] != false {
		t.Fatalf("Write results %v; want true then false past HighWater", ok)
	}
	s0.End(nil)
	if h.rec.requests != 1 {
		t.Fatalf("%d requests taken over the high-water mark; want 1", h.rec.requests)
	}
	h.conn.Pending = 0 // the transport wrote everything out
	h.sc.OnDrain(h.clock.now)
	if h.rec.requests != 2 {
		t.Fatalf("%d requests after drain; want the pipelined one taken", h.rec.requests)
	}
}

func TestDrainEventReachesStream(t *testing.T) {
	h := newHarness(t, Config{HighWater: 10})
	h.conn.HoldOutput = true
	h.rec.onEnd = func(s *Stream) { s.Write(bytes.Repeat([]byte("x"), 20)) }
	h.send(get)
	h.conn.Pending = 0
	h.sc.OnDrain(h.clock.now)
	if h.rec.drains != 1 {
		t.Fatalf("%d Drain calls; want 1", h.rec.drains)
	}
}

func TestUnreadInputIsBounded(t *testing.T) {
	h := newHarness(t, Config{MaxUnread: 1000})
	h.rec.onEnd = func(s *Stream) {} // never answers: pipelined input piles up
	h.send(get)
	for i := 0; i < 100 && !h.conn.Ended(); i++ {
		h.send(get)
	}
	if !h.conn.Ended() || len(h.rec.closes) != 1 || !errors.Is(h.rec.closes[0], ErrTooMuchUnread) {
		t.Fatalf("closed %v, Close calls %v; want closed with ErrTooMuchUnread", h.conn.Ended(), h.rec.closes)
	}
}

func TestUnreadBodyDiscardedOrClosed(t *testing.T) {
	t.Run("small remainder is discarded", func(t *testing.T) {
		h := newHarness(t, Config{MaxDiscard: 100})
		h.rec.onRequest = func(s *Stream, req *codec.Request) { s.End([]byte("early")) }
		h.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 50\r\n\r\n" + strings.Repeat("b", 50) + get)
		if h.conn.Ended() || h.rec.requests != 2 {
			t.Fatalf("closed %v, %d requests; want the body dropped and the next request taken", h.conn.Ended(), h.rec.requests)
		}
	})
	t.Run("large remainder closes", func(t *testing.T) {
		h := newHarness(t, Config{MaxDiscard: 100})
		h.rec.onRequest = func(s *Stream, req *codec.Request) { s.End([]byte("early")) }
		h.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n" + strings.Repeat("b", 10))
		if !h.conn.Ended() || !strings.Contains(string(h.conn.Out), "Connection: close") {
			t.Fatalf("closed %v, output %q; want Connection: close and a close", h.conn.Ended(), h.conn.Out)
		}
	})
	t.Run("chunked remainder past the bound closes", func(t *testing.T) {
		h := newHarness(t, Config{MaxDiscard: 100})
		h.rec.onRequest = func(s *Stream, req *codec.Request) { s.End(nil) }
		h.send("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
		for i := 0; i < 10 && !h.conn.Ended(); i++ {
			h.send("40\r\n" + strings.Repeat("c", 64) + "\r\n")
		}
		if !h.conn.Ended() {
			t.Fatal("endless discarded chunked body did not close the connection")
		}
	})
}

func TestContinue(t *testing.T) {
	post := "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
	t.Run("automatic", func(t *testing.T) {
		h := newHarness(t, Config{})
		h.send(post)
		if string(h.conn.Out) != "HTTP/1.1 100 Continue\r\n\r\n" {
			t.Fatalf("output %q; want 100 Continue", h.conn.Out)
		}
		h.send("hi")
		if len(h.rec.msgs) != 1 || string(*h.rec.msgs[0].Body) != "hi" {
			t.Fatal("body not delivered after 100 Continue")
		}
	})
	t.Run("not when the body already started", func(t *testing.T) {
		h := newHarness(t, Config{})
		h.send(post + "h")
		if strings.Contains(string(h.conn.Out), "100 Continue") {
			t.Fatal("100 Continue after the body started")
		}
	})
	t.Run("manual, rejected with a final status", func(t *testing.T) {
		h := newHarness(t, Config{ManualContinue: true, MaxDiscard: 1})
		h.rec.onRequest = func(s *Stream, req *codec.Request) {
			if !req.ExpectContinue {
				t.Error("ExpectContinue not set")
			}
			s.SetHead(417, "", nil)
			s.End(nil)
		}
		h.send(post)
		out := string(h.conn.Out)
		if strings.Contains(out, "100 Continue") || !strings.HasPrefix(out, "HTTP/1.1 417 ") || !h.conn.Ended() {
			t.Fatalf("output %q closed %v; want 417 without 100, then close", out, h.conn.Ended())
		}
	})
	t.Run("manual, accepted", func(t *testing.T) {
		h := newHarness(t, Config{ManualContinue: true})
		h.rec.onRequest = func(s *Stream, req *codec.Request) { s.WriteContinue() }
		h.send(post)
		if string(h.conn.Out) != "HTTP/1.1 100 Continue\r\n\r\n" {
			t.Fatalf("output %q", h.conn.Out)
		}
	})
	t.Run("unknown expectation gets 417", func(t *testing.T) {
		h := newHarness(t, Config{})
		h.send("POST / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\nContent-Length: 2\r\n\r\nhi")
		if !strings.HasPrefix(string(h.conn.Out), "HTTP/1.1 417 ") || h.rec.requests != 0 || !h.conn.Ended() {
			t.Fatalf("output %q, %d requests; want 417 before the handler, then close", h.conn.Out, h.rec.requests)
		}
		if len(h.rec.closes) != 0 {
			t.Fatalf("Close calls %v for an exchange the handler never saw", h.rec.closes)
		}
	})
}

func TestHandlerPanic(t *testing.T) {
	var logs bytes.Buffer
	h := newHarness(t, Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	h.rec.onEnd = func(s *Stream) { panic("boom") }
	h.send(get + get)
	out := string(h.conn.Out)
	if !strings.HasPrefix(out, "HTTP/1.1 500 ") || !strings.Contains(out, "Connection: close") || !h.conn.Ended() {
		t.Fatalf("output %q closed %v; want 500, Connection: close, closed", out, h.conn.Ended())
	}
	if h.rec.requests != 1 {
		t.Fatalf("%d requests; the pipelined one must not be taken after a panic", h.rec.requests)
	}
	if len(h.rec.closes) != 1 || !errors.Is(h.rec.closes[0], ErrHandlerPanic) {
		t.Fatalf("Close calls %v; want one with ErrHandlerPanic", h.rec.closes)
	}
	if !strings.Contains(logs.String(), "boom") || !strings.Contains(logs.String(), "server_test.go") {
		t.Fatalf("log lacks the panic and its stack: %s", logs.String())
	}
}

func TestPanicAfterHeadClosesWithoutSecondHead(t *testing.T) {
	h := newHarness(t, Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	h.rec.onEnd = func(s *Stream) { s.Write([]byte("part")); panic("late") }
	h.send(get)
	if strings.Count(string(h.conn.Out), "HTTP/1.1 ") != 1 || !h.conn.Ended() {
		t.Fatalf("output %q; want one head, then close", h.conn.Out)
	}
}

func TestCloseMidBodyReportsIncomplete(t *testing.T) {
	h := newHarness(t, Config{})
	h.rec.onEnd = func(s *Stream) {}
	h.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
	h.sc.OnClose(h.clock.now)
	if len(h.rec.closes) != 1 || !errors.Is(h.rec.closes[0], ErrBodyIncomplete) {
		t.Fatalf("Close calls %v; want ErrBodyIncomplete", h.rec.closes)
	}
	if len(h.rec.msgs) != 0 {
		t.Fatal("an incomplete body reached End")
	}
}

func TestTunnel(t *testing.T) {
	h := newHarness(t, Config{})
	var tunneled []byte
	var s0 *Stream
	h.rec.onRequest = func(s *Stream, req *codec.Request) {
		s0 = s
		if err := s.Tunnel(200, nil); err != nil {
			t.Fatal(err)
		}
	}
	h.rec.onEnd = func(s *Stream) {}
	body := h.rec
	_ = body
	h.sc.h = tunnelRecorder{h.rec, &tunneled}
	h.send("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01GET / HTTP/1.1\r\n\r\n")
	if string(tunneled) != "\x16\x03\x01GET / HTTP/1.1\r\n\r\n" {
		t.Fatalf("tunnel got %q", tunneled)
	}
	s0.Write([]byte("back"))
	s0.End(nil)
	out := string(h.conn.Out)
	if !strings.HasPrefix(out, "HTTP/1.1 200 OK\r\n\r\nback") || !h.conn.Ended() {
		t.Fatalf("output %q closed %v", out, h.conn.Ended())
	}
}

// tunnelRecorder records body bytes of a tunnel.
type tunnelRecorder struct {
	*recorder
	got *[]byte
}

func (r tunnelRecorder) Body(s *Stream, chunk []byte) { *r.got = append(*r.got, chunk...) }

func TestConfigResolve(t *testing.T) {
	c, err := Config{}.Resolve()
	if err != nil || c.HeadersTimeout != DefaultHeadersTimeout || c.KeepAliveTimeout != DefaultKeepAliveTimeout ||
		c.IdleTimeout != DefaultIdleTimeout || c.HighWater != DefaultHighWater || c.Limits.MaxFields != codec.DefaultMaxFields {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	for _, bad := range []Config{{HighWater: -1}, {IdleTimeout: -5}, {Limits: codec.Limits{MaxFields: -1}}} {
		if _, err := bad.Resolve(); err == nil {
			t.Errorf("Resolve(%+v) accepted", bad)
		}
	}
	if c, err := (Config{IdleTimeout: Disabled}).Resolve(); err != nil || c.IdleTimeout != Disabled {
		t.Errorf("Disabled: %v, %v", c.IdleTimeout, err)
	}
}

// TestKeepAliveCycleAllocatesNothing proves the hot path: a keep-alive GET
// answered with End through a reused connection allocates nothing.
func TestKeepAliveCycleAllocatesNothing(t *testing.T) {
	fields := []codec.Header{{Name: []byte("Content-Type"), Value: []byte("text/plain")}, {Name: []byte("Server"), Value: []byte("loophttp")}}
	for _, f := range [][]codec.Header{nil, fields} {
		testKeepAliveCycle(t, minimalHandler{[]byte("Hello, World!"), f})
	}
}

func testKeepAliveCycle(t *testing.T, handler minimalHandler) {
	h := newHarness(t, Config{})
	body := handler.body
	h.sc.h = handler
	req := []byte("GET / HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: wrk\r\n\r\n")
	h.conn.Out = make([]byte, 0, 4096)
	h.conn.In = make([]byte, 0, 4096)
	cycle := func() {
		h.conn.In = append(h.conn.In[:0], req...)
		h.conn.Out = h.conn.Out[:0]
		h.sc.OnData(h.clock.now)
	}
	cycle()
	if n := testing.AllocsPerRun(1000, cycle); n != 0 {
		t.Fatalf("%v allocations per request; want 0", n)
	}
	if !bytes.HasSuffix(h.conn.Out, body) {
		t.Fatalf("output %q", h.conn.Out)
	}
}

type minimalHandler struct {
	body   []byte
	fields []codec.Header
}

func (m minimalHandler) Request(s *Stream, req *codec.Request) {}
func (m minimalHandler) Body(s *Stream, chunk []byte)          {}
func (m minimalHandler) End(s *Stream, _ []codec.Header) {
	if m.fields != nil {
		s.SetHead(200, "", m.fields)
	}
	s.End(m.body)
}
func (m minimalHandler) Drain(s *Stream)            {}
func (m minimalHandler) Close(s *Stream, err error) {}

// TestEndInsideRequest: a handler answering in Request (before End) must
// still get End for a bodiless request, and pipelined requests must go on.
func TestEndInsideRequest(t *testing.T) {
	h := newHarness(t, Config{})
	h.rec.onRequest = func(s *Stream, req *codec.Request) { s.End([]byte("early")) }
	h.rec.onEnd = func(s *Stream) {}
	h.send(get + get)
	h.send(get)
	rs := h.responses()
	if len(rs) != 3 || len(h.rec.msgs) != 3 || h.conn.Ended() {
		t.Fatalf("%d responses, %d End calls, closed %v; want 3, 3, open", len(rs), len(h.rec.msgs), h.conn.Ended())
	}
}

func TestDetachLeavesTheHeadToTheHandler(t *testing.T) {
	h := newHarness(t, Config{})
	var got []byte
	var s0 *Stream
	h.rec.onRequest = func(s *Stream, req *codec.Request) {
		s0 = s
		if err := s.Detach(); err != nil {
			t.Fatal(err)
		}
		s.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n"))
	}
	h.sc.h = tunnelRecorder{h.rec, &got}
	h.send("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\nraw bytes")
	if string(got) != "raw bytes" {
		t.Fatalf("tunnel got %q", got)
	}
	s0.End([]byte("bye"))
	if out := string(h.conn.Out); out != "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\nbye" || !h.conn.Ended() {
		t.Fatalf("output %q closed %v", out, h.conn.Ended())
	}
}

// TestPipelinedOutputIsBounded: a peer that pipelines requests and never
// reads its responses. Answers that End at once (no Write, so no false from
// Write to notice) must still stop the engine from taking more requests
// once the pending output passes HighWater; the input then piles up to
// MaxUnread and the connection is closed. Output never grows past
// HighWater plus one response.
func TestPipelinedOutputIsBounded(t *testing.T) {
	h := newHarness(t, Config{HighWater: 1000, MaxUnread: 4000})
	h.conn.HoldOutput = true // nothing leaves: the peer does not read
	maxPending := 0
	for i := 0; i < 1000 && !h.conn.Ended(); i++ {
		h.send(get + get + get)
		maxPending = max(maxPending, h.conn.Pending)
	}
	one := len(h.conn.Out) / h.rec.requests
	if maxPending > 1000+one {
		t.Fatalf("pending output reached %d bytes; bound HighWater 1000 + one response %d", maxPending, one)
	}
	if !h.conn.Ended() || len(h.rec.closes) == 0 {
		t.Fatalf("closed %v after %d requests; want closed once the unread input passed MaxUnread", h.conn.Ended(), h.rec.requests)
	}
	// Once the peer reads, the requests held back are taken again.
	h2 := newHarness(t, Config{HighWater: 1000})
	h2.conn.HoldOutput = true
	h2.send(strings.Repeat(get, 40))
	taken := h2.rec.requests
	if taken >= 40 {
		t.Fatalf("all %d pipelined requests taken with the output held", taken)
	}
	h2.conn.Pending = 0
	h2.sc.OnDrain(h2.clock.now)
	if h2.rec.requests <= taken {
		t.Fatalf("no request taken after the drain (%d before, %d after)", taken, h2.rec.requests)
	}
}

func TestAppendLength(t *testing.T) {
	for _, n := range []int64{0, 1, 9, 10, 13, 99, 100, 65535, 1 << 40, 1<<63 - 1} {
		if got, want := string(appendLength([]byte("x"), n)), "x"+strconv.FormatInt(n, 10); got != want {
			t.Errorf("appendLength(%d) = %q; want %q", n, got, want)
		}
	}
}

// TestDateFollowsTheClock: the Date line the loop keeps is renewed when
// the clock passes into another second, and only then.
func TestDateFollowsTheClock(t *testing.T) {
	h := newHarness(t, Config{})
	for _, step := range []struct {
		advance time.Duration
		want    string
	}{
		{0, "Date: Tue, 14 Nov 2023 22:13:20 GMT\r\n"},
		{999 * time.Millisecond, "Date: Tue, 14 Nov 2023 22:13:20 GMT\r\n"},
		{time.Millisecond, "Date: Tue, 14 Nov 2023 22:13:21 GMT\r\n"},
		{time.Hour, "Date: Tue, 14 Nov 2023 23:13:21 GMT\r\n"},
	} {
		h.clock.advance(step.advance)
		h.conn.Out = h.conn.Out[:0]
		h.send(get)
		if out := string(h.conn.Out); !strings.Contains(out, step.want) {
			t.Fatalf("after %v: %q; want %q in it", step.advance, out, step.want)
		}
	}
}

// TestIdleConnectionHoldsNoStream: between exchanges a connection gives its
// Stream (and the pooled objects it used) back to the loop, and the next
// exchange counts on from the last one's Gen, also on a ServerConn reused
// for another connection.
func TestIdleConnectionHoldsNoStream(t *testing.T) {
	h := newHarness(t, Config{})
	var gens []uint32
	h.rec.onEnd = func(s *Stream) {
		gens = append(gens, s.Gen())
		s.SetHead(200, "", []codec.Header{{Name: []byte("X"), Value: []byte("y")}})
		s.End([]byte("ok"))
	}
	h.send("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
	h.send(get)
	if h.sc.stream != nil || h.sc.loop.InUse() != 0 {
		t.Fatalf("idle connection holds stream %p, loop has %d objects out; want none", h.sc.stream, h.sc.loop.InUse())
	}
	h.sc.OnClose(h.clock.now)
	h.sc.Reset(h.conn, h.rec)
	h.sc.Open(h.clock.now)
	h.send(get)
	if len(gens) != 3 || gens[0] == gens[1] || gens[1] == gens[2] || gens[0] == gens[2] {
		t.Fatalf("exchange gens %v; want three different ones", gens)
	}
}

// TestAddField: fields added one by one, checked (AddField) or not
// (AddCheckedField), go out as given, in order, and decide the framing: a
// Content-Length is the body's, a Transfer-Encoding other than chunked is
// refused and left out of the head, and nothing is added once the head is
// out.
func TestAddField(t *testing.T) {
	for _, checked := range []bool{false, true} {
		h := newHarness(t, Config{})
		add := (*Stream).AddField
		if checked {
			add = (*Stream).AddCheckedField
		}
		var errs []error
		h.rec.onEnd = func(s *Stream) {
			errs = append(errs,
				s.ResetHead(201, ""),
				add(s, "X-One", "1"),
				add(s, "Content-Length", "2"),
				add(s, "Transfer-Encoding", "gzip"),
				add(s, "Content-Length", "x"),
			)
			_, err := s.Write([]byte("ok"))
			errs = append(errs, err, add(s, "X-Late", "2"), s.End(nil))
		}
		h.send(get)
		want := []error{nil, nil, nil, codec.ErrTransferCoding, codec.ErrContentLength, nil, ErrHeadSent, nil}
		if len(errs) != len(want) {
			t.Fatalf("checked=%v: errors %v; want %v", checked, errs, want)
		}
		for i := range want {
			if !errors.Is(errs[i], want[i]) {
				t.Errorf("checked=%v: call %d: %v; want %v", checked, i, errs[i], want[i])
			}
		}
		out := string(h.conn.Out)
		if !strings.HasPrefix(out, "HTTP/1.1 201 Created\r\nX-One: 1\r\nContent-Length: 2\r\nDate: ") || !strings.HasSuffix(out, "\r\n\r\nok") ||
			strings.Contains(out, "gzip") || strings.Contains(out, ": x") || strings.Contains(out, "X-Late") {
			t.Fatalf("checked=%v: response %q", checked, out)
		}
	}
}

// TestTunnelStreamNotReused: the Stream of a tunnel, which its handler
// keeps for the connection's life, is not handed to another connection
// when the tunnel ends: a late call through it is refused and writes
// nothing anywhere.
func TestTunnelStreamNotReused(t *testing.T) {
	for _, upgrade := range []bool{true, false} {
		cfg, err := (&Config{}).Resolve()
		if err != nil {
			t.Fatal(err)
		}
		loop := NewLoop(&cfg, nil)
		now := time.Unix(1700000000, 0)
		var kept *Stream
		ra := &recorder{t: t, onRequest: func(s *Stream, req *codec.Request) {
			kept = s
			if upgrade {
				if err := s.Detach(); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err := s.Tunnel(200, nil); err != nil {
				t.Fatal(err)
			}
		}}
		ca := &fakeconn.Conn{}
		a := loop.NewServerConn(ca, ra)
		a.Open(now)
		if upgrade {
			ca.Feed([]byte("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n"))
		} else {
			ca.Feed([]byte("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"))
		}
		a.OnData(now)
		if err := kept.End(nil); err != nil || !ca.Ended() {
			t.Fatalf("upgrade=%v: ending the tunnel: %v, ended %v", upgrade, err, ca.Ended())
		}
		aOut := len(ca.Out)

		cb := &fakeconn.Conn{}
		b := loop.NewServerConn(cb, &recorder{t: t, onRequest: func(*Stream, *codec.Request) {}, onEnd: func(*Stream) {}})
		b.Open(now)
		cb.Feed([]byte("GET /b HTTP/1.1\r\nHost: b\r\n\r\n"))
		b.OnData(now) // B's exchange is in progress, unanswered
		if _, err := kept.Write([]byte("LEAK")); err == nil || len(cb.Out) != 0 || len(ca.Out) != aOut {
			t.Fatalf("upgrade=%v: late Write through A's tunnel Stream: %v; B got %q, A got %q more", upgrade, err, cb.Out, ca.Out[aOut:])
		}
		if loop.InUse() != 1 { // B's Stream
			t.Fatalf("upgrade=%v: loop has %d objects out; want 1", upgrade, loop.InUse())
		}
	}
}

// TestConflictingFraming: a response head carries one length or chunked
// coding, never both and never two (RFC 9112 §6.2): the second framing
// field is refused and stays out of the head; a later Connection field
// does not take back an earlier "close".
func TestConflictingFraming(t *testing.T) {
	for _, tc := range []struct {
		first, second [2]string
		wantErr       error
		want          string // the head's fields and the body
	}{
		{[2]string{"Transfer-Encoding", "chunked"}, [2]string{"Content-Length", "2"}, codec.ErrContentLength, "Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"},
		{[2]string{"Content-Length", "2"}, [2]string{"Transfer-Encoding", "chunked"}, codec.ErrTransferCoding, "Content-Length: 2\r\n\r\nok"},
		{[2]string{"Content-Length", "2"}, [2]string{"Content-Length", "3"}, codec.ErrContentLength, "Content-Length: 2\r\n\r\nok"},
		{[2]string{"Connection", "close"}, [2]string{"Connection", "keep-alive"}, nil, "Connection: close\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"},
	} {
		h := newHarness(t, Config{})
		var err error
		h.rec.onEnd = func(s *Stream) {
			_ = s.ResetHead(200, "")
			_ = s.AddField(tc.first[0], tc.first[1])
			err = s.AddField(tc.second[0], tc.second[1])
			_ = s.End([]byte("ok"))
		}
		h.send(get)
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("%v then %v: %v; want %v", tc.first, tc.second, err, tc.wantErr)
		}
		out := regexpDate.ReplaceAllString(string(h.conn.Out), "")
		if want := "HTTP/1.1 200 OK\r\n" + tc.want; out != want {
			t.Errorf("%v then %v: response %q; want %q", tc.first, tc.second, out, want)
		}
		if tc.first[0] == "Connection" && !h.conn.Ended() {
			t.Errorf("Connection: close then keep-alive: the connection stayed open")
		}
	}
}

// TestSetHeadRefusedLeavesNoFraming: a field list SetHead refuses leaves
// no framing behind from the fields before the bad one; the response is
// framed as if no fields had been set.
func TestSetHeadRefusedLeavesNoFraming(t *testing.T) {
	for _, framing := range []codec.Header{
		{Name: []byte("Content-Length"), Value: []byte("5")},
		{Name: []byte("Transfer-Encoding"), Value: []byte("chunked")},
		{Name: []byte("Connection"), Value: []byte("close")},
	} {
		h := newHarness(t, Config{})
		var err error
		h.rec.onEnd = func(s *Stream) {
			err = s.SetHead(200, "", []codec.Header{framing, {Name: []byte("X-Bad"), Value: []byte("a\x01b")}})
			_, _ = s.Write([]byte("hel"))
			_ = s.End([]byte("lo"))
		}
		h.send(get)
		if !errors.Is(err, codec.ErrFieldValue) {
			t.Fatalf("%s: SetHead: %v; want ErrFieldValue", framing.Name, err)
		}
		out := regexpDate.ReplaceAllString(string(h.conn.Out), "")
		if want := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n"; out != want || h.conn.Ended() {
			t.Errorf("%s: response %q, closed %v; want %q on an open connection", framing.Name, out, h.conn.Ended(), want)
		}
	}
}

// regexpDate matches the Date field line of a response head.
var regexpDate = regexp.MustCompile(`Date: [^\r]*\r\n`)

// TestDetachAfterBodyRefused: once a request body chunk has reached
// Handler.Body, Detach and Tunnel are refused (the body's framing still
// governs the input) and the exchange carries on as HTTP, with either
// framing of the body.
func TestDetachAfterBodyRefused(t *testing.T) {
	for _, body := range []string{
		"Content-Length: 4\r\n\r\nabcd",
		"Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
	} {
		h := newHarness(t, Config{})
		var errs []error
		h.rec.onBody = func(s *Stream, chunk []byte) {
			errs = append(errs, s.Detach(), s.Tunnel(101, nil))
		}
		h.rec.onEnd = func(s *Stream) { _ = s.End([]byte("ok")) }
		h.send("POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: x\r\n" + body)
		if len(errs) != 2 || !errors.Is(errs[0], ErrBodyStarted) || !errors.Is(errs[1], ErrBodyStarted) {
			t.Fatalf("%q: Detach, Tunnel from Body: %v; want ErrBodyStarted twice", body, errs)
		}
		if out := string(h.conn.Out); !strings.HasPrefix(out, "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(out, "\r\n\r\nok") || h.conn.Ended() {
			t.Fatalf("%q: response %q, closed %v", body, out, h.conn.Ended())
		}
	}
}

// TestPanicInCloseEndsTheConnection: Handler.Close panics at the end of a
// kept-alive exchange with another request pipelined behind it: the
// connection closes and stays closed; the request behind it is not read.
func TestPanicInCloseEndsTheConnection(t *testing.T) {
	h := newHarness(t, Config{})
	h.sc.loop.cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	h.rec.onClose = func(s *Stream, err error) {
		if len(h.rec.closes) == 1 {
			panic("in Close")
		}
	}
	h.send(get + get)
	if h.rec.requests != 1 || !h.conn.Ended() || strings.Count(string(h.conn.Out), "HTTP/1.1 ") != 1 {
		t.Fatalf("requests %d, closed %v, output %q; want one request answered and a closed connection", h.rec.requests, h.conn.Ended(), h.conn.Out)
	}
	h.send(get) // nothing more is read once closed
	if h.rec.requests != 1 {
		t.Fatalf("requests %d after the close", h.rec.requests)
	}
}

// TestPanicAfterEndInDrain: a Drain callback ends its response and then
// panics, with a request pipelined behind it. Ending the response starts
// the next exchange on the same (pooled) Stream before the panic reaches
// the engine. Either that exchange is answered at once, or it is still
// being handled when the panic arrives: it never gets a 500 for the other
// exchange's panic, the connection closes, and a pending exchange's Close
// reports ErrHandlerPanic.
func TestPanicAfterEndInDrain(t *testing.T) {
	for _, answerLater := range []bool{false, true} {
		h := newHarness(t, Config{HighWater: 100})
		h.sc.loop.cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		h.conn.HoldOutput = true
		var paths []string
		h.rec.onRequest = func(s *Stream, req *codec.Request) { paths = append(paths, string(req.Target)) }
		h.rec.onEnd = func(s *Stream) {
			switch {
			case paths[len(paths)-1] == "/a":
				_ = s.SetHead(200, "", nil)
				_, _ = s.Write(make([]byte, 200)) // over HighWater: Drain follows
			case !answerLater:
				_ = s.End([]byte("fine"))
			}
		}
		h.rec.onDrain = func(s *Stream) {
			_ = s.End(nil)
			panic("after End")
		}
		h.send("GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n")
		before := len(h.conn.Out)
		h.conn.Pending = 0
		h.sc.OnDrain(h.clock.now)
		after := string(h.conn.Out[before:])
		if strings.Contains(after, "HTTP/1.1 500") || !h.conn.Ended() || len(paths) != 2 ||
			!answerLater && !strings.HasSuffix(after, "\r\n\r\nfine") {
			t.Fatalf("answerLater=%v, requests %v: after the drain %q, closed %v; want no 500 and a closed connection", answerLater, paths, after, h.conn.Ended())
		}
		if answerLater && (len(h.rec.closes) != 2 || !errors.Is(h.rec.closes[1], ErrHandlerPanic)) {
			t.Fatalf("closes %v; want the pending exchange closed with ErrHandlerPanic", h.rec.closes)
		}
	}
}
