package poller

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/loophttp/loophttp/engine"
)

// ClientConfig configures a Client. The zero value of each field means its
// default.
type ClientConfig struct {
	// Loops is the number of event loops (default GOMAXPROCS). Each is a
	// goroutine locked to its OS thread.
	Loops int
	// Tick is the resolution of the loops' timing wheels (default 50 ms).
	Tick time.Duration
	// DialTimeout bounds a connect (default 30 s).
	DialTimeout time.Duration
	// Engine configures the connections (response limits, backpressure).
	Engine engine.ClientConfig
	// Logger receives gnet's log and recovered panics; nil means
	// slog.Default().
	Logger *slog.Logger
}

// ClientHooks are optional connection events for the layer above.
type ClientHooks interface {
	// Closed is called on the loop after a client connection has closed.
	Closed(c *Conn)
}

// Client runs HTTP/1.1 client connections on gnet event loops. Dial
// connects off the loops and hands the connection to one of them.
type Client struct {
	gnet.BuiltinEventEngine
	cfg    ClientConfig
	hooks  ClientHooks
	gc     *gnet.Client
	watch  *watcher
	epolls []int // the process's epoll sets once the loops have started (interest.go)

	loops   loopSet
	mu      sync.Mutex // guards stopped and dials
	stopped bool
	dials   sync.WaitGroup
	open    atomic.Int64

	ctx    context.Context // cancelled by Close, ending dials in flight
	cancel context.CancelFunc
}

// OnLoop reports whether the caller runs on one of the client's loops (a
// callback of one of its connections): Close cannot wait for the loops to
// stop from there. Exact while the loops run; after Close it may also
// answer true for a goroutine that is not a loop (identity.go). Safe from
// any goroutine.
func (cl *Client) OnLoop() bool { return cl.loops.has(CallerID()) }

// ErrClientClosed is returned by Dial after Close.
var ErrClientClosed = engine.NewError(engine.ErrClosed, "poller: client closed")

// NewClient starts a client's event loops. hooks may be nil.
func NewClient(cfg ClientConfig, hooks ClientHooks) (*Client, error) {
	var err error
	if cfg.Engine, err = cfg.Engine.Resolve(); err != nil {
		return nil, err
	}
	if cfg.Loops == 0 {
		cfg.Loops = runtime.GOMAXPROCS(0)
	}
	if cfg.Loops < 0 || cfg.Tick < 0 || cfg.DialTimeout < 0 {
		return nil, fmt.Errorf("poller: %w: client config: loops %d, tick %v, dial timeout %v", engine.ErrInvalid, cfg.Loops, cfg.Tick, cfg.DialTimeout)
	}
	if cfg.Tick == 0 {
		cfg.Tick = 50 * time.Millisecond
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Engine.Logger = cfg.Logger
	w, err := newWatcher()
	if err != nil {
		return nil, fmt.Errorf("poller: starting the writability watcher: %w", err)
	}
	cl := &Client{cfg: cfg, hooks: hooks, watch: w}
	cl.ctx, cl.cancel = context.WithCancel(context.Background())
	cl.gc, err = gnet.NewClient(cl,
		gnet.WithMulticore(true),
		gnet.WithNumEventLoop(cfg.Loops),
		// Locked, unlike a server's loops (identity.go): a client loop runs
		// the callbacks of every request on it, and BenchmarkClient
		// measured it 4-10% slower unlocked with 16 in flight; its TLS
		// handshakes run on the dialing goroutine, not through the loop.
		gnet.WithLockOSThread(true),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithTicker(true),
		gnet.WithLogger(slogAdapter{cfg.Logger}),
	)
	if err != nil {
		w.stop()
		return nil, fmt.Errorf("poller: client: %w", err)
	}
	if err := cl.gc.Start(); err != nil {
		w.stop()
		return nil, fmt.Errorf("poller: starting the client loops: %w", err)
	}
	cl.epolls, _ = epollSets()
	return cl, nil
}

// pendingDial travels with a dialed connection to the loop that takes it.
type pendingDial struct {
	owner  engine.ClientOwner
	done   func(c *Conn, err error)
	tls    *tlsLayer // a TLS connection's layer, its handshake done; nil for plain TCP
	opened bool      // set on the loop in OnOpen, read after Enroll returns
}

// Dial connects to addr ("host:port") and calls done once: on the loop
// that takes the connection, with the Conn (its ClientConn ready for
// Begin), or, on the dialing goroutine, with the error (refused, DNS, the
// dial timeout, ctx). owner hears when the connection is idle. Dial never
// blocks: the connect runs on a goroutine of its own.
func (cl *Client) Dial(ctx context.Context, addr string, owner engine.ClientOwner, done func(c *Conn, err error)) {
	cl.DialTLS(ctx, addr, nil, owner, done)
}

// DialTLS is Dial for a TLS connection when cfg is not nil: the handshake
// runs on the dialing goroutine too, bounded by the dial timeout, and its
// error (a certificate that does not verify, say) is done's. cfg's
// ServerName defaults to the host of addr, its NextProtos to "http/1.1".
// The connection then reads and writes its records on its loop (tls.go).
func (cl *Client) DialTLS(ctx context.Context, addr string, cfg *tls.Config, owner engine.ClientOwner, done func(c *Conn, err error)) {
	cl.mu.Lock()
	if cl.stopped {
		cl.mu.Unlock()
		done(nil, ErrClientClosed)
		return
	}
	cl.dials.Add(1)
	cl.mu.Unlock()
	go func() {
		defer cl.dials.Done()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(cl.ctx, cancel)()
		d := net.Dialer{Timeout: cl.cfg.DialTimeout}
		nc, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			done(nil, err)
			return
		}
		p := &pendingDial{owner: owner, done: done}
		if cfg != nil {
			if p.tls, err = clientHandshake(ctx, nc, addr, cfg, cl.cfg.DialTimeout); err != nil {
				nc.Close()
				done(nil, err)
				return
			}
		}
		if _, err := cl.gc.EnrollContext(nc, p); err != nil {
			done(nil, fmt.Errorf("poller: handing the connection to a loop: %w", err))
			return
		}
		// gnet opens the connection on its loop before Enroll returns;
		// if it could not register it, OnOpen never ran.
		if !p.opened {
			done(nil, engine.NewError(engine.ErrClosed, "poller: the loop refused the connection"))
		}
	}()
}

// OnOpen binds a dialed connection to a Conn of its loop. gnet calls it.
func (cl *Client) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	p, ok := gc.Context().(*pendingDial)
	if !ok {
		return nil, gnet.Close
	}
	p.opened = true
	now := time.Now()
	l := cl.loopFor(gc.EventLoop(), now)
	cl.open.Add(1)
	c := l.openClient(gc, p.owner, now)
	if t := p.tls; t != nil {
		t.c, t.gen = c, c.Gen()
		c.tls = t
	}
	gc.SetContext(c)
	prev := c.enter()
	p.done(c, nil)
	c.afterEvent()
	l.cur.Store(prev)
	return nil, gnet.None
}

// OnTraffic hands the input to the connection's ClientConn. gnet calls it.
func (cl *Client) OnTraffic(gc gnet.Conn) gnet.Action { return traffic(gc) }

// OnClose ends the connection's exchanges and returns the Conn to the
// pool. gnet calls it.
func (cl *Client) OnClose(gc gnet.Conn, err error) gnet.Action {
	c := closing(gc, err)
	if c == nil {
		return gnet.None
	}
	cl.open.Add(-1)
	if cl.hooks != nil {
		cl.hooks.Closed(c)
	}
	c.done(gc)
	return gnet.None
}

// OnTick advances every loop's wheel. gnet calls it.
func (cl *Client) OnTick() (time.Duration, gnet.Action) {
	cl.loops.tick()
	return cl.cfg.Tick, gnet.None
}

// loopFor returns the state of the loop el, creating it on its first
// connection.
func (cl *Client) loopFor(el gnet.EventLoop, now time.Time) *loop {
	return cl.loops.get(el, func() *loop {
		l := newBareLoop(el, cl.cfg.Tick, cl.cfg.Engine.HighWater, now, cl.watch, cl.cfg.Logger, cl.epolls)
		l.cli = cl
		return l
	})
}

// OpenConns reports the client connections currently open. Safe from any
// goroutine.
func (cl *Client) OpenConns() int64 { return cl.open.Load() }

// Close closes every connection (their exchanges end with
// ErrClientClosed), waits for dials in flight, and stops the loops.
// Safe from any goroutine, once.
func (cl *Client) Close() error {
	cl.mu.Lock()
	if cl.stopped {
		cl.mu.Unlock()
		return ErrClientClosed
	}
	cl.stopped = true
	cl.mu.Unlock()
	cl.cancel()
	cl.dials.Wait()
	cl.loops.each(func(l *loop) gnet.Runnable {
		return gnet.RunnableFunc(func(context.Context) error {
			for c := range l.openConns {
				c.cc.CloseWith(ErrClientClosed)
			}
			return nil
		})
	})
	ticker := time.NewTicker(time.Millisecond)
	defer ticker.Stop()
	for cl.open.Load() > 0 { // the loops are closing them
		<-ticker.C
	}
	err := cl.gc.Stop()
	cl.watch.stop()
	return err
}
