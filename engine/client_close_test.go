package engine

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/internal/fakeconn"
)

// closingConn is a fake transport whose next Flush fails the way a write
// to a reset socket does under poller: the transport closes the connection
// at once, inside the Flush, and tells the engine (OnEOF, then OnClose)
// before Flush returns.
type closingConn struct {
	*fakeconn.Conn
	c        *ClientConn
	failNext bool
	eofOnly  bool // report the EOF only, leaving the close to the engine
}

func (f *closingConn) Flush() {
	f.Conn.Flush()
	if !f.failNext {
		return
	}
	f.failNext = false
	now := time.Unix(1700000000, 0)
	if f.eofOnly {
		f.c.OnEOF(now)
		return
	}
	f.Conn.Closed = true // the socket is gone: a later write would be a bug
	if !f.c.Closed() {
		f.c.OnEOF(now)
	}
	f.c.OnClose(now)
}

// pipeliner is a ClientHandler that, like `loophttp load -pipeline n`,
// sends the next request from the End of each response. It records every
// Close.
type pipeliner struct {
	t      *testing.T
	c      *ClientConn
	conn   *closingConn
	xs     []*Exchange // exchanges are reused: gens tells them apart
	gens   []uint32
	closes map[uint32]error // by Gen
	order  []uint32
	ends   int
	// onEnd runs in End before the next request is sent; it returns
	// false to send none.
	onEnd func(x *Exchange) bool
}

func (p *pipeliner) Information(*Exchange, *codec.Response) {}
func (p *pipeliner) Response(*Exchange, *codec.Response)    {}
func (p *pipeliner) Body(*Exchange, []byte)                 {}
func (p *pipeliner) Drain(*Exchange)                        {}
func (p *pipeliner) Timeout(*Exchange)                      {}

func (p *pipeliner) End(x *Exchange, _ []codec.Header) {
	p.ends++
	if p.onEnd != nil && !p.onEnd(x) {
		return
	}
	p.send()
}

func (p *pipeliner) Close(x *Exchange, err error) {
	if _, dup := p.closes[x.Gen()]; dup {
		p.t.Errorf("exchange %d closed twice", x.Gen())
	}
	p.closes[x.Gen()] = err
	p.order = append(p.order, x.Gen())
}

// send begins and ends one GET; it reports whether the engine took it.
func (p *pipeliner) send() bool {
	x, err := p.c.Begin(p, "GET", "/")
	if err != nil {
		return false
	}
	p.xs, p.gens = append(p.xs, x), append(p.gens, x.Gen())
	if err := x.End(nil); err != nil {
		p.t.Errorf("End: %v", err)
	}
	return true
}

func newPipeliner(t *testing.T) *pipeliner {
	cfg, err := ClientConfig{Logger: discardLogger()}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	p := &pipeliner{t: t, closes: map[uint32]error{}}
	p.conn = &closingConn{Conn: &fakeconn.Conn{}}
	p.c = NewClientConn(p.conn, &cfg, nil)
	p.conn.c = p.c
	p.c.Open(time.Unix(1700000000, 0))
	return p
}

// TestClientCloseInsideEnd: `loophttp load -pipeline 4` against a server
// that resets pipelined connections panicked in finish (slice bounds out
// of range [1:0]): End's handler sent the next request, the transport
// failed to write it and closed the connection inside End, emptying the
// queue before finish. The connection closes cleanly instead: the
// exchange whose response was complete hears nil, the others ErrHangUp,
// each exactly once; nothing more is sent.
func TestClientCloseInsideEnd(t *testing.T) {
	responses := map[string]string{
		"content-length": "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"chunked":        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
		"no body":        "HTTP/1.1 204 No Content\r\n\r\n",
	}
	for name, resp := range responses {
		t.Run(name, func(t *testing.T) {
			p := newPipeliner(t)
			for range 4 {
				if !p.send() {
					t.Fatal("Begin refused")
				}
			}
			p.conn.failNext = true // the next request's write finds the socket reset
			p.conn.Feed([]byte(resp))
			p.c.OnData(time.Unix(1700000000, 0))
			checkClosedOnce(t, p, 5) // the four, and the one End sent
			if err := p.closes[p.gens[0]]; err != nil {
				t.Errorf("the complete response's exchange closed with %v; want nil", err)
			}
			for _, gen := range p.gens[1:] {
				if err := p.closes[gen]; !errors.Is(err, ErrHangUp) {
					t.Errorf("exchange %d closed with %v; want ErrHangUp", gen, err)
				}
			}
		})
	}
}

// TestClientEOFInsideEnd: a transport that reports the server's EOF from
// inside End, without closing, leaves the engine to settle it when the
// input has been read: the complete exchange hears nil, the ones behind
// it ErrHangUp, and the engine closes the connection.
func TestClientEOFInsideEnd(t *testing.T) {
	p := newPipeliner(t)
	p.send()
	p.send()
	p.conn.failNext, p.conn.eofOnly = true, true
	p.conn.Feed([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	p.c.OnData(time.Unix(1700000000, 0))
	checkClosedOnce(t, p, 3) // the two, and the one End sent
	if err := p.closes[p.gens[0]]; err != nil {
		t.Errorf("the complete response's exchange closed with %v; want nil", err)
	}
	for _, gen := range p.gens[1:] {
		if err := p.closes[gen]; !errors.Is(err, ErrHangUp) {
			t.Errorf("exchange %d closed with %v; want ErrHangUp", gen, err)
		}
	}
}

// TestClientCloseInsideEndAtEOF is the same for a close-delimited body,
// which ends at the server's EOF: its End closes the connection.
func TestClientCloseInsideEndAtEOF(t *testing.T) {
	p := newPipeliner(t)
	p.onEnd = func(x *Exchange) bool {
		x.Abort(errors.New("owner gives up"))
		return false
	}
	p.send()
	p.conn.Feed([]byte("HTTP/1.1 200 OK\r\n\r\nuntil eof"))
	now := time.Unix(1700000000, 0)
	p.c.OnData(now)
	p.c.OnEOF(now)
	p.c.OnClose(now)
	checkClosedOnce(t, p, 1)
	if err := p.closes[p.gens[0]]; err == nil || err.Error() != "owner gives up" {
		t.Fatalf("closed with %v; want the owner's error", err)
	}
}

// TestClientAbortInsideEnd: an owner that aborts from End (also a close
// inside End) ends its exchange with its error and the pipelined ones
// with ErrHangUp.
func TestClientAbortInsideEnd(t *testing.T) {
	p := newPipeliner(t)
	mine := errors.New("mine")
	p.onEnd = func(x *Exchange) bool { x.Abort(mine); return false }
	p.send()
	p.send()
	p.conn.Feed([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"))
	p.c.OnData(time.Unix(1700000000, 0))
	checkClosedOnce(t, p, 2)
	if !errors.Is(p.closes[p.gens[0]], mine) || !errors.Is(p.closes[p.gens[1]], ErrHangUp) {
		t.Fatalf("closes %v, %v", p.closes[p.gens[0]], p.closes[p.gens[1]])
	}
}

// checkClosedOnce checks that n exchanges were begun, each closed exactly
// once, none is open, the connection is closed and its queue empty.
func checkClosedOnce(t *testing.T, p *pipeliner, n int) {
	t.Helper()
	if len(p.xs) != n || len(p.order) != n || len(p.closes) != n {
		t.Fatalf("%d exchanges begun, %d Close calls for %d of them; want %d", len(p.xs), len(p.order), len(p.closes), n)
	}
	for _, x := range p.xs {
		if x.Open() {
			t.Errorf("exchange %d still open", x.Gen())
		}
	}
	for _, gen := range p.gens {
		if _, ok := p.closes[gen]; !ok {
			t.Errorf("exchange %d never closed", gen)
		}
	}
	if !p.c.Closed() || !p.conn.Closed || len(p.c.q) != 0 || p.c.busy {
		t.Errorf("closed %v (transport %v), %d in the queue, busy %v", p.c.Closed(), p.conn.Closed, len(p.c.q), p.c.busy)
	}
	if _, err := p.c.Begin(p, "GET", "/"); !errors.Is(err, ErrBusy) {
		t.Errorf("Begin on the closed connection: %v", err)
	}
}

// TestClientPipelinedResetEveryPoint: the server resets a connection with
// four requests in flight after each possible number of whole responses,
// the owner sending the next request from every End as load does; every
// exchange closes once, the complete ones with nil.
func TestClientPipelinedResetEveryPoint(t *testing.T) {
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
	for whole := 0; whole <= 3; whole++ {
		for _, failAt := range []int{1, 2, 3} {
			t.Run(fmt.Sprintf("%d whole, write fails at End %d", whole, failAt), func(t *testing.T) {
				p := newPipeliner(t)
				p.onEnd = func(x *Exchange) bool {
					p.conn.failNext = p.ends == failAt
					return true
				}
				for range 4 {
					p.send()
				}
				p.conn.Feed([]byte(strings.Repeat(resp, whole)))
				now := time.Unix(1700000000, 0)
				p.c.OnData(now)
				if !p.c.Closed() {
					p.c.OnEOF(now)
					p.c.OnClose(now)
				}
				checkClosedOnce(t, p, len(p.xs))
				complete := min(whole, failAt)
				for i, gen := range p.gens {
					if err := p.closes[gen]; (err == nil) != (i < complete) {
						t.Errorf("exchange %d of %d closed with %v (%d complete)", i, len(p.xs), err, complete)
					}
				}
			})
		}
	}
}
