package api

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loophttp/loophttp/codec"
)

// IncomingMessage is a request as the server sees it, or a response as the
// client sees it (Node's http.IncomingMessage). Its exported fields are set
// before OnRequest (or OnResponse) runs and change only where noted
// (Complete and RawTrailers, when the body ends); the strings are the
// message's own copy and live as long as the message. The On* registrations, Pause, Resume and SetTimeout are safe
// from any goroutine; Headers builds its map on first use and belongs to
// the goroutine running the exchange's callbacks (the loop, or a worker).
type IncomingMessage struct {
	Method        string   // requests: as received, e.g. "GET" (case preserved)
	URL           string   // requests: the request-target as received, e.g. "/a?b=c"
	StatusCode    int      // responses: the status, e.g. 200
	StatusMessage string   // responses: the reason phrase as received
	HTTPVersion   string   // "1.1", "1.0", or "1.2".."1.9" as received (processed as 1.1)
	RawHeaders    []string // name, value, name, value… in received order and case
	// Trailers holds the trailer fields of a chunked request, in
	// RawHeaders' flat form, once OnEnd has fired.
	RawTrailers []string
	// Complete is true once the whole body has been received.
	Complete bool
	gen      uint32 // the exchange this message belongs to (beside Complete, which leaves room for it)
	// Socket is the connection.
	Socket *Socket

	st      *msgState      // listeners; a server's is shared with later requests of the connection
	cr      *ClientRequest // a client's response
	headers map[string]string
}

// msgState holds a message's listener lists. A server's belongs to an
// exchange, which the connection reuses for its next request: calls
// through an IncomingMessage check, under lmu, that it still serves them.
type msgState struct {
	lmu sync.Mutex // guards msgData (workers register listeners off the loop)
	msgData
	// listening counts the listeners registered for the exchange: while
	// it is 0 the loop skips the lock to look for them. Written under lmu.
	listening atomic.Int32
	gen       generation // read under lmu by handles
	// fired records the events that fire once (firedEnd, …) as they fire:
	// the bit is set before the listeners are looked for, and a listener
	// is added only after counting itself in listening and seeing the bit
	// clear, so each listener is either called by the event or late.
	fired atomic.Uint32
}

// The events that fire once, as msgState.fired and resState.fired record
// them.
const (
	firedEnd uint32 = 1 << iota
	firedClose
	firedError
	firedFinish
)

// msgData is msgState's data, reset as a whole for each exchange.
type msgData struct {
	ex        *exchange // a server's request
	err       error     // what 'error' fired with (a client's response)
	onData    []func([]byte)
	onEnd     []func()
	onClose   []func()
	onTimeout []func()
	onError   []func(error)
}

// clear empties the state for the next exchange of ex. Called with lmu
// held (retire), or on the loop before the state has served anyone.
func (s *msgState) clear(ex *exchange) {
	if s.listening.Load() != 0 || s.err != nil {
		s.msgData = msgData{}
		s.listening.Store(0)
	}
	s.fired.Store(0)
	s.ex = ex
}

// retire makes every handle of the state stale, giving the state the
// generation of the exchange's next request (nextGen) at once, and clears
// it for that request. It takes lmu: a call that passed the generation
// check reads the exchange's fields under lmu, and the loop rewrites them
// once retire returns (unpin, nextExchange).
func (s *msgState) retire() {
	s.lmu.Lock()
	s.gen.Store(nextGen(s.ex.xgen))
	s.clear(s.ex)
	s.lmu.Unlock()
}

// lock returns the message's listener state, locked, or nil (unlocked)
// when the exchange is over and the connection has moved on.
func (m *IncomingMessage) lock() *msgState {
	s := m.st
	s.lmu.Lock()
	if s.gen.Load() != m.gen {
		s.lmu.Unlock()
		return nil
	}
	return s
}

// init sets m, which is zero, for the request of ex: every string is a view of the
// message's own copy of the head, in store (bytes of the loop's arena, or
// the reused message's) when it fits, on the heap otherwise, never of the
// engine's borrowed bytes. raw is the inline storage for RawHeaders.
func (m *IncomingMessage) init(ex *exchange, req *codec.Request, store []byte, raw []string) {
	// m is zero: new, or cleared for reuse (serverHandler.newMessage).
	// Setting fields one by one spares a copy of the whole struct, with
	// its write barriers, per request.
	m.st, m.gen, m.Socket, m.HTTPVersion = &ex.reqSt, ex.xgen, ex.sock, version(req.Minor)
	head := headBytes(req)
	arena := store[:0]
	if len(head) > len(store) {
		arena = make([]byte, 0, len(head))
	}
	arena = append(arena, head...)
	take := func(b []byte) string {
		if len(b) == 0 {
			return ""
		}
		if off := offset(head, b); off >= 0 && off+len(b) <= len(arena) {
			return view(arena[off : off+len(b)])
		}
		return string(b) // not in the head: never with the codec's views
	}
	m.Method = methodName(req.Method, take)
	m.URL = take(req.Target)
	m.RawHeaders = raw[:0]
	if 2*len(req.Headers) > len(raw) {
		m.RawHeaders = make([]string, 0, 2*len(req.Headers))
	}
	for _, h := range req.Headers {
		m.RawHeaders = append(m.RawHeaders, take(h.Name), take(h.Value))
	}
}

// headBytes returns the bytes of the parsed head from the method to the
// end of its last field: the views of req all lie in them, as the codec
// parses one contiguous buffer.
func headBytes(req *codec.Request) []byte {
	end := req.Proto
	for _, h := range req.Headers {
		if len(h.Value) > 0 {
			end = h.Value
		} else {
			end = h.Name
		}
	}
	return span(req.Method, end)
}

// methodName returns the common methods without copying.
func methodName(b []byte, take func([]byte) string) string {
	switch string(b) {
	case "GET":
		return "GET"
	case "POST":
		return "POST"
	case "HEAD":
		return "HEAD"
	case "PUT":
		return "PUT"
	case "DELETE":
		return "DELETE"
	}
	return take(b)
}

// Header returns the value of the named field (ASCII case-insensitive), with
// repeated fields joined as Node joins them (see Headers), or "".
// Any goroutine.
func (m *IncomingMessage) Header(name string) string {
	return joinField(m.RawHeaders, strings.ToLower(name))
}

// HeaderValues returns every value of the named field in received order
// (for Set-Cookie and other repeated fields). Any goroutine.
func (m *IncomingMessage) HeaderValues(name string) []string {
	var vs []string
	for i := 0; i+1 < len(m.RawHeaders); i += 2 {
		if strings.EqualFold(m.RawHeaders[i], name) {
			vs = append(vs, m.RawHeaders[i+1])
		}
	}
	return vs
}

// Headers returns the header fields as Node's req.headers: lower-case names;
// repeats of single-value fields (Host, Content-Type, …) keep the first;
// Cookie repeats are joined with "; "; others with ", " (Set-Cookie too:
// HeaderValues gives them one by one). The map is built on first use.
// Callbacks' goroutine.
func (m *IncomingMessage) Headers() map[string]string {
	if m.headers == nil {
		m.headers = make(map[string]string, len(m.RawHeaders)/2)
		for i := 0; i+1 < len(m.RawHeaders); i += 2 {
			name := strings.ToLower(m.RawHeaders[i])
			if _, done := m.headers[name]; !done {
				m.headers[name] = joinField(m.RawHeaders, name)
			}
		}
	}
	return m.headers
}

// singleValue lists the fields of which Node keeps only the first.
var singleValue = map[string]bool{
	"age": true, "authorization": true, "content-length": true, "content-type": true,
	"etag": true, "expires": true, "from": true, "host": true, "if-modified-since": true,
	"if-unmodified-since": true, "last-modified": true, "location": true,
	"max-forwards": true, "proxy-authorization": true, "referer": true,
	"retry-after": true, "server": true, "user-agent": true,
}

// joinField joins the values of the lower-case field name in a flat list.
func joinField(raw []string, name string) string {
	sep := ", "
	if name == "cookie" {
		sep = "; "
	}
	out, found := "", false
	for i := 0; i+1 < len(raw); i += 2 {
		if !strings.EqualFold(raw[i], name) {
			continue
		}
		switch {
		case !found:
			out, found = raw[i+1], true
			if singleValue[name] {
				return out
			}
		default:
			out += sep + raw[i+1]
		}
	}
	return out
}

// Trailer returns the value of a trailer field (case-insensitive), or "".
// Any goroutine.
func (m *IncomingMessage) Trailer(name string) string {
	return joinField(m.RawTrailers, strings.ToLower(name))
}

// OnData adds a listener for 'data': a piece of the body. chunk is
// borrowed: valid only during the call (bytes.Clone keeps it).
// Any goroutine; callbacks on the loop.
func (m *IncomingMessage) OnData(fn func(chunk []byte)) {
	if s := m.lock(); s != nil {
		register(s, &s.onData, 0, fn)
		s.lmu.Unlock()
	}
}

// OnEnd adds a listener for 'end': the body is complete (it fires for
// requests without a body too). Added after 'end' fired, fn runs at once
// (see doc.go, "Events a late listener cannot miss").
// Any goroutine; callbacks on the loop.
func (m *IncomingMessage) OnEnd(fn func()) {
	s := m.lock()
	if s == nil {
		if m.Complete { // the exchange is over: 'end' fired, or never will
			m.Socket.later(fn)
		}
		return
	}
	added := register(s, &s.onEnd, firedEnd, fn)
	s.lmu.Unlock()
	if !added {
		m.late(fn)
	}
}

// OnClose adds a listener for 'close': the exchange is over, normally or
// because the connection closed. Added after 'close' fired, fn runs at
// once. Any goroutine; callbacks on the loop.
func (m *IncomingMessage) OnClose(fn func()) {
	s := m.lock()
	if s == nil { // the exchange is over and retired: 'close' fired
		m.Socket.later(fn)
		return
	}
	added := register(s, &s.onClose, firedClose, fn)
	s.lmu.Unlock()
	if !added {
		m.late(fn)
	}
}

// OnTimeout adds a listener for 'timeout': the connection was idle for its
// timeout before this request was complete.
// Any goroutine; callbacks on the loop.
func (m *IncomingMessage) OnTimeout(fn func()) {
	if s := m.lock(); s != nil {
		register(s, &s.onTimeout, 0, fn)
		s.lmu.Unlock()
	}
}

// register adds fn to list, an event's listeners, unless the event fires
// once (bit) and has fired: then it reports false, and the caller has fn
// called late. Called with lmu held.
func register[F any](s *msgState, list *[]F, bit uint32, fn F) bool {
	s.listening.Add(1)
	if bit != 0 && s.fired.Load()&bit != 0 {
		s.listening.Add(-1)
		return false
	}
	*list = append(*list, fn)
	return true
}

// late has call, for a listener added after its event fired, run at once
// by whoever runs the message's callbacks: the request's
// (ClientRequest.lateCall) for a client's response, the exchange's
// (exchange.late) for a server's request.
func (m *IncomingMessage) late(call func()) {
	if r := m.cr; r != nil {
		r.mu.Lock()
		r.lateCall(call) // unlocks
		return
	}
	m.st.lmu.Lock()
	ex := m.st.ex
	m.st.lmu.Unlock()
	ex.late(m.gen, m.Socket, call)
}

// SetTimeout sets the connection's idle timeout (0: off) and adds cb, if not
// nil, as an OnTimeout listener (once, unlike IoT.js, which ran it twice).
// On a client's response the timeout is the request's idle timer (see
// ClientRequest.SetTimeout), and cb runs each time it fires.
// Any goroutine; callbacks on the loop.
func (m *IncomingMessage) SetTimeout(d time.Duration, cb func()) {
	if cb != nil {
		m.OnTimeout(cb)
	}
	m.Socket.SetTimeout(d, nil)
}

// OnError adds a listener for 'error'. On a client's response: the
// connection closed before the body was complete (the request's OnError
// hears it too). On a server's request: a limit cut the body short after
// the response had begun (a *BodyLimitError, just before 'close'; the
// connection closes). Added after 'error' fired, fn gets the error at
// once. Any goroutine; callbacks on the loop.
func (m *IncomingMessage) OnError(fn func(error)) {
	s := m.lock()
	if s == nil {
		// A server's request whose exchange is over and its state reused:
		// the error, if there was one, is not kept (doc.go says so).
		return
	}
	added := register(s, &s.onError, firedError, fn)
	err := s.err
	s.lmu.Unlock()
	if !added {
		m.late(func() { fn(err) })
	}
}

// Pause stops delivering the body: the connection is not read further until
// Resume (the engine stops taking input and the poller stops reading the
// socket, so TCP flow control holds the peer). Only the loop ever touches
// the engine. On a server's request, made while the loop runs one of the
// exchange's callbacks (from the callback itself or from any goroutine), it
// is carried out on the loop as that callback returns, before the next
// chunk; otherwise, or with a worker pool, in a task of the loop, in order
// with the response's calls. On a client's response, made inside the
// connection's own event it takes effect at once, from anywhere else it is
// handed to the loop. Any goroutine.
func (m *IncomingMessage) Pause() {
	if m.cr != nil {
		m.cr.pause(true)
		return
	}
	m.bodyCall(opPause)
}

// Resume delivers the body again after Pause, on the terms of Pause. Any
// goroutine.
func (m *IncomingMessage) Resume() {
	if m.cr != nil {
		m.cr.pause(false)
		return
	}
	m.bodyCall(opResume)
}

// bodyCall queues a Pause or Resume of a server's request with its
// response's calls, which the loop carries out in order (resState.queue):
// the loop alone touches the engine. A request whose exchange is over is
// left alone.
func (m *IncomingMessage) bodyCall(kind opKind) {
	s := m.lock()
	if s == nil {
		return
	}
	ex := s.ex
	s.lmu.Unlock()
	// The exchange may be retired meanwhile: the generation check under
	// the response's lock tells (a later exchange has another).
	rs := &ex.resSt
	rs.mu.Lock()
	if rs.gen.Load() == m.gen {
		rs.queue(op{kind: kind})
	}
	rs.mu.Unlock()
}

// The message's events, emitted by the layer that owns it (on the loop, or
// a worker), for the exchange it serves now.

func (s *msgState) emitData(chunk []byte) {
	if s.listening.Load() == 0 {
		return
	}
	s.lmu.Lock()
	fns := s.onData
	s.lmu.Unlock()
	for _, fn := range fns {
		fn(chunk)
	}
}

// complete marks m complete with its trailers and fires 'end'.
func (m *IncomingMessage) complete(trailers []codec.Header) {
	m.Complete = true
	if len(trailers) > 0 {
		arena := make([]byte, 0, 64)
		for _, t := range trailers {
			start := len(arena)
			arena = append(arena, t.Name...)
			mid := len(arena)
			arena = append(arena, t.Value...)
			m.RawTrailers = append(m.RawTrailers, string(arena[start:mid]), string(arena[mid:]))
		}
	}
	m.st.fired.Or(firedEnd)
	m.st.emit(&m.st.onEnd)
}

func (s *msgState) emit(list *[]func()) {
	if s.listening.Load() == 0 {
		return
	}
	s.lmu.Lock()
	fns := *list
	s.lmu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// emitError fires 'error' with err.
func (s *msgState) emitError(err error) {
	if s.listening.Load() == 0 {
		return
	}
	s.lmu.Lock()
	fns := s.onError
	s.lmu.Unlock()
	for _, fn := range fns {
		fn(err)
	}
}

// has reports whether a listener list has listeners.
func (s *msgState) has(list *[]func()) bool {
	if s.listening.Load() == 0 {
		return false
	}
	s.lmu.Lock()
	defer s.lmu.Unlock()
	return len(*list) > 0
}
