package engine

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/internal/conformance"
	"github.com/loophttp/loophttp/internal/fakeconn"
)

// clientRec is a ClientHandler and ClientOwner that records what reaches
// it as conformance messages; on Idle it begins the next queued method.
type clientRec struct {
	t        testing.TB
	c        *ClientConn
	methods  []string // requests still to send, in order
	msgs     []conformance.Message
	cur      conformance.Message
	tunnel   bool
	tail     []byte
	closes   []error
	got      []bool // GotResponse at each Close
	events   []string
	idles    int
	timeouts int
	drains   int
	// onResponse replaces the default (nothing) when set.
	onResponse func(x *Exchange)
}

func (r *clientRec) Information(x *Exchange, resp *codec.Response) {
	r.events = append(r.events, "information")
	m := r.head(resp)
	m.Interim = true
	m.Body = octets(nil)
	r.msgs = append(r.msgs, m)
}

func (r *clientRec) head(resp *codec.Response) conformance.Message {
	m := conformance.Message{
		Version: octets(resp.Proto),
		Status:  resp.Status,
		Reason:  octets(resp.Reason),
		Headers: []conformance.Field{},
	}
	for _, h := range resp.Headers {
		m.Headers = append(m.Headers, conformance.Field{bytes.Clone(h.Name), bytes.Clone(h.Value)})
	}
	ka := resp.KeepAlive
	m.KeepAlive = &ka
	return m
}

func (r *clientRec) Response(x *Exchange, resp *codec.Response) {
	r.events = append(r.events, "response")
	r.cur = r.head(resp)
	r.cur.Body = octets(nil)
	if resp.Framing == codec.FramingTunnel || resp.Framing == codec.FramingUpgrade {
		r.tunnel = true
		r.msgs = append(r.msgs, r.cur)
	}
	if r.onResponse != nil {
		r.onResponse(x)
	}
}

func (r *clientRec) Body(x *Exchange, chunk []byte) {
	r.events = append(r.events, "body")
	if r.tunnel {
		r.tail = append(r.tail, chunk...)
		return
	}
	*r.cur.Body = append(*r.cur.Body, chunk...)
}

func (r *clientRec) End(x *Exchange, trailers []codec.Header) {
	r.events = append(r.events, "end")
	if r.tunnel {
		return
	}
	for _, h := range trailers {
		r.cur.Trailers = append(r.cur.Trailers, conformance.Field{bytes.Clone(h.Name), bytes.Clone(h.Value)})
	}
	r.msgs = append(r.msgs, r.cur)
}

func (r *clientRec) Drain(x *Exchange)   { r.drains++ }
func (r *clientRec) Timeout(x *Exchange) { r.timeouts++ }

func (r *clientRec) Close(x *Exchange, err error) {
	r.events = append(r.events, "close")
	r.closes = append(r.closes, err)
	r.got = append(r.got, x.GotResponse())
}

func (r *clientRec) Idle(c *ClientConn) {
	r.idles++
	r.next()
}

// next begins the next queued request, bodyless.
func (r *clientRec) next() {
	if len(r.methods) == 0 {
		return
	}
	m := r.methods[0]
	r.methods = r.methods[1:]
	x, err := r.c.Begin(r, m, "/")
	if err != nil {
		r.t.Fatalf("Begin %s: %v", m, err)
	}
	if err := x.AddField("Host", "example.com"); err != nil {
		r.t.Fatal(err)
	}
	if err := x.End(nil); err != nil {
		r.t.Fatal(err)
	}
}

// clientHarness is a ClientConn on a fake conn with a fake clock.
type clientHarness struct {
	conn  *fakeconn.Conn
	c     *ClientConn
	rec   *clientRec
	clock fakeClock
	cfg   ClientConfig
}

func newClientHarness(t testing.TB, cfg ClientConfig) *clientHarness {
	var err error
	h := &clientHarness{conn: &fakeconn.Conn{}, clock: fakeClock{now: time.Unix(1700000000, 0)}}
	cfg.Now = func() time.Time { return h.clock.now }
	if h.cfg, err = cfg.Resolve(); err != nil {
		t.Fatal(err)
	}
	h.rec = &clientRec{t: t}
	h.c = NewClientConn(h.conn, &h.cfg, h.rec)
	h.rec.c = h.c
	h.c.Open(h.clock.now)
	return h
}

func (h *clientHarness) send(s string) {
	h.conn.Feed([]byte(s))
	h.c.OnData(h.clock.now)
}

func (h *clientHarness) eof() {
	h.c.OnEOF(h.clock.now)
	h.c.OnClose(h.clock.now)
}

// begin starts an exchange for method and target with the recorder.
func (h *clientHarness) begin(t testing.TB, method, target string) *Exchange {
	t.Helper()
	x, err := h.c.Begin(h.rec, method, target)
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	return x
}

// TestConformanceClient runs every response case of the corpus
// through a ClientConn on a fake conn, whole, split at every offset and
// byte by byte, and judges what reached the handler.
func TestConformanceClient(t *testing.T) {
	vs := conformance.MustLoad(t)
	for i := range vs {
		v := &vs[i]
		if v.Side != "response" {
			continue
		}
		t.Run(v.ID, func(t *testing.T) {
			t.Parallel()
			in := v.Input()
			for _, cuts := range conformance.Cuts(len(in)) {
				if msg := runClientCase(t, v, cuts); msg != "" {
					t.Fatalf("cuts %v: %s\n  raw %q", shortCuts(cuts), msg, v.Raw)
				}
			}
		})
	}
}

func runClientCase(t *testing.T, v *conformance.Vector, cuts []int) string {
	h := newClientHarness(t, ClientConfig{})
	h.rec.methods = append([]string(nil), v.Methods()...)
	h.rec.next()
	if !bytes.HasPrefix(h.conn.Out, []byte(v.Methods()[0]+" / HTTP/1.1\r\nHost: example.com\r\n")) {
		return "request head " + string(h.conn.Out)
	}
	in := v.Input()
	prev := 0
	for _, c := range append(cuts, len(in)) {
		if !h.conn.Closed {
			h.send(string(in[prev:c]))
		}
		prev = c
	}
	stopped := h.conn.Closed
	h.eof()
	o := &conformance.Outcome{Messages: h.rec.msgs, Stopped: stopped || h.rec.tunnel, Tail: h.rec.tail}
	for i, err := range h.rec.closes {
		var ce codec.Error
		switch {
		case err == nil:
		case errors.As(err, &ce):
			o.Err = err
		case errors.Is(err, ErrTruncated), errors.Is(err, ErrHangUp) && h.rec.got[i]:
			o.Incomplete = true
		case errors.Is(err, ErrHangUp):
			// a request the case sends no response to
		default:
			return "closed with " + err.Error()
		}
	}
	if len(h.rec.closes) > len(v.Methods()) {
		return "more exchanges than requests"
	}
	return v.Judge(o)
}

func TestClientRequestFraming(t *testing.T) {
	cases := []struct {
		name   string
		method string
		fields [][2]string
		writes []string
		end    string
		want   string
	}{
		{"get without body", "GET", nil, nil, "", "GET /p HTTP/1.1\r\n\r\n"},
		{"post without body", "POST", nil, nil, "", "POST /p HTTP/1.1\r\nContent-Length: 0\r\n\r\n"},
		{"end with data", "PUT", nil, nil, "hello", "PUT /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"},
		{"streamed", "POST", nil, []string{"ab", "c"}, "de",
			"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n2\r\nde\r\n0\r\n\r\n"},
		{"declared length", "POST", [][2]string{{"content-length", "6"}}, []string{"abc"}, "def",
			"POST /p HTTP/1.1\r\ncontent-length: 6\r\n\r\nabcdef"},
		{"declared chunked", "POST", [][2]string{{"Transfer-Encoding", "chunked"}}, nil, "x",
			"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newClientHarness(t, ClientConfig{})
			x := h.begin(t, tc.method, "/p")
			for _, f := range tc.fields {
				if err := x.AddField(f[0], f[1]); err != nil {
					t.Fatal(err)
				}
			}
			for _, w := range tc.writes {
				if _, err := x.Write([]byte(w)); err != nil {
					t.Fatal(err)
				}
			}
			if err := x.End([]byte(tc.end)); err != nil {
				t.Fatal(err)
			}
			if got := string(h.conn.Out); got != tc.want {
				t.Fatalf("wire %q\nwant %q", got, tc.want)
			}
			if err := x.AddField("X", "y"); !errors.Is(err, ErrHeadSent) {
				t.Fatalf("AddField after the head: %v", err)
			}
			if _, err := x.Write([]byte("z")); !errors.Is(err, ErrStreamDone) {
				t.Fatalf("Write after End: %v", err)
			}
		})
	}
}

func TestClientRefusesBadHeads(t *testing.T) {
	h := newClientHarness(t, ClientConfig{})
	if _, err := h.c.Begin(h.rec, "GET", "/up load"); !errors.Is(err, codec.ErrTarget) {
		t.Fatalf("target with a space: %v", err)
	}
	if _, err := h.c.Begin(h.rec, "GET", "/a\x01"); !errors.Is(err, codec.ErrTarget) {
		t.Fatalf("target with a control: %v", err)
	}
	x := h.begin(t, "GET", "/")
	for _, f := range [][2]string{{"X", "a\r\nInjected: 1"}, {"Bad Name", "v"}, {"Content-Length", "-1"}, {"Transfer-Encoding", "gzip"}} {
		if err := x.AddField(f[0], f[1]); err == nil {
			t.Fatalf("AddField(%q, %q) accepted", f[0], f[1])
		}
	}
	if _, err := h.c.Begin(h.rec, "GET", "/"); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Begin: %v", err)
	}
	if err := x.End(nil); err != nil {
		t.Fatal(err)
	}
	if got := string(h.conn.Out); got != "GET / HTTP/1.1\r\n\r\n" {
		t.Fatalf("wire %q", got)
	}
}

// TestClientConflictingFraming: a request head carries one length or
// chunked coding, never both and never two (RFC 9112 §6.2): the second
// framing field is refused and stays out of the head.
func TestClientConflictingFraming(t *testing.T) {
	for _, tc := range []struct {
		first, second [2]string
		wantErr       error
		wantHead      string
	}{
		{[2]string{"Transfer-Encoding", "chunked"}, [2]string{"Content-Length", "2"}, codec.ErrContentLength, "Transfer-Encoding: chunked\r\n"},
		{[2]string{"Content-Length", "2"}, [2]string{"Transfer-Encoding", "chunked"}, codec.ErrTransferCoding, "Content-Length: 2\r\n"},
		{[2]string{"Content-Length", "2"}, [2]string{"Content-Length", "3"}, codec.ErrContentLength, "Content-Length: 2\r\n"},
	} {
		h := newClientHarness(t, ClientConfig{})
		x := h.begin(t, "POST", "/")
		if err := x.AddField(tc.first[0], tc.first[1]); err != nil {
			t.Fatal(err)
		}
		if err := x.AddField(tc.second[0], tc.second[1]); !errors.Is(err, tc.wantErr) {
			t.Errorf("%v then %v: %v; want %v", tc.first, tc.second, err, tc.wantErr)
		}
		if err := x.End([]byte("ok")); err != nil {
			t.Fatal(err)
		}
		head, _, _ := strings.Cut(string(h.conn.Out), "\r\n\r\n")
		if got := head + "\r\n"; got != "POST / HTTP/1.1\r\n"+tc.wantHead {
			t.Errorf("%v then %v: head %q", tc.first, tc.second, got)
		}
	}
}

func TestClientLengthMismatch(t *testing.T) {
	h := newClientHarness(t, ClientConfig{})
	x := h.begin(t, "POST", "/")
	if err := x.AddField("Content-Length", "4"); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Write([]byte("abcde")); !errors.Is(err, ErrLengthMismatch) {
		t.Fatalf("write over the length: %v", err)
	}
	if err := x.End([]byte("ab")); !errors.Is(err, ErrLengthMismatch) {
		t.Fatalf("end short of the length: %v", err)
	}
	if !h.conn.Closed || len(h.rec.closes) != 1 || !errors.Is(h.rec.closes[0], ErrLengthMismatch) {
		t.Fatalf("closed %v, closes %v", h.conn.Closed, h.rec.closes)
	}
}

func TestClientKeepAliveAndReuse(t *testing.T) {
	h := newClientHarness(t, ClientConfig{})
	h.rec.methods = []string{"GET", "HEAD", "GET"}
	h.rec.next()
	h.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	h.send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n") // HEAD: no body
	h.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n")
	if h.rec.idles != 3 || len(h.rec.msgs) != 3 || h.conn.Closed || h.c.Exchanges() != 3 {
		t.Fatalf("idles %d msgs %d closed %v exchanges %d", h.rec.idles, len(h.rec.msgs), h.conn.Closed, h.c.Exchanges())
	}
	if string(*h.rec.msgs[0].Body) != "ok" || len(*h.rec.msgs[1].Body) != 0 || string(*h.rec.msgs[2].Body) != "abc" ||
		len(h.rec.msgs[2].Trailers) != 1 {
		t.Fatalf("messages %+v", h.rec.msgs)
	}
	want := "GET / HTTP/1.1\r\nHost: example.com\r\n\r\nHEAD / HTTP/1.1\r\nHost: example.com\r\n\r\nGET / HTTP/1.1\r\nHost: example.com\r\n\r\n"
	if string(h.conn.Out) != want {
		t.Fatalf("wire %q", h.conn.Out)
	}
	for _, err := range h.rec.closes {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestClientNoReuse(t *testing.T) {
	cases := []struct {
		name  string
		field [2]string
		resp  string
		idles int
	}{
		{"response close", [2]string{"X", "y"}, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 0},
		{"request close", [2]string{"Connection", "close"}, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0},
		{"http/1.0", [2]string{"X", "y"}, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 0},
		// Idle hears of the connection, begins nothing: the stray bytes close it.
		{"stray bytes", [2]string{"X", "y"}, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newClientHarness(t, ClientConfig{})
			x := h.begin(t, "GET", "/")
			if err := x.AddField(tc.field[0], tc.field[1]); err != nil {
				t.Fatal(err)
			}
			if err := x.End(nil); err != nil {
				t.Fatal(err)
			}
			h.send(tc.resp)
			if h.rec.idles != tc.idles || !h.conn.Closed || len(h.rec.closes) != 1 || h.rec.closes[0] != nil {
				t.Fatalf("idles %d closed %v closes %v", h.rec.idles, h.conn.Closed, h.rec.closes)
			}
		})
	}
}

func TestClientResponseBeforeRequestEnds(t *testing.T) {
	h := newClientHarness(t, ClientConfig{})
	x := h.begin(t, "POST", "/")
	if _, err := x.Write([]byte("part")); err != nil {
		t.Fatal(err)
	}
	h.send("HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n")
	if h.rec.idles != 0 || !h.conn.Closed || len(h.rec.closes) != 1 || h.rec.closes[0] != nil {
		t.Fatalf("idles %d closed %v closes %v", h.rec.idles, h.conn.Closed, h.rec.closes)
	}
	if _, err := x.Write([]byte("more")); !errors.Is(err, ErrStreamDone) {
		t.Fatalf("write after the exchange: %v", err)
	}
}

func TestClientUnsolicitedWhileIdle(t *testing.T) {
	h := newClientHarness(t, ClientConfig{})
	h.send("HTTP/1.1 200 OK\r\n\r\n")
	if !h.conn.Closed || len(h.rec.closes) != 0 {
		t.Fatalf("closed %v closes %v", h.conn.Closed, h.rec.closes)
	}
}

func TestClientEOFErrors(t *testing.T) {
	cases := []struct {
		name string
		resp string
		want error
		body string
	}{
		{"nothing", "", ErrHangUp, ""},
		{"half a head", "HTTP/1.1 200 OK\r\nContent-Le", ErrHangUp, ""},
		{"short length", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", ErrTruncated, "abc"},
		{"open chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", ErrTruncated, "ab"},
		{"close-delimited", "HTTP/1.1 200 OK\r\n\r\nuntil eof", nil, "until eof"},
		{"bad head", "Bad http\r\n\r\n", codec.ErrVersion, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newClientHarness(t, ClientConfig{})
			x := h.begin(t, "GET", "/")
			if err := x.End(nil); err != nil {
				t.Fatal(err)
			}
			if tc.resp != "" {
				h.send(tc.resp)
			}
			h.eof()
			if len(h.rec.closes) != 1 || !errors.Is(h.rec.closes[0], tc.want) {
				t.Fatalf("closes %v; want [%v]", h.rec.closes, tc.want)
			}
			if tc.body != "" && string(*h.rec.cur.Body) != tc.body {
				t.Fatalf("body %q", *h.rec.cur.Body)
			}
			if !h.conn.Closed {
				t.Fatal("not closed")
			}
		})
	}
}

func TestClientInterimThenFinal(t *testing.T) {
	h := newClientHarness(t, ClientConfig{})
	x := h.begin(t, "POST", "/")
	if err := x.AddField("Expect", "100-continue"); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Write(nil); err != nil {
		t.Fatal(err)
	}
	h.send("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")
	if err := x.End([]byte("body")); err != nil {
		t.Fatal(err)
	}
	h.send("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
	got := strings.Join(h.rec.events, ",")
	if got != "information,information,response,end,close" || h.rec.idles != 1 {
		t.Fatalf("events %s idles %d", got, h.rec.idles)
	}
}

func TestClientIdleTimeout(t *testing.T) {
	h := newClientHarness(t, ClientConfig{})
	x := h.begin(t, "GET", "/")
	if err := x.End(nil); err != nil {
		t.Fatal(err)
	}
	x.SetIdleTimeout(100 * time.Millisecond)
	if h.conn.Deadline.IsZero() {
		t.Fatal("no deadline armed")
	}
	h.c.OnTimer(h.clock.advance(50 * time.Millisecond)) // early: nothing
	if h.rec.timeouts != 0 {
		t.Fatal("timeout before the deadline")
	}
	now := h.clock.advance(time.Second)
	h.c.OnTimer(now)
	h.c.OnTimer(now)
	if h.rec.timeouts != 1 || h.conn.Closed {
		t.Fatalf("timeouts %d closed %v", h.rec.timeouts, h.conn.Closed)
	}
	h.send("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab") // activity re-arms
	h.c.OnTimer(h.clock.advance(time.Second))
	if h.rec.timeouts != 2 {
		t.Fatalf("timeouts %d after a second idle period", h.rec.timeouts)
	}
	h.send("cd")
	if h.c.deadline != 0 {
		t.Fatal("deadline left armed after the response")
	}
}

func TestClientFreeTimeoutClosesIdle(t *testing.T) {
	h := newClientHarness(t, ClientConfig{})
	h.c.SetFreeTimeout(time.Second)
	x := h.begin(t, "GET", "/")
	if err := x.End(nil); err != nil {
		t.Fatal(err)
	}
	h.c.OnTimer(h.clock.advance(2 * time.Second)) // busy: the free timeout does not apply
	if h.conn.Closed {
		t.Fatal("closed while busy")
	}
	h.send("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	if h.conn.Deadline.IsZero() {
		t.Fatal("no free timeout armed")
	}
	h.c.OnTimer(h.clock.advance(2 * time.Second))
	if !h.conn.Closed {
		t.Fatal("idle connection kept past the free timeout")
	}
}

func TestClientHandlerPanic(t *testing.T) {
	h := newClientHarness(t, ClientConfig{Logger: discardLogger()})
	h.rec.onResponse = func(x *Exchange) { panic("boom") }
	x := h.begin(t, "GET", "/")
	if err := x.End(nil); err != nil {
		t.Fatal(err)
	}
	h.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	if len(h.rec.closes) != 1 || !errors.Is(h.rec.closes[0], ErrHandlerPanic) || !h.conn.Closed {
		t.Fatalf("closes %v closed %v", h.rec.closes, h.conn.Closed)
	}
}

func TestClientBackpressure(t *testing.T) {
	h := newClientHarness(t, ClientConfig{HighWater: 8})
	h.conn.HoldOutput = true
	x := h.begin(t, "POST", "/")
	ok, err := x.Write([]byte("0123456789"))
	if err != nil || ok {
		t.Fatalf("Write over the high-water mark: %v %v", ok, err)
	}
	if !h.c.WantsDrain() {
		t.Fatal("no drain wanted")
	}
	h.conn.Pending = 0
	h.c.OnDrain(h.clock.now)
	if h.rec.drains != 1 || h.c.WantsDrain() {
		t.Fatalf("drains %d", h.rec.drains)
	}
}

func TestClientPauseAndMaxUnread(t *testing.T) {
	h := newClientHarness(t, ClientConfig{MaxUnread: 16})
	h.rec.onResponse = func(x *Exchange) { x.Pause() }
	x := h.begin(t, "GET", "/")
	if err := x.End(nil); err != nil {
		t.Fatal(err)
	}
	h.send("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nabcd")
	if len(*h.rec.cur.Body) != 0 {
		t.Fatal("body delivered while paused")
	}
	x.Resume()
	h.send("efgh")
	if string(*h.rec.cur.Body) != "abcdefgh" || len(h.rec.closes) != 1 || h.rec.closes[0] != nil {
		t.Fatalf("body %q closes %v", *h.rec.cur.Body, h.rec.closes)
	}

	h = newClientHarness(t, ClientConfig{MaxUnread: 16})
	h.rec.onResponse = func(x *Exchange) { x.Pause() }
	x = h.begin(t, "GET", "/")
	if err := x.End(nil); err != nil {
		t.Fatal(err)
	}
	h.send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + strings.Repeat("x", 20))
	if len(h.rec.closes) != 1 || !errors.Is(h.rec.closes[0], ErrTooMuchUnread) || !h.conn.Closed {
		t.Fatalf("closes %v", h.rec.closes)
	}
}

func TestClientTunnel(t *testing.T) {
	h := newClientHarness(t, ClientConfig{})
	x := h.begin(t, "CONNECT", "example.com:443")
	if err := x.End(nil); err != nil {
		t.Fatal(err)
	}
	h.send("HTTP/1.1 200 Connection Established\r\n\r\nfrom server")
	if _, err := x.WriteRaw([]byte("to server")); err != nil {
		t.Fatal(err)
	}
	h.eof()
	if string(h.rec.tail) != "from server" || !strings.HasSuffix(string(h.conn.Out), "\r\n\r\nto server") {
		t.Fatalf("tail %q out %q", h.rec.tail, h.conn.Out)
	}
	if len(h.rec.closes) != 1 || h.rec.closes[0] != nil {
		t.Fatalf("closes %v", h.rec.closes)
	}
}

// nopClient is a ClientHandler that does nothing, for the allocation test.
type nopClient struct{ body int }

func (n *nopClient) Information(*Exchange, *codec.Response) {}
func (n *nopClient) Response(*Exchange, *codec.Response)    {}
func (n *nopClient) Body(_ *Exchange, b []byte)             { n.body += len(b) }
func (n *nopClient) End(*Exchange, []codec.Header)          {}
func (n *nopClient) Drain(*Exchange)                        {}
func (n *nopClient) Timeout(*Exchange)                      {}
func (n *nopClient) Close(*Exchange, error)                 {}

func TestClientKeepAliveCycleAllocs(t *testing.T) {
	cfg, _ := ClientConfig{}.Resolve()
	conn := &fakeconn.Conn{}
	c := NewClientConn(conn, &cfg, nil)
	h := &nopClient{}
	now := time.Now()
	c.Open(now)
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!")
	cycle := func() {
		x, err := c.Begin(h, "GET", "/plaintext")
		if err != nil {
			t.Fatal(err)
		}
		_ = x.AddField("Host", "localhost:8080")
		_ = x.End(nil)
		conn.Out = conn.Out[:0]
		conn.In = resp // the engine only reads and reslices its input
		c.OnData(now)
	}
	cycle()
	if n := testing.AllocsPerRun(200, cycle); n != 0 {
		t.Fatalf("%v allocations per keep-alive exchange", n)
	}
	if !c.Idle() {
		t.Fatal("connection not idle after the exchange")
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// pipeline begins a bodyless request per method on h's connection, each
// ended before the next.
func (h *clientHarness) pipeline(t *testing.T, methods ...string) []*Exchange {
	t.Helper()
	var xs []*Exchange
	for _, m := range methods {
		x := h.begin(t, m, "/"+strings.ToLower(m))
		if err := x.End(nil); err != nil {
			t.Fatal(err)
		}
		xs = append(xs, x)
	}
	return xs
}

func TestClientPipelinedInOrder(t *testing.T) {
	h := newClientHarness(t, ClientConfig{})
	h.pipeline(t, "GET", "HEAD", "GET")
	if got := string(h.conn.Out); got != "GET /get HTTP/1.1\r\n\r\nHEAD /head HTTP/1.1\r\n\r\nGET /get HTTP/1.1\r\n\r\n" {
		t.Fatalf("wire %q", got)
	}
	h.send("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na" +
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" + // HEAD: no body
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nc\r\n0\r\n\r\n")
	if len(h.rec.msgs) != 3 || string(*h.rec.msgs[0].Body) != "a" || len(*h.rec.msgs[1].Body) != 0 || string(*h.rec.msgs[2].Body) != "c" {
		t.Fatalf("messages %+v", h.rec.msgs)
	}
	if h.rec.idles != 1 || h.conn.Closed || len(h.rec.closes) != 3 {
		t.Fatalf("idles %d closed %v closes %v", h.rec.idles, h.conn.Closed, h.rec.closes)
	}
	for _, err := range h.rec.closes {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestClientPipelineRules(t *testing.T) {
	h := newClientHarness(t, ClientConfig{})
	x := h.begin(t, "POST", "/")
	if _, err := x.Write([]byte("part")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.c.Begin(h.rec, "GET", "/"); !errors.Is(err, ErrBusy) {
		t.Fatalf("Begin behind a request still being sent: %v", err)
	}
	if err := x.End(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := h.c.Begin(h.rec, "CONNECT", "example.com:443"); !errors.Is(err, ErrBusy) {
		t.Fatalf("CONNECT pipelined: %v", err)
	}
	if _, err := h.c.Begin(h.rec, "GET", "/"); err != nil {
		t.Fatalf("Begin behind a request sent whole: %v", err)
	}
}

func TestClientPipelinedCutShort(t *testing.T) {
	cases := []struct {
		name string
		resp string
		want []error
	}{
		// The server closes after the first: the others hear ErrHangUp.
		{"close after the first", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
			[]error{nil, ErrHangUp, ErrHangUp}},
		{"EOF in the second body", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab",
			[]error{nil, ErrTruncated, ErrHangUp}},
		{"bad second head", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/9.1 200 OK\r\n\r\n",
			[]error{nil, codec.ErrVersionUnsupported, ErrHangUp}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newClientHarness(t, ClientConfig{})
			xs := h.pipeline(t, "GET", "GET", "GET")
			h.send(tc.resp)
			h.eof()
			if len(h.rec.closes) != 3 {
				t.Fatalf("closes %v", h.rec.closes)
			}
			for i, err := range h.rec.closes {
				if !errors.Is(err, tc.want[i]) || (err == nil) != (tc.want[i] == nil) {
					t.Fatalf("closes %v; want %v", h.rec.closes, tc.want)
				}
			}
			for _, x := range xs {
				if x.Open() {
					t.Fatal("an exchange is still open")
				}
			}
		})
	}
}
