package engine

import (
	"time"
)

// SetFreeTimeout sets how long the connection may stay idle between
// exchanges before it is closed (0 or less: no limit).
func (c *ClientConn) SetFreeTimeout(d time.Duration) {
	c.freeTimeout = max(int64(d), 0)
	c.armTimer()
}

// OnTimer handles the connection's deadline.
func (c *ClientConn) OnTimer(now time.Time) {
	c.deadline = 0
	if c.closed {
		return
	}
	n := now.UnixNano()
	switch {
	case c.busy && c.idleTimeout > 0 && !c.timedOut && n >= c.lastActive+c.idleTimeout:
		c.timedOut = true
		c.callTimeout()
	case !c.busy && c.freeTimeout > 0 && n >= c.lastActive+c.freeTimeout:
		c.close(nil)
		return
	}
	c.armTimer()
}

// armTimer sets the connection's deadline to the earliest of its timers.
func (c *ClientConn) armTimer() {
	var d int64
	switch {
	case c.closed:
	case c.busy && c.idleTimeout > 0 && !c.timedOut:
		d = c.lastActive + c.idleTimeout
	case !c.busy && c.freeTimeout > 0:
		d = c.lastActive + c.freeTimeout
	}
	if d == c.deadline {
		return
	}
	c.deadline = d
	if d == 0 {
		c.conn.SetDeadline(time.Time{})
		return
	}
	c.conn.SetDeadline(time.Unix(0, d))
}
