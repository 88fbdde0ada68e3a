package api

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/engine"
	"github.com/loophttp/loophttp/poller"
)

// AgentOptions configure an Agent. The zero value of each field means its
// default.
type AgentOptions struct {
	// DisableKeepAlive sends "Connection: close" and never reuses a
	// connection. Keep-alive is on by default (Node 19+).
	DisableKeepAlive bool
	// MaxSockets bounds the connections per host:port, busy or idle;
	// requests beyond it wait in order (default 0: no bound, as Node).
	MaxSockets int
	// MaxFreeSockets bounds the idle connections kept per host:port
	// (default 256).
	MaxFreeSockets int
	// FreeTimeout closes a connection idle in the pool for this long
	// (default 4 s: below the 5 s keep-alive timeout common on servers, so
	// the client, not the server, closes a quiet connection).
	FreeTimeout time.Duration
	// Loops is the number of client event loops (default GOMAXPROCS).
	Loops int
	// DialTimeout bounds a connect (default 30 s).
	DialTimeout time.Duration
	// Limits bound the responses read. Heads are bounded as codec.Limits
	// says (zero fields: the codec's defaults). Bodies are not, unless
	// Limits.MaxBodySize is set: a response body over it fails its
	// request with a *BodyLimitError naming the limit.
	Limits codec.Limits
	// Logger receives recovered panics and the loops' log; nil means
	// slog.Default().
	Logger *slog.Logger
	// HighWater is the one high-water mark of a request's output, in bytes
	// (default engine.DefaultHighWater, 64 KiB): Write returns false, and
	// 'drain' is owed, once the output waiting for the socket, or the body
	// written from other goroutines and waiting for the loop, reaches it.
	HighWater int
}

// Agent pools client connections per scheme, host and port (Node's http.Agent): a
// request takes an idle connection, or opens one while the host has fewer
// than MaxSockets, or waits. A request made while a kept connection's
// response is ending (from its 'end' listener, say) waits for that
// connection rather than opening another. A connection the server has closed leaves the
// pool at once and is never used; a request that met such a connection as
// it went out is sent again on a new one only when that is safe (see
// ClientRequest). The agent's event loops start on its first request;
// Destroy stops them. Safe from any goroutine.
type Agent struct {
	opts AgentOptions

	mu     sync.Mutex
	client *poller.Client
	pools  map[string]*pool
	hosts  map[hostPort]*hostEntry // hostNames, remembered
	// runner runs the callbacks of requests that have no connection to
	// run them on.
	runner runner
	// lastHost is the entry names returned last.
	lastHost atomic.Pointer[hostEntry]
}

// hostPort keys the agent's remembered host names.
type hostPort struct {
	host string
	port int
}

// names returns hostNames(host, port), remembering the last few hundred;
// the last one asked for is read without a lock (most programs ask for
// the same server again and again).
func (a *Agent) names(host string, port int) (addr, hostHeader string) {
	if n := a.lastHost.Load(); n != nil && n.key == (hostPort{host, port}) {
		return n.addr, n.header
	}
	k := hostPort{host, port}
	a.mu.Lock()
	n, ok := a.hosts[k]
	a.mu.Unlock()
	if !ok {
		addr, hostHeader = hostNames(host, port)
		n = &hostEntry{key: k, addr: addr, header: hostHeader}
		a.mu.Lock()
		if len(a.hosts) >= 256 {
			clear(a.hosts)
		}
		a.hosts[k] = n
		a.mu.Unlock()
	}
	a.lastHost.Store(n)
	return n.addr, n.header
}

// hostEntry is what names remembers of a host and port.
type hostEntry struct {
	key          hostPort
	addr, header string
}

// pool is the state of one host:port (and, for https, TLS settings).
type pool struct {
	free   []*agentConn     // idle connections, the most recent last
	open   int              // connections open or being dialed
	ending int              // connections whose response is ending: free soon, unless they close (agentConn.ending)
	queue  []*ClientRequest // requests waiting for a connection, in order
	addr   string
	key    string      // the pool's key in Agent.pools: addr, or for https the TLS settings too
	tls    *tls.Config // an https pool's; nil for http
	parent *Agent
}

// agentConn is the agent's state for one connection (poller.Conn.Data).
type agentConn struct {
	pool *pool
	pc   *poller.Conn
	gen  uint32
	sock *Socket
	// ending: its response is ending and the connection is kept, so it
	// will be free in a moment (or close); counted in pool.ending until
	// release or closed settles it. Guarded by the agent's mu.
	ending bool

	// Requests given this connection while its loop runs a request's
	// callbacks (see during) wait here instead of crossing to the loop.
	mu       sync.Mutex
	inEvent  bool
	deferred []*ClientRequest
	// Requests handed to this connection from another goroutine, until
	// its loop binds them; if the connection closes first, its close hook
	// takes them back (see handOff).
	handed []*ClientRequest
}

// during runs fn, an event of the connection, on its loop; requests
// handed the connection meanwhile (typically one made from OnClose or
// OnEnd, as the connection has just become idle) are bound right after,
// on the loop, without a hand-off.
func (ac *agentConn) during(fn func()) {
	ac.mu.Lock()
	nested := ac.inEvent
	ac.inEvent = true
	ac.mu.Unlock()
	fn()
	if nested {
		return
	}
	for {
		ac.mu.Lock()
		if len(ac.deferred) == 0 {
			ac.inEvent = false
			ac.mu.Unlock()
			return
		}
		r := ac.deferred[0]
		ac.deferred = append(ac.deferred[:0], ac.deferred[1:]...)
		ac.mu.Unlock()
		ac.pool.parent.bind(ac, r)
	}
}

// handOff gives the idle connection ac to r: at the end of the event in
// progress on ac's loop (see during), or in a task of the loop. It reports
// false when ac has closed and r must look elsewhere. A task is dropped
// when the connection closes before it runs, so r waits in ac.handed
// until the task takes it; if the close comes first, the close hook takes
// it back and finds it another connection (see closed): whoever removes r
// from handed owns it.
func (ac *agentConn) handOff(r *ClientRequest) bool {
	ac.mu.Lock()
	if ac.inEvent {
		ac.deferred = append(ac.deferred, r)
		ac.mu.Unlock()
		return true
	}
	ac.handed = append(ac.handed, r)
	ac.mu.Unlock()
	err := ac.pc.SubmitConn(ac.gen, bindHanded)
	return err == nil || !ac.take(r)
}

// bindHanded binds the first request handed to the connection pc (see
// handOff) on its loop. A package-level function, so that a hand-off
// allocates no closure.
func bindHanded(pc *poller.Conn) {
	ac := pc.Data.(*agentConn)
	if r := ac.takeFirst(); r != nil {
		ac.pool.parent.bind(ac, r)
	}
}

// takeFirst removes the first request of ac.handed and returns it; nil
// when the close hook took them all.
func (ac *agentConn) takeFirst() *ClientRequest {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	if len(ac.handed) == 0 {
		return nil
	}
	r := ac.handed[0]
	ac.handed = append(ac.handed[:0], ac.handed[1:]...)
	return r
}

// take removes r from ac.handed and reports whether it was there.
func (ac *agentConn) take(r *ClientRequest) bool {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	for i, h := range ac.handed {
		if h == r {
			ac.handed = append(ac.handed[:i], ac.handed[i+1:]...)
			return true
		}
	}
	return false
}

// DefaultAgent is the agent of requests that name none.
var DefaultAgent = NewAgent(AgentOptions{})

// NewAgent returns an agent with opts.
func NewAgent(opts AgentOptions) *Agent {
	if opts.MaxFreeSockets == 0 {
		opts.MaxFreeSockets = 256
	}
	if opts.FreeTimeout == 0 {
		opts.FreeTimeout = 4 * time.Second
	}
	return &Agent{opts: opts, pools: map[string]*pool{}, hosts: map[hostPort]*hostEntry{}}
}

func (a *Agent) keepAlive() bool { return !a.opts.DisableKeepAlive }

func (a *Agent) logger() *slog.Logger {
	if a.opts.Logger != nil {
		return a.opts.Logger
	}
	return slog.Default()
}

// ErrAgentDestroyed is what requests waiting for a connection, or in
// flight on one, get when their agent is destroyed.
var ErrAgentDestroyed = engine.NewError(engine.ErrClosed, "api: agent destroyed")

// loops returns the agent's client, starting it on first use. Called with
// a.mu held.
func (a *Agent) loops() (*poller.Client, error) {
	if a.client != nil {
		return a.client, nil
	}
	cl, err := poller.NewClient(poller.ClientConfig{
		Loops:       a.opts.Loops,
		DialTimeout: a.opts.DialTimeout,
		Engine:      engine.ClientConfig{Limits: a.opts.Limits, Logger: a.opts.Logger, HighWater: a.highWater()},
		Logger:      a.opts.Logger,
	}, agentHooks{a})
	if err != nil {
		return nil, err
	}
	a.client = cl
	return cl, nil
}

// acquire finds r a connection: an idle one (unless fresh), a new one, or
// a place in the queue.
func (a *Agent) acquire(r *ClientRequest, fresh bool) {
	a.mu.Lock()
	key := r.addr
	if r.tlsc != nil {
		key = r.tlsc.key
	}
	p := a.pools[key]
	if p == nil {
		p = &pool{addr: r.addr, key: key, parent: a}
		if r.tlsc != nil {
			p.tls = r.tlsc.config()
		}
		a.pools[key] = p
	}
	if !fresh {
		for len(p.free) > 0 {
			ac := p.free[len(p.free)-1]
			p.free = p.free[:len(p.free)-1]
			a.mu.Unlock()
			if ac.handOff(r) {
				return
			}
			a.mu.Lock() // closed meanwhile: its close hook settles the count
		}
		if len(p.queue) < p.ending {
			// A connection whose response is ending takes it in a moment
			// (release), or its close dials for it (next).
			p.queue = append(p.queue, r)
			a.mu.Unlock()
			return
		}
	}
	if a.opts.MaxSockets > 0 && p.open >= a.opts.MaxSockets {
		p.queue = append(p.queue, r)
		a.mu.Unlock()
		return
	}
	p.open++
	a.dial(p, r) // unlocks
}

// bind gives the idle connection ac to r on ac's loop; if r no longer
// wants it, ac goes back to the pool (or to the next waiting request).
func (a *Agent) bind(ac *agentConn, r *ClientRequest) {
	if r.attach(ac.pc, ac) {
		return
	}
	if ac.pc.Client().Idle() {
		a.release(ac) // r gave up meanwhile
	}
	if r.waiting() {
		a.acquire(r, false) // the connection was closing: its hook takes it out
	}
}

// dial opens a connection for r. Called with a.mu held; releases it.
func (a *Agent) dial(p *pool, r *ClientRequest) {
	cl, err := a.loops()
	a.mu.Unlock()
	if err != nil {
		a.dialFailed(p, r, err)
		return
	}
	ac := &agentConn{pool: p}
	cl.DialTLS(context.Background(), p.addr, p.tls, ac, func(pc *poller.Conn, err error) {
		if err != nil {
			a.dialFailed(p, r, err)
			return
		}
		// On pc's loop, before anything else happens on it.
		ac.pc, ac.gen = pc, pc.Gen()
		ac.sock = newSocket(pc, nil)
		pc.Data = ac
		pc.Client().SetFreeTimeout(a.opts.FreeTimeout)
		if !r.attach(pc, ac) {
			a.release(ac) // r gave up while we dialed
		}
	})
}

// dialFailed fails r with err and lets a waiting request try.
func (a *Agent) dialFailed(p *pool, r *ClientRequest, err error) {
	a.mu.Lock()
	p.open--
	a.mu.Unlock()
	if r.waiting() {
		a.runner.post(func() { r.finish(err) })
	}
	a.next(p)
}

// Idle is engine.ClientOwner: the connection finished an exchange and may
// take another. It runs on the connection's loop.
func (ac *agentConn) Idle(*engine.ClientConn) { ac.pool.parent.release(ac) }

// release hands the idle connection ac to the next waiting request, or
// keeps it in the pool (or closes it when the pool is full or keep-alive
// is off). It runs on ac's loop.
func (a *Agent) release(ac *agentConn) {
	p := ac.pool
	for {
		a.mu.Lock()
		p.settleEnding(ac)
		if len(p.queue) == 0 {
			break
		}
		r := p.queue[0]
		p.queue[0] = nil
		p.queue = p.queue[1:]
		a.mu.Unlock()
		if r.attach(ac.pc, ac) {
			return
		}
	}
	keep := a.keepAlive() && len(p.free) < a.opts.MaxFreeSockets
	if keep {
		p.free = append(p.free, ac)
	}
	a.mu.Unlock()
	if !keep {
		ac.pc.Client().Close()
	}
}

// closed takes a connection that has closed out of its pool and lets a
// waiting request open another. It runs on the connection's loop.
func (a *Agent) closed(ac *agentConn) {
	p := ac.pool
	a.mu.Lock()
	p.settleEnding(ac)
	if i := indexOf(p.free, ac); i >= 0 {
		p.free = append(p.free[:i], p.free[i+1:]...)
	}
	p.open--
	destroyed := a.pools[p.key] != p
	a.mu.Unlock()
	// Requests handed to the connection that its loop had not bound yet.
	ac.mu.Lock()
	handed := ac.handed
	ac.handed = nil
	ac.mu.Unlock()
	for _, r := range handed {
		switch {
		case !r.waiting():
		case destroyed:
			r.finish(ErrAgentDestroyed)
		default:
			a.acquire(r, false)
		}
	}
	err := ac.pc.CloseErr()
	if errors.Is(err, io.EOF) {
		err = nil // the peer's close is no error
	}
	ac.sock.emitClose(err)
	a.next(p)
}

// responseEnding notes that ac's response is ending on a kept connection:
// until ac is released or closes, a request for its pool waits for it
// rather than dialing (acquire). On ac's loop.
func (a *Agent) responseEnding(ac *agentConn) {
	a.mu.Lock()
	if !ac.ending {
		ac.ending = true
		ac.pool.ending++
	}
	a.mu.Unlock()
}

// settleEnding ends ac's count in ending, if it had one. Called with the
// agent's mu held.
func (p *pool) settleEnding(ac *agentConn) {
	if ac.ending {
		ac.ending = false
		p.ending--
	}
}

// next dials for the first waiting request if the pool has room.
func (a *Agent) next(p *pool) {
	a.mu.Lock()
	for len(p.queue) > 0 && (a.opts.MaxSockets == 0 || p.open < a.opts.MaxSockets) {
		r := p.queue[0]
		p.queue[0] = nil
		p.queue = p.queue[1:]
		if !r.waiting() {
			continue
		}
		p.open++
		a.dial(p, r) // unlocks
		a.mu.Lock()
	}
	a.mu.Unlock()
}

func indexOf(free []*agentConn, ac *agentConn) int {
	for i, f := range free {
		if f == ac {
			return i
		}
	}
	return -1
}

// agentHooks routes the client's connection events to the agent.
type agentHooks struct{ a *Agent }

func (h agentHooks) Closed(pc *poller.Conn) {
	if ac, ok := pc.Data.(*agentConn); ok {
		h.a.closed(ac)
	}
}

// Destroy closes every connection of the agent (requests in progress hear
// ErrAgentDestroyed, then 'close') and stops its event loops; a later
// request starts them again. Safe from any goroutine. Called on one of
// the agent's loops (in a callback of one of its requests), it cannot
// wait for the loops to stop, as it runs on one: it starts the stop and
// returns, and the rest follows on the loops.
func (a *Agent) Destroy() {
	a.mu.Lock()
	cl := a.client
	a.client = nil
	var waiting []*ClientRequest
	for _, p := range a.pools {
		waiting = append(waiting, p.queue...)
		p.queue = nil
	}
	a.pools = map[string]*pool{}
	a.mu.Unlock()
	for _, r := range waiting {
		if r.waiting() {
			a.runner.post(func() { r.finish(ErrAgentDestroyed) })
		}
	}
	switch {
	case cl == nil:
	case cl.OnLoop():
		go func() { _ = cl.Close() }()
	default:
		_ = cl.Close()
	}
}

// highWater is AgentOptions.HighWater resolved. Any goroutine (the options
// do not change).
func (a *Agent) highWater() int { return orHighWater(a.opts.HighWater) }
