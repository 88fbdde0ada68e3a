package api

import (
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loophttp/loophttp/engine"
	"github.com/loophttp/loophttp/poller"
)

// Socket is the connection under requests and responses: the part of
// Node's net.Socket that http uses. Every method may be called from any
// goroutine: the address methods and the listener registrations act at
// once, the others hand their work to the connection's loop. Its events
// run on the loop.
//
// Every idle keep-alive connection holds one, so what few connections use
// (their own listeners, the byte pipe of an upgrade) lives in socketExtra,
// allocated on first use.
type Socket struct {
	pc     *poller.Conn
	gen    uint32
	closed atomic.Bool
	srv    *Server      // nil for a client's connection
	remote *net.TCPAddr // kept when the connection opened (the Conn is reused later); nil if not TCP
	local  *net.TCPAddr

	// Owned by the loop.
	current *exchange      // the exchange in progress (server)
	request *ClientRequest // the request in progress (client)

	extra atomic.Pointer[socketExtra] // nil until a listener is added, the socket is upgraded or a TLS handshake is done
}

// newSocket returns the Socket of pc's connection, which has just opened;
// srv is nil for a client's. Loop only.
func newSocket(pc *poller.Conn, srv *Server) *Socket {
	s := &Socket{pc: pc, gen: pc.Gen(), srv: srv, remote: tcpAddr(pc.RemoteAddr()), local: tcpAddr(pc.LocalAddr())}
	s.noteTLS() // a client's handshake is done before its connection opens
	return s
}

// tcpAddr returns a if it is a TCP address, else nil.
func tcpAddr(a net.Addr) *net.TCPAddr {
	t, _ := a.(*net.TCPAddr)
	return t
}

// socketExtra is the part of a Socket most connections never use.
type socketExtra struct {
	upgraded *engine.Stream // set once the socket is a byte pipe (upgrade, CONNECT); loop only
	securing bool           // the server's 'secureConnection' listeners are running; loop only
	// tls is a copy of the TLS state, taken on the loop once the
	// handshake is done (noteTLS), read by TLS from any goroutine.
	tls atomic.Pointer[tls.ConnectionState]

	mu        sync.Mutex // guards what follows (listeners are added from any goroutine)
	onClose   []func()
	onTimeout []func()
	onError   []func(error)
	onData    []func([]byte)
	closed    bool     // 'close' (and 'error', with err) has fired: later listeners are late
	err       error    // what 'error' fired with; nil when it did not fire
	emitting  bool     // the loop is running the close listeners
	late      []func() // listeners added while it does: it runs them next
}

// noExtra stands for a socket's missing socketExtra when reading it. It is
// never written.
var noExtra socketExtra

// closedExtra is the extra state of every socket that closed without an
// error and without one of its own: listeners added then are late, and
// nothing is ever appended to it (OnData and OnTimeout drop theirs).
var closedExtra = socketExtra{closed: true}

// x returns the socket's extra state for reading its loop-owned part:
// empty when it has none. Loop only.
func (s *Socket) x() *socketExtra {
	if e := s.extra.Load(); e != nil {
		return e
	}
	return &noExtra
}

// more returns the socket's extra state for writing, allocating it on
// first use. Safe from any goroutine.
func (s *Socket) more() *socketExtra {
	if e := s.extra.Load(); e != nil {
		return e
	}
	s.extra.CompareAndSwap(nil, new(socketExtra))
	return s.extra.Load()
}

// timeoutListeners returns the 'timeout' listeners. Safe from any
// goroutine.
func (s *Socket) timeoutListeners() []func() {
	e := s.extra.Load()
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.onTimeout
}

// dataListeners returns the 'data' listeners. Safe from any goroutine.
func (s *Socket) dataListeners() []func([]byte) {
	e := s.extra.Load()
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.onData
}

// emitClose fires the socket's 'error' (when err is not nil) and 'close',
// then the listeners added meanwhile (see OnClose). Loop only, once, as
// the connection closes.
func (s *Socket) emitClose(err error) {
	s.closed.Store(true)
	e := s.extra.Load()
	if e == nil {
		// A listener added from now on must find the socket closed.
		if err == nil && s.extra.CompareAndSwap(nil, &closedExtra) {
			return
		}
		e = s.more()
	}
	e.mu.Lock()
	e.closed, e.err, e.emitting = true, err, true
	onError, onClose := e.onError, e.onClose
	e.mu.Unlock()
	if err != nil {
		for _, fn := range onError {
			s.safely(func() { fn(err) })
		}
	}
	for _, fn := range onClose {
		s.safely(fn)
	}
	for {
		e.mu.Lock()
		late := e.late
		e.late = nil
		e.emitting = len(late) > 0
		e.mu.Unlock()
		if len(late) == 0 {
			return
		}
		for _, call := range late {
			s.safely(call)
		}
	}
}

// addLate has call, a listener of an event that has fired, run at once:
// by the loop after the close listeners it is running, or, the connection
// being gone, as later says. Called with e.mu held; it
// releases it.
func (s *Socket) addLate(e *socketExtra, call func()) {
	if e.emitting {
		e.late = append(e.late, call)
		e.mu.Unlock()
		return
	}
	e.mu.Unlock()
	s.later(call)
}

// RemoteAddress returns the peer's IP address. Any goroutine.
func (s *Socket) RemoteAddress() string { return ipOf(s.remote) }

// RemotePort returns the peer's port. Any goroutine.
func (s *Socket) RemotePort() int { return portOf(s.remote) }

// LocalAddress returns the local IP address. Any goroutine.
func (s *Socket) LocalAddress() string { return ipOf(s.local) }

// LocalPort returns the local port. Any goroutine.
func (s *Socket) LocalPort() int { return portOf(s.local) }

func ipOf(a *net.TCPAddr) string {
	if a == nil {
		return ""
	}
	return a.IP.String()
}

func portOf(a *net.TCPAddr) int {
	if a == nil {
		return 0
	}
	return a.Port
}

// OnClose adds a listener for the socket's 'close'. Added after 'close'
// fired, fn runs at once: after the close listeners the loop is running,
// else in a task of the loop, the connection being gone. Any goroutine;
// callbacks on the loop.
func (s *Socket) OnClose(fn func()) {
	e := s.more()
	e.mu.Lock()
	if e.closed {
		s.addLate(e, fn) // unlocks
		return
	}
	e.onClose = append(e.onClose, fn)
	e.mu.Unlock()
}

// OnError adds a listener for the socket's 'error': the connection failed
// (a reset, a write error), before 'close'. Added after 'error' fired, fn
// gets the error at once (as OnClose). Any goroutine; callbacks on the
// loop.
func (s *Socket) OnError(fn func(error)) {
	e := s.more()
	e.mu.Lock()
	if e.closed {
		if err := e.err; err != nil {
			s.addLate(e, func() { fn(err) }) // unlocks
			return
		}
		e.mu.Unlock() // closed without an error
		return
	}
	e.onError = append(e.onError, fn)
	e.mu.Unlock()
}

// OnData adds a listener for the bytes of an upgraded connection (after
// OnUpgrade or OnConnect). chunk is borrowed, valid only during the call.
// Bytes that arrived before it are not repeated. Any goroutine; callbacks
// on the loop.
func (s *Socket) OnData(fn func(chunk []byte)) {
	e := s.more()
	e.mu.Lock()
	if !e.closed {
		e.onData = append(e.onData, fn)
	}
	e.mu.Unlock()
}

// Write sends raw bytes on an upgraded connection (after OnUpgrade or
// OnConnect); data is copied. It reports false when the socket is not
// upgraded or has closed. Any goroutine.
func (s *Socket) Write(data []byte) bool {
	if s.closed.Load() {
		return false
	}
	p := append([]byte(nil), data...)
	return s.pc.Submit(s.gen, func() {
		if st := s.x().upgraded; st != nil {
			_, _ = st.Write(p)
		}
	}) == nil
}

// OnTimeout adds a listener for the socket's 'timeout'. Any goroutine;
// callbacks on the loop.
func (s *Socket) OnTimeout(fn func()) {
	e := s.more()
	e.mu.Lock()
	if !e.closed {
		e.onTimeout = append(e.onTimeout, fn)
	}
	e.mu.Unlock()
}

// SetTimeout sets the socket's idle timeout (0 turns it off) and adds cb,
// if not nil, as an OnTimeout listener. Any goroutine; callbacks on the
// loop.
func (s *Socket) SetTimeout(d time.Duration, cb func()) {
	s.onLoop(func() {
		if cb != nil {
			s.OnTimeout(cb)
		}
		if s.srv == nil {
			if r := s.request; r != nil && r.x != nil {
				r.x.SetIdleTimeout(d)
			}
			return
		}
		s.pc.Engine().SetIdleTimeout(d)
	})
}

// Destroy closes the connection now; a client request on it ends with
// ErrSocketDestroyed. A no-op once the connection has closed. Any
// goroutine.
func (s *Socket) Destroy() {
	s.onLoop(func() {
		if r := s.request; r != nil && r.x != nil && r.x.Open() {
			r.x.Abort(ErrSocketDestroyed)
		}
		s.pc.Close()
	})
}

// End closes the connection after the output has been written. Any
// goroutine.
func (s *Socket) End() {
	s.onLoop(func() {
		if st := s.x().upgraded; st != nil {
			_ = st.End(nil)
			return
		}
		s.pc.Close()
	})
}

// SetNoDelay is accepted for compatibility: loophttp always sets
// TCP_NODELAY. Any goroutine.
func (s *Socket) SetNoDelay(bool) {}

// SetKeepAlive is accepted for compatibility; TCP keep-alive probes are not
// configured per socket. Any goroutine.
func (s *Socket) SetKeepAlive(bool, time.Duration) {}

// onLoop runs fn on the connection's loop, unless the connection is gone:
// at once inside the server's 'secureConnection' listeners, else in a task.
func (s *Socket) onLoop(fn func()) {
	if s.closed.Load() {
		return
	}
	if s.pc.InEvent() && s.x().securing {
		fn() // in 'secureConnection': at once, before a request can be read
		return
	}
	_ = s.pc.Submit(s.gen, fn)
}

// timeout runs on the loop when the connection was idle for its timeout:
// it fires 'timeout' on the server, the socket, the request (if not yet
// complete) and the response, in that order, and reports whether anyone
// listened. With no listener anywhere the engine destroys the connection
// (Node and IoT.js); otherwise the listeners deal with it.
func (s *Socket) timeout() bool {
	heard := false
	for _, fn := range listeners(s.srv, &s.srv.onTimeout) {
		heard = true
		s.safely(func() { fn(s) })
	}
	for _, fn := range s.timeoutListeners() {
		heard = true
		s.safely(fn)
	}
	if ex := s.current; ex != nil {
		ex.pin()
		defer ex.unpin()
		if ex.reqSt.has(&ex.reqSt.onTimeout) && !ex.msg.req.Complete {
			heard = true
			ex.deliver(event{kind: evRequestTimeout})
		}
		if ex.resSt.has(&ex.resSt.onTimeout) {
			heard = true
			ex.deliver(event{kind: evResponseTimeout})
		}
	}
	return heard
}

// drainSocket applies the queued response calls of the current exchange
// of c's socket. It runs on the loop, from a task SubmitConn posted: a
// function, not a closure, so that neither a socket nor a task allocates
// one for it.
func drainSocket(c *poller.Conn) {
	if s, ok := c.Data.(*Socket); ok {
		s.drainCurrent()
	}
}

// drainCurrent applies the queued response calls of the current exchange.
// Loop only.
func (s *Socket) drainCurrent() {
	if ex := s.current; ex != nil {
		ex.pin()
		defer ex.unpin()
		ex.resSt.apply()
	}
}

// safely runs a connection-level listener, recovering a panic so that the
// connection, not the server, pays for it.
func (s *Socket) safely(fn func()) {
	if !runGuarded(s.logger(), "listener", fn) {
		s.pc.Close()
	}
}

// logger returns the server's logger, or the default one on a client.
func (s *Socket) logger() *slog.Logger {
	if s.srv == nil {
		return slog.Default()
	}
	return s.srv.logger()
}
