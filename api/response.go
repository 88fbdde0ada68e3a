package api

import (
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/engine"
)

// Header is one header field for WriteHead and WriteInformation.
type Header struct {
	Name, Value string
}

// ServerResponse is the response to one request (Node's
// http.ServerResponse). Every method is safe from any goroutine, during or
// after the handler: calls are recorded under the response's lock and
// carried out, in order, on the connection's loop, right after the
// current callback returns or in a task posted to the loop.
//
// StatusCode and StatusMessage are read when the head is decided (the
// first Write or End); set them before, from the goroutine that then
// writes.
type ServerResponse struct {
	StatusCode    int    // default 200
	StatusMessage string // "" means the status table's phrase

	ex *exchange

	mu        sync.Mutex // guards what follows
	hdr       []Header   // SetHeader fields, in insertion order
	hdrInline [4]Header
	status    int // from WriteHead; 0 when not called
	reason    string
	headFixed bool // the head has been decided (first Write or End)
	ended     bool
	trailers  []codec.Header
	ops       []op
	spare     []op // the other op buffer, while apply works through one
	opsA      [2]op
	opsB      [1]op
	scheduled bool // a drain task has been posted to the loop
	overWater bool // the engine found the output over its high-water mark
	queued    int  // body bytes queued and not yet applied
	needDrain bool // a Write reported false: OnDrain is owed
	gone      error
	applying  bool // apply is on the stack (loop only)
	onFinish  []func()
	onClose   []func()
	onDrain   []func()
	onTimeout []func()
}

// opKind says what a queued call does on the loop.
type opKind uint8

const (
	opWrite opKind = iota
	opEnd
	opContinue
	opInformation
)

// op is one call recorded for the loop. Data is the caller's bytes, copied.
type op struct {
	kind   opKind
	status int
	data   []byte
	fields []codec.Header
	cb     func(error)
}

// Errors of response methods.
var (
	// ErrHeadersSent: the head has gone out (or been decided), so headers
	// and status can no longer change.
	ErrHeadersSent = errors.New("api: headers already sent")
	// ErrWriteAfterEnd: Write or End after End.
	ErrWriteAfterEnd = errors.New("api: write after end")
	// ErrConnectionGone: the connection closed before the call could be
	// carried out.
	ErrConnectionGone = errors.New("api: connection closed")
)

func (r *ServerResponse) init(ex *exchange, _ *codec.Request) {
	r.ex, r.StatusCode = ex, 200
	r.ops, r.spare = r.opsA[:0], r.opsB[:0]
	r.hdr = r.hdrInline[:0]
}

// Socket returns the connection.
func (r *ServerResponse) Socket() *Socket { return r.ex.sock }

// SetHeader sets a header field, replacing any of the same name (ASCII
// case-insensitive); the name keeps the case given. Invalid names or values
// (CR, LF, NUL or other control characters, non-token names) are refused
// with an error and never reach the wire; so is any change once the head
// is decided.
func (r *ServerResponse) SetHeader(name, value string) error {
	return r.setHeader(name, []string{value})
}

// SetHeaderValues sets a field sent as one line per value (Set-Cookie).
func (r *ServerResponse) SetHeaderValues(name string, values []string) error {
	return r.setHeader(name, values)
}

func (r *ServerResponse) setHeader(name string, values []string) error {
	for _, v := range values {
		if err := codec.ValidHeader(name, v); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.headFixed {
		return ErrHeadersSent
	}
	r.hdr = removeField(r.hdr, name)
	for _, v := range values {
		r.hdr = append(r.hdr, Header{name, v})
	}
	return nil
}

// GetHeader returns the value of a field set with SetHeader or WriteHead
// (case-insensitive; several values joined with ", "), or "".
func (r *ServerResponse) GetHeader(name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var vs []string
	for _, h := range r.hdr {
		if strings.EqualFold(h.Name, name) {
			vs = append(vs, h.Value)
		}
	}
	return strings.Join(vs, ", ")
}

// HasHeader reports whether a field is set (case-insensitive).
func (r *ServerResponse) HasHeader(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, h := range r.hdr {
		if strings.EqualFold(h.Name, name) {
			return true
		}
	}
	return false
}

// GetHeaders returns the fields set so far, keyed by lower-case name.
func (r *ServerResponse) GetHeaders() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]string, len(r.hdr))
	for _, h := range r.hdr {
		k := strings.ToLower(h.Name)
		if v, ok := m[k]; ok {
			m[k] = v + ", " + h.Value
		} else {
			m[k] = h.Value
		}
	}
	return m
}

// RemoveHeader removes a field (case-insensitive); absent is not an error.
func (r *ServerResponse) RemoveHeader(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.headFixed {
		return ErrHeadersSent
	}
	r.hdr = removeField(r.hdr, name)
	return nil
}

func removeField(hs []Header, name string) []Header {
	out := hs[:0]
	for _, h := range hs {
		if !strings.EqualFold(h.Name, name) {
			out = append(out, h)
		}
	}
	return out
}

// HeadersSent reports whether the head has been decided (Node's
// headersSent): after the first Write or End.
func (r *ServerResponse) HeadersSent() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.headFixed
}

// WriteHead sets the status, the reason phrase ("" for the status table's)
// and merges headers over those set with SetHeader (case-insensitive; they
// win). Nothing is sent yet; it may be called again until the first Write
// or End, and the last status wins. 1xx statuses go through
// WriteContinue and WriteInformation instead.
func (r *ServerResponse) WriteHead(status int, reason string, headers ...Header) error {
	if status < 200 || status > 599 {
		return codec.ErrStatus
	}
	if reason != "" {
		if _, err := codec.AppendStatusLineReason(nil, status, reason); err != nil {
			return err
		}
	}
	for _, h := range headers {
		if err := codec.ValidHeader(h.Name, h.Value); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.headFixed {
		return ErrHeadersSent
	}
	r.status, r.reason = status, reason
	for _, h := range headers {
		r.hdr = removeField(r.hdr, h.Name)
	}
	r.hdr = append(r.hdr, headers...)
	return nil
}

// AddTrailers sets trailer fields, sent after the body when it is chunked.
func (r *ServerResponse) AddTrailers(headers ...Header) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, h := range headers {
		if err := codec.ValidHeader(h.Name, h.Value); err != nil {
			return err
		}
		r.trailers = append(r.trailers, codec.Header{Name: []byte(h.Name), Value: []byte(h.Value)})
	}
	return nil
}

// Write sends data as body bytes (the head first, if it has not gone out).
// cb, if not nil, is called once the bytes have been handed to the
// connection, or with an error. It reports false when the connection's
// output is over its high-water mark: wait for OnDrain before writing more.
func (r *ServerResponse) Write(data []byte, cb func(error)) bool {
	r.mu.Lock()
	if r.ended {
		r.mu.Unlock()
		if cb != nil {
			go cb(ErrWriteAfterEnd)
		}
		return false
	}
	r.fixHead()
	r.queue(op{kind: opWrite, data: r.ex.copyBody(data), cb: cb})
	r.queued += len(data)
	ok := !r.overWater && r.queued < writeHighWater
	if !ok {
		r.needDrain = true
	}
	r.mu.Unlock()
	return ok
}

// writeHighWater bounds the body bytes queued for the loop before Write
// reports false (the engine's own mark applies to what it has taken).
const writeHighWater = engine.DefaultHighWater

// End sends data (if any) as the last body bytes and ends the response;
// cb, if not nil, is called once when the response has been handed to the
// connection (Node's 'finish'), or with an error. A second End reports
// ErrWriteAfterEnd.
func (r *ServerResponse) End(data []byte, cb func(error)) error {
	r.mu.Lock()
	if r.ended {
		r.mu.Unlock()
		return ErrWriteAfterEnd
	}
	r.fixHead()
	r.ended = true
	r.queue(op{kind: opEnd, data: r.ex.copyBody(data), cb: cb})
	r.mu.Unlock()
	return nil
}

// WriteContinue sends "100 Continue" (for OnCheckContinue handlers).
func (r *ServerResponse) WriteContinue() {
	r.mu.Lock()
	if !r.headFixed {
		r.queue(op{kind: opContinue})
	}
	r.mu.Unlock()
}

// WriteInformation sends an interim 1xx response (not 100 or 101; for
// example 103 Early Hints).
func (r *ServerResponse) WriteInformation(status int, headers ...Header) error {
	if status < 102 || status > 199 {
		return codec.ErrStatus
	}
	fields := make([]codec.Header, 0, len(headers))
	for _, h := range headers {
		if err := codec.ValidHeader(h.Name, h.Value); err != nil {
			return err
		}
		fields = append(fields, codec.Header{Name: []byte(h.Name), Value: []byte(h.Value)})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.headFixed {
		return ErrHeadersSent
	}
	r.queue(op{kind: opInformation, status: status, fields: fields})
	return nil
}

// SetTimeout sets the connection's idle timeout (0: off) and adds cb, if
// not nil, as an OnTimeout listener. Safe from any goroutine.
func (r *ServerResponse) SetTimeout(d time.Duration, cb func()) {
	r.mu.Lock()
	if cb != nil {
		r.onTimeout = append(r.onTimeout, cb)
	}
	r.mu.Unlock()
	r.ex.sock.SetTimeout(d, nil)
}

// OnFinish adds a listener for 'finish': the response has been handed to
// the connection in full.
func (r *ServerResponse) OnFinish(fn func()) { r.on(&r.onFinish, fn) }

// OnClose adds a listener for 'close': the exchange is over, after
// 'finish' or because the connection closed first.
func (r *ServerResponse) OnClose(fn func()) { r.on(&r.onClose, fn) }

// OnDrain adds a listener for 'drain': output fell below the high-water
// mark after a Write returned false.
func (r *ServerResponse) OnDrain(fn func()) { r.on(&r.onDrain, fn) }

// OnTimeout adds a listener for 'timeout'.
func (r *ServerResponse) OnTimeout(fn func()) { r.on(&r.onTimeout, fn) }

func (r *ServerResponse) on(list *[]func(), fn func()) {
	r.mu.Lock()
	*list = append(*list, fn)
	r.mu.Unlock()
}

// fixHead decides the head: the last WriteHead, else StatusCode and
// StatusMessage. Called with mu held.
func (r *ServerResponse) fixHead() {
	if r.headFixed {
		return
	}
	r.headFixed = true
	if r.status == 0 {
		r.status, r.reason = r.StatusCode, r.StatusMessage
	}
}

// queue records o and makes sure the loop will carry it out: right after
// the current callback if one of this exchange is running, else through a
// task. When the exchange or its connection is gone, o fails at once: its
// callback gets ErrConnectionGone on a goroutine of its own. Called with mu
// held.
func (r *ServerResponse) queue(o op) {
	if r.gone == nil && !r.ex.inCallback.Load() && !r.scheduled {
		sock := r.ex.sock
		if err := sock.pc.Submit(r.ex.gen, sock.drain); err != nil {
			r.gone = ErrConnectionGone
		} else {
			r.scheduled = true
		}
	}
	if r.gone != nil && !r.ex.inCallback.Load() {
		if o.cb != nil {
			go o.cb(ErrConnectionGone)
		}
		return
	}
	r.ops = append(r.ops, o)
}

// apply carries out the queued calls on the loop, in order. The head goes
// out with the first Write or End.
//
// It always takes the lock, even when nothing seems queued: a goroutine
// that saw inCallback set queues without posting a task, relying on this
// call to see its op, and only the lock orders the two. (An atomic "nothing
// queued" shortcut here loses such ops; a test with workers caught it.)
func (r *ServerResponse) apply() {
	r.mu.Lock()
	ops := r.ops
	r.ops, r.spare, r.scheduled = r.spare[:0], nil, false
	gone := r.gone
	status, reason := r.status, r.reason
	fields := r.hdr // fixed once the head is decided: read without the lock below
	trailers := r.trailers
	r.mu.Unlock()

	st := r.ex.stream
	r.applying = true
	defer func() {
		clear(ops) // drop the references to bodies and callbacks
		r.mu.Lock()
		r.spare = ops[:0]
		r.mu.Unlock()
		r.applying = false
		if r.ex.closePending {
			r.ex.closePending = false
			r.ex.emitClose()
		}
	}()
	defer r.drainIfOwed()
	for _, o := range ops {
		if gone != nil || r.ex.done {
			if o.cb != nil {
				o.cb(ErrConnectionGone)
			}
			continue
		}
		switch o.kind {
		case opContinue:
			st.WriteContinue()
		case opInformation:
			_ = st.WriteInformation(o.status, o.fields)
		case opWrite, opEnd:
			if !st.HeadSent() {
				r.sendHead(st, status, reason, fields)
			}
			var err error
			if o.kind == opWrite {
				var ok bool
				ok, err = st.Write(o.data)
				r.mu.Lock()
				r.queued -= len(o.data)
				if !ok && err == nil {
					r.overWater = true
				}
				r.mu.Unlock()
			} else {
				err = st.EndTrailers(o.data, trailers)
			}
			if o.cb != nil {
				o.cb(err)
			}
			if o.kind == opEnd && err == nil {
				r.emit(&r.onFinish)
			}
		}
	}
}

// sendHead hands the decided head to the engine, field by field. The
// fields were validated when set; a refusal here is a bug, logged.
func (r *ServerResponse) sendHead(st *engine.Stream, status int, reason string, fields []Header) {
	err := st.ResetHead(status, reason)
	for i := 0; err == nil && i < len(fields); i++ {
		err = st.AddField(fields[i].Name, fields[i].Value)
	}
	if err != nil {
		r.ex.sock.srv.logger().Warn("loophttp: response head refused", "err", err)
	}
}

// drainIfOwed fires OnDrain when a Write reported false and everything
// queued has since gone to the connection without the engine being over its
// mark. Loop only.
func (r *ServerResponse) drainIfOwed() {
	r.mu.Lock()
	owed := r.needDrain && !r.overWater && r.queued < writeHighWater && r.gone == nil
	if owed {
		r.needDrain = false
	}
	r.mu.Unlock()
	if owed {
		r.emit(&r.onDrain)
	}
}

// drained is called on the loop when the engine's output has drained.
func (r *ServerResponse) drained() {
	r.mu.Lock()
	r.overWater = false
	r.mu.Unlock()
	r.drainIfOwed()
}

// closed is called on the loop when the exchange ends; later calls fail.
func (r *ServerResponse) closed(err error) {
	r.mu.Lock()
	if err == nil {
		err = engine.ErrStreamDone
	}
	r.gone = err
	r.mu.Unlock()
}

// has reports whether a listener list has listeners.
func (r *ServerResponse) has(list *[]func()) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(*list) > 0
}

// emit runs the listeners of an event on the loop.
func (r *ServerResponse) emit(list *[]func()) {
	r.mu.Lock()
	fns := *list
	r.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}
