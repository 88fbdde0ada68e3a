package api

import (
	"context"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/engine"
	"github.com/loophttp/loophttp/poller"
)

// BenchmarkClientChain measures keep-alive GETs made through the api, conc
// in flight on as many connections, each request made in the 'close' of
// the one before on its connection (as benchmarks' BenchmarkClient does),
// against an engine-level server that allocates nothing; and, side by
// side, the same chains driven at the engine level (the floor the api
// adds to). Besides the wall time it reports client-ns/op: the CPU time of
// the client's one loop thread per request, system calls included, which
// a busy machine disturbs less than the wall time.
func BenchmarkClientChain(b *testing.B) {
	srv, err := poller.Start(poller.Config{Addr: "127.0.0.1:0", Loops: 1, Logger: quiet().Logger}, echoLength{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	host, port, _ := net.SplitHostPort(srv.Addr().String())
	p, _ := strconv.Atoi(port)
	for _, conc := range []int{1, 16, 128} {
		b.Run("api/c"+strconv.Itoa(conc), func(b *testing.B) { benchAPIChain(b, host, p, conc) })
		b.Run("engine/c"+strconv.Itoa(conc), func(b *testing.B) { benchEngineChain(b, srv.Addr().String(), conc) })
	}
}

// chainRun is what both kinds of chain share: the requests left, the
// client loop's CPU time when the chains start and end.
type chainRun struct {
	left   atomic.Int64
	failed atomic.Int64
	wg     sync.WaitGroup
	cpu0   atomic.Int64 // the loop's CPU time when the first chain took its first request
	cpu1   atomic.Int64 // when the last chain stopped
}

// take reports whether a chain may make another request; on the loop
// (onLoop) it notes the loop's CPU time at the start and end of the run.
func (k *chainRun) take(onLoop bool) bool {
	if onLoop {
		k.cpu0.CompareAndSwap(0, loopCPU())
	}
	if k.left.Add(-1) >= 0 {
		return true
	}
	k.cpu1.Store(loopCPU())
	k.wg.Done()
	return false
}

// measure runs n requests over conc chains started by start, after a
// warm-up round, and reports client-ns/op.
func (k *chainRun) measure(b *testing.B, conc int, start func(i int)) {
	run := func(n int) {
		k.left.Store(int64(n))
		k.cpu0.Store(0)
		k.wg.Add(conc)
		for i := 0; i < conc; i++ {
			start(i)
		}
		k.wg.Wait()
	}
	run(conc)
	b.ReportAllocs()
	b.ResetTimer()
	run(b.N)
	b.StopTimer()
	if k.failed.Load() > 0 {
		b.Fatalf("%d requests failed", k.failed.Load())
	}
	if c0, c1 := k.cpu0.Load(), k.cpu1.Load(); c0 > 0 && c1 > 0 {
		b.ReportMetric(float64(c1-c0)/float64(b.N), "client-ns/op")
	}
}

func benchAPIChain(b *testing.B, host string, port, conc int) {
	agent := NewAgent(AgentOptions{Loops: 1, MaxSockets: conc, Logger: quiet().Logger})
	defer agent.Destroy()
	opts := RequestOptions{Host: host, Port: port, Agent: agent}
	k := &chainRun{}
	var next func(onLoop bool)
	next = func(onLoop bool) {
		if !k.take(onLoop) {
			return
		}
		n := 0
		req, err := Request(opts, func(res *IncomingMessage) {
			res.OnData(func(c []byte) { n += len(c) })
		})
		if err != nil {
			k.failed.Add(1)
			k.wg.Done()
			return
		}
		req.OnClose(func() {
			if n != len(helloBody) {
				k.failed.Add(1)
			}
			next(true)
		})
		_ = req.End(nil, nil)
	}
	k.measure(b, conc, func(int) { next(false) })
}

// engineChain is one connection of benchEngineChain: it sends GET / each
// time the connection is idle.
type engineChain struct {
	k *chainRun
	n int
}

func (c *engineChain) Information(*engine.Exchange, *codec.Response) {}
func (c *engineChain) Response(*engine.Exchange, *codec.Response)    {}
func (c *engineChain) Body(_ *engine.Exchange, b []byte)             { c.n += len(b) }
func (c *engineChain) End(*engine.Exchange, []codec.Header) {
	if c.n != len(helloBody) {
		c.k.failed.Add(1)
	}
}
func (c *engineChain) Drain(*engine.Exchange)   {}
func (c *engineChain) Timeout(*engine.Exchange) {}
func (c *engineChain) Close(_ *engine.Exchange, err error) {
	if err != nil {
		c.k.failed.Add(1)
	}
}
func (c *engineChain) Idle(cc *engine.ClientConn) { c.next(cc) }

func (c *engineChain) next(cc *engine.ClientConn) {
	if !c.k.take(true) {
		return
	}
	c.n = 0
	x, err := cc.Begin(c, "GET", "/")
	if err != nil {
		c.k.failed.Add(1)
		c.k.wg.Done()
		return
	}
	_ = x.AddField("Host", "localhost")
	_ = x.End(nil)
}

func benchEngineChain(b *testing.B, addr string, conc int) {
	cl, err := poller.NewClient(poller.ClientConfig{Loops: 1, Logger: quiet().Logger}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	k := &chainRun{}
	chains := make([]*engineChain, conc)
	conns := make([]*poller.Conn, conc)
	for i := range chains {
		chains[i] = &engineChain{k: k}
		done := make(chan error, 1)
		cl.Dial(context.Background(), addr, chains[i], func(c *poller.Conn, err error) {
			conns[i] = c
			done <- err
		})
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	k.measure(b, conc, func(i int) {
		c, ch := conns[i], chains[i]
		if err := c.Submit(c.Gen(), func() { ch.next(c.Client()) }); err != nil {
			b.Fatal(err)
		}
	})
}
