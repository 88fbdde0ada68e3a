package poller

import (
	"context"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/loophttp/loophttp/engine"
)

// Stats is a snapshot of a Server's counters: the engine's (requests,
// responses by class, protocol errors and timeouts by kind) and the
// poller's (connections, bytes, paused connections), summed over the
// loops. Counters count from the server's start.
type Stats struct {
	engine.Stats

	// OpenConns is the connections open now.
	OpenConns int64
	// TotalConns is the connections accepted since the start (refused
	// ones, after StopAccepting, are not counted).
	TotalConns uint64
	// PausedConns is the open connections whose socket is not being read
	// now (engine.ServerConn.WantsInput: a paused body, output over the
	// high-water mark or waiting for the socket, a request whose response
	// is still in progress).
	PausedConns int64
	// BytesIn is the bytes read from the sockets; BytesOut the bytes
	// the kernel took for them (ciphertext on TLS connections).
	BytesIn, BytesOut uint64
	// TLSHandshakes is the TLS handshakes completed, TLSFailed those that
	// failed, TLSTimeouts the connections closed at the handshake
	// timeout, TLSEvicted those closed, their peer silent for a second or
	// more, to make room for connections waiting for a handshake slot,
	// and TLSPlain the plain HTTP requests answered with 400 on a TLS
	// port.
	TLSHandshakes, TLSFailed, TLSTimeouts, TLSEvicted, TLSPlain uint64
}

// Add adds o's counters to s.
func (s *Stats) Add(o *Stats) {
	s.Stats.Add(&o.Stats)
	s.OpenConns += o.OpenConns
	s.TotalConns += o.TotalConns
	s.PausedConns += o.PausedConns
	s.BytesIn += o.BytesIn
	s.BytesOut += o.BytesOut
	s.TLSHandshakes += o.TLSHandshakes
	s.TLSFailed += o.TLSFailed
	s.TLSTimeouts += o.TLSTimeouts
	s.TLSEvicted += o.TLSEvicted
	s.TLSPlain += o.TLSPlain
}

// connStats are the poller's counters of one loop. Owned by the loop:
// plain increments where the loop works, read by a task on the loop.
type connStats struct {
	opened, closed    uint64
	bytesIn, bytesOut uint64
	paused            int64 // open Conns with reading off

	tlsHandshakes, tlsFailed, tlsTimeouts, tlsEvicted, tlsPlain uint64
}

// snapshot returns the loop's counters. Loop only (or once the loop has
// stopped).
func (l *loop) snapshot() Stats {
	st := Stats{
		OpenConns:   int64(l.stats.opened - l.stats.closed),
		TotalConns:  l.stats.opened,
		PausedConns: l.stats.paused,
		BytesIn:     l.stats.bytesIn,
		BytesOut:    l.stats.bytesOut,

		TLSHandshakes: l.stats.tlsHandshakes,
		TLSFailed:     l.stats.tlsFailed,
		TLSTimeouts:   l.stats.tlsTimeouts,
		TLSEvicted:    l.stats.tlsEvicted,
		TLSPlain:      l.stats.tlsPlain,
	}
	if l.eng != nil {
		st.Stats = *l.eng.Stats()
	}
	return st
}

// Stats returns the server's counters, summed over its loops. Each loop
// copies its own on the loop (a task posted to it), so counting costs the
// loops plain increments and no lock; the copies are taken a few
// microseconds apart, each consistent in itself. Safe from any goroutine,
// a handler on a loop included (that loop is read in place); it waits for
// every other loop to run the task, so a loop blocked in a handler delays
// it. After the server has stopped it reads the final counters.
func (s *Server) Stats() Stats {
	loops := s.loops.all()
	parts := make([]Stats, len(loops))
	got := make(chan int, len(loops))
	waiting := len(loops)
	me := CallerID()
	for i, l := range loops {
		if l.id == me { // called on this loop (from a handler): read it here
			parts[i] = l.snapshot()
			got <- i
			continue
		}
		err := l.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			parts[i] = l.snapshot()
			got <- i
			return nil
		}))
		if err != nil { // the engine has stopped: its loops have exited
			parts[i] = l.snapshot()
			got <- i
		}
	}
	seen := make([]bool, len(loops))
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	for waiting > 0 {
		select {
		case i := <-got:
			if !seen[i] {
				seen[i] = true
				waiting--
			}
		case <-t.C:
			if s.eng.Validate() == nil {
				continue
			}
			// Stopped meanwhile: a loop that exited before running its
			// task never will. The exit happened before the engine said
			// it stopped, so its counters are final and safe to read.
			for i, l := range loops {
				if !seen[i] {
					parts[i] = l.snapshot()
					seen[i] = true
					waiting--
				}
			}
		}
	}
	var sum Stats
	for i := range parts {
		sum.Add(&parts[i])
	}
	return sum
}

// all returns the loops created so far.
func (ls *loopSet) all() []*loop {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	out := make([]*loop, 0, len(ls.m))
	for _, l := range ls.m {
		out = append(out, l)
	}
	return out
}

// countClose counts the close of c, which was opened on this loop.
func (l *loop) countClose(c *Conn) {
	if c.sc != nil {
		l.stats.closed++
	}
	if c.paused {
		l.stats.paused--
	}
}

// countPaused counts a change of a Conn's reading: paused or resumed.
func (l *loop) countPaused(paused bool) {
	if paused {
		l.stats.paused++
	} else {
		l.stats.paused--
	}
}
