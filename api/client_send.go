package api

import (
	"errors"
	"time"

	"github.com/loophttp/loophttp/engine"
	"github.com/loophttp/loophttp/poller"
)

// Write sends a piece of the body (chunked unless a Content-Length header
// was set), starting the request if it has not started. The caller may
// reuse data once Write returns.
// Data that would take the body past the Content-Length set is not sent:
// Write reports false, cb hears ErrContentLengthMismatch, and the request
// fails with it (as Destroy).
// cb, if not nil, runs once the engine has taken the data, or with the
// error that kept it from the wire (ErrWriteAfterEnd, ErrConnectionGone),
// on the loop (see ClientRequest): made on the loop with nothing ahead of
// it, the data goes to the engine at once and cb runs before Write
// returns, and data is not copied. Otherwise data is copied into a
// buffer from bytebufferpool until the engine takes it. It reports false
// when the request has buffered too much: wait for OnDrain.
func (r *ClientRequest) Write(data []byte, cb func(error)) bool {
	r.mu.Lock()
	if r.ended || r.state == reqDone {
		if cb == nil {
			r.mu.Unlock()
			return false
		}
		// Never inside the caller's call: after the request's callbacks
		// in progress, where they run.
		r.lateCall(func() { cb(ErrWriteAfterEnd) }) // unlocks
		return false
	}
	if n, ok := declaredLength(r.fields); ok && r.given+int64(len(data)) > n {
		r.ended = true
		r.mu.Unlock()
		r.mismatch(cb)
		return false
	}
	r.given += int64(len(data))
	r.queued += len(data)
	ok := !r.full && r.queued < r.agent.highWater()
	r.owed = r.owed || !ok
	r.send(clientOp{pooledBody: pooledBody{data: data}, cb: cb}) // unlocks
	return ok
}

// End finishes the request with data (framed by its length when nothing
// was written before), starting it if it has not started. cb, if not nil,
// runs once with the outcome when the request has been handed to the
// connection (an OnFinish listener that also hears errors). A second End
// changes nothing and reports ErrWriteAfterEnd; its cb, if not nil, hears
// it too, after the call. When a Content-Length was
// set and the body, data included, does not meet it, End sends nothing
// more, reports ErrContentLengthMismatch and fails the request with it.
func (r *ClientRequest) End(data []byte, cb func(error)) error {
	r.mu.Lock()
	if r.ended || r.state == reqDone {
		if cb == nil {
			r.mu.Unlock()
			return ErrWriteAfterEnd
		}
		r.lateCall(func() { cb(ErrWriteAfterEnd) }) // unlocks; never inside the call
		return ErrWriteAfterEnd
	}
	r.ended = true
	if n, ok := declaredLength(r.fields); ok && r.given+int64(len(data)) != n {
		r.mu.Unlock()
		r.mismatch(cb)
		return ErrContentLengthMismatch
	}
	r.send(clientOp{pooledBody: pooledBody{data: data}, cb: cb, end: true}) // unlocks
	return nil
}

// mismatch fails a request whose body broke its Content-Length: data is
// not sent, the request is destroyed with ErrContentLengthMismatch (its
// connection, if any, closes after what was sent), and cb, if not nil,
// hears it after the request's own callbacks in progress.
func (r *ClientRequest) mismatch(cb func(error)) {
	r.Destroy(ErrContentLengthMismatch)
	if cb != nil {
		r.mu.Lock()
		r.lateCall(func() { cb(ErrContentLengthMismatch) }) // unlocks
	}
}

// send records op before the connection is bound, or hands it to the
// connection's loop. op.data is the caller's: what is kept beyond the call
// is copied (bodyCopy). It is called with r.mu held and releases it.
func (r *ClientRequest) send(op clientOp) {
	switch r.state {
	case reqNew:
		op.pooledBody = bodyCopy(op.data)
		r.pending = append(r.pending, op)
		r.state = reqWaiting
		r.mu.Unlock()
		r.agent.acquire(r, false)
	case reqWaiting:
		op.pooledBody = bodyCopy(op.data)
		r.pending = append(r.pending, op)
		r.mu.Unlock()
	default:
		r.sendBound(op) // unlocks
	}
}

// sendBound gives op to the bound exchange. On the connection's loop,
// inside one of its events, with no earlier op still on its way there, it
// goes straight to the engine; from anywhere else it is handed to the
// loop, and ops keep the order of the calls. An op whose exchange is over
// when it gets there is not sent: its callback hears ErrConnectionGone.
// It is called with r.mu held and releases it.
func (r *ClientRequest) sendBound(op clientOp) {
	pc, gen, x, xgen := r.pc, r.pgen, r.x, r.xgen
	if r.ahead == 0 && pc.InEvent() {
		r.mu.Unlock()
		if pc.Gen() == gen && x.Open() && x.Gen() == xgen {
			r.apply(x, &op, false)
		} else {
			r.dropped(&op)
		}
		return
	}
	r.ahead++
	r.mu.Unlock()
	bound := op // only this copy escapes: the direct path keeps op inline
	bound.pooledBody = bodyCopy(op.data)
	err := pc.Submit(gen, func() {
		r.mu.Lock()
		r.ahead--
		r.mu.Unlock()
		if x.Open() && x.Gen() == xgen {
			r.apply(x, &bound, false)
		} else {
			r.dropped(&bound)
		}
	})
	if err != nil {
		r.mu.Lock()
		r.ahead--
		r.mu.Unlock()
		r.dropped(&bound)
	}
}

// dropped settles an op that never reached the engine: its buffer goes
// back to the pool and its callback hears ErrConnectionGone, after the
// request's callbacks in progress.
func (r *ClientRequest) dropped(op *clientOp) {
	op.release()
	if cb := op.cb; cb != nil {
		op.cb = nil
		r.mu.Lock()
		r.lateCall(func() { cb(ErrConnectionGone) }) // unlocks
	}
}

// SetTimeout sets the request's idle timeout: OnTimeout fires once nothing
// has been read or written for d (and again after each later idle period);
// it does not destroy anything by itself. The timer ends with the
// response. cb, if not nil, is added as an OnTimeout listener. 0 turns it
// off.
func (r *ClientRequest) SetTimeout(d time.Duration, cb func()) {
	r.mu.Lock()
	if cb != nil {
		r.onTimeout = append(r.onTimeout, cb)
	}
	r.timeout = d
	bound := r.state == reqAttached
	r.mu.Unlock()
	if bound {
		r.onLoop(func(x *engine.Exchange) { x.SetIdleTimeout(d) })
	}
}

// Abort ends the request without an error: 'abort', then 'close' (IoT.js
// and Node's abort). The connection, if any, is destroyed.
func (r *ClientRequest) Abort() { r.stop(nil, true) }

// Destroy ends the request with err (ErrDestroyed when nil): OnError, then
// OnClose. The connection, if any, is destroyed.
func (r *ClientRequest) Destroy(err error) {
	if err == nil {
		err = ErrDestroyed
	}
	r.stop(err, false)
}

// stop implements Abort and Destroy.
func (r *ClientRequest) stop(err error, abort bool) {
	r.mu.Lock()
	if r.state == reqDone || r.stopping != nil {
		r.mu.Unlock()
		return
	}
	r.stopping = &stopCall{err: err, abort: abort}
	if r.state != reqAttached { // not bound: the agent skips a request that is done
		r.state = reqDone
		r.mu.Unlock()
		r.agent.runner.post(r.finishStopped) // never inside the caller's call
		return
	}
	r.mu.Unlock()
	// Close follows on the loop (see reqHandler.Close), also when the
	// exchange ends on its own before this runs.
	r.onLoop(func(x *engine.Exchange) { x.Abort(err) })
}

// stopCall is an Abort or Destroy waiting to be carried out.
type stopCall struct {
	err   error
	abort bool
}

// finishStopped ends a stopped request as its Abort ('abort', 'close')
// or Destroy ('error', 'close') says, whatever ended its exchange.
func (r *ClientRequest) finishStopped() { r.end(nil, false) }

// onLoop runs fn with the exchange on the bound connection's loop while
// the exchange lasts; it drops fn otherwise.
func (r *ClientRequest) onLoop(fn func(x *engine.Exchange)) {
	r.mu.Lock()
	pc, gen, x, xgen := r.pc, r.pgen, r.x, r.xgen
	r.mu.Unlock()
	if pc == nil {
		return
	}
	_ = pc.Submit(gen, func() {
		if x.Open() && x.Gen() == xgen {
			fn(x)
		}
	})
}

// apply carries out a Write or End on the loop. Its callback runs once:
// apply clears op.cb, so a replay of the request (retry) does not call it
// again, and 'finish' fires once however often the request is sent.
//
// The connection may close inside the call (a write fails and the
// transport closes at once): then the request has been retried, and the
// replay carries op's callback, or it has failed, and the callback hears
// the request's error. keep says that op is part of the replay: its data
// stays until the request ends; otherwise its buffer goes back to the
// pool once the engine has taken the data.
func (r *ClientRequest) apply(x *engine.Exchange, op *clientOp, keep bool) {
	var err error
	ok := true
	if op.end {
		err = x.End(op.data)
	} else {
		ok, err = x.Write(op.data)
	}
	n := len(op.data)
	if !keep {
		op.release()
	}
	open := x.Open()
	r.mu.Lock() // one lock for the bookkeeping, unless cb runs in between
	if !op.end {
		r.queued -= n
		r.full = r.full || !ok && err == nil
	}
	if !open {
		if r.x != x { // retried
			r.mu.Unlock()
			return
		}
		if err == nil {
			err = r.failed // nil when the exchange simply completed
		}
	}
	if cb := op.cb; cb != nil {
		op.cb = nil
		r.mu.Unlock()
		r.call(func() { cb(err) })
		r.mu.Lock()
	}
	var finish []func()
	first := op.end && err == nil && !r.finished
	if first {
		r.finished = true
		finish, r.onFinish = r.onFinish, nil
	}
	due := r.takeDrain()
	drain := r.onDrain
	r.mu.Unlock()
	if first {
		r.emit(finish)
	}
	if due {
		r.emit(drain)
	}
}

// takeDrain reports whether an owed 'drain' is due now (the buffers have
// room again), and if so marks it paid. Called with mu held.
func (r *ClientRequest) takeDrain() bool {
	due := r.owed && !r.full && r.queued < r.agent.highWater()
	if due {
		r.owed = false
	}
	return due
}

// drainIfOwed fires OnDrain once the request's buffers have room again.
func (r *ClientRequest) drainIfOwed() {
	r.mu.Lock()
	due := r.takeDrain()
	fns := r.onDrain
	r.mu.Unlock()
	if due {
		r.emit(fns)
	}
}

// attach binds the request to an idle client connection and sends what it
// has. It runs on pc's loop; it reports false when the request no longer
// wants a connection (done) or the connection cannot take it.
func (r *ClientRequest) attach(pc *poller.Conn, ac *agentConn) bool {
	r.mu.Lock()
	if r.state != reqWaiting {
		r.mu.Unlock()
		return false
	}
	x, err := pc.Client().Begin((*reqHandler)(r), r.Method, r.Path)
	if err != nil {
		r.mu.Unlock()
		return false
	}
	if !r.hostHdr {
		_ = x.AddField("Host", r.Host)
	}
	for _, f := range r.fields {
		// Validated by SetHeader. A framing field the engine cannot honour
		// (Content-Length beside Transfer-Encoding: chunked) is left out:
		// the head never carries both.
		_ = x.AddField(f.Name, f.Value)
	}
	if !r.agent.keepAlive() {
		_ = x.AddField("Connection", "close")
	}
	r.state, r.pc, r.pgen, r.x, r.xgen, r.ac = reqAttached, pc, pc.Gen(), x, x.Gen(), ac
	ops := r.pending
	r.pending = nil
	r.ahead += len(ops) // a Write made meanwhile on the loop queues behind them
	keep := r.ended && !r.retried
	if keep {
		r.replay = ops // the whole request: it may be sent again
	}
	first := !r.socketed
	r.socketed = true
	if first {
		r.sock = ac.sock
	}
	fns, timeout := r.onSocket, r.timeout
	r.onSocket = nil
	r.mu.Unlock()
	ac.sock.request = r
	if first {
		for _, fn := range fns {
			r.call(func() { fn(ac.sock) })
		}
	}
	if timeout > 0 {
		x.SetIdleTimeout(timeout)
	}
	for i := range ops { // ops may be the replay: apply marks the callbacks it ran
		if !x.Open() {
			break
		}
		r.apply(x, &ops[i], keep)
	}
	r.mu.Lock()
	r.ahead -= len(ops)
	// Listeners added late while the request waited (a retry).
	late := !r.lateBusy && len(r.late) > 0
	r.lateBusy = r.lateBusy || late
	r.mu.Unlock()
	if late {
		r.runLate()
	}
	return true
}

// waiting reports whether r is waiting for a connection.
func (r *ClientRequest) waiting() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state == reqWaiting
}

// retry reports whether a failed exchange may be sent again on a fresh
// connection, and if so starts that: only when nothing of a response
// arrived on a reused connection (the server closed it as the request
// went out), the method is idempotent, and the whole request is known.
func (r *ClientRequest) retry(x *engine.Exchange, err error) bool {
	if !errors.Is(err, engine.ErrHangUp) || x.GotResponse() || !x.Reused() || !idempotent(r.Method) {
		return false
	}
	r.mu.Lock()
	if r.replay == nil || r.retried || r.stopping != nil {
		r.mu.Unlock()
		return false
	}
	r.retried = true
	r.pending, r.replay = r.replay, nil
	r.state, r.pc, r.x = reqWaiting, nil, nil
	r.mu.Unlock()
	r.agent.acquire(r, true)
	return true
}

// idempotent lists the methods RFC 9110 §9.2.2 makes safe to repeat.
func idempotent(method string) bool {
	switch method {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}
