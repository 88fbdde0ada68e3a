package engine

import (
	"bytes"
	"time"

	"github.com/loophttp/loophttp/codec"
)

// OnData reads the response input.
func (c *ClientConn) OnData(now time.Time) {
	c.lastActive = now.UnixNano()
	c.timedOut = false
	c.process()
	c.settleEOF() // an EOF the transport reported inside a callback (a failed write)
	c.armTimer()
}

// OnEOF handles the server's end of stream (a half-close: the transport
// keeps the connection until the engine closes it). The responses already
// buffered are read first, pipelined ones included; then a close-delimited
// body or a tunnel ends, and any other open exchange ends with ErrHangUp
// or ErrTruncated. An exchange that has paused its body keeps its
// buffered input until Resume, which then finishes the job; the
// connection is never offered for reuse again and closes once nothing is
// left to read.
func (c *ClientConn) OnEOF(now time.Time) {
	if c.closed || c.eof {
		return
	}
	c.eof = true
	c.process()
	c.settleEOF()
	c.armTimer()
}

// settleEOF ends what the server's end of stream ends, unless a paused
// exchange still has something to take (buffered input, or the End of a
// body that the EOF completes).
func (c *ClientConn) settleEOF() {
	if !c.eof || c.closed || c.inProcess {
		return
	}
	if c.holding() && (len(c.conn.Input()) > 0 || c.endsAtEOF()) {
		return
	}
	if c.busy && c.endsAtEOF() {
		c.complete(nil, false)
	}
	if !c.closed {
		c.close(c.eofError())
	}
}

// endsAtEOF reports whether the end of stream completes the response
// being read: a close-delimited body, or a tunnel's byte stream.
func (c *ClientConn) endsAtEOF() bool {
	return c.phase == respTunnel || c.phase == respBody && c.framing == codec.FramingClose
}

// eofError is why an open exchange ends when the connection does.
func (c *ClientConn) eofError() error {
	switch c.phase {
	case respHead:
		return ErrHangUp
	case respDone:
		return nil // the response is complete: the connection closed while its End was delivered
	}
	return ErrTruncated
}

// OnClose reports that the transport has closed the connection.
func (c *ClientConn) OnClose(now time.Time) {
	if !c.closed {
		c.close(c.eofError())
	}
	c.conn.SetDeadline(time.Time{})
}

// OnDrain reports that output has been written (progress on the wire);
// once it is below HighWater after having been over, Drain is delivered.
func (c *ClientConn) OnDrain(now time.Time) {
	c.lastActive = now.UnixNano()
	if !c.overWater || c.conn.Buffered() >= c.cfg.HighWater {
		return
	}
	c.overWater = false
	if c.busy {
		c.callDrain()
	}
}

// process reads as much of the input as the state allows.
func (c *ClientConn) process() {
	if c.inProcess {
		return
	}
	c.inProcess = true
	defer func() { c.inProcess = false }()
	for !c.closed {
		in := c.conn.Input()
		if len(in) == 0 {
			return
		}
		if !c.busy {
			// Nobody asked for these bytes: the connection can no longer
			// be trusted to frame the next response.
			c.close(nil)
			return
		}
		c.gotBytes = true
		if !c.step(in) {
			return
		}
	}
}

// step takes one step on the input in and reports whether another may
// follow.
func (c *ClientConn) step(in []byte) bool {
	switch c.phase {
	case respHead:
		return c.readHead(in)
	case respTunnel:
		if c.x.paused {
			return c.checkUnread(in)
		}
		c.conn.Discard(len(in))
		c.callBody(in)
		return true
	default:
		return c.readBody(in)
	}
}

// readHead parses the next response head.
func (c *ClientConn) readHead(in []byte) bool {
	if !c.worthParsing(in) {
		return false
	}
	var method []byte
	if c.x.noBody {
		method = methodHEAD
	} else if c.x.connect {
		method = methodCONNECT
	}
	n, err := codec.ParseResponse(in, &c.resp, method, &c.cfg.Limits)
	if err != nil {
		c.close(err)
		return false
	}
	if n == 0 {
		c.parsedLen = int32(len(in))
		return false
	}
	c.parsedLen = 0
	resp := &c.resp
	if resp.Interim() {
		if c.interim++; c.interim > int32(c.cfg.MaxInterim) {
			c.close(ErrTooManyInterim)
			return false
		}
		c.callInformation(resp)
		c.conn.Discard(n)
		return !c.closed
	}
	c.framing, c.remaining, c.respKeep = resp.Framing, resp.ContentLength, resp.KeepAlive
	switch resp.Framing {
	case codec.FramingTunnel, codec.FramingUpgrade:
		c.phase = respTunnel // the request side is a byte stream too: WriteRaw
		c.respKeep = false
	case codec.FramingChunked:
		c.phase = respBody
		c.dec.Reset()
		c.dec.Response = true
	default:
		c.phase = respBody
	}
	c.callResponse(resp)
	c.conn.Discard(n) // resp's views die here
	if !c.closed && c.phase == respBody && c.framing == codec.FramingNone {
		c.complete(nil, true)
	}
	return !c.closed
}

// The methods whose responses the codec frames differently.
var methodHEAD, methodCONNECT = []byte("HEAD"), []byte("CONNECT")

// worthParsing is ServerConn.worthParsing for responses: an incomplete head
// is parsed again only when a line has completed or the input doubled.
func (c *ClientConn) worthParsing(in []byte) bool {
	p := int(c.parsedLen)
	if p == 0 || p >= len(in) || len(in) >= 2*p {
		return true
	}
	return bytes.IndexByte(in[p:], '\n') >= 0
}

// readBody moves response body bytes to the handler.
func (c *ClientConn) readBody(in []byte) bool {
	if c.x.paused {
		return c.checkUnread(in)
	}
	switch c.framing {
	case codec.FramingLength:
		n := int(min(c.remaining, int64(len(in))))
		c.remaining -= int64(n)
		c.callBody(in[:n])
		c.conn.Discard(n)
		if c.remaining == 0 && !c.closed {
			c.complete(nil, true)
		}
		return !c.closed
	case codec.FramingChunked:
		n, data, done, err := c.dec.Decode(in, &c.cfg.Limits)
		if err != nil {
			c.close(err)
			return false
		}
		if len(data) > 0 {
			c.callBody(data)
		}
		if done && !c.closed {
			c.phase = respDone
			c.callEnd(c.dec.Trailers) // the trailers are views of the input: End before Discard
		}
		c.conn.Discard(n)
		if done && !c.closed {
			c.finish(nil, true)
		}
		return n > 0 && !c.closed
	default: // FramingClose: everything until EOF
		c.conn.Discard(len(in))
		c.callBody(in)
		return !c.closed
	}
}

// checkUnread closes the connection when a paused body has buffered too
// much; it never makes progress.
func (c *ClientConn) checkUnread(in []byte) bool {
	if len(in) > c.cfg.MaxUnread {
		c.close(ErrTooMuchUnread)
	}
	return false
}

// complete delivers the end of the response being read (its body ended
// as framed, or at EOF when framed is false) and finishes the exchange.
//
// End may close the connection: the owner aborts, or sends its next
// request and the transport, failing to write it, closes at once (OnClose
// runs inside End). The exchange has then heard Close already, with nil,
// as its response was complete (respDone), and there is nothing left to
// finish.
func (c *ClientConn) complete(trailers []codec.Header, framed bool) {
	c.phase = respDone
	c.callEnd(trailers)
	if !c.closed {
		c.finish(nil, framed)
	}
}

// finish ends the exchange c.x after its response; framed tells whether
// the response's end was framed (so the connection may carry another).
// The connection must be open (a close ends every exchange in flight).
//
// A connection kept for reuse and left with nothing in flight is offered
// to the owner (Idle) before the finished exchange hears Close, as Node
// frees a socket before 'close': a request made from Close then finds it
// idle. x is given back for reuse only after its Close. Once the server
// has closed its side, the exchanges pipelined behind x still take the
// responses buffered for them, but the connection is not offered again.
func (c *ClientConn) finish(err error, framed bool) {
	x := c.x
	keep := framed && c.respKeep && x.ended && !x.closeReq
	c.q = c.q[:copy(c.q, c.q[1:])]
	x.inFlight = false
	if len(c.q) > 0 {
		c.x = c.q[0]
		c.startResponse()
	} else {
		c.busy, c.overWater = false, false
		c.idleTimeout, c.timedOut = 0, false
		if keep && !c.eof {
			c.armTimer()
			if c.owner != nil {
				c.owner.Idle(c) // may begin the next exchange
			}
		}
	}
	c.callCloseOf(x, err)
	c.spare = append(c.spare, x)
	if c.closed {
		return
	}
	if !keep {
		c.close(ErrHangUp) // for the exchanges still in flight, if any
		return
	}
	if !c.busy && (c.eof || len(c.conn.Input()) > 0) {
		c.close(nil) // nothing more can come, or bytes nobody asked for
	}
}

// close closes the connection, ending an open exchange with err.
func (c *ClientConn) close(err error) {
	if c.closed {
		return
	}
	c.closed = true
	// The exchange being read hears err; those pipelined behind it got
	// nothing and hear ErrHangUp.
	q := c.q
	c.busy = false
	for _, x := range q {
		x.inFlight = false // Open is false for all of them from now on
	}
	for i, x := range q {
		if i > 0 {
			err = ErrHangUp
		}
		c.callCloseOf(x, err)
	}
	c.spare = append(c.spare, q...)
	clear(q)
	c.q = q[:0]
	c.armTimer()
	c.conn.Close()
}
