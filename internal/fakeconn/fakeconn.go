// Package fakeconn is an in-memory engine.Conn for tests and fuzzing: input
// is appended by the test, output collected, and the transport's closing
// and timer calls recorded. It is not safe for concurrent use.
package fakeconn

import "time"

// Conn implements engine.Conn in memory.
type Conn struct {
	In          []byte    // input not yet discarded
	Out         []byte    // everything written
	Pending     int       // reported by Buffered: output not yet "on the wire"
	HoldOutput  bool      // count written bytes into Pending until the test drains
	Closed      bool      // Close was called
	WriteClosed bool      // CloseWrite was called
	Deadline    time.Time // the armed deadline; zero when stopped
	Flushes     int       // Flush calls
	MaxIn       int       // the most input ever buffered at once
}

// Feed appends p to the input, as a transport does when bytes arrive.
func (f *Conn) Feed(p []byte) {
	f.In = append(f.In, p...)
	f.MaxIn = max(f.MaxIn, len(f.In))
}

// Input returns the buffered input with no spare capacity, so an over-read
// panics.
func (f *Conn) Input() []byte { return f.In[:len(f.In):len(f.In)] }

// Discard drops n bytes of input.
func (f *Conn) Discard(n int) { f.In = f.In[n:] }

// Write collects p. Writing after a close is a bug in the engine: it panics.
func (f *Conn) Write(p []byte) {
	if f.Closed || f.WriteClosed {
		panic("fakeconn: write after close")
	}
	f.Out = append(f.Out, p...)
	if f.HoldOutput {
		f.Pending += len(p)
	}
}

// Flush counts flushes.
func (f *Conn) Flush() { f.Flushes++ }

// Buffered reports Pending.
func (f *Conn) Buffered() int { return f.Pending }

// CloseWrite records a shutdown of the write side.
func (f *Conn) CloseWrite() { f.WriteClosed = true }

// Close records the close.
func (f *Conn) Close() { f.Closed = true }

// SetDeadline records the deadline.
func (f *Conn) SetDeadline(t time.Time) { f.Deadline = t }

// Ended reports whether the peer has seen the connection end: its write
// side shut (the first stage of a lingering close) or the whole of it
// closed.
func (f *Conn) Ended() bool { return f.Closed || f.WriteClosed }
