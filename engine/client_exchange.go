package engine

import (
	"strconv"
	"time"

	"github.com/loophttp/loophttp/codec"
)

// The request side of a client connection: an Exchange's head, body and
// flow control, as its owner drives them.

// Exchange is one request and its response on a ClientConn. Its methods
// are for the owner of the exchange, on the connection's loop, from Begin
// until Close has been delivered; after that they report ErrStreamDone.
// A connection's Exchanges are reused for its later exchanges; Gen tells
// them apart.
type Exchange struct {
	c    *ClientConn
	h    ClientHandler
	head []byte // the request head being built, until it is sent
	// Data belongs to the owner of the exchange.
	Data any

	length          int64 // declared Content-Length; -1 when none
	sent            int64 // body bytes sent
	gen             uint32
	framing         reqFraming
	noBody          bool // HEAD: the response has no body
	connect         bool // CONNECT: a 2xx opens a tunnel
	lengthByDefault bool // End without data sends "Content-Length: 0"
	chunkedSet      bool // the owner set Transfer-Encoding: chunked
	closeReq        bool // the owner set Connection: close
	ended           bool
	paused          bool
	inFlight        bool // between Begin and Close
}

// Conn returns the connection of the exchange.
func (x *Exchange) Conn() *ClientConn { return x.c }

// Gen tells exchanges of the same connection apart.
func (x *Exchange) Gen() uint32 { return x.gen }

// Open reports whether the exchange has not been closed.
func (x *Exchange) Open() bool { return x.inFlight }

// Reused reports whether the connection carried an exchange before this
// one.
func (x *Exchange) Reused() bool { return x.c.exchanges > 1 }

// GotResponse reports whether any byte of the response has arrived.
func (x *Exchange) GotResponse() bool { return x.c.x == x && x.c.gotBytes }

// HeadSent reports whether the request head has gone out.
func (x *Exchange) HeadSent() bool { return x.framing != reqUndecided }

// AddField adds a header field to the request head. Content-Length,
// Transfer-Encoding: chunked and Connection: close set by the owner decide
// the framing and the connection's reuse. It fails after the head is sent,
// and for names or values that must not reach the wire.
func (x *Exchange) AddField(name, value string) error {
	if !x.Open() {
		return ErrStreamDone
	}
	if x.framing != reqUndecided {
		return ErrHeadSent
	}
	if err := codec.ValidHeader(name, value); err != nil {
		return err
	}
	switch {
	case asciiEqualFold(name, "content-length"):
		n, ok := parseLength(value)
		if !ok || x.chunkedSet || x.length >= 0 {
			return codec.ErrContentLength // one length, never beside Transfer-Encoding (RFC 9112 §6.2)
		}
		x.length = n
	case asciiEqualFold(name, "transfer-encoding"):
		if !asciiEqualFold(value, "chunked") || x.chunkedSet || x.length >= 0 {
			return codec.ErrTransferCoding // the engine encodes only chunked, once, without a length
		}
		x.chunkedSet = true
	case asciiEqualFold(name, "connection"):
		x.closeReq = x.closeReq || containsToken(value, "close")
	}
	x.head, _ = codec.AppendHeader(x.head, name, value) // valid, checked above
	return nil
}

// Write sends the head if it is not out (chunked, unless the owner set a
// Content-Length) and then p. It reports false when the output is over
// HighWater: wait for Drain before writing more.
func (x *Exchange) Write(p []byte) (bool, error) {
	if !x.Open() || x.ended {
		return false, ErrStreamDone
	}
	if x.framing == reqUndecided {
		x.sendHead(-1)
	}
	if err := x.writeBody(p); err != nil {
		return false, err
	}
	return x.below(), nil
}

// End sends what is left of the request: the head if it is not out
// (framed by len(p) unless the owner set the framing), p, and the end of
// the body.
func (x *Exchange) End(p []byte) error {
	return x.EndTrailers(p, nil)
}

// EndTrailers is End with trailer fields, sent when the body is chunked
// (else they are dropped, as there is nowhere to put them).
func (x *Exchange) EndTrailers(p []byte, trailers []codec.Header) error {
	if !x.Open() || x.ended {
		return ErrStreamDone
	}
	if x.framing == reqUndecided {
		x.sendHead(int64(len(p)))
	}
	if err := x.writeBody(p); err != nil {
		return err
	}
	c := x.c
	switch x.framing {
	case reqChunked:
		out, err := codec.AppendLastChunk(x.head[:0], trailers)
		if err != nil {
			return err
		}
		x.head = out
		c.conn.Write(out)
	case reqLength:
		if x.sent != x.length {
			c.close(ErrLengthMismatch)
			return ErrLengthMismatch
		}
	}
	x.ended = true
	c.conn.Flush()
	return nil
}

// sendHead writes the head with its framing; length is the whole body
// when End sends it with the head, else -1.
func (x *Exchange) sendHead(length int64) {
	switch {
	case x.length >= 0:
		x.framing = reqLength
	case x.chunkedSet:
		x.framing = reqChunked
	case length > 0 || length == 0 && x.lengthByDefault:
		x.framing, x.length = reqLength, length
		x.head = append(x.head, "Content-Length: "...)
		x.head = strconv.AppendInt(x.head, length, 10)
		x.head = append(x.head, "\r\n"...)
	case length == 0:
		x.framing = reqNone
	default:
		x.framing = reqChunked
		x.head = append(x.head, "Transfer-Encoding: chunked\r\n"...)
	}
	if x.framing == reqLength && x.length == 0 {
		x.framing = reqNone
	}
	x.head = append(x.head, "\r\n"...)
	x.c.conn.Write(x.head)
	x.head = x.head[:0]
	x.c.touch()
}

// writeBody writes p framed as the head said.
func (x *Exchange) writeBody(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	c := x.c
	switch x.framing {
	case reqNone:
		return ErrLengthMismatch
	case reqLength:
		if x.sent+int64(len(p)) > x.length {
			return ErrLengthMismatch
		}
		c.conn.Write(p)
	case reqChunked:
		x.head = codec.AppendChunkHeader(x.head[:0], len(p))
		c.conn.Write(x.head)
		c.conn.Write(p)
		c.conn.Write(crlf)
	}
	x.sent += int64(len(p))
	c.touch()
	return nil
}

// WriteRaw writes p as it is, for the byte stream of a tunnel or an
// upgrade once the response opened it.
func (x *Exchange) WriteRaw(p []byte) (bool, error) {
	if !x.Open() || x.c.phase != respTunnel {
		return false, ErrStreamDone
	}
	x.c.conn.Write(p)
	x.c.touch()
	return x.below(), nil
}

// below reports whether the output is under HighWater, and otherwise
// marks the connection as waiting for a drain.
func (x *Exchange) below() bool {
	if x.c.conn.Buffered() < x.c.cfg.HighWater {
		return true
	}
	x.c.overWater = true
	return false
}

// touch records output activity for the idle timeout.
func (c *ClientConn) touch() {
	if c.idleTimeout > 0 {
		c.lastActive = c.cfg.Now().UnixNano()
		c.timedOut = false
	}
}

// SetIdleTimeout sets the exchange's idle timeout: Timeout is called once
// nothing has been read or written for d (0: off). It ends with the
// response.
func (x *Exchange) SetIdleTimeout(d time.Duration) {
	if !x.Open() {
		return
	}
	c := x.c
	c.idleTimeout = max(int64(d), 0)
	c.lastActive = c.cfg.Now().UnixNano()
	c.timedOut = false
	c.armTimer()
}

// Pause stops the delivery of the response body (or of a tunnel's bytes)
// from its head on: input then waits in the transport, which stops reading
// the socket while WantsInput is false; MaxUnread bounds what is buffered
// all the same.
func (x *Exchange) Pause() {
	if x.Open() {
		x.paused = true
	}
}

// Resume continues a paused body, delivering what is buffered (and the
// end of the response, if the server closed its side meanwhile).
func (x *Exchange) Resume() {
	if !x.Open() || !x.paused {
		return
	}
	x.paused = false
	x.c.process()
	x.c.settleEOF()
	x.c.armTimer()
}

// Abort ends the exchange with err (ErrAborted when nil) and closes the
// connection.
func (x *Exchange) Abort(err error) {
	if !x.Open() {
		return
	}
	if err == nil {
		err = ErrAborted
	}
	x.c.close(err)
}
