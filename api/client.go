package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/bytebufferpool"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/engine"
	"github.com/loophttp/loophttp/poller"
)

// RequestOptions are the options of Request and Get (Node's http.request
// options). The zero value of each field means its default.
type RequestOptions struct {
	// Host is the server's name or IP address (default "localhost").
	Host string
	// Hostname wins over Host when set.
	Hostname string
	// Port is the server's port (default 80).
	Port int
	// Method is the request method (default "GET").
	Method string
	// Path is the request-target (default "/"), sent byte for byte: any
	// visible ASCII octet but "#" (the target-visible policy the server
	// applies). A path with a space, a control character, a non-ASCII
	// octet or a "#" is an error, never bytes on the wire.
	Path string
	// Headers are the request's header fields, sent in name order (Go maps
	// have none); SetHeader adds more in call order.
	Headers map[string]string
	// HeaderList are more header fields, sent after Headers' in the order
	// given, one line per entry: a name may repeat (several Accept or
	// Cookie lines, Node's array values and raw header arrays), and no
	// entry replaces another.
	HeaderList []Header
	// Agent pools the connections (default DefaultAgent).
	Agent *Agent
	// Timeout, when set, is the request's idle timeout, as SetTimeout.
	Timeout time.Duration
}

// Client errors. Every failure of a request reaches OnError exactly once,
// then OnClose.
var (
	// ErrSocketHangUp: the connection closed before a complete response
	// head ("socket hang up").
	ErrSocketHangUp = engine.ErrHangUp
	// ErrResponseAborted: the connection closed inside the response body.
	ErrResponseAborted = errors.New("api: response aborted: connection closed inside the body")
	// ErrSocketDestroyed: the request's Socket was destroyed.
	ErrSocketDestroyed = errors.New("api: socket destroyed")
	// ErrDestroyed: Destroy was called without an error.
	ErrDestroyed = errors.New("api: request destroyed")
	// ErrInvalidRequest: the options cannot make a request (bad URL,
	// scheme, path, method or header).
	ErrInvalidRequest = errors.New("api: invalid request")
)

// ParseError reports a response that breaks HTTP/1.1; Kind is the codec's
// error kind.
type ParseError struct{ Kind codec.Error }

func (e *ParseError) Error() string { return "api: parse error: " + e.Kind.Error() }

// Unwrap returns the codec error kind.
func (e *ParseError) Unwrap() error { return e.Kind }

// BodyLimitError reports a body cut short by a configured size limit: on
// a client, a response body over AgentOptions.Limits.MaxBodySize; on a
// server, a chunked request body that passed Options.Limits.MaxBodySize
// after its response had begun (a declared length over it is answered
// with 413 before the handler sees the request). errors.Is(err,
// codec.ErrBodyTooLarge) holds for it.
type BodyLimitError struct {
	Limit   int64  // the limit, in bytes
	Setting string // where it is set, e.g. "AgentOptions.Limits.MaxBodySize"
}

func (e *BodyLimitError) Error() string {
	return "api: body over the limit of " + strconv.FormatInt(e.Limit, 10) + " bytes (" + e.Setting + ")"
}

// Unwrap returns codec.ErrBodyTooLarge.
func (e *BodyLimitError) Unwrap() error { return codec.ErrBodyTooLarge }

// Information is an interim (1xx) response, as OnInformation gets it.
type Information struct {
	StatusCode    int
	StatusMessage string
	HTTPVersion   string
	RawHeaders    []string // name, value, … in received order and case
}

// reqState is where a ClientRequest is in its life.
type reqState uint8

const (
	reqNew      reqState = iota // nothing sent, no connection asked for
	reqWaiting                  // waiting for the agent's connection
	reqAttached                 // bound to a connection's exchange
	reqDone                     // closed: OnClose has been (or is being) emitted
)

// ClientRequest is an outgoing request (Node's http.ClientRequest). Nothing
// is sent until Write or End: register listeners before calling them
// (those of the events that fire once may come later: see OnClose).
// Every method is safe from any goroutine. Callbacks (listeners and the
// callbacks of Write and End) run on the connection's loop, and must not
// block it; those of a request that has no connection to run them on (a
// refused connect, a DNS failure, Abort or Destroy before the connection,
// Agent.Destroy while it waited, a listener added after the request
// closed) run on its agent's runner, one goroutine that runs them in
// order. A callback never runs inside a call made on another goroutine,
// and the callbacks of one request never run concurrently. A call made on
// the connection's loop, inside one of its events, goes straight to the
// engine (poller.Conn.InEvent tells exactly); a call from anywhere else
// is handed to the loop, in call order.
type ClientRequest struct {
	Method string // the request method
	Path   string // the request-target
	Host   string // the Host header's value (host, with the port when not 80)

	agent   *Agent
	addr    string // host:port to dial
	hostHdr bool   // the caller set a Host header

	mu       sync.Mutex
	state    reqState
	fields   []Header
	ended    bool
	pending  []clientOp // calls made before the connection was bound
	replay   []clientOp // the whole request, kept while it may be retried
	queued   int        // bytes given to Write and not yet taken by the engine
	given    int64      // body bytes Write and End have accepted
	full     bool       // the engine's output is over its mark
	owed     bool       // a Write returned false: OnDrain is owed
	retried  bool
	failed   error     // the error the request closed with, once it has
	stopping *stopCall // Abort or Destroy was called: no retry from then on
	timeout  time.Duration
	ahead    int     // ops handed to the loop, or being applied by attach, not yet carried out (sendBound)
	socketed bool    // OnSocket has fired
	sock     *Socket // the socket OnSocket fired with

	// The events that fire once, as they have: a listener added later
	// gets its call through late (see lateCall).
	finished bool // 'finish'
	aborted  bool // 'abort'
	errored  bool // 'error', with failed
	closed   bool // 'close'
	late     []func()
	lateBusy bool // a goroutine is running the calls in late, or the request's ending

	// Set on the loop when bound.
	pc   *poller.Conn
	pgen uint32
	x    *engine.Exchange
	xgen uint32
	ac   *agentConn
	res  *IncomingMessage

	// Inline storage, so that a plain request allocates nothing besides
	// itself: its first calls, the first listener of the events most
	// requests listen to, its response with the head's strings, and what
	// its end delivers.
	opsInline      [2]clientOp
	responseInline [1]func(*IncomingMessage)
	closeInline    [1]func()
	dataInline     [1]func([]byte)
	endInline      [1]func()
	resInline      IncomingMessage
	resSt          msgState
	rawInline      [16]string
	arena          [256]byte
	ending         ending

	onResponse    []func(*IncomingMessage)
	onSocket      []func(*Socket)
	onInformation []func(Information)
	onContinue    []func()
	onFinish      []func()
	onError       []func(error)
	onClose       []func()
	onTimeout     []func()
	onDrain       []func()
	onAbort       []func()
}

// clientOp is a Write or End on its way to the engine.
type clientOp struct {
	data []byte
	buf  *bytebufferpool.ByteBuffer // holds data, from the pool; nil when data is
	cb   func(error)
	end  bool
}

// bodyCopy returns a copy of data in a buffer from the pool (nil, nil for
// no data): the caller may reuse data once Write or End returns.
func bodyCopy(data []byte) ([]byte, *bytebufferpool.ByteBuffer) {
	if len(data) == 0 {
		return nil, nil
	}
	b := bytebufferpool.Get()
	b.B = append(b.B[:0], data...)
	return b.B, b
}

// release gives op's buffer back to the pool once nothing will read its
// data again.
func (op *clientOp) release() {
	if op.buf != nil {
		bytebufferpool.Put(op.buf)
		op.buf, op.data = nil, nil
	}
}

// Request makes a request (Node's http.request); cb, if not nil, is an
// OnResponse listener. Nothing is sent until Write or End. It fails with
// an error wrapping ErrInvalidRequest when the options cannot make a valid
// request head.
func Request(opts RequestOptions, cb func(res *IncomingMessage)) (*ClientRequest, error) {
	r, err := newRequest(opts)
	if err != nil {
		return nil, err
	}
	if cb != nil {
		r.onResponse = append(r.onResponse, cb)
	}
	return r, nil
}

// Get is Request followed by End (Node's http.get).
func Get(opts RequestOptions, cb func(res *IncomingMessage)) (*ClientRequest, error) {
	r, err := Request(opts, cb)
	if err != nil {
		return nil, err
	}
	_ = r.End(nil, nil)
	return r, nil
}

// RequestURL is Request with the server, port and path taken from an
// http:// URL; opts may set the rest (Method, Headers, Agent, Timeout).
// The URL's path and query are sent as written, byte for byte, as curl
// sends them; its #fragment is not sent.
func RequestURL(rawURL string, opts RequestOptions, cb func(res *IncomingMessage)) (*ClientRequest, error) {
	if err := fromURL(rawURL, &opts); err != nil {
		return nil, err
	}
	return Request(opts, cb)
}

// GetURL is RequestURL followed by End.
func GetURL(rawURL string, cb func(res *IncomingMessage)) (*ClientRequest, error) {
	r, err := RequestURL(rawURL, RequestOptions{}, cb)
	if err != nil {
		return nil, err
	}
	_ = r.End(nil, nil)
	return r, nil
}

// fromURL sets the host, port and path of opts from an http:// URL. The
// target (path and query) is kept byte for byte, as curl sends it: never
// re-encoded or decoded, so the server sees what the caller wrote. A
// #fragment is dropped (it is never sent, RFC 9110 §4.2.5); a URL without
// a path gets "/". Bytes no request-target may hold are refused later, by
// newRequest.
func fromURL(rawURL string, opts *RequestOptions) error {
	authority, target, ok := codec.SplitURL(rawURL)
	if !ok {
		return fmt.Errorf("%w: %q: want an http:// URL", ErrInvalidRequest, rawURL)
	}
	// The authority alone goes through net/url, for IP literals, ports
	// and userinfo (which is not sent).
	u, err := url.Parse("http://" + authority)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%w: %q: bad host %q", ErrInvalidRequest, rawURL, authority)
	}
	opts.Host, opts.Hostname = u.Hostname(), ""
	opts.Port = 80
	if p := u.Port(); p != "" {
		if opts.Port, err = strconv.Atoi(p); err != nil {
			return fmt.Errorf("%w: port %q", ErrInvalidRequest, p)
		}
	}
	opts.Path = target
	return nil
}

func newRequest(opts RequestOptions) (*ClientRequest, error) {
	host := opts.Hostname
	if host == "" {
		host = opts.Host
	}
	if host == "" {
		host = "localhost"
	}
	if opts.Port == 0 {
		opts.Port = 80
	}
	if opts.Port < 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("%w: port %d", ErrInvalidRequest, opts.Port)
	}
	if opts.Method == "" {
		opts.Method = "GET"
	}
	if opts.Path == "" {
		opts.Path = "/"
	}
	if err := codec.ValidRequestLine(opts.Method, opts.Path); err != nil {
		return nil, fmt.Errorf("%w: %q %q: %v", ErrInvalidRequest, opts.Method, opts.Path, err)
	}
	r := &ClientRequest{
		Method:  opts.Method,
		Path:    opts.Path,
		agent:   opts.Agent,
		timeout: opts.Timeout,
	}
	if r.agent == nil {
		r.agent = DefaultAgent
	}
	r.pending = r.opsInline[:0]
	r.onResponse, r.onClose = r.responseInline[:0], r.closeInline[:0]
	r.addr, r.Host = r.agent.names(host, opts.Port)
	names := make([]string, 0, len(opts.Headers))
	for name := range opts.Headers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := r.SetHeader(name, opts.Headers[name]); err != nil {
			return nil, fmt.Errorf("%w: header %q: %v", ErrInvalidRequest, name, err)
		}
	}
	for _, h := range opts.HeaderList {
		if err := codec.ValidHeader(h.Name, h.Value); err != nil {
			return nil, fmt.Errorf("%w: header %q: %v", ErrInvalidRequest, h.Name, err)
		}
		r.fields = append(r.fields, h)
		r.hostHdr = r.hostHdr || strings.EqualFold(h.Name, "host")
	}
	return r, nil
}

// hostNames returns the address to dial and the Host header's value for
// host and port: the port is in Host when it is not 80, and an IPv6
// literal is bracketed.
func hostNames(host string, port int) (addr, hostHeader string) {
	addr = net.JoinHostPort(host, strconv.Itoa(port))
	hostHeader = host
	if strings.IndexByte(host, ':') >= 0 {
		hostHeader = "[" + host + "]"
	}
	if port != 80 {
		hostHeader += ":" + strconv.Itoa(port)
	}
	return addr, hostHeader
}

// SetHeader sets a header field (case-insensitive; the name keeps the case
// given), replacing any of the same name. It fails after the head is sent
// and for names or values that must not reach the wire.
func (r *ClientRequest) SetHeader(name, value string) error {
	if err := codec.ValidHeader(name, value); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state >= reqAttached {
		return ErrHeadersSent
	}
	r.fields = removeField(r.fields, name)
	r.fields = append(r.fields, Header{Name: name, Value: value})
	if strings.EqualFold(name, "host") {
		r.hostHdr = true
	}
	return nil
}

// GetHeader returns a header field set on the request, or "".
func (r *ClientRequest) GetHeader(name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.fields {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// RemoveHeader removes a header field. It fails after the head is sent.
func (r *ClientRequest) RemoveHeader(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state >= reqAttached {
		return ErrHeadersSent
	}
	r.fields = removeField(r.fields, name)
	if strings.EqualFold(name, "host") {
		r.hostHdr = false
	}
	return nil
}

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

// clientHighWater is how much request body may wait for the connection
// before Write reports false.
const clientHighWater = 64 << 10

// Write sends a piece of the body (chunked unless a Content-Length header
// was set), starting the request if it has not started. data is copied.
// Data that would take the body past the Content-Length set is not sent:
// Write reports false, cb hears ErrContentLengthMismatch, and the request
// fails with it (as Destroy).
// cb, if not nil, runs once the engine has taken the data, or with the
// error that kept it from the wire (ErrWriteAfterEnd, ErrConnectionGone),
// on the loop (see ClientRequest): made on the loop with nothing ahead of
// it, the data goes to the engine at once and cb runs before Write
// returns. data is copied into a pooled buffer unless it goes to the
// engine at once. It reports false when the request has buffered too
// much: wait for OnDrain.
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
	p, buf := bodyCopy(data)
	r.queued += len(p)
	ok := !r.full && r.queued < clientHighWater
	r.owed = r.owed || !ok
	r.send(clientOp{data: p, buf: buf, cb: cb}) // unlocks
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
	p, buf := bodyCopy(data)
	r.send(clientOp{data: p, buf: buf, cb: cb, end: true}) // unlocks
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
// connection's loop. It is called with r.mu held and releases it.
func (r *ClientRequest) send(op clientOp) {
	switch r.state {
	case reqNew:
		r.pending = append(r.pending, op)
		r.state = reqWaiting
		r.mu.Unlock()
		r.agent.acquire(r, false)
	case reqWaiting:
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

// listeners returns a copy of the slice header of a listener list.
func (r *ClientRequest) listeners(list *[]func()) []func() {
	r.mu.Lock()
	defer r.mu.Unlock()
	return *list
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
	due := r.owed && !r.full && r.queued < clientHighWater
	if due {
		r.owed = false
	}
	drain := r.onDrain
	r.mu.Unlock()
	if first {
		r.emit(finish)
	}
	if due {
		r.emit(drain)
	}
}

// drainIfOwed fires OnDrain once the request's buffers have room again.
func (r *ClientRequest) drainIfOwed() {
	r.mu.Lock()
	due := r.owed && !r.full && r.queued < clientHighWater
	if due {
		r.owed = false
	}
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
	e := &r.ending // delivered once: end runs once per request
	*e = ending{err: err, res: r.res, onError: r.onError, onClose: r.onClose, ops: r.pending}
	if abort {
		e.onAbort = r.onAbort
	}
	r.onAbort, r.onError, r.onClose = nil, nil, nil
	for i := range r.pending {
		r.pending[i].release()
	}
	for i := range r.replay {
		r.replay[i].release()
	}
	r.pending, r.replay = nil, nil
	if res := e.res; res != nil {
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
		r.late = append(r.late, func() { r.emitEnding(e) })
		r.mu.Unlock()
		return
	}
	r.lateBusy = true
	early := len(r.late) > 0
	r.mu.Unlock()
	if early {
		r.runLateCalls(false) // those added before the end first: 'socket' before 'close'
	}
	r.emitEnding(e)
	r.runLate() // listeners added while the ending ran
}

// ending is what end delivers.
type ending struct {
	err              error
	res              *IncomingMessage
	onAbort, onClose []func()
	onError          []func(error)
	ops              []clientOp
}

// emitEnding runs the callbacks of the request's end: the waiting write
// callbacks, 'abort', the response's and the request's 'error', 'close'.
func (r *ClientRequest) emitEnding(e *ending) {
	err, res, ops, onError, onClose := e.err, e.res, e.ops, e.onError, e.onClose
	r.emit(e.onAbort)
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
		logClientPanic(r.agent.logger(), v)
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

// logClientPanic logs v, a client callback's panic, with the stack of the
// goroutine that panicked. It is the client's one recover log, kept to
// one small function so that it can defer to the package's recover
// helper.
func logClientPanic(log *slog.Logger, v any) {
	log.Error("loophttp: client callback panicked", "panic", v, "stack", string(debug.Stack()))
}

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
	end := func() { r.finish(clientError(err, r.agent)) } // a stopped request ends as its stop says
	if ac == nil {
		end()
		return
	}
	ac.during(end)
}

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
