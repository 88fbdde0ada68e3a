package fuzz

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/engine"
	"github.com/loophttp/loophttp/internal/conformance"
	"github.com/loophttp/loophttp/internal/fakeconn"
)

// clientProbe is a ClientHandler and ClientOwner that checks the engine's
// promises to a client as they happen. mode picks its behaviour: bit 0
// pauses each response once and resumes on the next piece of input, bit 1
// pipelines every request behind the first, bit 2 panics in the third
// Body call, bit 3 makes the server half-close after its bytes (OnEOF
// without the transport's close: the engine must finish and close by
// itself), bit 4 pauses the body again after every piece of it, bit 5
// aborts the first exchange from its End.
type clientProbe struct {
	t       *testing.T
	c       *engine.ClientConn
	mode    byte
	methods []string // requests still to begin
	open    map[*engine.Exchange]uint32
	closes  int
	begun   int
	bodies  int
	ends    int
	paused  *engine.Exchange
}

func (p *clientProbe) alive(x *engine.Exchange, what string) {
	if gen, ok := p.open[x]; !ok || gen != x.Gen() {
		p.t.Fatalf("%s for an exchange that is not open", what)
	}
}

func (p *clientProbe) Information(x *engine.Exchange, r *codec.Response) {
	p.alive(x, "Information")
	if !r.Interim() {
		p.t.Fatalf("Information with status %d", r.Status)
	}
}

func (p *clientProbe) Response(x *engine.Exchange, r *codec.Response) {
	p.alive(x, "Response")
	if r.Interim() {
		p.t.Fatalf("Response with interim status %d", r.Status)
	}
	if p.mode&1 != 0 && p.paused == nil {
		x.Pause()
		p.paused = x
	}
}

func (p *clientProbe) Body(x *engine.Exchange, b []byte) {
	p.alive(x, "Body")
	if p.bodies++; p.mode&4 != 0 && p.bodies == 3 {
		panic("fuzz: a handler panics")
	}
	if p.mode&16 != 0 {
		x.Pause()
		p.paused = x
	}
}

// resume resumes the paused exchange, if it is still open, as its owner
// would later on.
func (p *clientProbe) resume() {
	x := p.paused
	p.paused = nil
	if x != nil && x.Open() {
		x.Resume()
	}
}

// holding reports whether an open exchange has paused its body.
func (p *clientProbe) holding() bool { return p.paused != nil && p.paused.Open() }

// End aborts the first exchange in mode bit 5: a close inside End, as
// when the owner's next request fails to write.
func (p *clientProbe) End(x *engine.Exchange, _ []codec.Header) {
	p.alive(x, "End")
	if p.ends++; p.mode&32 != 0 && p.ends == 1 {
		x.Abort(nil)
	}
}

func (p *clientProbe) Drain(x *engine.Exchange)   { p.alive(x, "Drain") }
func (p *clientProbe) Timeout(x *engine.Exchange) { p.alive(x, "Timeout") }

func (p *clientProbe) Close(x *engine.Exchange, err error) {
	p.alive(x, "Close")
	delete(p.open, x)
	p.closes++
	if x.Open() {
		p.t.Fatal("an exchange is still open in its Close")
	}
}

// Idle begins the requests still to send, pipelined or one at a time.
func (p *clientProbe) Idle(c *engine.ClientConn) { p.begin() }

func (p *clientProbe) begin() {
	for len(p.methods) > 0 {
		m := p.methods[0]
		x, err := p.c.Begin(p, m, "/")
		if err != nil {
			return // busy (one at a time) or closed
		}
		p.methods = p.methods[1:]
		p.begun++
		p.open[x] = x.Gen()
		if err := x.End(nil); err != nil {
			p.t.Fatalf("End: %v", err)
		}
		if p.mode&2 == 0 {
			return
		}
	}
}

// FuzzClientEngine feeds arbitrary bytes, as a hostile server's responses
// split at fuzzer-chosen points, through a ClientConn on an in-memory conn
// with a fake clock, for a few requests (GET, HEAD, POST, one at a time or
// pipelined, the bodies paused once or after every piece and resumed, a
// handler that may panic), ending with the server's close or its
// half-close. The transport reads only while the engine wants input
// (WantsInput), as poller does: a paused body is resumed before the next
// piece arrives. It checks: no panic escapes the engine; the handler
// hears only of open exchanges, and every exchange begun is closed exactly
// once by the end (EOF, timers, close); input left buffered on an open
// connection never passes MaxUnread (the limits keep a head in progress
// under it, as MaxUnread bounds a paused body); the engine wants no input
// only while a body is paused, after the EOF or once closed; after a
// half-close the engine closes the connection by itself once its paused
// bodies are resumed; the connection ends closed.
func FuzzClientEngine(f *testing.F) {
	vs, _ := conformance.Load()
	for _, v := range vs {
		if v.Side == "response" {
			f.Add(v.Input(), uint16(len(v.Raw)/2), byte(0))
		}
	}
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), uint16(10), byte(2))
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"), uint16(30), byte(1|4))
	// A half-close after whole pipelined responses, bodies paused after every piece.
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\nuntil the end"), uint16(40), byte(2|8|16))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"), uint16(5), byte(1|8))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), uint16(60), byte(2|32))
	f.Fuzz(func(t *testing.T, data []byte, cut uint16, mode byte) {
		// A hang would stall the fuzzer silently: make it a crash with the input.
		watchdog := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("hang: %q cut %d mode %d", data, cut, mode)) })
		defer watchdog.Stop()
		// Heads are bounded by the limits, bodies held while paused by
		// MaxUnread: limits small enough that a head in progress fits
		// under MaxUnread make one bound for all the input buffered.
		cfg, err := engine.ClientConfig{
			Limits:    codec.Limits{MaxStartLine: 1024, MaxFieldLine: 1024, MaxHeaderBytes: 2048},
			MaxUnread: fuzzMaxUnread,
			Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		}.Resolve()
		if err != nil {
			t.Fatal(err)
		}
		now := time.Unix(1700000000, 0)
		cfg.Now = func() time.Time { return now }
		conn := &fakeconn.Conn{}
		p := &clientProbe{t: t, mode: mode, methods: []string{"GET", "HEAD", "POST", "GET"}, open: map[*engine.Exchange]uint32{}}
		p.c = engine.NewClientConn(conn, &cfg, p)
		p.c.Open(now)
		p.c.SetFreeTimeout(time.Second)
		p.begin()
		for _, x := range exchangesOf(p) {
			x.SetIdleTimeout(500 * time.Millisecond)
		}
		eof := false
		check := func() {
			if conn.Closed {
				return
			}
			if len(conn.In) > fuzzMaxUnread {
				t.Fatalf("%d bytes buffered past MaxUnread %d", len(conn.In), fuzzMaxUnread)
			}
			if !p.c.WantsInput() && !eof && !p.holding() {
				t.Fatal("the engine wants no input with no body paused")
			}
			if eof && p.c.WantsInput() {
				t.Fatal("the engine wants input after the EOF")
			}
		}
		feed := func(b []byte) {
			if conn.Closed {
				return
			}
			if !p.c.WantsInput() {
				p.resume() // the transport waits: the owner resumes first
				check()
			}
			conn.Feed(b)
			p.c.OnData(now)
			check()
			if p.mode&1 != 0 {
				p.resume()
				check()
			}
			now = now.Add(100 * time.Millisecond)
			p.c.OnTimer(now)
			check()
		}
		k := int(cut) % (len(data) + 1)
		feed(data[:k])
		feed(data[k:])
		if mode&8 != 0 {
			halfClose(t, p, conn, now, len(data))
		} else {
			p.c.OnEOF(now)
		}
		p.c.OnClose(now)
		if !conn.Closed {
			t.Fatal("the connection did not end closed")
		}
		if len(p.open) != 0 || p.closes != p.begun {
			t.Fatalf("%d exchanges begun, %d closed, %d still open", p.begun, p.closes, len(p.open))
		}
	})
}

// halfClose delivers the server's EOF without closing the transport, as
// poller does for a half-close: once the paused bodies are resumed (each
// Resume delivers something, so at most n+1 rounds for n bytes), the
// engine must have closed the connection by itself, with every exchange
// closed.
func halfClose(t *testing.T, p *clientProbe, conn *fakeconn.Conn, now time.Time, n int) {
	p.c.OnEOF(now)
	for range n + 2 {
		if conn.Closed || !p.holding() {
			break
		}
		if p.c.WantsInput() {
			t.Fatal("the engine wants input after the EOF")
		}
		p.resume()
	}
	if !conn.Closed {
		t.Fatalf("a half-closed connection left open (held %v)", p.holding())
	}
	if len(p.open) != 0 {
		t.Fatalf("%d exchanges open after the half-close", len(p.open))
	}
}

func exchangesOf(p *clientProbe) []*engine.Exchange {
	xs := make([]*engine.Exchange, 0, len(p.open))
	for x := range p.open {
		xs = append(xs, x)
	}
	return xs
}
