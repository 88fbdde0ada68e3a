package api

import (
	"fmt"
	"net"
	"net/url"
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
	// Protocol is "http:" (the default) or "https:" (Node's https.request;
	// the default port is then 443). An https:// URL sets it.
	Protocol string
	// TLS configures an https request (nil: verify the server against
	// the system's roots). See TLSOptions.
	TLS *TLSOptions
}

// Client errors. Every failure of a request reaches OnError exactly once,
// then OnClose.
var (
	// ErrSocketHangUp: the connection closed before a complete response
	// head ("socket hang up"). When the close had a reason beyond the end
	// of the stream (a reset, a TLS alert), the request's error is
	// ErrSocketHangUp with that reason: errors.Is matches both, and the
	// message names it ("socket hang up: read: connection reset by peer").
	ErrSocketHangUp = engine.ErrHangUp
	// ErrResponseAborted: the connection closed inside the response body.
	ErrResponseAborted = engine.NewError(engine.ErrClosed, "api: response aborted: connection closed inside the body")
	// ErrSocketDestroyed: the request's Socket was destroyed.
	ErrSocketDestroyed = engine.NewError(engine.ErrClosed, "api: socket destroyed")
	// ErrDestroyed: Destroy was called without an error.
	ErrDestroyed = engine.NewError(engine.ErrCanceled, "api: request destroyed")
	// ErrInvalidRequest: the options cannot make a request (bad URL,
	// scheme, path, method or header).
	ErrInvalidRequest = engine.NewError(engine.ErrInvalid, "api: invalid request")
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
	addr    string     // host:port to dial
	tlsc    *clientTLS // an https request's TLS settings (api/tls.go); nil for http
	hostHdr bool       // the caller set a Host header

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
	keepConn bool    // the response keeps the connection (loop only)
	sock     *Socket // the socket OnSocket fired with

	// The events that fire once, as they have: a listener added later
	// gets its call through late (see lateCall).
	finished bool // 'finish'
	aborted  bool // 'abort'
	errored  bool // 'error', with failed
	closed   bool // 'close'
	lateBusy bool // a goroutine is running the calls in late, or the request's ending
	late     []func()

	// Set on the loop when bound.
	pc   *poller.Conn
	pgen uint32
	xgen uint32
	x    *engine.Exchange
	ac   *agentConn
	res  *IncomingMessage

	// Inline storage, so that a plain request allocates nothing besides
	// itself: its first calls, the first listener of the events most
	// requests listen to, and its response with the head's strings.
	opsInline      [2]clientOp
	responseInline [1]func(*IncomingMessage)
	closeInline    [1]func()
	dataInline     [1]func([]byte)
	endInline      [1]func()
	resInline      IncomingMessage
	resSt          msgState
	rawInline      [16]string
	arena          [256]byte

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
	pooledBody // the caller's bytes until send copies them
	cb         func(error)
	end        bool
}

// pooledBody is a body handed to Write or End, in buf from bytebufferpool
// once copied there (bodyCopy); buf is nil when data is the caller's, or
// in storage of its owner's (resState.copyBody), or empty.
type pooledBody struct {
	data []byte
	buf  *bytebufferpool.ByteBuffer
}

// bodyCopy returns a copy of data in a buffer from the pool (nothing for
// no data): the caller may reuse data once Write or End returns.
func bodyCopy(data []byte) pooledBody {
	if len(data) == 0 {
		return pooledBody{}
	}
	b := bytebufferpool.Get()
	b.B = append(b.B[:0], data...)
	return pooledBody{data: b.B, buf: b}
}

// release gives the buffer back to the pool once nothing will read data
// again (the engine copies what it is handed into the connection's
// output, so that is once the engine call returns, or the body is
// dropped).
func (b *pooledBody) release() {
	if b.buf != nil {
		bytebufferpool.Put(b.buf)
		b.buf, b.data = nil, nil
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
	https := len(rawURL) > 8 && strings.EqualFold(rawURL[:8], "https://")
	split := rawURL
	if https {
		split = "http://" + rawURL[8:]
	}
	authority, target, ok := codec.SplitURL(split)
	if !ok {
		return fmt.Errorf("%w: %q: want an http:// or https:// URL", ErrInvalidRequest, rawURL)
	}
	// The authority alone goes through net/url, for IP literals, ports
	// and userinfo (which is not sent).
	u, err := url.Parse("http://" + authority)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%w: %q: bad host %q", ErrInvalidRequest, rawURL, authority)
	}
	opts.Host, opts.Hostname = u.Hostname(), ""
	opts.Port, opts.Protocol = 80, "http:"
	if https {
		opts.Port, opts.Protocol = 443, "https:"
	}
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
	https := isHTTPS(opts.Protocol)
	if !https && opts.Protocol != "" && !strings.EqualFold(strings.TrimSuffix(opts.Protocol, ":"), "http") {
		return nil, fmt.Errorf("%w: protocol %q (want http: or https:)", ErrInvalidRequest, opts.Protocol)
	}
	if opts.Port == 0 {
		opts.Port = 80
		if https {
			opts.Port = 443
		}
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
	if https {
		r.tlsc = newClientTLS(r.addr, host, opts.TLS)
		r.Host = httpsHost(r.Host, opts.Port)
	}
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
