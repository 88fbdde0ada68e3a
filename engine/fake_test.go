package engine

import (
	"bytes"
	"testing"
	"time"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/internal/conformance"
	"github.com/loophttp/loophttp/internal/fakeconn"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct{ now time.Time }

func (c *fakeClock) advance(d time.Duration) time.Time {
	c.now = c.now.Add(d)
	return c.now
}

// recorder is a Handler that records what reaches it and, by default,
// answers each request with "ok" once its body has ended.
type recorder struct {
	t        testing.TB
	msgs     []conformance.Message
	cur      conformance.Message
	closes   []error
	requests int
	// onRequest, onEnd replace the default behaviour when set; onBody
	// runs after a chunk is recorded.
	onRequest func(s *Stream, req *codec.Request)
	onBody    func(s *Stream, chunk []byte)
	onEnd     func(s *Stream)
	onDrain   func(s *Stream)
	onClose   func(s *Stream, err error)
	drains    int
}

func (r *recorder) Request(s *Stream, req *codec.Request) {
	r.requests++
	r.cur = conformance.Message{
		Method:  octets(req.Method),
		Target:  octets(req.Target),
		Version: octets(req.Proto),
		Body:    octets(nil),
	}
	r.cur.Headers = []conformance.Field{}
	for _, h := range req.Headers {
		r.cur.Headers = append(r.cur.Headers, conformance.Field{bytes.Clone(h.Name), bytes.Clone(h.Value)})
	}
	ka := req.KeepAlive
	r.cur.KeepAlive = &ka
	if r.onRequest != nil {
		r.onRequest(s, req)
	}
}

func (r *recorder) Body(s *Stream, chunk []byte) {
	*r.cur.Body = append(*r.cur.Body, chunk...)
	if r.onBody != nil {
		r.onBody(s, chunk)
	}
}

func (r *recorder) End(s *Stream, trailers []codec.Header) {
	for _, h := range trailers {
		r.cur.Trailers = append(r.cur.Trailers, conformance.Field{bytes.Clone(h.Name), bytes.Clone(h.Value)})
	}
	r.msgs = append(r.msgs, r.cur)
	if r.onEnd != nil {
		r.onEnd(s)
		return
	}
	if !s.Ended() {
		if err := s.End([]byte("ok")); err != nil {
			r.t.Errorf("End: %v", err)
		}
	}
}

func (r *recorder) Drain(s *Stream) {
	r.drains++
	if r.onDrain != nil {
		r.onDrain(s)
	}
}
func (r *recorder) Close(s *Stream, err error) {
	r.closes = append(r.closes, err)
	if r.onClose != nil {
		r.onClose(s, err)
	}
}

func octets(b []byte) *conformance.Octets {
	o := conformance.Octets(bytes.Clone(b))
	if o == nil {
		o = conformance.Octets{}
	}
	return &o
}

// harness ties a ServerConn to a fake conn, clock and recorder.
type harness struct {
	t     testing.TB
	conn  *fakeconn.Conn
	clock *fakeClock
	rec   *recorder
	sc    *ServerConn
}

func newHarness(t testing.TB, cfg Config) *harness {
	t.Helper()
	rc, err := cfg.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, conn: &fakeconn.Conn{}, clock: &fakeClock{now: time.Unix(1700000000, 0)}, rec: &recorder{t: t}}
	loop := NewLoop(&rc, nil)
	h.sc = loop.NewServerConn(h.conn, h.rec)
	h.sc.Open(h.clock.now)
	return h
}

// send delivers p as newly arrived input.
func (h *harness) send(p string) {
	if h.conn.Closed {
		return
	}
	h.conn.Feed([]byte(p))
	h.sc.OnData(h.clock.now)
}

// eof reports the peer's half-close.
func (h *harness) eof() {
	if !h.conn.Closed {
		h.sc.OnEOF(h.clock.now)
	}
}

// fire advances the clock to the armed deadline and fires the timer.
func (h *harness) fire() {
	h.t.Helper()
	if h.conn.Deadline.IsZero() {
		h.t.Fatal("no timer armed")
	}
	h.clock.now = h.conn.Deadline
	h.sc.OnTimer(h.clock.now)
}

// responses parses the output as responses to the recorded requests; it
// fails the test on output that does not parse.
func (h *harness) responses() []conformance.Reply {
	h.t.Helper()
	rs, err := conformance.ParseReplies(h.conn.Out, h.methods())
	if err != nil {
		h.t.Fatal(err)
	}
	return rs
}

// methods returns the methods of the requests that reached the handler.
func (h *harness) methods() []string {
	var ms []string
	for _, m := range h.rec.msgs {
		ms = append(ms, string(*m.Method))
	}
	return ms
}
