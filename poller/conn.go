package poller

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/loophttp/loophttp/engine"
)

// ErrConnGone reports a call for a connection that has closed, or whose
// state has since been reused for another connection.
var ErrConnGone = engine.NewError(engine.ErrClosed, "poller: connection closed")

// Conn is loophttp's state for one gnet connection: it implements
// engine.Conn over it and owns the connection's state machine (a
// ServerConn on a Server's loops, a ClientConn on a Client's). Conns are
// pooled per loop and reused; their generation tells their lives apart.
//
// Every idle keep-alive connection holds one, so it is kept to 112 bytes
// (a test pins it): what is the loop's (the event loop, the error of the
// close in progress) stays on the loop.
//
// Fields are owned by the connection's loop, except life, which Submit
// reads from any goroutine, and loop, which never changes.
type Conn struct {
	gc    gnet.Conn
	loop  *loop              // set once: Conns are pooled per loop
	sc    *engine.ServerConn // server connections
	cc    *engine.ClientConn // client connections
	pend  *pending           // output the kernel has not taken; nil when none
	tls   *tlsLayer          // a TLS connection's layer (tls.go); nil for plain TCP
	timer timer

	// life is the generation shifted left by one, with the low bit set
	// while the connection is open: Submit checks both with one load.
	life atomic.Uint32

	paused        bool // reading is off (interest.go)
	armed         bool // the watcher will call onWritable
	shutdownAfter bool // shut the write side once the pending output has gone
	closing       bool // Close was called: gnet closes it in a task, and its input is no longer read

	// Data belongs to the layer above (its per-connection state). Loop only.
	Data any
}

// CloseErr returns the error the connection closed with: nil when the
// server closed it, io.EOF-wrapping when the peer did, else the socket
// error. Valid in Hooks.Closed (and ClientHooks.Closed), and while the
// engine hears of a close the TLS layer made for a peer's alert or bad
// record (crypto/tls's error then).
func (c *Conn) CloseErr() error { return c.loop.closeErr }

// machine is what a Conn drives: engine.ServerConn or engine.ClientConn.
type machine interface {
	OnData(now time.Time)
	OnEOF(now time.Time)
	OnTimer(now time.Time)
	OnDrain(now time.Time)
	OnClose(now time.Time)
	WantsDrain() bool
	WantsInput() bool
	Closed() bool
	SetNow(now time.Time)
}

// m returns the connection's state machine. Conns are pooled per loop and
// a loop serves one side, so exactly one of sc and cc is set.
func (c *Conn) m() machine {
	if c.sc != nil {
		return c.sc
	}
	return c.cc
}

// Engine returns a server connection's state machine (nil on a client's).
// Loop only.
func (c *Conn) Engine() *engine.ServerConn { return c.sc }

// Client returns a client connection's state machine (nil on a server's).
// Loop only.
func (c *Conn) Client() *engine.ClientConn { return c.cc }

// Gen returns the generation of the connection this Conn currently holds.
// Safe from any goroutine.
func (c *Conn) Gen() uint32 { return c.life.Load() >> 1 }

// isOpen reports whether the connection is open. Safe from any goroutine.
func (c *Conn) isOpen() bool { return c.life.Load()&1 != 0 }

// begin opens the Conn for a new connection, of the next generation. Loop
// only.
func (c *Conn) begin() { c.life.Store((c.life.Load()>>1+1)<<1 | 1) }

// end marks the connection closed, keeping its generation. Loop only.
func (c *Conn) end() { c.life.Store(c.life.Load() &^ 1) }

// RemoteAddr returns the peer's address. Loop only, while the connection
// is open (Conns are reused: keep a copy to use it later).
func (c *Conn) RemoteAddr() net.Addr { return c.gc.RemoteAddr() }

// LocalAddr returns the connection's own local address. Loop only, while
// open. gnet reports the listener's address, which on a server listening
// on port 0 or a wildcard address is not the connection's: the socket is
// asked then.
func (c *Conn) LocalAddr() net.Addr {
	a := c.gc.LocalAddr()
	if ta, ok := a.(*net.TCPAddr); ok && ta.Port != 0 && !ta.IP.IsUnspecified() {
		return a
	}
	sa, err := unix.Getsockname(c.gc.Fd())
	if err != nil {
		return a
	}
	// The connections of a loop mostly share their local address: the
	// last one is kept, so that each does not hold a copy.
	l := c.loop
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		if k := l.local; k != nil && k.Port == sa.Port && k.IP.Equal(sa.Addr[:]) {
			return k
		}
	case *unix.SockaddrInet6:
		if k := l.local; k != nil && k.Port == sa.Port && k.IP.Equal(sa.Addr[:]) {
			return k
		}
	}
	if ta := sockaddrToTCP(sa); ta != nil {
		l.local = ta
		return ta
	}
	return a
}

// Submit runs fn on the connection's loop if the connection of generation
// gen is still open when it gets there, and flushes what fn wrote. It is
// safe from any goroutine. It returns ErrConnGone at once when the
// connection is already gone; when it goes before fn runs, fn is dropped.
func (c *Conn) Submit(gen uint32, fn func()) error {
	live := gen<<1 | 1
	if c.life.Load() != live {
		return ErrConnGone
	}
	return c.loop.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		if c.life.Load() == live {
			prev := c.enter()
			c.m().SetNow(time.Now())
			fn()
			c.afterEvent()
			c.loop.cur.Store(prev)
		}
		return nil
	}))
}

// SubmitConn is Submit for a function of the connection: fn(c) runs on
// the loop. A package-level fn reaches the layer above's state through
// c.Data, so neither the connection nor the call needs a closure for it.
// Safe from any goroutine.
func (c *Conn) SubmitConn(gen uint32, fn func(*Conn)) error {
	live := gen<<1 | 1
	if c.life.Load() != live {
		return ErrConnGone
	}
	return c.loop.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		if c.life.Load() == live {
			prev := c.enter()
			c.m().SetNow(time.Now())
			fn(c)
			c.afterEvent()
			c.loop.cur.Store(prev)
		}
		return nil
	}))
}

// The engine.Conn methods; loop only.

// Input returns the bytes gnet has buffered, without copying when they are
// contiguous.
func (c *Conn) Input() []byte {
	if c.tls != nil {
		return c.tls.input() // the plaintext
	}
	b, _ := c.gc.Peek(-1)
	return b
}

// Discard drops n bytes of input.
func (c *Conn) Discard(n int) {
	if c.tls != nil {
		c.tls.discard(n)
		return
	}
	if n > 0 {
		_, _ = c.gc.Discard(n)
		c.loop.stats.bytesIn += uint64(n)
	}
}

// Write appends p to the output of the current event. The output buffer
// belongs to the loop: every event of a connection ends with Flush before
// the loop turns to another, so an idle connection holds no buffer.
func (c *Conn) Write(p []byte) {
	if c.isOpen() { // a closed Conn's bytes must not reach the next event's connection
		c.loop.out = append(c.loop.out, p...)
	}
}

// Flush writes the output of the current event with one write; what the
// kernel does not take waits in the connection's pending buffer (see
// output.go), behind which later output queues.
//
// On a TLS connection the output is encrypted first (tls.go), and the
// ciphertext takes the same path.
//
// A write that fails (the peer reset the connection) makes gnet close the
// connection before Flush returns: OnClose runs, the machine hears Close,
// and the Conn goes back to its loop. Callers check isOpen after a Flush.
func (c *Conn) Flush() {
	l := c.loop
	out := l.out
	if c.tls != nil {
		c.tls.seal(l)
		out = l.cout
	}
	if len(out) == 0 {
		return
	}
	if c.isOpen() {
		if c.pend != nil {
			c.queue(out)
			c.writePending()
		} else if n, ok := c.writeOut(out); ok && n < len(out) && c.isOpen() {
			c.queue(out[n:])
			c.writePending() // arms the watcher
		}
	}
	l.out, l.cout = l.out[:0], l.cout[:0]
	if cap(l.out) > maxKeptOutput {
		l.out = nil // one large response does not pin a large buffer
	}
	if cap(l.cout) > maxKeptOutput {
		l.cout = nil
	}
}

// maxKeptOutput bounds the output buffer a loop keeps between events.
const maxKeptOutput = 256 << 10

// Buffered reports output not yet on the wire (in the kernel).
func (c *Conn) Buffered() int {
	n := len(c.loop.out) + len(c.loop.cout)
	if c.pend != nil {
		n += c.pend.len()
	}
	return n
}

// CloseWrite flushes and shuts down the write side once everything
// buffered has been written; a TLS connection sends close_notify first.
func (c *Conn) CloseWrite() {
	if c.tls != nil && c.isOpen() {
		c.tls.closeNotify(c.loop)
	}
	c.Flush()
	if !c.isOpen() {
		return // the write failed and gnet closed the connection
	}
	if c.pend != nil {
		c.shutdownAfter = true
		return
	}
	_ = unix.Shutdown(c.gc.Fd(), unix.SHUT_WR)
}

// Close closes the connection now: it writes what the kernel takes at
// once and drops the rest. The engine calls it once its output has
// drained, or when it gives up on a peer that does not read; gnet calls
// OnClose later. It does nothing once the connection has closed. A TLS
// connection sends close_notify after its output.
func (c *Conn) Close() {
	if !c.isOpen() {
		return
	}
	if c.tls != nil {
		c.tls.closeNotify(c.loop)
	}
	c.Flush()
	if c.isOpen() { // else the write failed and gnet closed the connection
		c.closing = true
		c.dropPending()
		_ = c.gc.Close()
	}
}

// SetDeadline arms the connection's timer on its loop's wheel.
// A closed Conn's timer stays stopped. While a TLS layer holds the timer
// (its handshake), the deadline is kept for when it gives it back.
func (c *Conn) SetDeadline(t time.Time) {
	if !c.isOpen() {
		return
	}
	if c.tls != nil && c.tls.holdsTimer() {
		c.tls.engDeadline = t
		return
	}
	c.loop.wheel.arm(&c.timer, t)
}

// afterEvent runs at the end of every event of the connection: one write
// for everything the event produced, drain bookkeeping, and reading turned
// on or off as the state machine wants.
func (c *Conn) afterEvent() {
	for round := 0; ; round++ {
		c.Flush()
		if !c.isOpen() {
			return
		}
		if !c.m().WantsDrain() || c.pend != nil {
			break // the watcher is armed for what is pending
		}
		if round == maxDrainRounds {
			// Let other connections of the loop have their turn: the
			// watcher calls back at once, the socket being writable.
			c.watchWritable()
			break
		}
		// The engine went over its mark but the kernel took everything:
		// it has drained already. Say so now, a few rounds at most.
		c.m().OnDrain(time.Now())
	}
	if c.tls != nil && c.tls.deliverEOF() {
		c.Flush() // what OnEOF answered
		if !c.isOpen() {
			return
		}
	}
	c.syncReading()
}

// maxDrainRounds bounds the drain events one event may deliver in a row.
const maxDrainRounds = 8

// syncReading turns reading on or off to match what the state machine
// wants (interest.go). A server connection wants none while output is
// pending, so a FIN read by gnet (which closes the connection) never cuts
// output short; a client reads its response while its request is still
// going out (an early answer).
func (c *Conn) syncReading() {
	var want bool
	if c.tls != nil && c.tls.state < tlsOpen {
		want = c.tls.wantsInput()
	} else {
		want = c.m().WantsInput()
	}
	if want != c.paused || c.loop.noPause {
		return
	}
	epfd, err := c.loop.epoll(c)
	if err != nil {
		// No /proc fdinfo to find gnet's epoll set by (a sandbox): the
		// loop keeps reading as gnet does, MaxUnread bounding the input.
		c.loop.noPause = true
		c.loop.logger().Warn("loophttp: cannot pause reading on this system; unread input is bounded by MaxUnread instead", "err", err)
		return
	}
	if err := setReading(epfd, c.gc.Fd(), want); err != nil {
		c.loop.logger().Error("loophttp: changing a socket's read interest failed", "err", err)
		_ = c.gc.Close()
		return
	}
	c.paused = !want
	c.loop.countPaused(c.paused)
}

// fireTimer is the wheels' callback: t is a connection's timer.
func fireTimer(t *timer, now time.Time) { t.conn.onTimer(now) }

// onTimer runs when the connection's timer comes due.
func (c *Conn) onTimer(now time.Time) {
	if !c.isOpen() {
		return
	}
	prev := c.enter()
	if c.tls != nil && c.tls.holdsTimer() {
		c.tls.onTimer(now)
	} else {
		c.m().OnTimer(now)
	}
	c.afterEvent()
	c.loop.cur.Store(prev)
}

// traffic hands the input of gc's connection to its state machine and
// writes its output once: OnTraffic of both sides.
func traffic(gc gnet.Conn) gnet.Action {
	c, ok := gc.Context().(*Conn)
	if !ok || !c.isOpen() {
		return gnet.Close
	}
	if c.closing {
		return gnet.None // closed by the layer above: nothing more is read
	}
	prev := c.enter()
	if c.tls != nil {
		if now := time.Now(); c.tls.onTraffic(now) {
			c.m().OnData(now)
		}
	} else if c.sc != nil {
		c.sc.OnData(time.Now()) // the server's hot path, called directly
	} else {
		c.cc.OnData(time.Now())
	}
	c.afterEvent()
	c.loop.cur.Store(prev)
	return gnet.None
}

// enter marks the start of an event of c on its loop and returns the
// connection of the event it interrupts (nil at the top); the caller
// restores it when the event ends.
func (c *Conn) enter() (prev *Conn) {
	prev = c.loop.cur.Load()
	c.loop.cur.Store(c)
	return prev
}

// InEvent reports whether the caller runs inside an event of this
// connection, on its loop: a callback the connection's state machine is
// making, or work handed to the loop for it. A call made there may act on
// the state machine at once (afterEvent then writes and re-reads as needed);
// from anywhere else it must be handed to the loop with Submit. Safe from
// any goroutine. It is exact: the loop's identity tells its goroutine
// from every other (identity.go); only then is the loop's current event
// read.
func (c *Conn) InEvent() bool {
	l := c.loop
	return CallerID() == l.id && l.cur.Load() == c
}

// closing ends gc's connection in its state machine, for a close from
// either side (an EOF from the peer first lets what is complete be
// answered), and returns the Conn; nil when there was nothing to end.
// The caller settles its counts and hooks, then calls done, which also
// ends the close's event (InEvent).
func closing(gc gnet.Conn, err error) *Conn {
	c, ok := gc.Context().(*Conn)
	if !ok || !c.isOpen() {
		return nil
	}
	c.loop.closePrev = c.enter()
	// Closed from now on for Submit: whoever hears of the close finds
	// later calls refused at once.
	c.end()
	now := time.Now()
	if c.paused {
		err = sockErr(gc, err)
	}
	c.loop.closeErr = err
	m := c.m()
	// A TLS peer's close_notify was its end of input already.
	if !m.Closed() && (c.tls == nil || !c.tls.eof) {
		m.OnEOF(now)
		c.Flush() // gnet writes what is left after OnClose returns
	}
	m.OnClose(now)
	if c.tls != nil {
		c.tls.closed() // a handshake in progress ends
	}
	// Bytes read and never consumed count as read.
	c.loop.stats.bytesIn += uint64(gc.InboundBuffered())
	c.loop.watch.disarm(c) // before gnet closes the descriptor
	return c
}

// sockErr refines the error gnet closed a paused connection with. gnet
// reports a hang-up seen while the socket is registered for no events
// (interest.go) as end of file; the socket's pending error tells a reset
// apart. (A connection being read sees a reset as the read's error.)
func sockErr(gc gnet.Conn, err error) error {
	if !errors.Is(err, io.EOF) {
		return err
	}
	if n, gerr := unix.GetsockoptInt(gc.Fd(), unix.SOL_SOCKET, unix.SO_ERROR); gerr == nil && n != 0 {
		return os.NewSyscallError("read", unix.Errno(n))
	}
	return err
}

// done returns a closed Conn to its loop's pool.
func (c *Conn) done(gc gnet.Conn) {
	c.loop.cur.Store(c.loop.closePrev)
	c.loop.closeErr = nil
	c.loop.close(c)
	gc.SetContext(nil)
}
