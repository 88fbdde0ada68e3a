package poller

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/loophttp/loophttp/engine"
)

// plainAnswer is what a TLS server answers a plain HTTP request with, as
// Go's net/http does: a client pointed at the wrong scheme learns why.
const plainAnswer = "HTTP/1.1 400 Bad Request\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Connection: close\r\n" +
	"Content-Length: 48\r\n" +
	"\r\n" +
	"Client sent an HTTP request to an HTTPS server.\n"

// reject answers a plain HTTP request on a TLS port and closes in stages,
// as the engine closes after a protocol error (RFC 9112 §9.6): the answer
// goes out, the write side is shut, and the input is read and dropped
// until the peer closes, CloseDrainTimeout passes with no input, or
// LingerTime has passed. Loop only, in the hello state (the engine has
// seen nothing; it hears the close when it comes).
func (t *tlsLayer) reject(now time.Time) {
	c := t.c
	t.state = tlsRejected
	t.mu.Lock()
	t.in = nil
	t.mu.Unlock()
	c.loop.stats.tlsPlain++
	c.loop.cout = append(c.loop.cout, plainAnswer...)
	c.Flush()
	if !c.isOpen() {
		return
	}
	if c.pend != nil {
		c.shutdownAfter = true
	} else {
		_ = unix.Shutdown(c.gc.Fd(), unix.SHUT_WR)
	}
	linger := c.loop.srv.cfg.Engine.LingerTime
	if linger == engine.Disabled {
		linger = engine.DefaultLingerTime // the stand-in for "no bound": the close must come
	}
	t.lingerEnd = now.Add(linger)
	t.lingerMore(now)
}

// lingerMore moves a rejected connection's close to CloseDrainTimeout from
// now (its last input), LingerTime after the answer at the latest.
func (t *tlsLayer) lingerMore(now time.Time) {
	d := t.lingerEnd
	if drain := t.c.loop.srv.cfg.Engine.CloseDrainTimeout; drain != engine.Disabled && now.Add(drain).Before(d) {
		d = now.Add(drain)
	}
	if d.After(t.lingerEnd) {
		d = t.lingerEnd
	}
	t.deadline = d
	t.c.loop.wheel.arm(&t.c.timer, d)
}
