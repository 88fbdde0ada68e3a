package poller

import (
	"context"

	"github.com/panjf2000/gnet/v2"
)

// SubmitLoop runs fn on the loop the connection ran on, in a task of its
// own, whether or not the connection is still open (Submit drops fn once
// it has closed): for callbacks of a connection that is over, which still
// belong on its loop. It returns an error at once when the loop has
// stopped (its server or client closed); a task posted just as the loop
// stops may be dropped with it. fn does not run inside the connection's
// event (InEvent is false) and must not use the connection. Safe from any
// goroutine.
func (c *Conn) SubmitLoop(fn func()) error {
	return c.loop.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		fn()
		return nil
	}))
}
