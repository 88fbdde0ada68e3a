package poller

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/loophttp/loophttp/engine"
)

// loop is loophttp's state for one gnet event loop: the engine's shared
// scratch, the timing wheel, the loop's Conns and the connections waiting
// for their output to drain. Everything in it is owned by the loop's
// goroutine; it is created there, on the loop's first connection.
type loop struct {
	srv       *Server // nil on a client's loop
	cli       *Client // nil on a server's loop
	highWater int
	el        gnet.EventLoop // safe from any goroutine (Conn.Submit)
	eng       *engine.Loop
	wheel     *wheel
	blocks    []*connBlock // every Conn of the loop, open or pooled (they are never freed)
	used      int          // Conns handed out of the last block
	free      []*Conn      // the pooled ones
	pendFree  []*pending   // pending-output holders between uses
	watch     *watcher     // the Server's or Client's; safe from any goroutine
	epfd      int          // gnet's epoll set for this loop, once found (else -1)
	epollHint []int        // epoll sets of the process when the loops started
	noPause   bool         // gnet's epoll set cannot be found: reading is never paused
	log       *slog.Logger
	id        uintptr // the loop goroutine's identity (CallerID, identity.go): Conn.InEvent, Stats
	// cur is the connection whose event is running, or nil. Written by
	// the loop alone; atomic because Conn.InEvent reads it from
	// goroutines that share the loop's thread once the loop has stopped.
	cur       atomic.Pointer[Conn]
	closePrev *Conn // cur before the close being reported (closing, done)
	tickTask  gnet.Runnable
	out       []byte      // output of the event in progress (see Conn.Write)
	cout      []byte      // its ciphertext, on a TLS connection (tls.go)
	hsWait    []*tlsLayer // TLS connections waiting for a handshake slot (tls_handshake.go)
	plainFree [][]byte    // plaintext buffers of TLS connections between uses (tls.go)
	hsTask    gnet.Runnable
	closeErr  error        // the error of the close being reported (Conn.CloseErr)
	local     *net.TCPAddr // the local address last read from a socket (Conn.LocalAddr)
	stats     connStats
}

func newLoop(srv *Server, el gnet.EventLoop, now time.Time) *loop {
	l := newBareLoop(el, srv.cfg.Tick, srv.cfg.Engine.HighWater, now, srv.watch, srv.cfg.Logger, srv.epolls)
	l.srv = srv
	l.hsTask = l.newHandshakeTask()
	l.eng = engine.NewLoop(&srv.cfg.Engine, &srv.date)
	if srv.draining.Load() {
		l.eng.Drain()
	}
	return l
}

// newBareLoop returns the state both sides' loops share.
func newBareLoop(el gnet.EventLoop, tick time.Duration, highWater int, now time.Time, w *watcher, log *slog.Logger, hint []int) *loop {
	l := &loop{
		el:        el,
		highWater: highWater,
		wheel:     newWheel(tick, now, fireTimer),
		watch:     w,
		epfd:      -1,
		epollHint: hint,
		log:       log,
		id:        CallerID(), // newBareLoop runs on the loop
	}
	l.tickTask = gnet.RunnableFunc(func(context.Context) error {
		l.tick(time.Now())
		return nil
	})
	return l
}

// open takes a Conn for gc from the pool.
func (l *loop) open(gc gnet.Conn, now time.Time) *Conn {
	c := l.take()
	if c.sc == nil {
		c.sc = l.eng.NewServerConn(c, l.srv.handler)
	} else {
		c.sc.Reset(c, l.srv.handler)
	}
	c.gc = gc
	c.begin()
	l.stats.opened++
	if l.srv.stopping.Load() {
		// Accepted while the server stops: its first request is its last
		// (the loop's other connections are drained once the listening
		// sockets have closed, by the sweep).
		c.sc.LastRequest()
	}
	if l.srv.tlsCfg != nil {
		l.openTLS(c, now) // before the engine arms its timer: the layer holds it
	}
	c.sc.Open(now)
	return c
}

// openClient takes a Conn for the dialed connection gc from the pool.
func (l *loop) openClient(gc gnet.Conn, owner engine.ClientOwner, now time.Time) *Conn {
	c := l.take()
	if c.cc == nil {
		c.cc = engine.NewClientConn(c, &l.cli.cfg.Engine, owner)
	} else {
		c.cc.Reset(c, &l.cli.cfg.Engine, owner)
	}
	c.gc = gc
	c.begin()
	c.cc.Open(now)
	return c
}

// take returns a Conn from the pool, or a new one (without its state
// machine, which the caller adds).
func (l *loop) take() *Conn {
	if n := len(l.free); n > 0 {
		c := l.free[n-1]
		l.free[n-1] = nil
		l.free = l.free[:n-1]
		return c
	}
	if len(l.blocks) == 0 || l.used == len(connBlock{}) {
		l.blocks = append(l.blocks, new(connBlock))
		l.used = 0
	}
	c := &l.blocks[len(l.blocks)-1][l.used]
	l.used++
	c.loop = l
	c.timer.conn = c
	return c
}

// connBlock is a block of Conns allocated together: a loop never frees its
// Conns (they are pooled), so one allocation for 36 of them saves
// allocations when connections arrive, and the loop lists its Conns with
// one pointer per block. 36 Conns nearly fill a size class (a test pins it).
type connBlock [36]Conn

// close returns c to the pool once gnet has closed its connection.
func (l *loop) close(c *Conn) {
	c.end()
	l.countClose(c)
	l.wheel.stop(&c.timer)
	c.dropPending()
	c.gc, c.paused, c.armed, c.shutdownAfter, c.closing, c.Data, c.tls = nil, false, false, false, false, nil, nil
	l.free = append(l.free, c)
}

// openConns returns the loop's open connections. A close they cause
// completes later (gnet closes on a task of the loop), so the caller may
// act on each of them.
func (l *loop) openConns(yield func(*Conn) bool) {
	for _, b := range l.blocks {
		for i := range b {
			if c := &b[i]; c.isOpen() && !yield(c) {
				return
			}
		}
	}
}

// tick advances the wheel; while the server stops, it also sweeps the
// connections.
func (l *loop) tick(now time.Time) {
	l.wheel.advance(now)
	if len(l.hsWait) > 0 {
		l.resumeHandshakes(true) // a slot freed while its task was lost; or make room
	}
	if l.srv != nil && l.srv.draining.Load() {
		l.sweep(now)
	}
}

// sweep asks every open connection to close gracefully (Server.Shutdown):
// an idle one once it has been idle for idleQuiet (freshGrace before its
// first request), any other after the request in progress, which Drain
// makes the last of every connection.
func (l *loop) sweep(now time.Time) {
	l.eng.Drain()
	for c := range l.openConns {
		if since, served, idle := c.sc.Idle(); idle {
			wait := idleQuiet
			if !served {
				wait = freshGrace
			}
			if now.UnixNano()-since < int64(wait) || c.unread() {
				continue
			}
		}
		c.shutdown()
	}
}

// unread reports whether the kernel holds input of c that gnet has not
// read yet: on an idle connection, a request on its way in, which a close
// would answer with a reset.
func (c *Conn) unread() bool {
	n, err := unix.IoctlGetInt(c.gc.Fd(), unix.SIOCINQ)
	return err == nil && n > 0
}

// shutdown asks c's state machine to close gracefully, as an event of c.
func (c *Conn) shutdown() {
	prev := c.enter()
	c.sc.SetNow(time.Now())
	c.sc.Shutdown()
	c.afterEvent()
	c.loop.cur.Store(prev)
}

// closeIdle closes the loop's idle connections at once (Server.CloseIdle),
// but one whose next request is already in the kernel.
func (l *loop) closeIdle(context.Context) error {
	for c := range l.openConns {
		if _, _, idle := c.sc.Idle(); idle && !c.unread() {
			c.shutdown()
		}
	}
	return nil
}

// closeAll closes every connection of the loop at once, its output still
// pending dropped (Server.CloseAll, and Shutdown when its context ends).
func (l *loop) closeAll(context.Context) error {
	for c := range l.openConns {
		prev := c.enter()
		c.sc.OnClose(time.Now()) // the exchange in progress ends: not an EOF to answer
		c.Close()
		c.loop.cur.Store(prev)
	}
	return nil
}

// epoll returns gnet's epoll set for this loop, looking it up from c's
// socket the first time (interest.go).
func (l *loop) epoll(c *Conn) (int, error) {
	if l.epfd < 0 {
		fd, err := findEpoll(c.gc.Fd(), l.epollHint)
		if err != nil {
			return -1, err
		}
		l.epfd = fd
	}
	return l.epfd, nil
}

// logger returns the loop's logger.
func (l *loop) logger() *slog.Logger { return l.log }

// loopSet is the loops of a server or a client, created on each loop's
// first connection. Safe from any goroutine.
type loopSet struct {
	mu sync.Mutex
	m  map[gnet.EventLoop]*loop
}

// get returns the state of the loop el, creating it with create (called on
// el, under the set's lock) on its first connection.
func (ls *loopSet) get(el gnet.EventLoop, create func() *loop) *loop {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if l, ok := ls.m[el]; ok {
		return l
	}
	if ls.m == nil {
		ls.m = map[gnet.EventLoop]*loop{}
	}
	l := create()
	ls.m[el] = l
	return l
}

// has reports whether id (CallerID) is one of the set's loops. Safe from
// any goroutine.
func (ls *loopSet) has(id uintptr) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for _, l := range ls.m {
		if l.id == id {
			return true
		}
	}
	return false
}

// each posts a task built by task to every loop.
func (ls *loopSet) each(task func(l *loop) gnet.Runnable) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for _, l := range ls.m {
		_ = l.el.Execute(context.Background(), task(l))
	}
}

// nth returns the event loop of the i-th loop (modulo their number, in no
// fixed order), or nil when there is none yet.
func (ls *loopSet) nth(i int) gnet.EventLoop {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if len(ls.m) == 0 {
		return nil
	}
	i %= len(ls.m)
	for el := range ls.m {
		if i == 0 {
			return el
		}
		i--
	}
	return nil
}

// tick posts every loop its tick task: the wheels are owned by their
// loops, and gnet runs OnTick on a goroutine of its own.
func (ls *loopSet) tick() { ls.each(func(l *loop) gnet.Runnable { return l.tickTask }) }
