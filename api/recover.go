package api

import (
	"log/slog"
	"runtime/debug"
	"sync/atomic"
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
// over, once: on the server connection's loop in a task of its own; once
// the loop has stopped (its server closed), on the server's event
// goroutine. A task the loop had no time to run before it stopped runs
// there too, once the server has finished stopping (Server.finishStop). A
// client's connection (its loop belongs to the agent) and a nil s (a
// message that never had a connection) run call on clientLate. A panic
// is logged (runGuarded) and costs nothing more. Safe from any goroutine;
// never runs call inside the caller's own call.
func (s *Socket) later(call func()) {
	if s == nil || s.srv == nil {
		clientLate.post(func() { runGuarded(slog.Default(), "listener", call) })
		return
	}
	srv := s.srv
	t := &laterTask{call: call, log: s.logger()}
	srv.laterMu.Lock()
	if srv.laterPending == nil {
		srv.laterPending = make(map[*laterTask]struct{})
	}
	srv.laterPending[t] = struct{}{}
	srv.laterMu.Unlock()
	if s.pc.SubmitLoop(func() { t.run(srv) }) != nil {
		srv.events.post(func() { t.run(srv) }) // the loop has stopped
	}
}

// clientLate runs the late calls of client connections' Sockets and of
// messages that never had a connection, in the order posted, one at a
// time, on one goroutine that lives while it has work (agent_runner.go).
// Like a loop, it must not be blocked by a callback.
var clientLate runner

// laterTask is a call of Socket.later, run once whoever gets to it first:
// the loop, or the goroutine that finishes stopping the server.
type laterTask struct {
	call func()
	log  *slog.Logger
	done atomic.Bool
}

func (t *laterTask) run(srv *Server) {
	if !t.done.CompareAndSwap(false, true) {
		return
	}
	srv.laterMu.Lock()
	delete(srv.laterPending, t)
	srv.laterMu.Unlock()
	runGuarded(t.log, "listener", t.call)
}

// runPendingLater runs the calls of Socket.later that no loop ran, once
// the loops have stopped. On the server's event goroutine.
func (s *Server) runPendingLater() {
	s.laterMu.Lock()
	pending := make([]*laterTask, 0, len(s.laterPending))
	for t := range s.laterPending {
		pending = append(pending, t)
	}
	s.laterMu.Unlock()
	for _, t := range pending {
		t.run(s)
	}
}
