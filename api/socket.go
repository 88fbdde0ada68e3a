package api

import (
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/loophttp/loophttp/engine"
	"github.com/loophttp/loophttp/poller"
)

// Socket is the connection under requests and responses: the part of
// Node's net.Socket that http uses. Its address methods may be called from
// any goroutine; the others hand their work to the connection's loop.
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
	extra   *socketExtra   // nil until a listener is added or the socket is upgraded
}

// newSocket returns the Socket of pc's connection, which has just opened;
// srv is nil for a client's. Loop only.
func newSocket(pc *poller.Conn, srv *Server) *Socket {
	return &Socket{pc: pc, gen: pc.Gen(), srv: srv, remote: tcpAddr(pc.RemoteAddr()), local: tcpAddr(pc.LocalAddr())}
}

// tcpAddr returns a if it is a TCP address, else nil.
func tcpAddr(a net.Addr) *net.TCPAddr {
	t, _ := a.(*net.TCPAddr)
	return t
}

// socketExtra is the part of a Socket most connections never use. Owned by
// the loop.
type socketExtra struct {
	upgraded  *engine.Stream // set once the socket is a byte pipe (upgrade, CONNECT)
	onClose   []func()
	onTimeout []func()
	onError   []func(error)
	onData    []func([]byte)
}

// noExtra stands for a socket's missing socketExtra when reading it. It is
// never written.
var noExtra socketExtra

// x returns the socket's extra state for reading: empty when it has none.
// Loop only.
func (s *Socket) x() *socketExtra {
	if s.extra == nil {
		return &noExtra
	}
	return s.extra
}

// more returns the socket's extra state for writing, allocating it on
// first use. Loop only.
func (s *Socket) more() *socketExtra {
	if s.extra == nil {
		s.extra = new(socketExtra)
	}
	return s.extra
}

// RemoteAddress returns the peer's IP address.
func (s *Socket) RemoteAddress() string { return ipOf(s.remote) }

// RemotePort returns the peer's port.
func (s *Socket) RemotePort() int { return portOf(s.remote) }

// LocalAddress returns the local IP address.
func (s *Socket) LocalAddress() string { return ipOf(s.local) }

// LocalPort returns the local port.
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

// OnClose adds a listener for the socket's 'close'. Call it on the loop
// (from an event of this connection).
func (s *Socket) OnClose(fn func()) { x := s.more(); x.onClose = append(x.onClose, fn) }

// OnError adds a listener for the socket's 'error': the connection failed
// (a reset, a write error), before 'close'. Call it on the loop.
func (s *Socket) OnError(fn func(error)) { x := s.more(); x.onError = append(x.onError, fn) }

// OnData adds a listener for the bytes of an upgraded connection (after
// OnUpgrade or OnConnect). chunk is borrowed, valid only during the call.
// Call it on the loop.
func (s *Socket) OnData(fn func(chunk []byte)) { x := s.more(); x.onData = append(x.onData, fn) }

// Write sends raw bytes on an upgraded connection (after OnUpgrade or
// OnConnect); data is copied. Safe from any goroutine. It reports false
// when the socket is not upgraded or has closed.
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

// OnTimeout adds a listener for the socket's 'timeout'. Call it on the
// loop.
func (s *Socket) OnTimeout(fn func()) { x := s.more(); x.onTimeout = append(x.onTimeout, fn) }

// SetTimeout sets the socket's idle timeout (0 turns it off) and adds cb,
// if not nil, as an OnTimeout listener. Safe from any goroutine.
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
// ErrSocketDestroyed. Safe from any goroutine; a no-op once the connection
// has closed.
func (s *Socket) Destroy() {
	s.onLoop(func() {
		if r := s.request; r != nil && r.x != nil && r.x.Open() {
			r.x.Abort(ErrSocketDestroyed)
		}
		s.pc.Close()
	})
}

// End closes the connection after the output has been written. Safe from
// any goroutine.
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
// TCP_NODELAY.
func (s *Socket) SetNoDelay(bool) {}

// SetKeepAlive is accepted for compatibility; TCP keep-alive probes are not
// configured per socket.
func (s *Socket) SetKeepAlive(bool, time.Duration) {}

// onLoop runs fn on the connection's loop, unless the connection is gone.
func (s *Socket) onLoop(fn func()) {
	if s.closed.Load() {
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
	for _, fn := range s.x().onTimeout {
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
	defer func() {
		if v := recover(); v != nil {
			s.logger().Error("loophttp: listener panicked", "panic", v)
			s.pc.Close()
		}
	}()
	fn()
}

// logger returns the server's logger, or the default one on a client.
func (s *Socket) logger() *slog.Logger {
	if s.srv == nil {
		return slog.Default()
	}
	return s.srv.logger()
}
