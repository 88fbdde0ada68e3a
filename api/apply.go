package api

import (
	"github.com/loophttp/loophttp/engine"
)

// How the calls recorded on a ServerResponse reach the engine: queued
// under the response's lock and carried out on the loop (queue, apply), or
// at once for an End from the exchange's own callback (endNow, finishEnd);
// and the response's events as the loop fires them.

// queue records o and makes sure the loop will carry it out: right after
// the current callback if one of this exchange is running, else through a
// task. When the exchange or its connection is gone, o fails at once: its
// callback gets ErrConnectionGone as a late listener would (addLate).
// Called with mu held.
func (s *resState) queue(o op) {
	own := s.ex.inOwnCallback()
	if s.gone == nil && !own && !s.scheduled {
		sock := s.ex.sock
		if err := sock.pc.SubmitConn(s.ex.gen, drainSocket); err != nil {
			s.gone = ErrConnectionGone
		} else {
			s.scheduled = true
		}
	}
	if s.gone != nil && !own {
		o.release()
		if cb := o.cb; cb != nil {
			call := func() { cb(ErrConnectionGone) }
			if s.ex.sock.srv.pool != nil {
				s.ex.post(call) // on the exchange's worker
			} else {
				s.late = append(s.late, call) // the loop retires the exchange soon and runs it then
			}
		}
		return
	}
	s.ops = append(s.ops, o)
	if own {
		s.ownQueued = true
	}
}

// apply carries out the queued calls on the loop, in order. The head goes
// out with the first Write or End.
//
// A call from the exchange's own callback queues without a task, relying
// on the apply that follows the callback (deliver), which runs only then
// (ownQueued); a call from any other goroutine posts a task
// (drainSocket), so nothing it queues waits for a callback to end.
func (s *resState) apply() {
	s.mu.Lock()
	s.ownQueued = false
	ops := s.ops
	s.ops, s.spare, s.scheduled = s.spare[:0], nil, false
	gone := s.gone
	status, reason := s.status, s.reason
	fields := s.hdr // fixed once the head is decided: read without the lock below
	trailers := s.trailers
	s.mu.Unlock()

	st := s.ex.stream
	outer := !s.applying // a Resume below may deliver events, which apply again
	s.applying = true
	defer func() {
		for i := range ops {
			ops[i].release() // the engine copied the bytes into the output
		}
		clear(ops) // drop the references to bodies and callbacks
		s.mu.Lock()
		s.spare = ops[:0]
		owed := s.drainOwed()
		late := s.late
		s.late = nil
		s.mu.Unlock()
		if owed {
			s.emit(&s.onDrain)
		}
		if len(late) > 0 {
			s.runLate(late)
		}
		if !outer {
			return
		}
		s.applying = false
		if s.ex.closePending {
			s.ex.closePending = false
			s.ex.emitClose()
		}
	}()
	for _, o := range ops {
		if gone != nil || s.ex.done {
			if o.cb != nil {
				o.cb(ErrConnectionGone)
			}
			continue
		}
		switch o.kind {
		case opPause:
			st.Pause()
		case opResume:
			st.Resume() // may deliver body events, and apply their calls, at once
		case opContinue:
			st.WriteContinue()
		case opMismatch:
			s.endMismatched(st, status, reason, fields, o.cb)
		case opInformation:
			_ = st.WriteInformation(o.status, o.fields)
		case opWrite, opEnd:
			if !st.HeadSent() {
				s.sendHead(st, status, reason, fields)
			}
			var err error
			if o.kind == opWrite {
				var ok bool
				ok, err = st.Write(o.data)
				s.mu.Lock()
				s.queued -= len(o.data)
				if !ok && err == nil {
					s.overWater = true
				}
				s.mu.Unlock()
			} else {
				err = st.EndTrailers(o.data, trailers)
			}
			if o.cb != nil {
				o.cb(err)
			}
			if o.kind == opEnd && err == nil {
				s.ex.msg.res.finished.Store(true)
				s.fired.Or(firedFinish)
				s.emit(&s.onFinish)
			}
		}
	}
}

// endMismatched ends a response whose body broke its declared length: the
// head goes out if it has not, no more body, and the connection closes
// once the output has gone (engine.ServerConn.Shutdown: the end of the
// response closes it). Loop only.
func (s *resState) endMismatched(st *engine.Stream, status int, reason string, fields []Header, cb func(error)) {
	if !st.HeadSent() {
		s.sendHead(st, status, reason, fields)
	}
	s.ex.sock.pc.Engine().Shutdown()
	_ = st.End(nil)
	if cb != nil {
		cb(ErrContentLengthMismatch)
	}
}

// runLate runs late, the late calls taken from the exchange's queue, then
// those queued meanwhile, in order, on the loop. Loop only.
func (s *resState) runLate(late []func()) {
	for len(late) > 0 {
		for _, call := range late {
			call()
		}
		s.mu.Lock()
		late = s.late
		s.late = nil
		s.mu.Unlock()
	}
}

// sendHead hands the decided head to the engine, field by field. The
// fields were validated when set (SetHeader, WriteHead), so the engine
// does not check them again. It still refuses framing it cannot honour
// (Content-Length beside Transfer-Encoding, a coding other than chunked):
// that field is left out and logged, and the rest go out.
func (s *resState) sendHead(st *engine.Stream, status int, reason string, fields []Header) {
	if err := st.ResetHead(status, reason); err != nil {
		s.ex.sock.srv.logger().Warn("loophttp: response head refused", "err", err)
		return
	}
	for _, f := range fields {
		if err := st.AddCheckedField(f.Name, f.Value); err != nil {
			s.ex.sock.srv.logger().Warn("loophttp: response field left out", "name", f.Name, "err", err)
		}
	}
}

// drainIfOwed fires OnDrain when a Write reported false and everything
// queued has since gone to the connection without the engine being over its
// mark. Loop only.
func (s *resState) drainIfOwed() {
	s.mu.Lock()
	owed := s.drainOwed()
	s.mu.Unlock()
	if owed {
		s.emit(&s.onDrain)
	}
}

// drainOwed reports whether OnDrain is owed now, and if so marks it paid.
// Called with mu held.
func (s *resState) drainOwed() bool {
	owed := s.needDrain && !s.overWater && s.queued < s.highWater && s.gone == nil
	if owed {
		s.needDrain = false
	}
	return owed
}

// drained is called on the loop when the engine's output has drained.
func (s *resState) drained() {
	s.mu.Lock()
	s.overWater = false
	s.mu.Unlock()
	s.drainIfOwed()
}

// closed is called on the loop when the exchange ends; later calls fail.
// It returns err when a body limit cut the request short, else nil.
func (s *resState) closed(err error) *BodyLimitError {
	s.mu.Lock()
	if err == nil {
		err = engine.ErrStreamDone
	}
	s.gone = err
	s.mu.Unlock()
	le, _ := err.(*BodyLimitError) // as limitError made it (no errors.As: it would allocate)
	return le
}

// has reports whether a listener list has listeners.
func (s *resState) has(list *[]func()) bool {
	if s.listening.Load() == 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(*list) > 0
}

// emit runs the listeners of an event on the loop.
func (s *resState) emit(list *[]func()) {
	if s.listening.Load() == 0 {
		return
	}
	s.mu.Lock()
	fns := *list
	s.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// endNow carries out End at once, for a call from the exchange's own
// callback on the loop with nothing queued before it: the head and the
// body go to the engine now, with no queue, while what End
// owes user code (cb, 'finish', and a 'close' the engine raises
// meanwhile) waits for the callback to return (finishEnd), as it would
// from apply. Called with mu held, on the loop; it releases mu.
func (s *resState) endNow(data []byte, cb func(error)) {
	status, reason, fields, trailers := s.status, s.reason, s.hdr, s.trailers
	// The engine's calls make their arguments escape: handing it data
	// itself would move every caller's body to the heap.
	body := s.copyBody(data) // a variable of its own: data itself must not escape
	s.mu.Unlock()
	st := s.ex.stream
	s.applying = true // a Close the engine raises below waits (closePending)
	if !st.HeadSent() {
		s.sendHead(st, status, reason, fields)
	}
	err := st.EndTrailers(body.data, trailers)
	body.release() // the engine copied the bytes into the output
	s.applying = false
	s.endOwed, s.endErr, s.endCB = true, err, cb
}

// finishEnd runs what an End carried out by endNow owes user code, once
// the callback that called it has returned: cb, then 'finish', then the
// 'close' the engine raised meanwhile. Loop only.
func (s *resState) finishEnd() {
	cb, err := s.endCB, s.endErr
	s.endOwed, s.endErr, s.endCB = false, nil, nil
	if cb != nil {
		cb(err)
	}
	if err == nil {
		s.ex.msg.res.finished.Store(true)
		s.fired.Or(firedFinish)
		s.emit(&s.onFinish)
	}
	if s.ex.closePending && !s.applying {
		s.ex.closePending = false
		s.ex.emitClose()
	}
}
