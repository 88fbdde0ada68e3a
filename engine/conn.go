package engine

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/loophttp/loophttp/codec"
)

// Conn is the transport under one server connection: poller implements it
// over a gnet connection, tests implement it in memory. The engine calls it
// only from the connection's loop, from inside one of ServerConn's methods.
type Conn interface {
	// Input returns the input received and not yet discarded. The slice is
	// borrowed: it is valid until Discard is called or the engine returns.
	Input() []byte
	// Discard drops the first n bytes of the input.
	Discard(n int)
	// Write appends p to the output. The bytes are copied; they reach the
	// wire when the transport flushes (after the engine returns, or on Flush).
	Write(p []byte)
	// Flush asks for the output to be written as soon as possible. The
	// transport flushes after every engine call anyway; Flush matters for
	// output produced outside OnData (a response finished later).
	Flush()
	// Buffered reports the output bytes accepted by Write and not yet
	// written to the wire.
	Buffered() int
	// CloseWrite flushes the output, then shuts down the write side (FIN)
	// while the read side stays open to drain the peer.
	CloseWrite()
	// Close flushes what it can and closes the connection. The transport
	// then calls ServerConn.OnClose.
	Close()
	// SetDeadline arms the connection's single timer for t, replacing any
	// earlier deadline; the zero time stops it. When it fires the
	// transport calls ServerConn.OnTimer.
	SetDeadline(t time.Time)
}

// Handler receives the requests of a connection. Every method is called on
// the connection's loop and must not block; it may answer at once, or keep
// the Stream and answer later from the loop (the api layer hands calls from
// other goroutines to the loop).
type Handler interface {
	// Request is called when a request head is complete and valid. req
	// and its views are valid only during the call; copy what must live
	// longer. The stream lives until Close is called for it.
	Request(s *Stream, req *codec.Request)
	// Body delivers the next piece of the request body. chunk is borrowed:
	// valid only during the call.
	Body(s *Stream, chunk []byte)
	// End reports that the request body is complete (also for requests
	// without a body). trailers are valid only during the call.
	End(s *Stream, trailers []codec.Header)
	// Drain reports that output backpressure has ended: a Write that
	// returned false may be followed by more writes.
	Drain(s *Stream)
	// Close reports that the exchange is over: err is nil when the response
	// was sent in full, else why it was cut short (ErrConnClosed, a
	// timeout, a protocol error, ErrHandlerPanic). It is called exactly once
	// per stream, also after the handler panicked.
	Close(s *Stream, err error)
}

// Disabled, as a timeout, turns that timeout off.
const Disabled time.Duration = -1

// Config configures server connections. The zero value of each field means
// its default; Disabled turns a timeout off. A Config is shared by every
// connection of a server and must not change after NewServerConn.
type Config struct {
	Limits codec.Limits

	// HeadersTimeout bounds the time from the start of a request (the
	// connection's open, or the end of the previous response) to its
	// complete head: the slowloris guard. Default 60 s.
	HeadersTimeout time.Duration
	// KeepAliveTimeout bounds the idle time between a response and the
	// first byte of the next request. Default 5 s.
	KeepAliveTimeout time.Duration
	// IdleTimeout closes a connection that neither reads nor writes for
	// this long while a request is in progress (IoT.js's server timeout).
	// Default 120 s.
	IdleTimeout time.Duration
	// HighWater is the pending output, in bytes, above which Stream.Write
	// reports false and no further pipelined request is taken.
	// Default 64 KiB.
	HighWater int
	// MaxDiscard is how much unread request body the engine reads and
	// drops after the response has ended, to keep the connection; beyond
	// it the connection is closed. Default 256 KiB.
	MaxDiscard int64
	// MaxUnread bounds the input buffered while the engine is not reading
	// it (a response is pending, the output is over HighWater, or the
	// handler paused the body): past it the connection is closed, so a
	// peer that pipelines without reading cannot grow the server's memory.
	// Default 1 MiB.
	MaxUnread int
	// CloseDrainTimeout bounds the lingering close (RFC 9112 §9.6) that
	// ends a connection the server closes while input may be unread (a
	// protocol error, a body the handler did not read, Connection: close
	// with more input behind): once every byte of output has reached the
	// kernel, the write side is shut and input is read and dropped until
	// the peer closes, or until nothing has arrived for this long.
	// Default 1 s.
	CloseDrainTimeout time.Duration
	// LingerTime bounds that lingering in all, however often the peer
	// sends (nginx's lingering_time). Default 30 s.
	LingerTime time.Duration
	// ManualContinue leaves "Expect: 100-continue" to the handler
	// (Stream.WriteContinue) instead of answering 100 Continue before
	// Request is called.
	ManualContinue bool
	// Logger receives recovered panics; nil means slog.Default().
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultHeadersTimeout    = 60 * time.Second
	DefaultKeepAliveTimeout  = 5 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultHighWater         = 64 << 10
	DefaultMaxDiscard        = 256 << 10
	DefaultMaxUnread         = 1 << 20
	DefaultCloseDrainTimeout = time.Second
	DefaultLingerTime        = 30 * time.Second
)

// ErrInvalidConfig reports a Config with a negative size or a negative
// timeout other than Disabled.
var ErrInvalidConfig = NewError(ErrInvalid, "engine: invalid config")

// Resolve validates c and returns a copy with every zero field set to its
// default.
func (c Config) Resolve() (Config, error) {
	if err := c.Limits.Validate(); err != nil {
		return c, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if c.HighWater < 0 || c.MaxDiscard < 0 || c.MaxUnread < 0 {
		return c, ErrInvalidConfig
	}
	for _, d := range []*time.Duration{&c.HeadersTimeout, &c.KeepAliveTimeout, &c.IdleTimeout, &c.CloseDrainTimeout, &c.LingerTime} {
		if *d < 0 && *d != Disabled {
			return c, ErrInvalidConfig
		}
	}
	c.Limits = c.Limits.Resolved()
	c.HeadersTimeout = orDuration(c.HeadersTimeout, DefaultHeadersTimeout)
	c.KeepAliveTimeout = orDuration(c.KeepAliveTimeout, DefaultKeepAliveTimeout)
	c.IdleTimeout = orDuration(c.IdleTimeout, DefaultIdleTimeout)
	c.CloseDrainTimeout = orDuration(c.CloseDrainTimeout, DefaultCloseDrainTimeout)
	c.LingerTime = orDuration(c.LingerTime, DefaultLingerTime)
	if c.HighWater == 0 {
		c.HighWater = DefaultHighWater
	}
	if c.MaxUnread == 0 {
		c.MaxUnread = DefaultMaxUnread
	}
	if c.MaxDiscard == 0 {
		c.MaxDiscard = DefaultMaxDiscard
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

func orDuration(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Errors a stream can close with besides codec errors.
var (
	// ErrConnClosed: the connection closed before the response was complete.
	ErrConnClosed = NewError(ErrClosed, "engine: connection closed")
	// ErrHeadersTimeout: the request head did not complete in time.
	ErrHeadersTimeout = NewError(ErrTimeout, "engine: headers timeout")
	// ErrIdleTimeout: nothing was read or written for IdleTimeout.
	ErrIdleTimeout = NewError(ErrTimeout, "engine: idle timeout")
	// ErrHandlerPanic: a handler callback panicked.
	ErrHandlerPanic = NewError(ErrPanic, "engine: handler panicked")
	// ErrTooMuchUnread: the peer sent more than MaxUnread bytes that the
	// engine was not ready to read.
	ErrTooMuchUnread = NewError(ErrLimit, "engine: too much unread input")
	// ErrBodyIncomplete: the connection ended inside the request body.
	ErrBodyIncomplete = NewError(ErrClosed, "engine: request body incomplete")
	// ErrStreamDone: a response method was called after End or Close.
	ErrStreamDone = NewError(ErrState, "engine: response already ended")
	// ErrHeadSent: a head method was called after the head went out.
	ErrHeadSent = NewError(ErrState, "engine: response head already sent")
	// ErrBodyStarted: Detach or Tunnel was called after a request body
	// chunk had reached Handler.Body.
	ErrBodyStarted = NewError(ErrState, "engine: request body already started")
	// ErrLengthMismatch: the body written does not match the Content-Length
	// the handler set.
	ErrLengthMismatch = NewError(ErrState, "engine: body length differs from Content-Length")
)
