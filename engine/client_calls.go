package engine

import (
	"runtime/debug"

	"github.com/loophttp/loophttp/codec"
)

// The call* methods run handler callbacks, recovering a panic: it is
// logged with its stack and the exchange ends with ErrHandlerPanic (the
// connection closes); the client carries on.

func (c *ClientConn) callInformation(resp *codec.Response) {
	defer c.recoverHandler()
	c.x.h.Information(c.x, resp)
}

func (c *ClientConn) callResponse(resp *codec.Response) {
	defer c.recoverHandler()
	c.x.h.Response(c.x, resp)
}

func (c *ClientConn) callBody(chunk []byte) {
	defer c.recoverHandler()
	c.x.h.Body(c.x, chunk)
}

func (c *ClientConn) callEnd(trailers []codec.Header) {
	defer c.recoverHandler()
	c.x.h.End(c.x, trailers)
}

func (c *ClientConn) callDrain() {
	defer c.recoverHandler()
	x := c.tail()
	x.h.Drain(x)
}

func (c *ClientConn) callTimeout() {
	defer c.recoverHandler()
	c.x.h.Timeout(c.x)
}

func (c *ClientConn) callCloseOf(x *Exchange, err error) {
	defer c.recoverHandler()
	x.h.Close(x, err)
}

func (c *ClientConn) recoverHandler() {
	v := recover()
	if v == nil {
		return
	}
	c.cfg.Logger.Error("loophttp: client handler panicked", "panic", v, "stack", string(debug.Stack()))
	if c.panicked {
		return
	}
	c.panicked = true
	c.close(ErrHandlerPanic)
}
