package engine

import (
	"log/slog"
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
