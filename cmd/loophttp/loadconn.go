package main

import (
	"context"
	"errors"
	"syscall"
	"time"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/engine"
	"github.com/loophttp/loophttp/poller"
)

// errKind is a kind of failure load counts.
type errKind uint8

const (
	errConnect   errKind = iota // the connect failed (refused, unreachable, DNS)
	errReset                    // the server reset the connection (or the write side broke)
	errClosed                   // the connection closed before a response, without a reset
	errTruncated                // the connection closed inside a response body
	errTimeout                  // nothing read or written for -timeout
	errProtocol                 // the response broke HTTP/1.1
	errOther
	numErrKinds
)

var errKindNames = [numErrKinds]string{"connect", "reset", "closed", "truncated", "timeout", "protocol", "other"}

func (k errKind) String() string { return errKindNames[k] }

// errRequestTimeout aborts a request that saw no data for -timeout.
var errRequestTimeout = errors.New("no data for the request timeout")

// classify returns the kind of the failure of a connection: failure is
// what its first failed exchange closed with, closeErr the socket's error
// (poller.Conn.CloseErr).
func classify(failure, closeErr error) errKind {
	var ce codec.Error
	switch {
	case errors.Is(failure, errRequestTimeout):
		return errTimeout
	case errors.Is(closeErr, syscall.ECONNRESET), errors.Is(closeErr, syscall.EPIPE),
		errors.Is(failure, syscall.ECONNRESET), errors.Is(failure, syscall.EPIPE):
		return errReset
	case errors.Is(failure, engine.ErrHangUp):
		return errClosed
	case errors.Is(failure, engine.ErrTruncated):
		return errTruncated
	case errors.As(failure, &ce):
		return errProtocol
	}
	return errOther
}

// redialDelay is how long a connection slot waits after a failed connect
// before it tries again.
const redialDelay = 50 * time.Millisecond

// loader drives one connection slot of a run: a connection that keeps
// depth requests in flight (pipelined after the first) and, when it
// closes or fails, a new one in its place, until the run stops.
//
// Its fields belong to the loop of its current connection. Between
// connections (a dial or a redial delay in progress) they belong to the
// dial's goroutine or the delay's timer; each hands over to the next with
// a happens-before edge (a goroutine start, gnet's task queue).
type loader struct {
	r  *loadRun
	pc *poller.Conn // the current connection; nil between connections

	sent      []int64 // when each request in flight was sent (or, with -R, meant to be), oldest first
	next      int64   // -R: when the next request is meant to go out (UnixNano)
	status    int     // the status of the response being read
	respBytes int64   // its head and body bytes so far
	failure   error   // the first failure of the current connection
	closing   bool    // the server said the connection ends after this response
	paced     bool    // -R: a timer will call fill
	finished  bool    // the loader's part of the run is over (done was called)
}

// The engine.ClientHandler methods. All run on the connection's loop.

func (l *loader) Information(*engine.Exchange, *codec.Response) {}
func (l *loader) Drain(*engine.Exchange)                        {}

// Response notes the status and head size of a response, and whether the
// connection closes after it (Connection: close from either side,
// HTTP/1.0).
func (l *loader) Response(_ *engine.Exchange, resp *codec.Response) {
	l.status = resp.Status
	l.respBytes = headSize(resp)
	if !resp.KeepAlive || l.r.cfg.closeEach {
		l.closing = true
	}
}

// Body counts the body's bytes.
func (l *loader) Body(_ *engine.Exchange, chunk []byte) { l.respBytes += int64(len(chunk)) }

// End records the response and, when pipelining, sends the next request
// at once.
func (l *loader) End(x *engine.Exchange, _ []codec.Header) {
	now := time.Now().UnixNano()
	if len(l.sent) > 0 {
		l.r.hist.record(time.Duration(now - l.sent[0]))
		l.sent = l.sent[:copy(l.sent, l.sent[1:])]
		l.r.inFlight.Add(-1)
	}
	l.r.recordResponse(l.status, l.respBytes, now)
	switch {
	case l.r.stop.Load():
		l.finishWhenIdle()
	case l.r.cfg.depth > 1 && !l.closing:
		l.fill()
	}
}

// Timeout ends a request that saw no data for -timeout: the connection is
// closed, and counted once as a timeout.
func (l *loader) Timeout(x *engine.Exchange) { x.Conn().CloseWith(errRequestTimeout) }

// Close keeps the connection's first failure. The requests left in flight
// after a response that closed the connection hear ErrHangUp: they were
// never answered, and are not a failure of the server.
func (l *loader) Close(_ *engine.Exchange, err error) {
	if err == nil || l.failure != nil || l.closing && errors.Is(err, engine.ErrHangUp) {
		return
	}
	l.failure = err
}

// Idle sends the next requests on a kept connection.
func (l *loader) Idle(*engine.ClientConn) { l.fill() }

// fill begins requests until depth are in flight; with -R, only those
// whose time has come, and it sets a timer for the next. Once the run is
// over it sends nothing and finishes when the last response is in.
func (l *loader) fill() {
	if l.finished || l.pc == nil {
		return
	}
	r := l.r
	if r.stop.Load() {
		l.finishWhenIdle()
		return
	}
	c := l.pc.Client()
	for len(l.sent) < r.cfg.depth && !l.closing {
		now := time.Now().UnixNano()
		stamp := now
		if r.interval > 0 {
			if l.next > now {
				l.pace(time.Duration(l.next - now))
				return
			}
			// wrk2's correction for coordinated omission: a request sent
			// late is timed from when it was meant to go out.
			stamp = l.next
			l.next += r.interval
		}
		if !l.send(c, stamp) {
			return
		}
	}
}

// send begins one request stamped with its send time; it reports false
// when the connection cannot take it (busy or closing: Idle, End or the
// close carry on from there).
func (l *loader) send(c *engine.ClientConn, stamp int64) bool {
	cfg := l.r.cfg
	x, err := c.Begin(l, cfg.method, cfg.target.path)
	if err != nil {
		return false
	}
	if !cfg.hostSet {
		_ = x.AddField("Host", cfg.target.host)
	}
	for _, h := range cfg.headers {
		_ = x.AddField(h.name, h.value) // validated with the flags
	}
	x.SetIdleTimeout(cfg.timeout)
	l.sent = append(l.sent, stamp)
	if err := x.End(cfg.body); err != nil {
		l.sent = l.sent[:len(l.sent)-1] // not sent; the close counts the failure
		return false
	}
	l.r.inFlight.Add(1)
	return true
}

// pace arranges for fill to run again after d, on the connection's loop.
func (l *loader) pace(d time.Duration) {
	if l.paced {
		return
	}
	l.paced = true
	pc, gen := l.pc, l.pc.Gen()
	time.AfterFunc(d, func() {
		_ = pc.Submit(gen, func() { // dropped when the connection is gone: attach restarts
			l.paced = false
			l.fill()
		})
	})
}

// finishWhenIdle finishes once no request is in flight.
func (l *loader) finishWhenIdle() {
	if len(l.sent) == 0 {
		l.finish()
	}
}

// finish reports the loader's part of the run over, once.
func (l *loader) finish() {
	if !l.finished {
		l.finished = true
		l.r.active.Done()
	}
}

// attach takes a new connection and starts sending on it.
func (l *loader) attach(pc *poller.Conn) {
	pc.Data = l
	l.pc, l.paced, l.closing, l.failure = pc, false, false, nil
	l.sent = l.sent[:0]
	if l.r.stop.Load() {
		pc.Client().Close()
		return
	}
	l.fill()
}

// lost handles the close of the current connection: its failure, if any,
// is counted once, whatever the number of requests it took with it; then
// a new connection takes its place.
func (l *loader) lost(pc *poller.Conn) {
	if l.failure != nil {
		l.r.countError(classify(l.failure, pc.CloseErr()))
	}
	l.pc, l.failure, l.closing = nil, nil, false
	l.r.inFlight.Add(-int64(len(l.sent))) // never answered
	l.sent = l.sent[:0]
	if l.r.stop.Load() {
		l.finish()
		return
	}
	l.r.dial(l)
}

// dial connects the loader; the connection is attached on its loop. A
// failed connect is counted and tried again after redialDelay.
func (r *loadRun) dial(l *loader) {
	r.cl.DialTLS(context.Background(), r.cfg.target.addr, r.cfg.tls, l, func(pc *poller.Conn, err error) {
		if err == nil {
			l.attach(pc)
			return
		}
		if r.stop.Load() {
			l.finish()
			return
		}
		r.countError(errConnect)
		time.AfterFunc(redialDelay, func() {
			if r.stop.Load() {
				l.finish()
				return
			}
			r.dial(l)
		})
	})
}

// Closed is the poller.ClientHooks method: a connection of the run has
// closed. It runs on the connection's loop.
func (r *loadRun) Closed(pc *poller.Conn) {
	if l, ok := pc.Data.(*loader); ok {
		pc.Data = nil
		l.lost(pc)
	}
}

// headSize is the size of a response head as a server formats it
// ("Name: value" lines); extra whitespace a server sends is not counted.
func headSize(resp *codec.Response) int64 {
	n := len(resp.Proto) + len(" 200 ") + len(resp.Reason) + 2
	for _, h := range resp.Headers {
		n += len(h.Name) + 2 + len(h.Value) + 2
	}
	return int64(n + 2)
}
