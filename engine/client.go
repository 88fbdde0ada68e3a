package engine

import (
	"bytes"
	"errors"
	"log/slog"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/loophttp/loophttp/codec"
)

// ClientConfig configures client connections. The zero value of each field
// means its default. A ClientConfig is shared by the connections of a
// client and must not change after NewClientConn.
type ClientConfig struct {
	// Limits bound the responses read: head sizes as codec.Limits says,
	// and the body only when MaxBodySize is set (0: no limit; a client
	// reads the body it asked for, and flow control, not a limit, bounds
	// the memory it takes).
	Limits codec.Limits
	// HighWater is the pending request output, in bytes, above which
	// Exchange.Write reports false until Drain. Default 64 KiB.
	HighWater int
	// MaxUnread bounds the response input buffered while the handler has
	// paused the body; past it the connection is closed. Default 1 MiB.
	MaxUnread int
	// Logger receives recovered panics; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock of the idle timers; nil means time.Now.
	Now func() time.Time
}

// Resolve validates c and returns a copy with every zero field set to its
// default.
func (c ClientConfig) Resolve() (ClientConfig, error) {
	if err := c.Limits.Validate(); err != nil {
		return c, err
	}
	if c.HighWater < 0 || c.MaxUnread < 0 {
		return c, ErrInvalidConfig
	}
	if c.Limits.MaxBodySize == 0 {
		c.Limits.MaxBodySize = codec.NoBodyLimit
	}
	c.Limits = c.Limits.Resolved()
	if c.HighWater == 0 {
		c.HighWater = DefaultHighWater
	}
	if c.MaxUnread == 0 {
		c.MaxUnread = DefaultMaxUnread
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// Errors an exchange can close with besides codec errors (a response that
// breaks RFC 9112 closes its exchange with the codec.Error).
var (
	// ErrHangUp: the connection closed before a complete response head
	// (Node's "socket hang up").
	ErrHangUp = errors.New("socket hang up")
	// ErrTruncated: the connection closed inside the response body.
	ErrTruncated = errors.New("engine: response body truncated")
	// ErrAborted: the exchange was aborted by its owner.
	ErrAborted = errors.New("engine: request aborted")
	// ErrBusy: Begin was called while an exchange is in progress, or on a
	// closed connection.
	ErrBusy = errors.New("engine: connection busy or closed")
)

// ClientHandler receives the response of one exchange. Every method is
// called on the connection's loop and must not block. resp, chunk and
// trailers are borrowed: valid only during the call.
type ClientHandler interface {
	// Information reports an interim (1xx other than 101) response; the
	// final response follows.
	Information(x *Exchange, resp *codec.Response)
	// Response reports the final response head (a 101, or a 2xx to
	// CONNECT, turns the rest of the connection into a byte stream
	// delivered through Body).
	Response(x *Exchange, resp *codec.Response)
	// Body delivers the next piece of the response body.
	Body(x *Exchange, chunk []byte)
	// End reports that the response body is complete.
	End(x *Exchange, trailers []codec.Header)
	// Drain reports that a Write that returned false may be followed by
	// more writes.
	Drain(x *Exchange)
	// Timeout reports that the exchange's idle timeout passed with nothing
	// read or written. The exchange goes on; the handler may Abort it.
	Timeout(x *Exchange)
	// Close ends the exchange, exactly once: err is nil when the response
	// was received in full, else why it was not (ErrHangUp, ErrTruncated,
	// ErrAborted, ErrHandlerPanic, ErrTooMuchUnread, a codec.Error, or the
	// error the owner aborted with).
	Close(x *Exchange, err error)
}

// ClientOwner hears when a connection can carry another exchange.
type ClientOwner interface {
	// Idle is called on the loop after an exchange closed in full when
	// the connection may be reused (both sides keep it alive, the request
	// was sent whole). It is not called otherwise: the connection is then
	// closing. Idle may begin the next exchange at once (a request that
	// was waiting for the connection): input already buffered is then read
	// as its response, as for a pipelined request. Input still buffered
	// when Idle returns without an exchange is unsolicited and closes the
	// connection.
	Idle(c *ClientConn)
}

// respPhase is where a client connection is in reading a response.
type respPhase uint8

const (
	respHead   respPhase = iota // waiting for a (final) response head
	respBody                    // reading the body as framed
	respTunnel                  // every byte belongs to a tunnel or upgrade
)

// reqFraming is how a request body is framed on the wire.
type reqFraming uint8

const (
	reqUndecided reqFraming = iota // the head is not out yet
	reqNone                        // no body
	reqLength                      // Content-Length
	reqChunked                     // chunked
)

// ClientConn is the state machine of one client connection: it sends one
// request at a time and parses its response. It is owned by its loop:
// every method is called there, from the transport (On*) or from the owner
// (Begin and the Exchange methods, in an event or a task of the loop).
type ClientConn struct {
	conn  Conn
	cfg   *ClientConfig
	owner ClientOwner
	x     *Exchange   // the exchange whose response is read: q[0], or the last one
	q     []*Exchange // exchanges in flight, oldest first (pipelined after the first)
	spare []*Exchange // finished exchanges, for reuse
	xgen  uint32
	resp  codec.Response
	dec   codec.ChunkedDecoder

	idleTimeout int64 // ns; 0 off (the exchange's SetIdleTimeout)
	freeTimeout int64 // ns; 0 off (idle between exchanges)
	lastActive  int64 // UnixNano of the last read or write
	deadline    int64 // what the Conn's timer is armed for
	remaining   int64 // response body bytes left (FramingLength)
	exchanges   uint32
	parsedLen   int32
	phase       respPhase
	framing     codec.Framing

	busy      bool // an exchange is open (len(q) > 0)
	closed    bool
	overWater bool
	gotBytes  bool // a response byte arrived for this exchange
	respKeep  bool // the final response allows another exchange
	timedOut  bool // Timeout was delivered for the current idle period
	panicked  bool
	inProcess bool
}

// NewClientConn returns the state machine for a new connection over conn.
// cfg must be resolved (ClientConfig.Resolve); owner may be nil.
func NewClientConn(conn Conn, cfg *ClientConfig, owner ClientOwner) *ClientConn {
	c := &ClientConn{}
	c.Reset(conn, cfg, owner)
	return c
}

// Reset prepares c for a new connection, keeping its buffers.
func (c *ClientConn) Reset(conn Conn, cfg *ClientConfig, owner ClientOwner) {
	spare := append(c.spare, c.q...)
	clear(c.q)
	*c = ClientConn{conn: conn, cfg: cfg, owner: owner, xgen: c.xgen, spare: spare, q: c.q[:0]}
}

// Open starts the connection's life at now.
func (c *ClientConn) Open(now time.Time) { c.lastActive = now.UnixNano() }

// Idle reports whether the connection is open with no exchange.
func (c *ClientConn) Idle() bool { return !c.busy && !c.closed }

// Closed reports whether the connection is closed or closing.
func (c *ClientConn) Closed() bool { return c.closed }

// Exchanges reports how many exchanges the connection has begun.
func (c *ClientConn) Exchanges() uint32 { return c.exchanges }

// WantsDrain reports whether an exchange waits for its output to drain.
func (c *ClientConn) WantsDrain() bool { return c.overWater }

// SetFreeTimeout sets how long the connection may stay idle between
// exchanges before it is closed (0 or less: no limit).
func (c *ClientConn) SetFreeTimeout(d time.Duration) {
	c.freeTimeout = max(int64(d), 0)
	c.armTimer()
}

// Close closes the connection; an exchange in progress ends with
// ErrAborted.
func (c *ClientConn) Close() { c.close(ErrAborted) }

// CloseWith closes the connection; the exchanges in flight end with err.
func (c *ClientConn) CloseWith(err error) { c.close(err) }

// Begin starts an exchange with the request line "method target
// HTTP/1.1". Header fields follow with AddField; the head goes out with
// the first Write or End. h hears the response. On a connection with
// exchanges in flight, Begin pipelines the request after theirs (RFC 9112
// §9.3.2) when all of them have been sent whole and none is a CONNECT;
// responses are matched in order. It fails with ErrBusy when the
// connection cannot take the request now (closed, a request still being
// sent, or a CONNECT), and with a codec.Error for an invalid method or
// target.
func (c *ClientConn) Begin(h ClientHandler, method, target string) (*Exchange, error) {
	if c.closed || c.busy && !c.canPipeline(method) {
		return nil, ErrBusy
	}
	if err := codec.ValidRequestLine(method, target); err != nil {
		return nil, err
	}
	x := c.exchange()
	head, _ := codec.AppendRequestLine(x.head[:0], method, target)
	c.xgen++
	*x = Exchange{c: c, h: h, head: head, length: -1, gen: c.xgen, inFlight: true}
	x.noBody = method == "HEAD"
	x.connect = method == "CONNECT"
	x.lengthByDefault = !bodylessByDefault(method)
	c.q = append(c.q, x)
	c.exchanges++
	if !c.busy {
		c.busy = true
		c.x = x
		c.startResponse()
		c.idleTimeout, c.timedOut = 0, false
		c.armTimer()
	}
	return x, nil
}

// canPipeline reports whether a request for method may follow the
// exchanges in flight.
func (c *ClientConn) canPipeline(method string) bool {
	if method == "CONNECT" {
		return false
	}
	for _, x := range c.q {
		if !x.ended || x.connect {
			return false
		}
	}
	return true
}

// exchange takes a spare Exchange, or makes one.
func (c *ClientConn) exchange() *Exchange {
	if n := len(c.spare); n > 0 {
		x := c.spare[n-1]
		c.spare = c.spare[:n-1]
		return x
	}
	return &Exchange{c: c}
}

// startResponse readies the response side for the exchange c.x.
func (c *ClientConn) startResponse() {
	c.phase, c.framing, c.remaining, c.parsedLen = respHead, codec.FramingNone, 0, 0
	c.gotBytes, c.respKeep = false, false
}

// tail is the exchange whose request is written last.
func (c *ClientConn) tail() *Exchange { return c.q[len(c.q)-1] }

// bodylessByDefault lists the methods that get no "Content-Length: 0"
// when ended without a body (Node's useChunkedEncodingByDefault = false).
func bodylessByDefault(method string) bool {
	switch method {
	case "GET", "HEAD", "DELETE", "OPTIONS", "TRACE", "CONNECT":
		return true
	}
	return false
}

// OnData reads the response input.
func (c *ClientConn) OnData(now time.Time) {
	c.lastActive = now.UnixNano()
	c.timedOut = false
	c.process()
	c.armTimer()
}

// OnEOF handles the peer's end of stream: it completes a close-delimited
// body; any other open exchange ends with ErrHangUp or ErrTruncated.
func (c *ClientConn) OnEOF(now time.Time) {
	if c.closed {
		return
	}
	c.process()
	if c.busy && c.phase != respHead && (c.framing == codec.FramingClose || c.phase == respTunnel) {
		c.callEnd(nil)
		c.finish(nil, false)
		return
	}
	c.close(c.eofError())
}

// eofError is why an open exchange ends when the connection does.
func (c *ClientConn) eofError() error {
	if c.phase == respHead {
		return ErrHangUp
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

// OnDrain reports that the output has drained below HighWater.
func (c *ClientConn) OnDrain(now time.Time) {
	if !c.overWater {
		return
	}
	c.overWater = false
	if c.busy {
		c.callDrain()
	}
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
		c.callInformation(resp)
		c.conn.Discard(n)
		return true
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
		c.callEnd(nil)
		c.finish(nil, true)
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
			c.callEnd(nil)
			c.finish(nil, true)
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
			c.callEnd(c.dec.Trailers)
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

// finish ends the exchange c.x after its response; framed tells whether
// the response's end was framed (so the connection may carry another).
//
// A connection kept for reuse and left with nothing in flight is offered
// to the owner (Idle) before the finished exchange hears Close, as Node
// frees a socket before 'close': a request made from Close then finds it
// idle. x is given back for reuse only after its Close.
func (c *ClientConn) finish(err error, framed bool) {
	x := c.x
	reuse := framed && c.respKeep && x.ended && !x.closeReq
	c.q = c.q[:copy(c.q, c.q[1:])]
	x.inFlight = false
	if len(c.q) > 0 {
		c.x = c.q[0]
		c.startResponse()
	} else {
		c.busy, c.overWater = false, false
		c.idleTimeout, c.timedOut = 0, false
		if reuse {
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
	if !reuse {
		c.close(ErrHangUp) // for the exchanges still in flight, if any
		return
	}
	if !c.busy && len(c.conn.Input()) > 0 {
		c.close(nil) // bytes nobody asked for
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

// Pause stops the delivery of the response body; input then waits in the
// transport, up to MaxUnread.
func (x *Exchange) Pause() {
	if x.Open() {
		x.paused = true
	}
}

// Resume continues a paused body, delivering what is buffered.
func (x *Exchange) Resume() {
	if !x.Open() || !x.paused {
		return
	}
	x.paused = false
	x.c.process()
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
