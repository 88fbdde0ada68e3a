package api

import (
	"github.com/loophttp/loophttp/engine"
	"github.com/loophttp/loophttp/poller"
)

// The listener registrations. Events may fire as soon as the request has
// started (Write or End; Get ends at once): a listener for 'response',
// 'information', 'continue', 'timeout' or 'drain' added later misses
// what fired before. One for an event that fires once ('socket', 'finish',
// 'error', 'close', 'abort') does not: added after it fired, it runs at
// once (see lateCall).

// OnResponse adds a listener for 'response': the final response head.
func (r *ClientRequest) OnResponse(fn func(*IncomingMessage)) { on(r, &r.onResponse, fn) }

// OnSocket adds a listener for 'socket': exactly once per request, when it
// is bound to a connection (a pooled one or a new one). Added after it
// fired, fn gets the socket at once (see lateCall).
func (r *ClientRequest) OnSocket(fn func(*Socket)) {
	r.mu.Lock()
	if !r.socketed {
		r.onSocket = append(r.onSocket, fn)
		r.mu.Unlock()
		return
	}
	sock := r.sock
	r.lateCall(func() { fn(sock) }) // unlocks
}

// OnInformation adds a listener for 'information': an interim 1xx
// response (100 included).
func (r *ClientRequest) OnInformation(fn func(Information)) { on(r, &r.onInformation, fn) }

// OnContinue adds a listener for 'continue': the server answered
// "Expect: 100-continue" with 100 Continue.
func (r *ClientRequest) OnContinue(fn func()) { on(r, &r.onContinue, fn) }

// OnFinish adds a listener for 'finish': the whole request was handed to
// the connection. Added after it fired, fn runs at once (see lateCall).
func (r *ClientRequest) OnFinish(fn func()) { onOnce(r, &r.onFinish, &r.finished, fn) }

// OnError adds a listener for 'error': the request failed (refused, DNS,
// ParseError, ErrSocketHangUp, ErrResponseAborted, Destroy). It fires at
// most once, and OnClose follows. Added after it fired, fn gets the error
// at once (see lateCall).
func (r *ClientRequest) OnError(fn func(error)) {
	r.mu.Lock()
	if !r.errored {
		if !r.closed { // a request closed without an error never errs
			r.onError = append(r.onError, fn)
		}
		r.mu.Unlock()
		return
	}
	err := r.failed
	r.lateCall(func() { fn(err) }) // unlocks
}

// OnClose adds a listener for 'close': the request is over, whatever the
// outcome. It fires exactly once; added after it fired, fn runs at once
// (see lateCall).
func (r *ClientRequest) OnClose(fn func()) { onOnce(r, &r.onClose, &r.closed, fn) }

// OnTimeout adds a listener for 'timeout' (see SetTimeout).
func (r *ClientRequest) OnTimeout(fn func()) { on(r, &r.onTimeout, fn) }

// OnDrain adds a listener for 'drain': a Write that returned false may be
// followed by more.
func (r *ClientRequest) OnDrain(fn func()) { on(r, &r.onDrain, fn) }

// OnAbort adds a listener for 'abort' (see Abort). Added after it fired,
// fn runs at once (see lateCall).
func (r *ClientRequest) OnAbort(fn func()) { onOnce(r, &r.onAbort, &r.aborted, fn) }

func on[F any](r *ClientRequest, list *[]F, fn F) {
	r.mu.Lock()
	*list = append(*list, fn)
	r.mu.Unlock()
}

// onOnce adds fn to the listeners of an event that fires once, or, when
// fired says it has, calls it at once.
func onOnce(r *ClientRequest, list *[]func(), fired *bool, fn func()) {
	r.mu.Lock()
	if !*fired {
		if !r.closed { // a closed request fires nothing more
			*list = append(*list, fn)
		}
		r.mu.Unlock()
		return
	}
	r.lateCall(fn) // unlocks
}

// lateCall runs call, the call of a listener added after its event fired,
// "at once" as a resolved promise would: never inside the registering
// call, never beside another callback of the request, and right after
// the ones running now. While the request lasts it runs on the loop of
// its connection (a task, or at the end of the event in progress). Once
// the request is over (its 'close' has been delivered) no other callback
// of it can run, and its connection may be gone or serving another
// request: call runs on the agent's runner (see runner). It is called
// with r.mu held and releases it.
func (r *ClientRequest) lateCall(call func()) {
	r.late = append(r.late, call)
	switch {
	case r.lateBusy:
		r.mu.Unlock() // whoever runs the request's callbacks runs it next
	case r.closed:
		r.lateBusy = true
		r.mu.Unlock()
		r.agent.runner.post(r.runLate)
	default:
		pc, gen := r.pc, r.pgen
		r.mu.Unlock()
		if pc != nil {
			// If the connection closes before the task runs, the request's
			// end (Close, or attach on a retry) runs the call.
			_ = pc.Submit(gen, func() { r.runLateOnLoop(pc) })
		}
	}
}

// runLateOnLoop runs the late calls on the loop of pc, the request's
// connection, unless another goroutine does, or the request has moved to
// another connection (a retry: its loop runs them).
func (r *ClientRequest) runLateOnLoop(pc *poller.Conn) {
	r.mu.Lock()
	if r.lateBusy || len(r.late) == 0 || r.pc != pc {
		r.mu.Unlock()
		return
	}
	r.lateBusy = true
	r.mu.Unlock()
	r.runLate()
}

// runLate runs the late calls, in order, until there are none. The
// caller has set lateBusy; runLate clears it.
func (r *ClientRequest) runLate() { r.runLateCalls(true) }

// runLateCalls is runLate; it keeps lateBusy set unless release.
func (r *ClientRequest) runLateCalls(release bool) {
	for {
		r.mu.Lock()
		if len(r.late) == 0 {
			r.late = nil
			r.lateBusy = r.lateBusy && !release
			r.mu.Unlock()
			return
		}
		call := r.late[0]
		r.late[0] = nil
		r.late = r.late[1:]
		r.mu.Unlock()
		r.call(call)
	}
}

// listeners returns a copy of the slice header of a listener list.
func (r *ClientRequest) listeners(list *[]func()) []func() {
	r.mu.Lock()
	defer r.mu.Unlock()
	return *list
}

// finish ends the request: OnError (when err is not nil), then OnClose,
// each once; a response cut short hears of it first.
func (r *ClientRequest) finish(err error) { r.end(err, false) }

// end ends the request: 'abort' (when abort), then as finish says; a
// request stopped by Abort or Destroy ends as the stop says, whatever err
// and abort are. It records the events as fired, under the lock that listeners are added
// under, so each listener is either called here or by lateCall.
func (r *ClientRequest) end(err error, abort bool) {
	r.mu.Lock()
	if r.closed { // ended already: every event that fires once has fired
		r.mu.Unlock()
		return
	}
	if stop := r.stopping; stop != nil { // Abort or Destroy decides, whatever ended the exchange
		err, abort = stop.err, stop.abort
	}
	r.state, r.failed = reqDone, err
	r.aborted, r.errored, r.closed = abort, err != nil, true
	// From here on the lists emitEnding reads (onAbort, onError, onClose,
	// pending) and res no longer change: a listener added now is late
	// (lateCall), a write fails at once.
	for i := range r.pending {
		r.pending[i].release() // their callbacks are still owed
	}
	for i := range r.replay {
		r.replay[i].release()
	}
	r.replay = nil
	if res := r.res; res != nil {
		// The response's events fire with the request's: a listener
		// added from now on is late, and runs after those added before.
		res.st.lmu.Lock()
		if err != nil && !res.Complete {
			res.st.err = err
			res.st.fired.Or(firedError)
		}
		res.st.fired.Or(firedClose)
		res.st.lmu.Unlock()
	}
	if r.lateBusy {
		// Another goroutine runs the request's late calls (a task of the
		// loop the request was on before a retry): it runs the ending
		// after them.
		r.late = append(r.late, r.emitEnding)
		r.mu.Unlock()
		return
	}
	r.lateBusy = true
	early := len(r.late) > 0
	r.mu.Unlock()
	if early {
		r.runLateCalls(false) // those added before the end first: 'socket' before 'close'
	}
	r.emitEnding()
	r.runLate() // listeners added while the ending ran
}

// emitEnding runs the callbacks of the request's end: the waiting write
// callbacks, 'abort', the response's and the request's 'error', 'close'.
// It reads without the lock what end froze (see end): it runs after end,
// on end's goroutine or after it in the request's late calls.
func (r *ClientRequest) emitEnding() {
	err, res, ops, onError, onClose := r.failed, r.res, r.pending, r.onError, r.onClose
	if r.aborted {
		r.emit(r.onAbort)
	}
	// Write callbacks still waiting hear that the request is gone.
	for _, op := range ops {
		if op.cb != nil {
			r.call(func() { op.cb(ErrConnectionGone) })
		}
	}
	if err != nil {
		if res != nil && !res.Complete {
			res.st.lmu.Lock()
			fns := res.st.onError
			res.st.lmu.Unlock()
			for _, fn := range fns {
				r.call(func() { fn(err) })
			}
		}
		for _, fn := range onError {
			r.call(func() { fn(err) })
		}
	}
	for _, fn := range onClose {
		r.call(fn)
	}
	if res != nil {
		res.st.lmu.Lock()
		fns := res.st.onClose
		res.st.lmu.Unlock()
		for _, fn := range fns {
			r.call(fn)
		}
	}
}

// emit runs listeners, each with panics recovered.
func (r *ClientRequest) emit(fns []func()) {
	for _, fn := range fns {
		r.call(fn)
	}
}

// call runs a user callback. A panic is recovered and logged; the request
// is then destroyed with engine.ErrHandlerPanic (OnError, OnClose), and
// the program carries on.
func (r *ClientRequest) call(fn func()) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		recovered(r.agent.logger(), "client callback", v)
		r.mu.Lock()
		x := r.x
		bound := r.state == reqAttached
		r.mu.Unlock()
		if bound && x != nil && x.Open() {
			x.Abort(engine.ErrHandlerPanic)
		}
	}()
	fn()
}
