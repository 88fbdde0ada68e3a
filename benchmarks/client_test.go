package benchmarks

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/fasthttp"

	"github.com/loophttp/loophttp/benchmarks/internal/ceiling"

	"github.com/loophttp/loophttp/api"
	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/engine"
	"github.com/loophttp/loophttp/poller"
)

// hello is an engine-level handler answering every request with the 13-byte
// plaintext body: the one server every client is measured against.
type hello struct{}

var helloBody = []byte("Hello, World!")

func (hello) Request(s *engine.Stream, _ *codec.Request) {
	_ = s.SetHead(200, "", []codec.Header{{Name: []byte("Content-Type"), Value: []byte("text/plain")}})
}
func (hello) Body(*engine.Stream, []byte)            {}
func (hello) End(s *engine.Stream, _ []codec.Header) { _ = s.End(helloBody) }
func (hello) Drain(*engine.Stream)                   {}
func (hello) Close(*engine.Stream, error)            {}

func startHello(b *testing.B) (string, int) {
	b.Helper()
	srv, err := poller.Start(poller.Config{
		Addr: "127.0.0.1:0", Loops: 1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, hello{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	a := srv.Addr().(*net.TCPAddr)
	return a.IP.String(), a.Port
}

// BenchmarkClient measures keep-alive GETs against one local server (a
// loophttp engine-level server, and the gnet ceiling that answers without
// parsing) with conc requests in flight: loophttp's client at the engine level (poller
// client connections driven by engine.ClientConn, each beginning its next
// request when the last one ends) and through the api (Request chains on
// an Agent), fasthttp's HostClient and fasthttp.Client, and net/http's
// Client (conc goroutines each). One op is one request.
func BenchmarkClient(b *testing.B) {
	for _, server := range []string{"loophttp", "ceiling"} {
		b.Run(server, func(b *testing.B) {
			host, port := startHello(b)
			if server == "ceiling" {
				host, port = startCeiling(b)
			}
			benchClients(b, host, port)
		})
	}
}

// startCeiling starts the gnet server that answers without parsing: a
// server that costs less than any client, so the clients' differences
// show.
func startCeiling(b *testing.B) (string, int) {
	type booted struct {
		eng  gnet.Engine
		addr net.Addr
	}
	up := make(chan booted, 1)
	done := make(chan error, 1)
	go func() { done <- ceiling.Run("127.0.0.1:0", func(e gnet.Engine, a net.Addr) { up <- booted{e, a} }) }()
	var bt booted
	select {
	case bt = <-up:
	case err := <-done:
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = bt.eng.Stop(context.Background())
		<-done
	})
	a := bt.addr.(*net.TCPAddr)
	return a.IP.String(), a.Port
}

func benchClients(b *testing.B, host string, port int) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	for _, conc := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("loophttp-engine/c%d", conc), func(b *testing.B) { benchEngineClient(b, addr, conc) })
		b.Run(fmt.Sprintf("loophttp/c%d", conc), func(b *testing.B) { benchLoophttpClient(b, host, port, conc) })
		b.Run(fmt.Sprintf("fasthttp/c%d", conc), func(b *testing.B) { benchFasthttpClient(b, addr, conc) })
		b.Run(fmt.Sprintf("fasthttp-client/c%d", conc), func(b *testing.B) { benchFasthttpTopClient(b, addr, conc) })
		b.Run(fmt.Sprintf("nethttp/c%d", conc), func(b *testing.B) { benchNethttpClient(b, addr, conc) })
	}
}

// apiChain is one chain of requests of benchLoophttpClient: each request
// begins when the last one closes. Its callbacks are bound once, so the
// allocations per request are the api's own, not the benchmark's closures.
type apiChain struct {
	opts       *api.RequestOptions
	left       *atomic.Int64
	failed     *atomic.Int64
	wg         *sync.WaitGroup
	n          int
	onResponse func(*api.IncomingMessage)
	onData     func([]byte)
	onClose    func()
}

func newAPIChain(opts *api.RequestOptions, left, failed *atomic.Int64, wg *sync.WaitGroup) *apiChain {
	k := &apiChain{opts: opts, left: left, failed: failed, wg: wg}
	k.onResponse = func(res *api.IncomingMessage) { res.OnData(k.onData) }
	k.onData = func(c []byte) { k.n += len(c) }
	k.onClose = func() {
		if k.n != len(helloBody) {
			k.failed.Add(1)
		}
		k.next()
	}
	return k
}

func (k *apiChain) next() {
	if k.left.Add(-1) < 0 {
		k.wg.Done()
		return
	}
	k.n = 0
	req, err := api.Request(*k.opts, k.onResponse)
	if err != nil {
		k.failed.Add(1)
		k.wg.Done()
		return
	}
	req.OnClose(k.onClose)
	_ = req.End(nil, nil)
}

func benchLoophttpClient(b *testing.B, host string, port, conc int) {
	agent := api.NewAgent(api.AgentOptions{MaxSockets: conc, Loops: clientLoops})
	defer agent.Destroy()
	opts := api.RequestOptions{Host: host, Port: port, Path: "/", Agent: agent}
	var left, failed atomic.Int64
	var wg sync.WaitGroup
	chains := make([]*apiChain, conc)
	for i := range chains {
		chains[i] = newAPIChain(&opts, &left, &failed, &wg)
	}
	// Warm the pool, then measure.
	run := func(n int) {
		left.Store(int64(n))
		wg.Add(conc)
		for _, k := range chains {
			k.next()
		}
		wg.Wait()
	}
	measure(b, conc, run, &failed)
}

// benchFasthttpClient measures fasthttp's HostClient, its fastest client
// for one host (fasthttp.Client looks up a HostClient per request by the
// URL's host first), with as many connections as requests in flight and
// the options that skip work for speed: no User-Agent field, field names
// and path sent as given. Each goroutine reuses one request and one
// response, as fasthttp's docs advise for hot paths.
func benchFasthttpClient(b *testing.B, addr string, conc int) {
	c := &fasthttp.HostClient{
		Addr: addr, MaxConns: conc,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
	}
	defer c.CloseIdleConnections()
	goroutines(b, conc, fasthttpDo(c.Do, "http://"+addr+"/"))
}

// benchFasthttpTopClient measures fasthttp.Client, the client most fasthttp
// code uses, configured as fasthttp's own client benchmarks do
// (MaxConnsPerHost as large as the requests in flight) and with the same
// speed options as benchFasthttpClient.
func benchFasthttpTopClient(b *testing.B, addr string, conc int) {
	c := &fasthttp.Client{
		MaxConnsPerHost:               conc,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
	}
	defer c.CloseIdleConnections()
	goroutines(b, conc, fasthttpDo(c.Do, "http://"+addr+"/"))
}

// fasthttpDo makes, per goroutine, a request to url kept for all its
// calls, and a response reused by each call.
func fasthttpDo(do func(*fasthttp.Request, *fasthttp.Response) error, url string) func() func() bool {
	return func() func() bool {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI(url)
		return func() bool {
			return do(req, resp) == nil && len(resp.Body()) == len(helloBody)
		}
	}
}

func benchNethttpClient(b *testing.B, addr string, conc int) {
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	url := "http://" + addr + "/"
	goroutines(b, conc, func() func() bool {
		return func() bool {
			resp, err := c.Get(url)
			if err != nil {
				return false
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return n == int64(len(helloBody))
		}
	})
}

// goroutines runs requests b.N times over conc goroutines, after one
// warm-up round per goroutine; each goroutine makes its request function
// with newDo once per round.
func goroutines(b *testing.B, conc int, newDo func() func() bool) {
	var left, failed atomic.Int64
	run := func(n int) {
		left.Store(int64(n))
		var wg sync.WaitGroup
		for i := 0; i < conc; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				do := newDo()
				for left.Add(-1) >= 0 {
					if !do() {
						failed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
	}
	measure(b, conc, run, &failed)
}

// chain is one connection of benchEngineClient: it sends GET / again each
// time the connection is idle, until the shared budget runs out.
type chain struct {
	left   *atomic.Int64
	wg     *sync.WaitGroup
	failed *atomic.Int64
	n      int
}

func (k *chain) Information(*engine.Exchange, *codec.Response) {}
func (k *chain) Response(*engine.Exchange, *codec.Response)    {}
func (k *chain) Body(_ *engine.Exchange, b []byte)             { k.n += len(b) }
func (k *chain) End(*engine.Exchange, []codec.Header) {
	if k.n != len(helloBody) {
		k.failed.Add(1)
	}
}
func (k *chain) Drain(*engine.Exchange)   {}
func (k *chain) Timeout(*engine.Exchange) {}
func (k *chain) Close(_ *engine.Exchange, err error) {
	if err != nil {
		k.failed.Add(1)
	}
}

// Idle begins the next request on c (the engine offers the connection
// before the finished exchange hears Close), or lets the benchmark go on.
func (k *chain) Idle(c *engine.ClientConn) { k.next(c) }

func (k *chain) next(c *engine.ClientConn) {
	if k.left.Add(-1) < 0 {
		k.wg.Done()
		return
	}
	k.n = 0
	x, err := c.Begin(k, "GET", "/")
	if err != nil {
		k.failed.Add(1)
		k.wg.Done()
		return
	}
	_ = x.AddField("Host", "localhost")
	_ = x.End(nil)
}

func benchEngineClient(b *testing.B, addr string, conc int) {
	cl, err := poller.NewClient(poller.ClientConfig{Loops: clientLoops, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	var left, failed atomic.Int64
	var wg sync.WaitGroup
	chains := make([]*chain, conc)
	conns := make([]*poller.Conn, conc)
	for i := range chains {
		chains[i] = &chain{left: &left, wg: &wg, failed: &failed}
		done := make(chan error, 1)
		cl.Dial(context.Background(), addr, chains[i], func(c *poller.Conn, err error) {
			conns[i] = c
			done <- err
		})
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	run := func(n int) {
		left.Store(int64(n))
		wg.Add(conc)
		for i, c := range conns {
			k := chains[i]
			if err := c.Submit(c.Gen(), func() { k.next(c.Client()) }); err != nil {
				b.Fatal(err)
			}
		}
		wg.Wait()
	}
	measure(b, conc, run, &failed)
}

// clientLoops is the loophttp client's event loops: one, so that the
// server has the other core (two measured slower here: three busy threads
// on two cores).
var clientLoops = 1

// measure warms a client up with one round of conc requests, then times
// b.N requests (run(n) makes n requests and returns when they are done),
// and fails the benchmark if any request failed. Besides the wall time it
// reports the process's CPU time per request (cpu-ns/op: user and system,
// from getrusage, client and in-process server together), which a busy
// shared machine disturbs far less than the wall time.
func measure(b *testing.B, conc int, run func(n int), failed *atomic.Int64) {
	run(conc)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU(b)
	run(b.N)
	cpu := processCPU(b) - cpu0
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	if failed.Load() > 0 {
		b.Fatalf("%d requests failed", failed.Load())
	}
}

// processCPU is the user and system CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
