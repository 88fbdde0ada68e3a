package poller

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/engine"
)

// Config configures a Server. The zero value of each field means its
// default.
type Config struct {
	// Addr is the host:port to listen on (default "127.0.0.1:8080"); port
	// 0 picks a free port, reported by Server.Addr.
	Addr string
	// Loops is the number of event loops (default GOMAXPROCS). Each is a
	// goroutine, locked to an OS thread only with PinCPU or where
	// goroutines cannot be told apart otherwise (identity.go).
	Loops int
	// PinCPU locks loop i to an OS thread and pins that thread to CPU i
	// modulo the CPUs this process may use.
	PinCPU bool
	// ReusePort sets SO_REUSEPORT, so several processes can share the port.
	ReusePort bool
	// Backlog is the listen backlog (default 511, as in Node). gnet
	// listens with the system maximum; the server lowers it to this at boot.
	Backlog int
	// Tick is the resolution of the loops' timing wheels (default 50 ms).
	Tick time.Duration
	// Engine configures the connections (limits, timeouts, backpressure).
	Engine engine.Config
	// Logger receives gnet's log and recovered panics; nil means
	// slog.Default().
	Logger *slog.Logger

	// TLS, when not nil, makes every connection a TLS one (tls.go): the
	// server's certificates (Certificates, or GetCertificate to choose by
	// SNI or to reload them), versions, cipher suites and session
	// tickets, as crypto/tls has them (tickets are on by default). ALPN
	// advertises "http/1.1" unless NextProtos says otherwise. It is
	// cloned at Start.
	TLS *tls.Config
	// HandshakeTimeout bounds a TLS handshake, from the connect (default
	// DefaultHandshakeTimeout); past it the connection is closed.
	HandshakeTimeout time.Duration
	// MaxHandshakes bounds the TLS handshakes in progress at once
	// (default DefaultMaxHandshakes): each runs on a goroutine of its
	// own, started once the client's hello has arrived; connections over
	// the bound wait on their loop, with no goroutine.
	MaxHandshakes int
}

// Hooks are optional connection events for the layer above.
type Hooks interface {
	// Opened is called on the loop when a connection opens.
	Opened(c *Conn)
	// Closed is called on the loop after a connection has closed.
	Closed(c *Conn)
}

// Server serves HTTP/1.1 with an engine.Handler on gnet event loops.
type Server struct {
	gnet.BuiltinEventEngine
	cfg     Config
	handler engine.Handler
	hooks   Hooks
	date    codec.DateCache
	watch   *watcher
	epolls  []int       // the process's epoll sets once gnet has booted (interest.go)
	tlsCfg  *tls.Config // nil for plain TCP; set before the loops start
	hs      *handshakes

	eng      gnet.Engine
	addr     net.Addr
	booted   chan error
	claimed  chan error // the listeners are known (listener.go)
	done     chan error
	firstLn  int          // a duplicate of gnet's first listener, from OnBoot to the first tick
	ticked   bool         // OnTick has run; owned by gnet's ticker goroutine
	lns      []listenSock // the listening sockets; guarded by claimedMu
	stopping atomic.Bool  // Shutdown has begun
	// draining: Shutdown has closed the listening sockets, and the loops
	// drain the connections. Not before: a client told Connection: close
	// reconnects, and a connect that meets a listening socket about to
	// close is reset by the kernel.
	draining atomic.Bool
	emptied  chan struct{} // a signal: the last connection closed while stopping
	nextCPU  atomic.Int32
	open     atomic.Int64 // connections between OnOpen and OnClose

	loops loopSet
}

// Grace periods of a shutdown, for a connection with nothing of a request
// received. The sweep that applies them runs every Tick.
const (
	// idleQuiet: a keep-alive connection is closed once it has been idle
	// this long, so that a request the peer sent just as its previous
	// answer arrived (the keep-alive race) is answered, with Connection:
	// close, instead of being met by a close. A busy client that stalls
	// a moment (a loaded machine: 100 ms was seen to be too short for
	// loophttp load on 2 shared cores) keeps its connection too.
	idleQuiet = 500 * time.Millisecond
	// freshGrace: a connection that has not sent a request yet is given
	// this long from its open for its first one: the kernel accepted it
	// before the listener closed, and its peer believes it connected.
	freshGrace = time.Second
)

// ErrServerClosed is returned by Shutdown after the server has stopped.
var ErrServerClosed = engine.NewError(engine.ErrClosed, "poller: server closed")

// Start listens on cfg.Addr and serves h until Shutdown. hooks may be nil.
// It returns once the server accepts connections, or with the error that
// kept it from listening (wrapping the errno, e.g. EADDRINUSE).
func Start(cfg Config, h engine.Handler, hooks Hooks) (*Server, error) {
	var err error
	if cfg.Engine, err = cfg.Engine.Resolve(); err != nil {
		return nil, err
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if cfg.Loops == 0 {
		cfg.Loops = runtime.GOMAXPROCS(0)
	}
	if cfg.Loops < 0 || cfg.Tick < 0 || cfg.Backlog < 0 || cfg.HandshakeTimeout < 0 || cfg.MaxHandshakes < 0 {
		return nil, fmt.Errorf("poller: %w: config: loops %d, tick %v, backlog %d, handshake timeout %v, max handshakes %d",
			engine.ErrInvalid, cfg.Loops, cfg.Tick, cfg.Backlog, cfg.HandshakeTimeout, cfg.MaxHandshakes)
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.MaxHandshakes == 0 {
		cfg.MaxHandshakes = DefaultMaxHandshakes
	}
	if cfg.Backlog == 0 {
		cfg.Backlog = 511
	}
	if cfg.Tick == 0 {
		cfg.Tick = 50 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Engine.Logger = cfg.Logger
	w, err := newWatcher()
	if err != nil {
		return nil, fmt.Errorf("poller: starting the writability watcher: %w", err)
	}
	s := &Server{
		cfg: cfg, handler: h, hooks: hooks, watch: w, firstLn: -1,
		booted: make(chan error, 1), claimed: make(chan error, 1), done: make(chan error, 1),
		emptied: make(chan struct{}, 1),
	}
	if cfg.TLS != nil {
		s.tlsCfg = serverConfig(cfg.TLS)
		s.hs = &handshakes{max: int64(cfg.MaxHandshakes), loops: &s.loops, running: map[*tlsLayer]struct{}{}, evictAge: evictAge}
	}
	if cfg.ReusePort {
		// Each server claims its own listeners (listener.go).
		reuseportMu.Lock()
		defer reuseportMu.Unlock()
	}
	go func() {
		err := gnet.Run(s, "tcp://"+cfg.Addr,
			gnet.WithMulticore(true),
			gnet.WithNumEventLoop(cfg.Loops),
			gnet.WithLockOSThread(lockThreads || cfg.PinCPU),
			gnet.WithReusePort(cfg.ReusePort),
			gnet.WithReuseAddr(true),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithTicker(true),
			gnet.WithLogger(slogAdapter{cfg.Logger}),
		)
		w.stop()        // the loops have stopped: nothing arms it any more
		s.booted <- err // no-op for the caller when boot already succeeded
		select {
		case s.claimed <- err: // the engine stopped before its first tick
		default:
		}
		s.done <- err
	}()
	if err := <-s.booted; err != nil {
		return nil, fmt.Errorf("poller: listen on %s: %w", cfg.Addr, err)
	}
	if err := <-s.claimed; err != nil {
		_ = s.Shutdown(context.Background())
		return nil, fmt.Errorf("poller: listen on %s: finding the listeners: %w", cfg.Addr, err)
	}
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.addr }

// OnBoot records the engine and the bound address. gnet calls it.
func (s *Server) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	fd, err := eng.Dup()
	if err != nil {
		s.booted <- fmt.Errorf("reading the listener: %w", err)
		return gnet.Shutdown
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		s.booted <- fmt.Errorf("reading the bound address: %w", err)
		return gnet.Shutdown
	}
	s.addr = sockaddrToTCP(sa)
	s.epolls, _ = epollSets() // gnet has created its loops' sets by now
	// listen(2) on a listening socket sets its backlog anew (Linux).
	if err := unix.Listen(fd, s.cfg.Backlog); err != nil {
		unix.Close(fd)
		s.booted <- fmt.Errorf("setting the backlog: %w", err)
		return gnet.Shutdown
	}
	s.firstLn = fd // kept: the first tick claims it (listener.go)
	s.booted <- nil
	return gnet.None
}

// OnOpen takes a connection state from the loop's pool. gnet calls it.
func (s *Server) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	now := time.Now()
	l := s.loopFor(gc.EventLoop(), now)
	s.open.Add(1)
	c := l.open(gc, now)
	gc.SetContext(c)
	prev := c.enter()
	if s.hooks != nil {
		s.hooks.Opened(c)
	}
	c.afterEvent()
	l.cur.Store(prev)
	return nil, gnet.None
}

// OnTraffic hands the buffered input to the engine and writes its output
// once. gnet calls it.
func (s *Server) OnTraffic(gc gnet.Conn) gnet.Action { return traffic(gc) }

// OnClose ends the connection's exchange and returns its state to the
// pool. gnet calls it, for a close from either side; an EOF from the peer
// lets complete requests already buffered be answered first.
func (s *Server) OnClose(gc gnet.Conn, err error) gnet.Action {
	c := closing(gc, err)
	if c == nil {
		return gnet.None
	}
	left := s.open.Add(-1) // before Closed, so the hook sees the count without c
	if s.hooks != nil {
		s.hooks.Closed(c)
	}
	c.done(gc)
	if left == 0 && s.stopping.Load() {
		select {
		case s.emptied <- struct{}{}:
		default:
		}
	}
	return gnet.None
}

// OnTick advances every loop's wheel; the first claims the listeners,
// gnet having opened them all by then. gnet calls it, on a goroutine of its
// own.
func (s *Server) OnTick() (time.Duration, gnet.Action) {
	if !s.ticked {
		s.ticked = true
		s.claimed <- s.claimListeners(s.firstLn)
	}
	s.loops.tick()
	return s.cfg.Tick, gnet.None
}

// loopFor returns the state of the loop el, creating it (on el itself) on
// its first connection, and pinning the loop's thread if asked.
func (s *Server) loopFor(el gnet.EventLoop, now time.Time) *loop {
	return s.loops.get(el, func() *loop {
		if s.cfg.PinCPU {
			s.pinThisThread()
		}
		return newLoop(s, el, now)
	})
}

// pinThisThread pins the calling loop thread to the next allowed CPU.
func (s *Server) pinThisThread() {
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		return
	}
	cpus := make([]int, 0, allowed.Count())
	for i := 0; i < 1024 && len(cpus) < allowed.Count(); i++ {
		if allowed.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	if len(cpus) == 0 {
		return
	}
	var set unix.CPUSet
	set.Set(cpus[int(s.nextCPU.Add(1)-1)%len(cpus)])
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		s.cfg.Logger.Warn("loophttp: pinning a loop thread failed", "err", err)
	}
}

// OpenConns reports the connections currently open. Safe from any
// goroutine.
func (s *Server) OpenConns() int64 { return s.open.Load() }

// Shutdown stops the server gracefully (Go's http.Server.Shutdown): it
// closes the listening sockets at once, so that new connects are refused
// (listener.go); closes idle keep-alive connections (once idle for
// idleQuiet, and a connection yet to send its first request after
// freshGrace); answers the request in progress on each other connection,
// and one that has begun arriving, with Connection: close; and returns
// once every connection has closed, its output drained, and the loops have
// stopped. When ctx ends first, the connections left are closed at once
// and ctx's error is returned. A second call returns ErrServerClosed. Safe
// from any goroutine but a loop's.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.stopping.Swap(true) {
		return ErrServerClosed
	}
	s.closeListeners()
	s.draining.Store(true)
	var transit map[uint64]bool
	if a, ok := s.addr.(*net.TCPAddr); ok && !s.cfg.ReusePort {
		transit = portSockets(a.Port) // listener.go
	}
	// Each loop sweeps its connections now and on every tick after.
	s.loops.tick()
	err := s.waitEmpty(ctx, transit)
	if err != nil {
		s.loops.each(func(l *loop) gnet.Runnable { return gnet.RunnableFunc(l.closeAll) })
		// gnet closes what is left as it stops, in any case.
		bound, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.waitEmpty(bound, nil)
		cancel()
	}
	s.stopEngine()
	return err
}

// waitEmpty returns when no connection is open, nor any of the sockets
// transit (connections gnet accepted before the listeners closed and had
// not handed to a loop yet), or ctx's error when it ends first.
func (s *Server) waitEmpty(ctx context.Context, transit map[uint64]bool) error {
	// The ticker backs up the signal from OnClose, and looks at transit.
	ticker := time.NewTicker(s.cfg.Tick)
	defer ticker.Stop()
	for {
		// gnet's CountConnections races with its own start-up, so the
		// server counts connections itself.
		var soon <-chan time.Time
		if s.open.Load() == 0 {
			if transit = stillOpen(transit); len(transit) == 0 {
				return nil
			}
			// gnet closes a descriptor just after OnClose, and hands an
			// accepted connection to its loop within microseconds.
			soon = time.After(time.Millisecond)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.emptied:
		case <-ticker.C:
		case <-soon:
		}
	}
}

// stopEngine stops gnet's engine and waits until it has. gnet's own
// Engine.Stop polls for the end every 500 ms; with a context that has
// ended it only asks, and the server waits for gnet.Run to return.
func (s *Server) stopEngine() {
	asked, cancel := context.WithCancel(context.Background())
	cancel()
	_ = s.eng.Stop(asked)
	<-s.done
}

// CloseIdle closes, at once, every connection with no request in progress
// and nothing of one received (Node's server.closeIdleConnections). Safe
// from any goroutine.
func (s *Server) CloseIdle() {
	s.loops.each(func(l *loop) gnet.Runnable { return gnet.RunnableFunc(l.closeIdle) })
}

// CloseAll closes every connection at once; a request in progress ends
// with engine.ErrConnClosed (Node's server.closeAllConnections). Safe from
// any goroutine.
func (s *Server) CloseAll() {
	s.loops.each(func(l *loop) gnet.Runnable { return gnet.RunnableFunc(l.closeAll) })
}
