package engine

import (
	"bytes"
	"log/slog"
	"runtime/debug"
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
	// paused the body; past it the connection is closed. It is a safety
	// net: the transport stops reading while the body is paused
	// (ClientConn.WantsInput), so a paused body holds what one read
	// brought in, not what the server sends. Default 1 MiB.
	MaxUnread int
	// MaxInterim bounds the interim (1xx) responses one exchange takes
	// before its final response; one more ends the exchange with
	// ErrTooManyInterim and closes the connection. Default 32
	// (DefaultMaxInterim says why).
	MaxInterim int
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
	if c.HighWater < 0 || c.MaxUnread < 0 || c.MaxInterim < 0 {
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
	if c.MaxInterim == 0 {
		c.MaxInterim = DefaultMaxInterim
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// DefaultMaxInterim is ClientConfig.MaxInterim's default: 32 interim
// responses per exchange. Real servers send one 100 Continue, a few 103
// Early Hints, or a 102 Processing now and then during a long operation;
// 32 leaves room for all of those, while a server that sends 1xx without
// end can neither hold an exchange open forever nor grow what a listener
// keeps of them (each head is bounded by the Limits, so an exchange reads
// at most 32 of them). Other clients bound the same thing: Go's
// net/http Transport stopped at 5 until Go 1.24, which moved to a bound on
// the header bytes of the 1xx and final heads together because some
// servers send more than 5; curl bounds the header bytes of all the heads
// of a response together (300 KiB).
const DefaultMaxInterim = 32

// Errors an exchange can close with besides codec errors (a response that
// breaks RFC 9112 closes its exchange with the codec.Error).
var (
	// ErrHangUp: the connection closed before a complete response head
	// (Node's "socket hang up").
	ErrHangUp = NewError(ErrClosed, "socket hang up")
	// ErrTruncated: the connection closed inside the response body.
	ErrTruncated = NewError(ErrClosed, "engine: response body truncated")
	// ErrAborted: the exchange was aborted by its owner.
	ErrAborted = NewError(ErrCanceled, "engine: request aborted")
	// ErrBusy: Begin was called while an exchange is in progress, or on a
	// closed connection (or one whose server has closed its side).
	ErrBusy = NewError(ErrState, "engine: connection busy or closed")
	// ErrTooManyInterim: the server sent more than MaxInterim interim
	// (1xx) responses before the final one.
	ErrTooManyInterim = NewError(ErrLimit, "engine: too many interim (1xx) responses")
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
	respDone                    // the response is complete: End is being delivered
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
	interim     int32 // interim responses read for the exchange c.x
	phase       respPhase
	framing     codec.Framing

	busy      bool // an exchange is open (len(q) > 0)
	closed    bool
	eof       bool // the server has closed its side: nothing more will arrive
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

// Idle reports whether the connection is open with no exchange and may
// carry one (the server has not closed its side).
func (c *ClientConn) Idle() bool { return !c.busy && !c.closed && !c.eof }

// Closed reports whether the connection is closed or closing.
func (c *ClientConn) Closed() bool { return c.closed }

// Exchanges reports how many exchanges the connection has begun.
func (c *ClientConn) Exchanges() uint32 { return c.exchanges }

// WantsDrain reports whether an exchange waits for its output to drain.
func (c *ClientConn) WantsDrain() bool { return c.overWater }

// WantsInput reports whether the engine can take more input now. It is
// false while the response body (or the tunnel's byte stream) being read
// is paused (Exchange.Pause), once the server has closed its side (OnEOF:
// nothing more can arrive) and once the connection is closed; true
// otherwise, an idle connection included, so that a server's close of a
// pooled connection is noticed. The transport asks after every call into
// the connection and stops reading the socket while it is false, so that
// TCP flow control holds the server back instead of input piling up
// (MaxUnread is the safety net behind that); it reads again once it is
// true (after Resume).
func (c *ClientConn) WantsInput() bool {
	return !c.closed && !c.eof && !c.holding()
}

// holding reports whether the exchange being read has paused its body
// once its head is in: input then stays where it is.
func (c *ClientConn) holding() bool {
	return c.busy && c.x.paused && (c.phase == respBody || c.phase == respTunnel)
}

// SetNow tells the connection the time, for a call that did not come with
// one (work handed to the loop from another goroutine). The client's
// timers take the time of the events that move them.
func (c *ClientConn) SetNow(now time.Time) {}

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
	if c.closed || c.eof || c.busy && !c.canPipeline(method) {
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
	c.phase, c.framing, c.remaining, c.parsedLen, c.interim = respHead, codec.FramingNone, 0, 0, 0
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
