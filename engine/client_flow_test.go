package engine

import (
	"errors"
	"strings"
	"testing"
)

// Flow control and bounds of the client connection: interim responses,
// WantsInput (the transport's read pause), and the server's half-close.

func TestClientInterimBound(t *testing.T) {
	cont := "HTTP/1.1 100 Continue\r\n\r\n"
	final := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	cases := []struct {
		name    string
		max     int
		interim int
		wantErr error
	}{
		{"default, at the bound", 0, DefaultMaxInterim, nil},
		{"default, one past", 0, DefaultMaxInterim + 1, ErrTooManyInterim},
		{"endless", 0, 10000, ErrTooManyInterim},
		{"configured, at the bound", 2, 2, nil},
		{"configured, one past", 2, 3, ErrTooManyInterim},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newClientHarness(t, ClientConfig{MaxInterim: tc.max})
			h.rec.methods = []string{"GET", "GET"}
			h.rec.next()
			h.send(strings.Repeat(cont, tc.interim) + final)
			limit := tc.max
			if limit == 0 {
				limit = DefaultMaxInterim
			}
			infos := strings.Count(strings.Join(h.rec.events, ","), "information")
			if infos != min(tc.interim, limit) {
				t.Fatalf("%d Information calls; want %d", infos, min(tc.interim, limit))
			}
			if len(h.rec.closes) == 0 || !errors.Is(h.rec.closes[0], tc.wantErr) || (h.rec.closes[0] == nil) != (tc.wantErr == nil) {
				t.Fatalf("closes %v; want [%v]", h.rec.closes, tc.wantErr)
			}
			if tc.wantErr != nil {
				if !h.conn.Closed || len(h.rec.msgs) != limit {
					t.Fatalf("closed %v, %d messages", h.conn.Closed, len(h.rec.msgs))
				}
				return
			}
			// The count is per exchange: the next one may take as many.
			h.send(strings.Repeat(cont, tc.interim) + final)
			if len(h.rec.closes) != 2 || h.rec.closes[1] != nil || h.conn.Closed {
				t.Fatalf("second exchange: closes %v closed %v", h.rec.closes, h.conn.Closed)
			}
		})
	}
	if _, err := (ClientConfig{MaxInterim: -1}).Resolve(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("negative MaxInterim: %v", err)
	}
}

func TestClientWantsInput(t *testing.T) {
	h := newClientHarness(t, ClientConfig{})
	if !h.c.WantsInput() {
		t.Fatal("a new idle connection wants no input: a server's close would go unnoticed")
	}
	var x *Exchange
	h.rec.onResponse = func(x *Exchange) { x.Pause() }
	x = h.begin(t, "GET", "/")
	if err := x.End(nil); err != nil {
		t.Fatal(err)
	}
	x.Pause() // before the head: the head is still read
	if !h.c.WantsInput() {
		t.Fatal("no input wanted while waiting for the head")
	}
	h.send("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nab")
	if h.c.WantsInput() {
		t.Fatal("input wanted while the body is paused")
	}
	if len(*h.rec.cur.Body) != 0 || len(h.conn.In) != 2 {
		t.Fatalf("body %q delivered, %d bytes held", *h.rec.cur.Body, len(h.conn.In))
	}
	x.Resume()
	if !h.c.WantsInput() || string(*h.rec.cur.Body) != "ab" {
		t.Fatalf("after Resume: wants input %v, body %q", h.c.WantsInput(), *h.rec.cur.Body)
	}
	h.send("cdef")
	if !h.c.WantsInput() || !h.c.Idle() {
		t.Fatal("an idle connection after the exchange wants no input")
	}
	h.c.Close()
	if h.c.WantsInput() {
		t.Fatal("a closed connection wants input")
	}
}

func TestClientWantsInputTunnel(t *testing.T) {
	h := newClientHarness(t, ClientConfig{})
	h.rec.onResponse = func(x *Exchange) { x.Pause() }
	x := h.begin(t, "CONNECT", "example.com:443")
	if err := x.End(nil); err != nil {
		t.Fatal(err)
	}
	h.send("HTTP/1.1 200 Connection Established\r\n\r\nbytes")
	if h.c.WantsInput() || len(h.rec.tail) != 0 {
		t.Fatalf("paused tunnel: wants input %v, delivered %q", h.c.WantsInput(), h.rec.tail)
	}
	x.Resume()
	if !h.c.WantsInput() || string(h.rec.tail) != "bytes" {
		t.Fatalf("resumed tunnel: wants input %v, delivered %q", h.c.WantsInput(), h.rec.tail)
	}
}

// TestClientHalfClose: a server that closes its side after its responses
// (OnEOF without OnClose: the transport keeps the connection for the
// engine) has them all read, pipelined ones included; the connection is
// not offered again and the engine closes it.
func TestClientHalfClose(t *testing.T) {
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	cases := []struct {
		name    string
		methods int
		input   string
		want    []error
	}{
		{"one response", 1, resp, []error{nil}},
		{"pipelined, all answered", 3, resp + resp + resp, []error{nil, nil, nil}},
		{"pipelined, one unanswered", 2, resp, []error{nil, ErrHangUp}},
		{"pipelined, the last cut", 2, resp + resp[:len(resp)-1], []error{nil, ErrTruncated}},
		{"close-delimited", 1, "HTTP/1.1 200 OK\r\n\r\nto the end", []error{nil}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newClientHarness(t, ClientConfig{})
			h.pipeline(t, strings.Split(strings.Repeat("GET ", tc.methods), " ")[:tc.methods]...)
			h.conn.Feed([]byte(tc.input))
			h.c.OnEOF(h.clock.now)
			checkCloses(t, h, tc.want)
			if h.rec.idles != 0 {
				t.Fatalf("offered for reuse %d times after the server's EOF", h.rec.idles)
			}
		})
	}
}

// TestClientHalfClosePaused: a paused body keeps what is buffered across
// the server's EOF; Resume delivers it and ends the exchange as the EOF
// says.
func TestClientHalfClosePaused(t *testing.T) {
	cases := []struct {
		name  string
		input string
		held  bool   // the exchange waits for Resume
		body  string // delivered in the end
		want  error
	}{
		{"whole length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", true, "hello", nil},
		{"whole chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", true, "hello", nil},
		{"close-delimited", "HTTP/1.1 200 OK\r\n\r\nhello", true, "hello", nil},
		{"close-delimited, nothing buffered", "HTTP/1.1 200 OK\r\n\r\n", true, "", nil},
		{"cut length", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhello", true, "hello", ErrTruncated},
		// Nothing to deliver and nothing the EOF completes: it ends at once.
		{"cut length, nothing buffered", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", false, "", ErrTruncated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newClientHarness(t, ClientConfig{})
			h.rec.onResponse = func(x *Exchange) { x.Pause() }
			xs := h.pipeline(t, "GET")
			h.conn.Feed([]byte(tc.input))
			h.c.OnEOF(h.clock.now)
			if held := len(h.rec.closes) == 0; held != tc.held {
				t.Fatalf("held %v; want %v (closes %v)", held, tc.held, h.rec.closes)
			}
			if tc.held {
				if h.conn.Closed || h.c.WantsInput() || len(*h.rec.cur.Body) != 0 {
					t.Fatalf("while held: closed %v, wants input %v, body %q", h.conn.Closed, h.c.WantsInput(), *h.rec.cur.Body)
				}
				xs[0].Resume()
			}
			checkCloses(t, h, []error{tc.want})
			if string(*h.rec.cur.Body) != tc.body {
				t.Fatalf("body %q; want %q", *h.rec.cur.Body, tc.body)
			}
		})
	}
}

// checkCloses checks that the exchanges closed with want, in order, and
// that the connection is closed and refuses more.
func checkCloses(t *testing.T, h *clientHarness, want []error) {
	t.Helper()
	if len(h.rec.closes) != len(want) {
		t.Fatalf("closes %v; want %v", h.rec.closes, want)
	}
	for i, err := range h.rec.closes {
		if !errors.Is(err, want[i]) || (err == nil) != (want[i] == nil) {
			t.Fatalf("closes %v; want %v", h.rec.closes, want)
		}
	}
	if !h.conn.Closed || h.c.Idle() || h.c.WantsInput() {
		t.Fatalf("closed %v, idle %v, wants input %v", h.conn.Closed, h.c.Idle(), h.c.WantsInput())
	}
	if _, err := h.c.Begin(h.rec, "GET", "/"); !errors.Is(err, ErrBusy) {
		t.Fatalf("Begin after the server's EOF: %v", err)
	}
}
