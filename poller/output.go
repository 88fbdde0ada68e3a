package poller

import (
	"time"

	"github.com/valyala/bytebufferpool"
	"golang.org/x/sys/unix"
)

// The output path. An event's output collects in the loop's buffer
// (Conn.Write) and goes to the kernel with one write(2) when the event
// ends (Conn.Flush). What the kernel does not take waits in the
// connection's pending buffer (from bytebufferpool, given back once it
// has drained, so an idle connection holds none) and the socket is armed
// in the watcher; when it is writable again the loop writes more, tells
// the engine (OnDrain: output made progress) and, once all is out, shuts
// the write side if that was asked for.
//
// The poller writes to the socket itself rather than through gnet's
// Write: gnet re-registers a socket for reading whenever its own output
// buffer drains, which would undo a read pause (interest.go) and let it
// read a FIN, and close, while a response is still owed.

// pending is output the kernel has not taken yet. Loop only.
type pending struct {
	buf *bytebufferpool.ByteBuffer
	off int // bytes of buf already written
}

func (p *pending) len() int { return len(p.buf.B) - p.off }

// queue keeps b (the part of an event's output the kernel did not take)
// for later, after what is pending already.
func (c *Conn) queue(b []byte) {
	if c.pend == nil {
		c.pend = c.loop.takePending()
	}
	_, _ = c.pend.buf.Write(b)
}

// writeOut writes b to the socket and returns how much the kernel took.
// A hard error (the peer reset the connection) closes the connection
// before writeOut returns, as gnet's own write does: the bytes are handed
// to gnet's Write, which meets the same error and closes with it.
func (c *Conn) writeOut(b []byte) (n int, ok bool) {
	fd := c.gc.Fd()
	for n < len(b) {
		m, err := unix.Write(fd, b[n:])
		switch err {
		case nil:
			n += m
			c.loop.stats.bytesOut += uint64(m)
		case unix.EINTR:
		case unix.EAGAIN:
			return n, true
		default:
			_, _ = c.gc.Write(b[n:])
			return n, false
		}
	}
	return n, true
}

// writePending writes as much pending output as the kernel takes, gives
// the buffer back when it has all gone, and otherwise arms the watcher.
// It reports whether any byte was written.
func (c *Conn) writePending() (progress bool) {
	p := c.pend
	n, ok := c.writeOut(p.buf.B[p.off:])
	if !ok || !c.isOpen() {
		return n > 0
	}
	p.off += n
	if p.len() == 0 {
		c.pend = nil
		c.loop.givePending(p)
		return n > 0
	}
	c.watchWritable()
	return n > 0
}

// watchWritable asks the watcher for one call of onWritable once the
// socket is writable (at once if it is now).
func (c *Conn) watchWritable() {
	if c.armed {
		return
	}
	if err := c.loop.watch.arm(c); err != nil {
		c.loop.logger().Error("loophttp: watching a socket for writability failed", "err", err)
		_ = c.gc.Close()
		return
	}
	c.armed = true
}

// onWritable runs on the loop when the watcher saw c's socket writable:
// it writes what is pending and tells the engine of the progress (the
// engine may then write more, and afterEvent flushes it).
func (c *Conn) onWritable() {
	c.armed = false
	if c.pend != nil && (!c.writePending() || !c.isOpen()) {
		return
	}
	if c.pend == nil && c.shutdownAfter {
		c.shutdownAfter = false
		_ = unix.Shutdown(c.gc.Fd(), unix.SHUT_WR)
	}
	c.m().OnDrain(time.Now())
}

// dropPending forgets output that will never be written (the connection
// is closing). Loop only.
func (c *Conn) dropPending() {
	if p := c.pend; p != nil {
		c.pend = nil
		c.loop.givePending(p)
	}
}

// takePending returns an empty pending buffer.
func (l *loop) takePending() *pending {
	var p *pending
	if n := len(l.pendFree); n > 0 {
		p = l.pendFree[n-1]
		l.pendFree = l.pendFree[:n-1]
	} else {
		p = new(pending)
	}
	p.buf = bytebufferpool.Get()
	return p
}

// givePending takes back a pending buffer.
func (l *loop) givePending(p *pending) {
	bytebufferpool.Put(p.buf)
	*p = pending{}
	l.pendFree = append(l.pendFree, p)
}
