package api

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/engine"
	"github.com/loophttp/loophttp/poller"
)

// Options configures a Server; the zero value of each field means its
// default.
type Options struct {
	Loops     int  // event loops (default GOMAXPROCS)
	PinCPU    bool // lock each loop to an OS thread pinned to a CPU
	ReusePort bool // SO_REUSEPORT
	// Limits bound requests (zero fields: the codec's defaults).
	// Limits.MaxBodySize bounds a request body (default 64 MiB): a
	// declared length over it gets 413 before the handler sees the
	// request; a chunked body that passes it gets 413 if the response has
	// not begun, else the connection closes and req.OnError hears a
	// *BodyLimitError naming the limit.
	Limits           codec.Limits
	HeadersTimeout   time.Duration // slowloris guard (default 60 s; engine.Disabled: off)
	KeepAliveTimeout time.Duration // idle between requests (default 5 s; engine.Disabled: off)
	// HighWater is the one high-water mark of a response's output, in
	// bytes (default engine.DefaultHighWater, 64 KiB): Write returns false,
	// and 'drain' is owed, once the output waiting for the socket, or the
	// body written from other goroutines and waiting for the loop, reaches
	// it. Negative is invalid (Listen fails).
	HighWater int
	// Workers, when positive, runs handlers and the request's events on
	// that many goroutines instead of the event loop, for handlers that
	// block (one exchange's callbacks still run one at a time, in order).
	Workers int
	// ReuseMessages lets a connection reuse a request's IncomingMessage
	// and ServerResponse, and the storage of their strings, for a later
	// request once the exchange has closed (after 'close'), so that a
	// request allocates nothing. The price is fasthttp's contract: code
	// must not keep either object, or any string taken from them, past
	// 'close' (copy what must outlive it, e.g. with strings.Clone); a
	// kept handle would act on, and read, a later request. A handler that
	// completes later (from a timer, another goroutine) calls Retain
	// first: that request's objects are then never reused. Off by
	// default: messages are then the user's for as long as they hold them
	// (Node). Ignored with Workers.
	ReuseMessages bool
	Logger        *slog.Logger // nil: slog.Default()
	// AccessLog, when not nil, gets one Info line per request when its
	// exchange ends: method, target (as received), status (0 when no
	// response went out), bytes (of the response body), duration (from
	// the request head to the end of the exchange) and err when it was
	// cut short. nil (the default) logs nothing.
	AccessLog *slog.Logger

	// TLS, when not nil, makes the server an HTTPS one (Node's
	// https.createServer): every connection is TLS, terminated on the
	// event loops. Certificates come from TLS.Certificates or, chosen per
	// SNI name or reloaded without a restart, TLS.GetCertificate; ALPN
	// advertises "http/1.1"; session tickets are on unless the config
	// turns them off. A plain HTTP request to the port is answered 400.
	// Handlers see what was negotiated through Socket.TLS.
	TLS *tls.Config
	// HandshakeTimeout bounds a TLS handshake from the connect (default
	// 10 s); MaxHandshakes bounds the handshakes in progress at once
	// (default 1024: each holds a goroutine until it is done).
	HandshakeTimeout time.Duration
	MaxHandshakes    int
}

// DefaultTimeout is a server's idle timeout unless SetTimeout changes it
// (IoT.js: 2 minutes).
const DefaultTimeout = 120 * time.Second

// Server is an HTTP server: Node's http.Server. Create it with
// CreateServer, register events, then Listen. Event registration and
// SetTimeout are safe from any goroutine; the events run on the event loop
// of the connection concerned and must not block.
type Server struct {
	opts      Options
	highWater int // Options.HighWater resolved

	hot atomic.Pointer[requestListeners] // nil until a listener is set

	mu              sync.Mutex // guards everything below
	onRequest       []func(*IncomingMessage, *ServerResponse)
	onConnection    []func(*Socket)
	onClose         []func()
	onListening     []func()
	onError         []func(error)
	onClientError   []func(error, *Socket)
	onSecure        []func(*Socket)
	onTLSError      []func(error, *Socket)
	onTimeout       []func(*Socket)
	onCheckContinue func(*IncomingMessage, *ServerResponse)
	onUpgrade       []func(*IncomingMessage, *Socket, []byte)
	onConnect       []func(*IncomingMessage, *Socket, []byte)
	timeout         time.Duration
	ps              *poller.Server
	pool            *workerPool // with Options.Workers
	stop            *stopState  // set by the first Close or Shutdown
	closeCbs        []func(error)
	closed          bool // the server has stopped (before the close callbacks run)
	closeFired      bool // 'close' has been posted to events: a late listener is posted at once

	// events runs the server's own events, which have no connection
	// ('listening', 'error', 'close', Close's callbacks, and callbacks a
	// stopped server's loops had no time for), in the order posted.
	events runner

	laterMu      sync.Mutex              // guards laterPending
	laterPending map[*laterTask]struct{} // Socket.later calls posted to a loop, not yet run
}

// stopState is a server's stop in progress.
type stopState struct {
	force  context.Context // ends when a Shutdown's context ends: cut what is left
	cancel context.CancelFunc
	done   chan struct{} // closed once the server has stopped
}

// CreateServer returns a server that calls handler (if not nil) for every
// request, like Node's http.createServer(requestListener). opts may be nil.
func CreateServer(handler func(*IncomingMessage, *ServerResponse), opts *Options) *Server {
	s := &Server{timeout: DefaultTimeout}
	if opts != nil {
		s.opts = *opts
	}
	s.highWater = orHighWater(s.opts.HighWater)
	if handler != nil {
		s.onRequest = append(s.onRequest, handler)
	}
	s.publishRequestListeners()
	return s
}

// OnRequest adds a listener for Node's 'request' event: a request head is
// complete. The body follows through req.OnData and req.OnEnd.
// Any goroutine; callbacks on the loop.
func (s *Server) OnRequest(fn func(*IncomingMessage, *ServerResponse)) {
	s.mu.Lock()
	s.onRequest = append(s.onRequest, fn)
	s.publishRequestListeners()
	s.mu.Unlock()
}

// requestListeners is what every request reads: published as one
// immutable snapshot, so the loops read it without the server's lock.
type requestListeners struct {
	onRequest       []func(*IncomingMessage, *ServerResponse)
	onCheckContinue func(*IncomingMessage, *ServerResponse)
}

// publishRequestListeners publishes a new snapshot. Called with mu held.
func (s *Server) publishRequestListeners() {
	s.hot.Store(&requestListeners{onRequest: s.onRequest, onCheckContinue: s.onCheckContinue})
}

// OnConnection adds a listener for 'connection': a TCP connection opened,
// before any byte is read. Any goroutine; callbacks on the loop.
func (s *Server) OnConnection(fn func(*Socket)) { add(s, &s.onConnection, fn) }

// OnClose adds a listener for 'close': the server has closed (after Close,
// once the last connection has gone). Added after 'close' fired, fn runs
// once, at once (never inside OnClose).
// Any goroutine; fn runs on the server's event goroutine.
func (s *Server) OnClose(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closeFired {
		s.events.post(func() { runGuarded(s.logger(), "close listener", fn) })
		return
	}
	s.onClose = append(s.onClose, fn)
}

// OnListening adds a listener for 'listening'.
// Any goroutine; fn runs on the server's event goroutine.
func (s *Server) OnListening(fn func()) { add(s, &s.onListening, fn) }

// OnError adds a listener for 'error' (listen errors).
// Any goroutine; fn runs on the server's event goroutine.
func (s *Server) OnError(fn func(error)) { add(s, &s.onError, fn) }

// emitServer posts a server event: each of fns, called by call, runs on
// the server's event goroutine, in order, a panic logged and recovered.
func emitServer[F any](s *Server, what string, fns []F, call func(F)) {
	if len(fns) == 0 {
		return
	}
	s.events.post(func() {
		for _, fn := range fns {
			runGuarded(s.logger(), what, func() { call(fn) })
		}
	})
}

// OnClientError adds a listener for 'clientError': a connection sent a
// malformed request (it has been answered with 400, 413, 414, 431, 501 or
// 505 and is being closed; err is a codec.Error).
// Any goroutine; callbacks on the loop.
func (s *Server) OnClientError(fn func(error, *Socket)) { add(s, &s.onClientError, fn) }

// OnSecureConnection adds a listener for 'secureConnection' (HTTPS servers,
// Options.TLS): a connection's TLS handshake is done. It fires after
// 'connection' and before the connection's first 'request'; Socket.TLS
// tells what was negotiated, including the client's certificates. A
// listener may Destroy the socket: no request of it is served then.
// Any goroutine; callbacks on the loop.
func (s *Server) OnSecureConnection(fn func(*Socket)) { add(s, &s.onSecure, fn) }

// OnTLSClientError adds a listener for 'tlsClientError' (HTTPS servers): a
// connection's TLS handshake failed, and the connection is being closed.
// err is crypto/tls's error (a client certificate refused, no common
// version or cipher suite, a bad record), poller.ErrHandshakeTimeout (not
// done within Options.HandshakeTimeout), poller.ErrHandshakeEvicted
// (stalled while others waited for a handshake slot) or poller.ErrNotTLS
// (plain HTTP, answered with 400 first, or other bytes). Socket.TLS is nil.
// Any goroutine; callbacks on the loop.
func (s *Server) OnTLSClientError(fn func(error, *Socket)) { add(s, &s.onTLSError, fn) }

// OnTimeout adds a listener for 'timeout': a connection was idle for
// Timeout while a request was in progress. With a listener (here, on the
// request or on the response) the connection is kept; the listener should
// end it. Without any, the connection is destroyed.
// Any goroutine; callbacks on the loop.
func (s *Server) OnTimeout(fn func(*Socket)) { add(s, &s.onTimeout, fn) }

// OnCheckContinue sets the handler for 'checkContinue': requests with
// "Expect: 100-continue" go to it instead of OnRequest, and it decides
// with res.WriteContinue or a final status. Set it before Listen.
// Any goroutine; callbacks on the loop.
func (s *Server) OnCheckContinue(fn func(*IncomingMessage, *ServerResponse)) {
	s.mu.Lock()
	s.onCheckContinue = fn
	s.publishRequestListeners()
	s.mu.Unlock()
}

// add appends a listener under the server's lock.
func add[F any](s *Server, list *[]F, fn F) {
	s.mu.Lock()
	*list = append(*list, fn)
	s.mu.Unlock()
}

// OnUpgrade adds a listener for 'upgrade': a request asked to switch
// protocols (Connection: upgrade with Upgrade). With a listener, the
// request does not go to OnRequest: the socket is handed over as a byte
// pipe; the listener writes the 101 response itself (Socket.Write) and
// reads the new protocol with Socket.OnData. head is always empty: bytes
// that came with the request arrive through OnData. Without a listener the
// request is an ordinary request; if bytes followed it before its answer
// ended (data for the new protocol), the connection closes after the
// answer and they are never parsed as requests.
// Any goroutine; callbacks on the loop.
func (s *Server) OnUpgrade(fn func(req *IncomingMessage, sock *Socket, head []byte)) {
	add(s, &s.onUpgrade, fn)
}

// OnConnect adds a listener for 'connect': a CONNECT request, handed over
// like an upgrade (the listener answers, e.g. "HTTP/1.1 200 Connection
// Established\r\n\r\n", and relays bytes). Without a listener CONNECT is an
// ordinary request whose answer closes the connection: bytes after its head
// (tunnel data sent early) are never parsed as requests.
// Any goroutine; callbacks on the loop.
func (s *Server) OnConnect(fn func(req *IncomingMessage, sock *Socket, head []byte)) {
	add(s, &s.onConnect, fn)
}

// SetTimeout sets the idle timeout of connections accepted from now on
// (0 turns it off) and, when cb is not nil, adds it as an OnTimeout
// listener. Like Node, not IoT.js: 0 means off.
// Any goroutine; callbacks on the loop.
func (s *Server) SetTimeout(d time.Duration, cb func(*Socket)) {
	s.mu.Lock()
	s.timeout = d
	if cb != nil {
		s.onTimeout = append(s.onTimeout, cb)
	}
	s.mu.Unlock()
}

// Timeout returns the idle timeout (default 2 minutes; 0 is off).
// Any goroutine.
func (s *Server) Timeout() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.timeout
}

// ErrListening reports a second Listen.
var ErrListening = engine.NewError(engine.ErrState, "api: server is already listening")

// ErrNotRunning is passed to a Close callback when the server was not
// listening.
var ErrNotRunning = engine.NewError(engine.ErrClosed, "api: Not running")

// Listen binds host:port (host "" means all IPv4 addresses, port 0 a free
// port; backlog 0 means 511) and starts serving. cb, when not nil, is added
// as an OnListening listener. A bind failure is returned (wrapping the
// errno, e.g. syscall.EADDRINUSE) and passed to the OnError listeners.
// Any goroutine; cb and the 'listening' (or 'error') listeners run on the
// server's event goroutine, after Listen has returned.
func (s *Server) Listen(port int, host string, backlog int, cb func()) error {
	if host == "" {
		host = "0.0.0.0"
	}
	s.mu.Lock()
	if s.ps != nil || s.closed {
		s.mu.Unlock()
		return ErrListening
	}
	if cb != nil {
		s.onListening = append(s.onListening, cb)
	}
	idle := s.timeout
	s.mu.Unlock()

	ecfg := engine.Config{
		Limits:           s.opts.Limits,
		HeadersTimeout:   s.opts.HeadersTimeout,
		KeepAliveTimeout: s.opts.KeepAliveTimeout,
		HighWater:        s.opts.HighWater,
		IdleTimeout:      orDisabled(idle), // Node's server timeout; 0 is off
		ManualContinue:   true,             // the api answers 100-continue itself
		Logger:           s.opts.Logger,
	}
	if s.opts.Workers > 0 {
		s.pool = newWorkerPool(s.opts.Workers)
	}
	h := &serverHandler{srv: s}
	ps, err := poller.Start(poller.Config{
		Addr:      net.JoinHostPort(host, strconv.Itoa(port)),
		Loops:     s.opts.Loops,
		PinCPU:    s.opts.PinCPU,
		ReusePort: s.opts.ReusePort,
		Backlog:   backlog,
		Engine:    ecfg,
		Logger:    s.opts.Logger,

		TLS:              s.opts.TLS,
		HandshakeTimeout: s.opts.HandshakeTimeout,
		MaxHandshakes:    s.opts.MaxHandshakes,
	}, h, h)
	if err != nil {
		if s.pool != nil {
			s.pool.stop()
			s.pool = nil
		}
		err = fmt.Errorf("api: listen: %w", err)
		emitServer(s, "error listener", listeners(s, &s.onError), func(fn func(error)) { fn(err) })
		return err
	}
	s.mu.Lock()
	s.ps = ps
	s.mu.Unlock()
	emitServer(s, "listening listener", listeners(s, &s.onListening), func(fn func()) { fn() })
	return nil
}

// listeners returns a listener list to call without the lock. Lists only
// grow by append, which never writes below the length a reader holds, so
// the returned slice needs no copy.
func listeners[F any](s *Server, list *[]F) []F {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *list
}

// Address describes where a server listens (Node's server.address()).
type Address struct {
	Address string // e.g. "127.0.0.1"
	Family  string // "IPv4" or "IPv6"
	Port    int
}

// Address returns where the server listens, or nil when it does not
// (before Listen, and once Close or Shutdown has stopped it).
// Any goroutine.
func (s *Server) Address() *Address {
	s.mu.Lock()
	ps, closed := s.ps, s.closed
	s.mu.Unlock()
	if ps == nil || closed {
		return nil
	}
	a, ok := ps.Addr().(*net.TCPAddr)
	if !ok {
		return nil
	}
	fam := "IPv4"
	if a.IP.To4() == nil {
		fam = "IPv6"
	}
	return &Address{Address: a.IP.String(), Family: fam, Port: a.Port}
}

// Close stops the server as Node's server.close does, on top of Shutdown:
// the listening socket closes at once (new connects are refused), idle
// keep-alive connections close, the request in progress on each other
// connection is answered with Connection: close; once the last connection
// has closed the server stops, the OnClose listeners run and cb (if not
// nil) is called with nil, at once, with no connection left. cb gets
// ErrNotRunning when the server was not listening or has closed already.
// Any goroutine; cb and the 'close' listeners run on the goroutine that
// finishes stopping the server (cb on a goroutine of its own when the
// server was not running).
func (s *Server) Close(cb func(error)) {
	s.mu.Lock()
	if s.ps == nil || s.closed {
		s.mu.Unlock()
		if cb != nil {
			s.events.post(func() { runGuarded(s.logger(), "close callback", func() { cb(ErrNotRunning) }) })
		}
		return
	}
	if cb != nil {
		s.closeCbs = append(s.closeCbs, cb)
	}
	s.mu.Unlock()
	s.beginStop()
}

// Shutdown stops the server gracefully, as Go's http.Server.Shutdown: it
// closes the listening socket at once, so that new connects are refused;
// closes idle keep-alive connections (one that answered a request in the
// last 500 ms once it has been idle that long, so that a request already on
// its way, from a client that stalled a moment, is answered rather than met
// by a close; one that has sent no request yet after a second); answers the
// request in progress on each other connection, and a request that has
// begun arriving, with Connection: close (pipelined requests behind it are
// never read); waits until every connection has closed with its output
// drained; and returns nil once the server has stopped (the OnClose
// listeners and Close callbacks then run). When ctx ends first, the
// connections left are closed at once and ctx's error is returned once they
// have gone. It returns ErrNotRunning when the server is not listening.
// Calls after the first wait for the same stop. Any goroutine but an event
// loop's (it waits for the loops); the 'close' listeners run on the
// goroutine that finishes stopping the server.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	running := s.ps != nil
	s.mu.Unlock()
	if !running {
		return ErrNotRunning
	}
	st := s.beginStop()
	select {
	case <-st.done:
		return nil
	case <-ctx.Done():
		st.cancel()
		<-st.done
		return ctx.Err()
	}
}

// beginStop starts stopping the server (once) and returns the stop.
func (s *Server) beginStop() *stopState {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		return s.stop
	}
	force, cancel := context.WithCancel(context.Background())
	st := &stopState{force: force, cancel: cancel, done: make(chan struct{})}
	s.stop = st
	go s.finishStop(s.ps, st)
	return st
}

// finishStop runs a stop: the poller's Shutdown, then it posts the
// callbacks the loops had no time for, the 'close' event and the Close
// callbacks to the server's event goroutine.
func (s *Server) finishStop(ps *poller.Server, st *stopState) {
	_ = ps.Shutdown(st.force)
	s.events.post(s.runPendingLater) // the loops have stopped: what they had no time for, before 'close'
	st.cancel()
	if s.pool != nil {
		s.pool.stop()
	}
	s.mu.Lock()
	s.closed, s.closeFired = true, true
	cbs, fns := s.closeCbs, s.onClose
	s.closeCbs = nil
	emitServer(s, "close listener", fns, func(fn func()) { fn() })
	emitServer(s, "close callback", cbs, func(cb func(error)) { cb(nil) })
	s.mu.Unlock()
	close(st.done)
}

// CloseIdleConnections closes, at once, every connection with no request in
// progress and nothing of one received (Node 18's
// server.closeIdleConnections). Any goroutine.
func (s *Server) CloseIdleConnections() {
	s.mu.Lock()
	ps := s.ps
	s.mu.Unlock()
	if ps != nil {
		ps.CloseIdle()
	}
}

// CloseAllConnections closes every connection at once, requests in progress
// included: their responses are cut short and their 'close' events fire
// (Node 18's server.closeAllConnections). The server goes on listening. Any
// goroutine.
func (s *Server) CloseAllConnections() {
	s.mu.Lock()
	ps := s.ps
	s.mu.Unlock()
	if ps != nil {
		ps.CloseAll()
	}
}

func (s *Server) logger() *slog.Logger {
	if s.opts.Logger != nil {
		return s.opts.Logger
	}
	return slog.Default()
}

func orDisabled(d time.Duration) time.Duration {
	if d <= 0 {
		return engine.Disabled
	}
	return d
}

// orHighWater returns the high-water mark an Options.HighWater or
// AgentOptions.HighWater of hw means.
func orHighWater(hw int) int {
	if hw <= 0 {
		return engine.DefaultHighWater
	}
	return hw
}
