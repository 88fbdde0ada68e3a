package engine

import "errors"

// The kinds of error loophttp returns: a closed set. Every error value the
// engine, poller and api packages define wraps exactly one kind, so
// errors.Is(err, engine.ErrClosed) holds for api.ErrConnectionGone,
// poller.ErrConnGone and ErrHangUp alike, whichever layer returned it.
// Errors from the codec (a peer that broke RFC 9112) are codec.Error
// values and errors from the operating system are returned wrapped as
// they are: neither is a kind.
var (
	// ErrClosed: the connection, server, client or agent is closed, or
	// closed before the call's work was done.
	ErrClosed = errors.New("closed")
	// ErrTimeout: a deadline passed.
	ErrTimeout = errors.New("timeout")
	// ErrInvalid: an argument, an option or a config is invalid.
	ErrInvalid = errors.New("invalid argument")
	// ErrState: a call that the state of its object does not allow now:
	// after the end, after the head went out, on a busy connection, or a
	// body that contradicts its own head.
	ErrState = errors.New("call not allowed in this state")
	// ErrLimit: a peer went past a bound loophttp keeps.
	ErrLimit = errors.New("limit exceeded")
	// ErrCanceled: the owner aborted or destroyed the work.
	ErrCanceled = errors.New("canceled")
	// ErrPanic: a user callback panicked.
	ErrPanic = errors.New("callback panicked")
)

// kindError is an error of one kind with its own message.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// NewError returns an error with the message msg that wraps kind, one of
// the kinds above. Packages above the engine define their error values
// with it.
func NewError(kind error, msg string) error {
	return &kindError{msg: msg, kind: kind}
}
