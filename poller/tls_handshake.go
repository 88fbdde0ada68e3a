package poller

import (
	"cmp"
	"context"
	"crypto/tls"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loophttp/loophttp/engine"
	"github.com/panjf2000/gnet/v2"
)

// Server handshakes. A connection's handshake goroutine starts once the
// client's first record has fully arrived and a slot is free; the slots
// (Config.MaxHandshakes) bound the goroutines a server runs for
// handshakes, whatever the peers do. A connection that finds none free
// waits in its loop's queue, with no goroutine, until one frees (the
// goroutine that frees it posts a task to every loop with connections
// waiting; each tick looks too) or its handshake timeout closes it.
//
// Peers that send a hello and then nothing would hold every slot until
// their timeout, and keep healthy clients waiting as long. So while
// connections wait, the handshakes that have waited longest for their
// peer, and at least evictAge (a round trip on the slowest link), are
// closed to make room: one for each connection waiting, as it queues and
// on every tick. A healthy handshake waits for its peer one round trip.

// Defaults of the TLS settings of Config.
const (
	// DefaultHandshakeTimeout bounds a handshake from the connect, as a
	// read-header timeout would in Go's net/http.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultMaxHandshakes bounds the handshakes in progress. By Little's
	// law it sustains 10,000 handshakes a second with 100 ms of round
	// trip between hello and finish, for about 1024 stacks (8 KiB each
	// when idle) at worst.
	DefaultMaxHandshakes = 1024
	// evictAge is how long a handshake must have waited for its peer
	// before it may be closed for a connection that waits for a slot.
	evictAge = time.Second
)

// handshakes is a server's handshake slots. Safe from any goroutine.
type handshakes struct {
	max     int64
	active  atomic.Int64 // slots taken
	waiting atomic.Int64 // connections queued on the loops
	loops   *loopSet

	mu       sync.Mutex
	running  map[*tlsLayer]struct{} // handshakes whose goroutine runs; guarded by mu
	evictAge time.Duration          // set once (tests shorten it)
}

// started and ended keep the set of running handshakes. Any goroutine.
func (h *handshakes) started(t *tlsLayer) {
	h.mu.Lock()
	h.running[t] = struct{}{}
	h.mu.Unlock()
}

func (h *handshakes) ended(t *tlsLayer) {
	h.mu.Lock()
	delete(h.running, t)
	h.mu.Unlock()
}

// evict closes up to n of the handshakes that have waited longest for
// their peer, evictAge at least, to make room for connections waiting
// for a slot. Any goroutine; the closes happen on the victims' loops.
func (h *handshakes) evict(n int, now time.Time) {
	if n <= 0 {
		return
	}
	oldest := now.Add(-h.evictAge).UnixNano()
	var victims []*tlsLayer
	h.mu.Lock()
	for t := range h.running {
		switch since := t.starvedAt.Load(); {
		case t.evicted.Load():
			n-- // its slot is on its way
		case since != 0 && since <= oldest:
			victims = append(victims, t)
		}
	}
	n = max(n, 0)
	slices.SortFunc(victims, func(a, b *tlsLayer) int { return cmp.Compare(a.starvedAt.Load(), b.starvedAt.Load()) })
	if len(victims) > n {
		victims = victims[:n]
	}
	for _, t := range victims {
		t.evicted.Store(true)
	}
	h.mu.Unlock()
	for _, t := range victims {
		_ = t.c.SubmitConn(t.gen, closeEvicted)
	}
}

// closeEvicted closes a connection whose handshake was evicted. Loop only.
func closeEvicted(c *Conn) {
	if t := c.tls; t != nil && t.evicted.Load() && t.state == tlsShaking {
		c.loop.stats.tlsEvicted++
		t.failed(ErrHandshakeEvicted)
		t.abort(time.Now())
	}
}

// acquire takes a slot if one is free.
func (h *handshakes) acquire() bool {
	for {
		n := h.active.Load()
		if n >= h.max {
			return false
		}
		if h.active.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release gives a slot back and lets the loops start what waits for one.
func (h *handshakes) release() {
	h.active.Add(-1)
	if h.waiting.Load() > 0 {
		h.loops.each(func(l *loop) gnet.Runnable { return l.hsTask })
	}
}

// serverConfig returns the server's TLS configuration: a copy of the
// user's, advertising HTTP/1.1 through ALPN unless it says otherwise.
func serverConfig(cfg *tls.Config) *tls.Config {
	cfg = cfg.Clone()
	if len(cfg.NextProtos) == 0 {
		cfg.NextProtos = []string{"http/1.1"}
	}
	return cfg
}

// TLSHooks are the hooks a TLS server's Hooks may add (Node's
// 'secureConnection' and 'tlsClientError'). Both are called on the loop.
// Secured: a connection's handshake is done, before its first request is
// read; the hook may close the connection. HandshakeFailed: a handshake
// failed (with crypto/tls's error), timed out (ErrHandshakeTimeout), was
// evicted to make room for others (ErrHandshakeEvicted), or met a peer that
// does not speak TLS (ErrNotTLS); the connection closes right after (plain
// HTTP after its 400), and Closed follows.
type TLSHooks interface {
	Secured(c *Conn)
	HandshakeFailed(c *Conn, err error)
}

// The errors a TLS server's HandshakeFailed hook gets besides crypto/tls's.
var (
	ErrHandshakeTimeout = engine.NewError(engine.ErrTimeout, "poller: TLS handshake timed out")
	ErrHandshakeEvicted = engine.NewError(engine.ErrLimit, "poller: TLS handshake stalled and closed to make room for others")
	ErrNotTLS           = engine.NewError(engine.ErrInvalid, "poller: the client does not speak TLS")
)

// tlsHooks returns the server's TLSHooks, or nil. Loop only.
func (t *tlsLayer) tlsHooks() TLSHooks {
	h, _ := t.c.loop.srv.hooks.(TLSHooks)
	return h
}

// failed tells the hooks that the handshake failed with err (the caller
// then closes the connection). Loop only, on a server's connection.
func (t *tlsLayer) failed(err error) {
	if h := t.tlsHooks(); h != nil {
		h.HandshakeFailed(t.c, err)
	}
}

// openTLS puts a TLS layer on a server connection that has just opened:
// the layer holds the timer until the handshake is done. Loop only.
func (l *loop) openTLS(c *Conn, now time.Time) {
	s := l.srv
	t := &tlsLayer{c: c, gen: c.Gen(), hs: s.hs, wake: make(chan struct{}, 1)}
	t.tc = tls.Server(t, s.tlsCfg)
	t.deadline = now.Add(s.cfg.HandshakeTimeout)
	c.tls = t
	l.wheel.arm(&c.timer, t.deadline)
}

// hello looks at the first bytes of a server connection: a TLS record
// waits until it is whole, then its handshake starts (or queues); plain
// HTTP gets a 400; anything else is closed. Loop only, in the hello state.
func (t *tlsLayer) hello(now time.Time) {
	in := t.in // no goroutine yet: the loop's alone
	switch {
	case len(in) == 0:
		return
	case in[0] == 0x16: // TLS handshake record (RFC 8446 §5.1)
		if len(in) < 5 {
			return
		}
		if n := int(in[3])<<8 | int(in[4]); len(in) < 5+n && n <= 16384+2048 {
			return // crypto/tls refuses a longer record itself
		}
		t.state = tlsQueued
		l := t.c.loop
		if len(l.hsWait) == 0 && t.hs.acquire() {
			t.shake()
			return
		}
		t.hs.waiting.Add(1)
		l.hsWait = append(l.hsWait, t)
		t.hs.evict(1, now)
	case 'A' <= in[0] && in[0] <= 'Z': // an HTTP method (RFC 9110 §9: a token)
		t.failed(ErrNotTLS)
		t.reject(now)
	default:
		t.failed(ErrNotTLS)
		t.abort(now)
	}
}

// shake starts the handshake goroutine, a slot taken. Loop only.
func (t *tlsLayer) shake() {
	t.state = tlsShaking
	t.shaking = true
	t.hs.started(t)
	go t.handshake()
}

// handshake runs the server handshake on its own goroutine and posts the
// outcome to the loop.
func (t *tlsLayer) handshake() {
	err := t.tc.Handshake()
	t.hs.ended(t)
	t.hs.release()
	out := t.takeOut() // the last flight, tickets or an alert
	_ = t.c.Submit(t.gen, func() {
		t.c.loop.cout = append(t.c.loop.cout, out...)
		t.shaken(err)
	})
}

// shaken runs on the loop once the handshake goroutine has ended (the
// connection being still open): the records are read on the loop from
// now on, starting with what the client sent after its handshake.
func (t *tlsLayer) shaken(err error) {
	t.shaking = false
	t.mu.Lock()
	if len(t.in) > 0 {
		t.carry = t.in // what the client sent after its handshake
	}
	t.in = nil // an idle connection keeps no buffer of the hello's size
	t.mu.Unlock()
	now := time.Now()
	c := t.c
	if err != nil {
		c.loop.stats.tlsFailed++
		c.loop.logger().Debug("loophttp: TLS handshake failed", "err", err, "remote", c.RemoteAddr())
		t.failed(err)
		t.abort(now) // after the alert, already posted
		return
	}
	c.loop.stats.tlsHandshakes++
	t.opened()
	if h := t.tlsHooks(); h != nil {
		h.Secured(c)
		if !c.isOpen() || c.closing {
			return // the hook closed it
		}
	}
	got, rerr := t.readRecords()
	if rerr != nil {
		t.readFailed(rerr, got, now)
		return
	}
	if got {
		c.m().OnData(now)
	}
}

// resumeHandshakes starts the handshakes queued on the loop while slots
// are free; with evict (on a tick), it makes room for those left. Loop
// only (the loop's hsTask, and its tick).
func (l *loop) resumeHandshakes(evict bool) {
	for len(l.hsWait) > 0 {
		t := l.hsWait[0]
		if t.state == tlsQueued && !t.hs.acquire() {
			if evict {
				t.hs.evict(len(l.hsWait), time.Now())
			}
			return
		}
		l.hsWait[0] = nil
		l.hsWait = l.hsWait[1:]
		if len(l.hsWait) == 0 {
			l.hsWait = nil
		}
		if t.state != tlsQueued {
			continue // it closed while waiting
		}
		t.hs.waiting.Add(-1)
		t.shake()
	}
}

// newHandshakeTask returns the loop's task that resumes queued handshakes.
func (l *loop) newHandshakeTask() gnet.Runnable {
	return gnet.RunnableFunc(func(context.Context) error {
		l.resumeHandshakes(false)
		return nil
	})
}
