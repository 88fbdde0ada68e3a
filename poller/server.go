package poller

import (
	"context"
	"errors"
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
	// goroutine locked to its OS thread.
	Loops int
	// PinCPU pins loop i to CPU i modulo the CPUs this process may use.
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
	epolls  []int // the process's epoll sets once gnet has booted (interest.go)

	eng      gnet.Engine
	addr     net.Addr
	booted   chan error
	done     chan error
	stopping atomic.Bool
	refusing atomic.Bool // new connections are closed at once
	nextCPU  atomic.Int32
	open     atomic.Int64 // connections between OnOpen and OnClose

	loops loopSet
}

// ErrServerClosed is returned by Shutdown after the server has stopped.
var ErrServerClosed = errors.New("poller: server closed")

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
	if cfg.Loops < 0 || cfg.Tick < 0 || cfg.Backlog < 0 {
		return nil, fmt.Errorf("poller: invalid config: loops %d, tick %v, backlog %d", cfg.Loops, cfg.Tick, cfg.Backlog)
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
		cfg: cfg, handler: h, hooks: hooks, watch: w,
		booted: make(chan error, 1), done: make(chan error, 1),
	}
	go func() {
		err := gnet.Run(s, "tcp://"+cfg.Addr,
			gnet.WithMulticore(true),
			gnet.WithNumEventLoop(cfg.Loops),
			gnet.WithLockOSThread(true),
			gnet.WithReusePort(cfg.ReusePort),
			gnet.WithReuseAddr(true),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithTicker(true),
			gnet.WithLogger(slogAdapter{cfg.Logger}),
		)
		w.stop()        // the loops have stopped: nothing arms it any more
		s.booted <- err // no-op for the caller when boot already succeeded
		s.done <- err
	}()
	if err := <-s.booted; err != nil {
		return nil, fmt.Errorf("poller: listen on %s: %w", cfg.Addr, err)
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
	defer unix.Close(fd)
	sa, err := unix.Getsockname(fd)
	if err != nil {
		s.booted <- fmt.Errorf("reading the bound address: %w", err)
		return gnet.Shutdown
	}
	s.addr = sockaddrToTCP(sa)
	s.epolls, _ = epollSets() // gnet has created its loops' sets by now
	// listen(2) on a listening socket sets its backlog anew (Linux).
	if err := unix.Listen(fd, s.cfg.Backlog); err != nil {
		s.booted <- fmt.Errorf("setting the backlog: %w", err)
		return gnet.Shutdown
	}
	s.booted <- nil
	return gnet.None
}

// OnOpen takes a connection state from the loop's pool. gnet calls it.
func (s *Server) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	if s.refusing.Load() {
		return nil, gnet.Close
	}
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
	l.cur = prev
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
	s.open.Add(-1) // before Closed, so the hook sees the count without c
	if s.hooks != nil {
		s.hooks.Closed(c)
	}
	c.done(gc)
	return gnet.None
}

// OnTick advances every loop's wheel. gnet calls it.
func (s *Server) OnTick() (time.Duration, gnet.Action) {
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

// StopAccepting makes the server close every new connection at once,
// leaving the existing ones alone (Node's server.close). gnet keeps its
// listener open, so peers see a close right after connecting rather than
// a refused connection. Safe from any goroutine.
func (s *Server) StopAccepting() { s.refusing.Store(true) }

// OpenConns reports the connections currently open. Safe from any
// goroutine.
func (s *Server) OpenConns() int64 { return s.open.Load() }

// Shutdown stops the server gracefully: it stops taking requests, lets
// every response in progress finish, closes idle keep-alive connections,
// and returns when all connections are closed. When ctx ends first, the
// remaining connections are closed at once and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.stopping.Swap(true) {
		return ErrServerClosed
	}
	// Each loop closes its idle connections now (and on every tick
	// after) and every other connection when its response has ended.
	s.loops.tick()
	ticker := time.NewTicker(s.cfg.Tick)
	defer ticker.Stop()
	var ctxErr error
wait:
	// gnet's CountConnections races with its own start-up, so the
	// server counts connections itself.
	for s.open.Load() > 0 {
		select {
		case <-ctx.Done():
			ctxErr = ctx.Err()
			break wait
		case <-ticker.C:
		}
	}
	if err := s.eng.Stop(context.Background()); err != nil {
		return err
	}
	<-s.done
	return ctxErr
}
