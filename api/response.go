package api

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
// current callback returns or in a task posted to the loop. An End made
// by the exchange's own callback on the loop (told exactly, by the
// calling goroutine), with nothing queued before it, goes to the engine at
// once; its callback, 'finish' and 'close' still wait for the callback to
// return.
//
// StatusCode and StatusMessage are read when the head is decided (the
// first Write or End); set them before, from the goroutine that then
// writes.
//
// A response may be kept after its exchange is over: its calls then fail
// as for a closed connection (callbacks get ErrConnectionGone; setters
// report it, or ErrHeadersSent, ErrWriteAfterEnd; getters return zero
// values; listeners are dropped), and never touch a later exchange.
type ServerResponse struct {
	StatusCode    int    // default 200
	StatusMessage string // "" means the status table's phrase

	st       *resState   // the exchange's response state, reused for later exchanges
	gen      uint32      // the exchange this response belongs to
	finished atomic.Bool // 'finish' fired (read once the state has moved on)
	sock     *Socket
}

// resState is the mutable state of a response. It belongs to an exchange,
// which a connection reuses for its next request: every call through a
// ServerResponse checks, under mu, that the state still serves it (gen).
type resState struct {
	mu sync.Mutex // guards resData and the inline storage below
	resData
	// listening counts the listeners registered for the exchange: while
	// it is 0 the loop skips the lock to look for them. Written under mu.
	listening atomic.Int32
	gen       generation // read under mu by handles
	// fired records 'finish' and 'close' as they fire (see msgState.fired).
	fired atomic.Uint32

	// Inline storage kept across exchanges, so that a typical response
	// allocates nothing: header fields, queued calls (two buffers: apply
	// works through one while callers queue into the other) and copies of
	// the bodies queued by Write and End when they fit.
	hdrInline [4]Header
	opsA      [inlineOps]op
	opsB      [1]op
	bodies    [256]byte
}

// copyBody copies p into the inline space when it fits, else into a
// buffer from bytebufferpool (bodyCopy), which whoever carries the copy
// gives back (release) once the engine has taken the bytes or the copy is
// dropped. Called with mu held.
func (s *resState) copyBody(p []byte) pooledBody {
	if len(p) == 0 {
		return pooledBody{}
	}
	if len(p) <= len(s.bodies)-s.bodyN {
		b := s.bodies[s.bodyN : s.bodyN+len(p) : s.bodyN+len(p)]
		copy(b, p)
		s.bodyN += len(p)
		return pooledBody{data: b}
	}
	return bodyCopy(p)
}

// resData is resState's data, reset as a whole for each exchange.
type resData struct {
	ex        *exchange
	hdr       []Header // SetHeader fields, in insertion order
	status    int      // from WriteHead; 0 when not called
	reason    string
	headFixed bool // the head has been decided (first Write or End)
	ended     bool
	trailers  []codec.Header
	ops       []op
	spare     []op  // the other op buffer, while apply works through one
	scheduled bool  // a drain task has been posted to the loop
	overWater bool  // the engine found the output over its high-water mark
	queued    int   // body bytes queued and not yet applied
	highWater int   // the server's Options.HighWater, resolved
	needDrain bool  // a Write reported false: OnDrain is owed
	checkLen  bool  // the decided head declares the body's length (declared)
	declared  int64 // the Content-Length of the decided head, when checkLen
	accepted  int64 // body bytes Write and End have accepted
	gone      error
	applying  bool // apply is on the stack (loop only)
	// ownQueued: the exchange's own callback queued a call or a late
	// listener, which the apply after the callback carries out. Written
	// under mu by the loop's goroutine alone, read by it without mu.
	ownQueued bool
	// An End carried out at once (endNow) whose callback, 'finish' and
	// 'close' wait for the callback that called it to return (finishEnd).
	// Loop only.
	endOwed   bool
	endErr    error
	endCB     func(error)
	bodyN     int // bytes of bodies in use
	onFinish  []func()
	onClose   []func()
	onDrain   []func()
	onTimeout []func()
	// late holds the calls of listeners, of the request or the response,
	// added after their event fired; the loop runs them after the queued
	// calls (apply), or when it retires the exchange.
	late []func()
}

// opKind says what a queued call does on the loop.
type opKind uint8

const (
	opWrite opKind = iota
	opEnd
	opContinue
	opInformation
	opMismatch // the body broke the declared length: end, then close
	opPause    // the request's Pause
	opResume   // the request's Resume
)

// op is one call recorded for the loop. Data is the caller's bytes, copied.
type op struct {
	kind       opKind
	status     int
	pooledBody // Write's and End's body (copyBody)
	fields     []codec.Header
	cb         func(error)
}

// Errors of response methods.
var (
	// ErrHeadersSent: the head has gone out (or been decided), so headers
	// and status can no longer change.
	ErrHeadersSent = engine.NewError(engine.ErrState, "api: headers already sent")
	// ErrWriteAfterEnd: Write or End after End.
	ErrWriteAfterEnd = engine.NewError(engine.ErrState, "api: write after end")
	// ErrConnectionGone: the connection closed before the call could be
	// carried out.
	ErrConnectionGone = engine.NewError(engine.ErrClosed, "api: connection closed")
	// ErrContentLengthMismatch: the body written is longer, or at End
	// shorter, than the Content-Length the response declared (Node's
	// ERR_HTTP_CONTENT_LENGTH_MISMATCH). It wraps
	// engine.ErrLengthMismatch.
	ErrContentLengthMismatch = fmt.Errorf("api: body length differs from Content-Length: %w", engine.ErrLengthMismatch)
)

// clear empties the state for the next exchange of ex, keeping the inline
// buffers. Called with mu held (retire), or on the loop before the state
// has served anyone.
func (s *resState) clear(ex *exchange) {
	clear(s.hdrInline[:]) // drop the last response's strings
	ops, spare := keptOps(s.ops, s.opsA[:0]), keptOps(s.spare, s.opsB[:0])
	s.resData = resData{ex: ex, ops: ops, spare: spare, hdr: s.hdrInline[:0]}
	if s.listening.Load() != 0 {
		s.listening.Store(0) // an atomic store costs even when it changes nothing
	}
	s.fired.Store(0)
}

// maxKeptOps bounds the queued-call buffers a state keeps for later
// exchanges once a response outgrew its inline ones (a handler that makes
// many Writes in one callback would otherwise grow them anew every time).
const maxKeptOps = 32

// inlineOps is the size of the larger inline queued-call buffer (opsA):
// a buffer of that capacity or less is one of the two inline ones.
const inlineOps = 2

// keptOps returns b emptied, for the next exchange, when it grew past the
// inline buffers within maxKeptOps; else inline. (After apply swapped
// them, b may be the other inline buffer: it is never kept, so the two
// never share storage.)
func keptOps(b, inline []op) []op {
	if cap(b) <= inlineOps || cap(b) > maxKeptOps {
		return inline
	}
	b = b[:cap(b)]
	clear(b) // drop the last response's bodies and callbacks
	return b[:0]
}

// retire makes every handle of the state stale, giving the state the
// generation of the exchange's next request (nextGen) at once, and clears
// it for that request. It takes mu: a call that passed the
// generation check reads the exchange's fields (its socket, its
// generation) under mu, and the loop rewrites them once retire returns
// (unpin, nextExchange).
//
// It returns the late calls that were still queued, and the callbacks of
// calls queued for a task that never ran (with ErrConnectionGone): the
// loop runs them.
func (s *resState) retire() (late []func()) {
	s.mu.Lock()
	s.gen.Store(nextGen(s.ex.xgen))
	late = s.late
	for _, o := range s.ops { // queued for a task the loop never ran (it closed the connection first)
		o.release()
		if cb := o.cb; cb != nil {
			late = append(late, func() { cb(ErrConnectionGone) })
		}
	}
	s.clear(s.ex)
	s.mu.Unlock()
	return late
}

// lock returns the response's state, locked, or nil (unlocked) when the
// exchange is over and the connection has moved on to another.
func (r *ServerResponse) lock() *resState {
	s := r.st
	s.mu.Lock()
	if s.gen.Load() != r.gen {
		s.mu.Unlock()
		return nil
	}
	return s
}

// Socket returns the connection. Any goroutine.
func (r *ServerResponse) Socket() *Socket { return r.sock }

// Retain keeps this response and its request out of reuse under
// Options.ReuseMessages, so that they may be used after the current
// callback returns, from any goroutine, for as long as they are held (as
// without the option). Call it before the exchange can close: from one of
// its callbacks, before handing either to a timer or another goroutine.
// It does nothing without the option. Any goroutine.
func (r *ServerResponse) Retain() {
	s := r.lock()
	if s == nil {
		return
	}
	ex := s.ex
	if own := ex.own.Load(); own != nil && &own.message == ex.msg {
		ex.own.CompareAndSwap(own, nil) // the next request gets a message of its own
	}
	s.mu.Unlock()
}

// SetHeader sets a header field, replacing any of the same name (ASCII
// case-insensitive); the name keeps the case given. Invalid names or values
// (CR, LF, NUL or other control characters, non-token names) are refused
// with an error and never reach the wire; so is any change once the head
// is decided. Any goroutine.
func (r *ServerResponse) SetHeader(name, value string) error {
	return r.setHeader(name, []string{value})
}

// SetHeaderValues sets a field sent as one line per value (Set-Cookie).
// Any goroutine.
func (r *ServerResponse) SetHeaderValues(name string, values []string) error {
	return r.setHeader(name, values)
}

func (r *ServerResponse) setHeader(name string, values []string) error {
	for _, v := range values {
		if err := codec.ValidHeader(name, v); err != nil {
			return err
		}
	}
	s := r.lock()
	if s == nil {
		return ErrConnectionGone
	}
	defer s.mu.Unlock()
	if s.headFixed {
		return ErrHeadersSent
	}
	s.hdr = removeField(s.hdr, name)
	for _, v := range values {
		s.hdr = append(s.hdr, Header{name, v})
	}
	return nil
}

// GetHeader returns the value of a field set with SetHeader or WriteHead
// (case-insensitive; several values joined with ", "), or "".
// Any goroutine.
func (r *ServerResponse) GetHeader(name string) string {
	s := r.lock()
	if s == nil {
		return ""
	}
	defer s.mu.Unlock()
	var vs []string
	for _, h := range s.hdr {
		if strings.EqualFold(h.Name, name) {
			vs = append(vs, h.Value)
		}
	}
	return strings.Join(vs, ", ")
}

// HasHeader reports whether a field is set (case-insensitive).
// Any goroutine.
func (r *ServerResponse) HasHeader(name string) bool {
	s := r.lock()
	if s == nil {
		return false
	}
	defer s.mu.Unlock()
	for _, h := range s.hdr {
		if strings.EqualFold(h.Name, name) {
			return true
		}
	}
	return false
}

// GetHeaders returns the fields set so far, keyed by lower-case name.
// Any goroutine.
func (r *ServerResponse) GetHeaders() map[string]string {
	s := r.lock()
	if s == nil {
		return map[string]string{}
	}
	defer s.mu.Unlock()
	m := make(map[string]string, len(s.hdr))
	for _, h := range s.hdr {
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
// Any goroutine.
func (r *ServerResponse) RemoveHeader(name string) error {
	s := r.lock()
	if s == nil {
		return ErrConnectionGone
	}
	defer s.mu.Unlock()
	if s.headFixed {
		return ErrHeadersSent
	}
	s.hdr = removeField(s.hdr, name)
	return nil
}

// singleValued reports whether a response carries the field at most once:
// those of which Node keeps only the first when receiving, and Date.
func singleValued(name string) bool {
	return singleValue[strings.ToLower(name)] || strings.EqualFold(name, "date")
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
// headersSent): after the first Write or End. Any goroutine.
func (r *ServerResponse) HeadersSent() bool {
	s := r.lock()
	if s == nil {
		return true
	}
	defer s.mu.Unlock()
	return s.headFixed
}

// WriteHead sets the status, the reason phrase ("" for the status table's)
// and merges headers over those set with SetHeader (case-insensitive; they
// win). A single-valued field (Content-Type, Content-Length, Date, Host,
// Location and the others of which IncomingMessage.Headers keeps one)
// given more than once is sent once, with the last value given; other
// fields given more than once (Set-Cookie, Vary, …) are all sent, in
// order. Nothing is sent yet; it may be called again until the first
// Write or End, and the last status wins. 1xx statuses go through
// WriteContinue and WriteInformation instead. Any goroutine.
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
	s := r.lock()
	if s == nil {
		return ErrConnectionGone
	}
	defer s.mu.Unlock()
	if s.headFixed {
		return ErrHeadersSent
	}
	s.status, s.reason = status, reason
	for _, h := range headers {
		s.hdr = removeField(s.hdr, h.Name)
	}
	for _, h := range headers {
		if singleValued(h.Name) {
			s.hdr = removeField(s.hdr, h.Name) // the last one given wins
		}
		s.hdr = append(s.hdr, h)
	}
	return nil
}

// AddTrailers sets trailer fields, sent after the body when it is chunked.
// Any goroutine.
func (r *ServerResponse) AddTrailers(headers ...Header) error {
	s := r.lock()
	if s == nil {
		return ErrConnectionGone
	}
	defer s.mu.Unlock()
	for _, h := range headers {
		if err := codec.ValidHeader(h.Name, h.Value); err != nil {
			return err
		}
		s.trailers = append(s.trailers, codec.Header{Name: []byte(h.Name), Value: []byte(h.Value)})
	}
	return nil
}

// Write sends data as body bytes (the head first, if it has not gone out).
// cb, if not nil, is called once the bytes have been handed to the
// connection, or with an error. It reports false when the connection's
// output is over its high-water mark: wait for OnDrain before writing more.
//
// Data that would take the body past the Content-Length the head declares
// is refused: Write reports false, cb hears ErrContentLengthMismatch, the
// response is over (later calls get ErrWriteAfterEnd) and the connection
// closes once what was sent before has gone out.
// Any goroutine; callbacks on the loop.
func (r *ServerResponse) Write(data []byte, cb func(error)) bool {
	s := r.lock()
	if s == nil {
		if cb != nil {
			r.sock.later(func() { cb(ErrConnectionGone) })
		}
		return false
	}
	if s.ended {
		if cb == nil {
			s.mu.Unlock()
		} else {
			s.addLate(func() { cb(ErrWriteAfterEnd) }) // unlocks
		}
		return false
	}
	s.fixHead(r)
	if s.checkLen && s.accepted+int64(len(data)) > s.declared {
		s.ended = true
		s.queue(op{kind: opMismatch, cb: cb})
		s.mu.Unlock()
		return false
	}
	s.accepted += int64(len(data))
	s.queue(op{kind: opWrite, pooledBody: s.copyBody(data), cb: cb})
	s.queued += len(data)
	ok := !s.overWater && s.queued < s.highWater
	if !ok {
		s.needDrain = true
	}
	s.mu.Unlock()
	return ok
}

// End sends data (if any) as the last body bytes and ends the response;
// cb, if not nil, is called once when the response has been handed to the
// connection (Node's 'finish'), or with an error. A second End reports
// ErrWriteAfterEnd.
//
// When the head declares a Content-Length that the body, data included,
// does not meet exactly, End reports ErrContentLengthMismatch (so does cb),
// data is not sent, 'finish' does not fire, and the connection closes once
// what was sent before has gone out (the peer sees a short body, never a
// stalled one). Responses without a body (to HEAD, 204, 304) may declare
// any length. Any goroutine; callbacks on the loop.
func (r *ServerResponse) End(data []byte, cb func(error)) error {
	s := r.lock()
	if s == nil { // the exchange is over: as for a closed connection
		if cb != nil {
			r.sock.later(func() { cb(ErrConnectionGone) })
		}
		return nil
	}
	if s.ended {
		s.mu.Unlock()
		return ErrWriteAfterEnd
	}
	s.fixHead(r)
	s.ended = true
	if s.checkLen && s.accepted+int64(len(data)) != s.declared {
		s.queue(op{kind: opMismatch, cb: cb})
		s.mu.Unlock()
		return ErrContentLengthMismatch
	}
	s.accepted += int64(len(data))
	if s.ex.inOwnCallback() && len(s.ops) == 0 && s.gone == nil && !s.applying {
		s.endNow(data, cb) // unlocks
		return nil
	}
	s.queue(op{kind: opEnd, pooledBody: s.copyBody(data), cb: cb})
	s.mu.Unlock()
	return nil
}

// WriteContinue sends "100 Continue" (for OnCheckContinue handlers).
// Any goroutine.
func (r *ServerResponse) WriteContinue() {
	s := r.lock()
	if s == nil {
		return
	}
	if !s.headFixed {
		s.queue(op{kind: opContinue})
	}
	s.mu.Unlock()
}

// WriteInformation sends an interim 1xx response (not 100 or 101; for
// example 103 Early Hints). Any goroutine.
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
	s := r.lock()
	if s == nil {
		return ErrConnectionGone
	}
	defer s.mu.Unlock()
	if s.headFixed {
		return ErrHeadersSent
	}
	s.queue(op{kind: opInformation, status: status, fields: fields})
	return nil
}

// SetTimeout sets the connection's idle timeout (0: off) and adds cb, if
// not nil, as an OnTimeout listener. Any goroutine; callbacks on the loop.
func (r *ServerResponse) SetTimeout(d time.Duration, cb func()) {
	s := r.lock()
	if s == nil {
		return
	}
	if cb != nil {
		s.onTimeout = append(s.onTimeout, cb)
		s.listening.Add(1)
	}
	sock := s.ex.sock
	s.mu.Unlock()
	sock.SetTimeout(d, nil)
}

// OnFinish adds a listener for 'finish': the response has been handed to
// the connection in full. Added after 'finish' fired, fn runs at once (see
// doc.go, "Events a late listener cannot miss").
// Any goroutine; callbacks on the loop.
func (r *ServerResponse) OnFinish(fn func()) { r.on(onFinish, fn) }

// OnClose adds a listener for 'close': the exchange is over, after
// 'finish' or because the connection closed first. Added after 'close'
// fired, fn runs at once. Any goroutine; callbacks on the loop.
func (r *ServerResponse) OnClose(fn func()) { r.on(onClose, fn) }

// OnDrain adds a listener for 'drain': output fell below the high-water
// mark after a Write returned false. Any goroutine; callbacks on the loop.
func (r *ServerResponse) OnDrain(fn func()) { r.on(onDrain, fn) }

// OnTimeout adds a listener for 'timeout'.
// Any goroutine; callbacks on the loop.
func (r *ServerResponse) OnTimeout(fn func()) { r.on(onTimeout, fn) }

// The response's listener lists, for on.
const (
	onFinish = iota
	onClose
	onDrain
	onTimeout
)

// on adds a listener to one of the lists. For an event that fires once
// and has fired, fn runs late instead (exchange.late); a response whose
// exchange is over and replaced has had all its events: fn runs alone if
// its event was one of them.
func (r *ServerResponse) on(list int, fn func()) {
	s := r.lock()
	if s == nil {
		if list == onClose || list == onFinish && r.finished.Load() {
			r.sock.later(fn)
		}
		return
	}
	l := [...]*[]func(){&s.onFinish, &s.onClose, &s.onDrain, &s.onTimeout}[list]
	bit := [...]uint32{firedFinish, firedClose, 0, 0}[list]
	s.listening.Add(1)
	if bit != 0 && s.fired.Load()&bit != 0 {
		s.listening.Add(-1)
		s.addLate(fn) // unlocks
		return
	}
	*l = append(*l, fn)
	s.mu.Unlock()
}

// fixHead decides the head: the last WriteHead, else StatusCode and
// StatusMessage. Called with mu held.
func (s *resState) fixHead(r *ServerResponse) {
	if s.headFixed {
		return
	}
	s.headFixed = true
	if s.status == 0 {
		s.status, s.reason = r.StatusCode, r.StatusMessage
	}
	if s.hasBody() {
		s.declared, s.checkLen = declaredLength(s.hdr)
	}
}

// hasBody reports whether the decided response carries a body (RFC 9112
// §6.3): not to HEAD, not 204 or 304, not a 2xx to CONNECT. Called with mu
// held, once the status is decided.
func (s *resState) hasBody() bool {
	method := s.ex.msg.req.Method
	switch {
	case method == "HEAD", s.status == 204, s.status == 304:
		return false
	case method == "CONNECT" && s.status >= 200 && s.status < 300:
		return false
	}
	return true
}

// declaredLength returns the Content-Length the engine will frame the
// fields' body with, as it reads them (engine.Stream.AddField): the first
// valid length, unless Transfer-Encoding: chunked came before it (the
// engine leaves out any other coding).
func declaredLength(fields []Header) (int64, bool) {
	for _, f := range fields {
		switch {
		case strings.EqualFold(f.Name, "transfer-encoding"):
			if strings.EqualFold(f.Value, "chunked") {
				return 0, false
			}
		case strings.EqualFold(f.Name, "content-length"):
			if n, err := strconv.ParseUint(f.Value, 10, 63); err == nil {
				return int64(n), true
			}
		}
	}
	return 0, false
}
