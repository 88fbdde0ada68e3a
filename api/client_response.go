package api

import (
	"errors"
	"io"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/engine"
	"github.com/loophttp/loophttp/poller"
)

// reqHandler is the engine's view of a ClientRequest: its handler methods
// stay out of the public API.
type reqHandler ClientRequest

func (h *reqHandler) r() *ClientRequest { return (*ClientRequest)(h) }

// Information fires 'continue' (for 100) and 'information'.
func (h *reqHandler) Information(x *engine.Exchange, resp *codec.Response) {
	r := h.r()
	info := Information{
		StatusCode:    resp.Status,
		StatusMessage: string(resp.Reason),
		HTTPVersion:   version(resp.Minor),
		RawHeaders:    rawFields(resp.Headers),
	}
	r.mu.Lock()
	fns := r.onInformation
	r.mu.Unlock()
	if resp.Status == 100 {
		r.emit(r.listeners(&r.onContinue))
	}
	for _, fn := range fns {
		r.call(func() { fn(info) })
	}
}

// version returns "1.minor" as received: HTTP/1.2 to 1.9 are processed as
// 1.1 but reported as they came (policy http-version).
func version(minor uint8) string {
	if int(minor) < len(versions) {
		return versions[minor]
	}
	return "1.1"
}

var versions = [...]string{"1.0", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "1.7", "1.8", "1.9"}

// rawFields copies header fields into Node's flat rawHeaders form, all
// strings in one allocation.
func rawFields(hs []codec.Header) []string {
	size := 0
	for _, f := range hs {
		size += len(f.Name) + len(f.Value)
	}
	arena := make([]byte, 0, size)
	out := make([]string, 0, 2*len(hs))
	for _, f := range hs {
		start := len(arena)
		arena = append(arena, f.Name...)
		mid := len(arena)
		arena = append(arena, f.Value...)
		out = append(out, view(arena[start:mid]), view(arena[mid:]))
	}
	return out
}

// Response builds the response message and fires 'response'.
func (h *reqHandler) Response(x *engine.Exchange, resp *codec.Response) {
	r := h.r()
	res := &r.resInline
	r.resSt.onData, r.resSt.onEnd = r.dataInline[:0], r.endInline[:0]
	res.StatusCode, res.HTTPVersion, res.cr, res.st = resp.Status, version(resp.Minor), r, &r.resSt
	res.StatusMessage, res.RawHeaders = r.copyHead(resp)
	if r.ac != nil {
		res.Socket = r.ac.sock
	}
	r.keepConn = resp.KeepAlive
	r.mu.Lock()
	r.res = res
	fns := r.onResponse
	r.mu.Unlock()
	for _, fn := range fns {
		r.call(func() { fn(res) })
	}
}

// copyHead copies the reason and the header fields of resp into the
// request's inline space when they fit, else onto the heap.
func (r *ClientRequest) copyHead(resp *codec.Response) (string, []string) {
	size := len(resp.Reason)
	for _, f := range resp.Headers {
		size += len(f.Name) + len(f.Value)
	}
	if size > len(r.arena) || 2*len(resp.Headers) > len(r.rawInline) {
		return string(resp.Reason), rawFields(resp.Headers)
	}
	arena := r.arena[:0]
	take := func(b []byte) string {
		start := len(arena)
		arena = append(arena, b...)
		return view(arena[start:])
	}
	reason := take(resp.Reason)
	raw := r.rawInline[:0]
	for _, f := range resp.Headers {
		raw = append(raw, take(f.Name), take(f.Value))
	}
	return reason, raw
}

// Body fires the response's 'data'. A Pause made by a listener takes
// effect before the next chunk (see pause).
func (h *reqHandler) Body(x *engine.Exchange, chunk []byte) {
	r := h.r()
	if res := r.res; res != nil {
		r.call(func() { res.st.emitData(chunk) })
	}
}

// pause carries out a Pause (on) or Resume of the response. Made on the
// connection's loop inside one of its events (a 'data' listener, say), it
// takes effect at once: no further chunk is delivered before a Resume.
// From anywhere else it is handed to the loop, which applies it after
// what it is doing. So the loop sees the calls in an order the caller can
// rely on: a Pause made in 'data' after a Write that reported false comes
// before the Resume that the other connection's 'drain' hands over, however
// soon that 'drain' fires. Safe from any goroutine.
func (r *ClientRequest) pause(on bool) {
	apply := func(x *engine.Exchange) {
		if on {
			x.Pause()
		} else {
			x.Resume()
		}
	}
	r.mu.Lock()
	pc, gen, x, xgen := r.pc, r.pgen, r.x, r.xgen
	r.mu.Unlock()
	if pc != nil && pc.InEvent() {
		if pc.Gen() == gen && x.Open() && x.Gen() == xgen {
			apply(x)
		}
		return
	}
	r.onLoop(apply)
}

// End completes the response and fires its 'end'.
func (h *reqHandler) End(x *engine.Exchange, trailers []codec.Header) {
	r := h.r()
	if res := r.res; res != nil {
		if len(trailers) > 0 {
			res.RawTrailers = rawFields(trailers)
		}
		res.Complete = true
		res.st.fired.Or(firedEnd)
		r.mu.Lock()
		sent := r.finished // the request went out whole: the connection is free once this ends
		r.mu.Unlock()
		if sent && r.keepConn && r.agent.keepAlive() {
			r.agent.responseEnding(r.ac) // a request made from 'end' waits for this connection
		}
		r.ac.during(func() { r.call(func() { res.st.emit(&res.st.onEnd) }) })
	}
}

// Drain fires 'drain' if a Write reported false.
func (h *reqHandler) Drain(x *engine.Exchange) {
	r := h.r()
	r.mu.Lock()
	r.full = false
	r.mu.Unlock()
	r.drainIfOwed()
}

// Timeout fires 'timeout' on the request, its socket and its response
// (the listeners of IncomingMessage.SetTimeout and OnTimeout).
func (h *reqHandler) Timeout(x *engine.Exchange) {
	r := h.r()
	r.emit(r.listeners(&r.onTimeout))
	if ac := r.ac; ac != nil {
		for _, fn := range ac.sock.timeoutListeners() {
			r.call(fn)
		}
	}
	if res := r.res; res != nil {
		r.call(func() { res.st.emit(&res.st.onTimeout) })
	}
}

// Close ends the request: a retry on a fresh connection when that is safe,
// else OnError (for a failure) and OnClose.
func (h *reqHandler) Close(x *engine.Exchange, err error) {
	r := h.r()
	ac := r.ac
	if ac != nil && ac.sock.request == r {
		ac.sock.request = nil
	}
	if err != nil && r.retry(x, err) {
		return
	}
	if ac != nil && errors.Is(err, engine.ErrHangUp) {
		err = withCause(err, ac.pc.CloseErr())
	}
	end := func() { r.finish(clientError(err, r.agent)) } // a stopped request ends as its stop says
	if ac == nil {
		end()
		return
	}
	ac.during(end)
}

// withCause adds to a hang-up the transport's reason for the close, when
// it gave one that says more than an end of stream (a TLS alert, a reset):
// errors.Is matches both.
func withCause(err, cause error) error {
	if cause == nil || errors.Is(cause, io.EOF) {
		return err
	}
	return &causedError{err: err, cause: cause}
}

// causedError is an error with the reason underneath it.
type causedError struct{ err, cause error }

func (e *causedError) Error() string   { return e.err.Error() + ": " + e.cause.Error() }
func (e *causedError) Unwrap() []error { return []error{e.err, e.cause} }

// clientError maps an engine error to the api's; a is the request's agent.
func clientError(err error, a *Agent) error {
	if err == nil || errors.Is(err, engine.ErrAborted) {
		return nil // Abort: 'abort' and 'close', no error
	}
	var kind codec.Error
	switch {
	case errors.As(err, &kind) && kind == codec.ErrBodyTooLarge:
		return &BodyLimitError{Limit: a.opts.Limits.MaxBodySize, Setting: "AgentOptions.Limits.MaxBodySize"}
	case errors.As(err, &kind):
		return &ParseError{Kind: kind}
	case errors.Is(err, engine.ErrTruncated):
		return ErrResponseAborted
	case errors.Is(err, poller.ErrClientClosed):
		return ErrAgentDestroyed
	}
	return err
}
