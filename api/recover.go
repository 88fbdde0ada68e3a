package api

import (
	"log/slog"
	"runtime/debug"
)

// recovered is the one way the package recovers a panic of user code
// (handlers, listeners, callbacks): call it from the deferred function
// that recovered v. It logs v and the stack of the goroutine that
// panicked, as one Error record, "loophttp: <what> panicked"; the caller
// then decides what the panic costs (a listener's connection closes, a
// handler's response becomes a 500, a late listener costs nothing more).
// Safe from any goroutine.
func recovered(log *slog.Logger, what string, v any) {
	log.Error("loophttp: "+what+" panicked", "panic", v, "stack", string(debug.Stack()))
}

// runGuarded runs fn, a user callback, and reports false if it panicked:
// the panic is logged by recovered and does not unwind further. Safe from
// any goroutine.
func runGuarded(log *slog.Logger, what string, fn func()) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			recovered(log, what, v)
			ok = false
		}
	}()
	fn()
	return true
}

// later runs call, a callback of an exchange or of the connection that is
// over, on the connection's loop in a task of its own; once the loop has
// stopped (its server or client closed), on a goroutine of its own. A
// panic is logged (runGuarded) and costs nothing more. Safe from any
// goroutine; never runs call inside the caller's own call. A nil s (a
// message that never had a connection) has no loop: a goroutine of its own.
func (s *Socket) later(call func()) {
	log := slog.Default()
	if s != nil {
		log = s.logger()
	}
	task := func() { runGuarded(log, "listener", call) }
	if s == nil || s.pc.SubmitLoop(task) != nil {
		go task()
	}
}
