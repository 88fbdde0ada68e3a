package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/engine"
	"github.com/loophttp/loophttp/poller"
)

// load runs `loophttp load`: conns keep-alive connections on the client
// engine, each sending GET requests back to back for the duration, then
// requests/s, latency percentiles and errors.
func load(args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(errOut)
	conns := fs.Int("c", 16, "connections")
	dur := fs.Duration("d", 10*time.Second, "duration")
	pipeline := fs.Int("pipeline", 1, "requests in flight per connection")
	loops := fs.Int("loops", 1, "client event loops")
	quiet := fs.Bool("quiet", false, "no progress line")
	fs.Usage = func() {
		fmt.Fprintln(errOut, "usage: loophttp load [-c conns] [-d duration] [-pipeline n] [-loops n] URL")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *conns < 1 || *pipeline < 1 || *dur <= 0 {
		fs.Usage()
		return errors.New("load needs one URL, -c ≥ 1, -pipeline ≥ 1 and -d > 0")
	}
	target, err := parseTarget(fs.Arg(0))
	if err != nil {
		return err
	}
	progress := errOut
	if *quiet {
		progress = io.Discard
	}
	res, err := runLoad(target, *conns, *pipeline, *loops, *dur, progress)
	if err != nil {
		return err
	}
	res.print(out)
	return nil
}

// loadTarget is where load sends its requests.
type loadTarget struct {
	addr, host, path string
}

func parseTarget(raw string) (loadTarget, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return loadTarget{}, err
	}
	if u.Scheme != "http" {
		return loadTarget{}, fmt.Errorf("scheme %q: only http", u.Scheme)
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	return loadTarget{addr: net.JoinHostPort(u.Hostname(), port), host: u.Host, path: u.RequestURI()}, nil
}

// loadResult is the outcome of a run.
type loadResult struct {
	requests, errors int64
	elapsed          time.Duration
	latencies        []time.Duration // sorted
}

func (r *loadResult) print(w io.Writer) {
	fmt.Fprintf(w, "%d requests in %.2fs, %d errors\n", r.requests, r.elapsed.Seconds(), r.errors)
	fmt.Fprintf(w, "requests/s: %.0f\n", float64(r.requests)/r.elapsed.Seconds())
	if len(r.latencies) == 0 {
		return
	}
	q := func(p float64) time.Duration { return r.latencies[int(p*float64(len(r.latencies)-1))] }
	fmt.Fprintf(w, "latency: p50 %v  p90 %v  p99 %v  max %v\n", q(0.50), q(0.90), q(0.99), r.latencies[len(r.latencies)-1])
}

// loader drives one connection: it keeps depth requests in flight
// (pipelined after the first) until told to stop. Its fields belong to the
// connection's loop.
type loader struct {
	target   *loadTarget
	depth    int
	stop     *atomic.Bool
	done     func()
	sent     []int64 // start times (UnixNano) of the requests in flight, oldest first
	lat      []time.Duration
	requests atomic.Int64
	errors   atomic.Int64
	finished bool
}

func (l *loader) Information(*engine.Exchange, *codec.Response) {}
func (l *loader) Response(*engine.Exchange, *codec.Response)    {}
func (l *loader) Body(*engine.Exchange, []byte)                 {}
func (l *loader) Drain(*engine.Exchange)                        {}
func (l *loader) Timeout(*engine.Exchange)                      {}

// End records the latency of the oldest request in flight and, when
// pipelining, sends the next one at once. Once the run is over, the
// connection's part ends with its last response in flight.
func (l *loader) End(x *engine.Exchange, _ []codec.Header) {
	if len(l.sent) > 0 {
		l.lat = append(l.lat, time.Duration(time.Now().UnixNano()-l.sent[0]))
		l.sent = l.sent[:copy(l.sent, l.sent[1:])]
	}
	l.requests.Add(1)
	switch {
	case l.stop.Load():
		l.finishWhenIdle()
	case l.depth > 1:
		l.fill(x.Conn())
	}
}

// Close counts a failed request; the connection is gone with it.
func (l *loader) Close(_ *engine.Exchange, err error) {
	if err != nil {
		l.errors.Add(1)
		l.finish()
	}
}

// Idle sends the next requests, or ends the run for this connection.
func (l *loader) Idle(c *engine.ClientConn) { l.fill(c) }

// finish reports the connection's part of the run over; it sends nothing
// more, and runLoad reads its figures once every loader has finished, so
// it must come after the last response (or the connection's failure).
func (l *loader) finish() {
	if !l.finished {
		l.finished = true
		l.done()
	}
}

// finishWhenIdle finishes once no request is in flight.
func (l *loader) finishWhenIdle() {
	if len(l.sent) == 0 {
		l.finish()
	}
}

// fill begins requests until depth are in flight, or, once the run is
// over, finishes when the last one has come back.
func (l *loader) fill(c *engine.ClientConn) {
	if l.finished {
		return
	}
	if l.stop.Load() {
		l.finishWhenIdle()
		return
	}
	for len(l.sent) < l.depth {
		x, err := c.Begin(l, "GET", l.target.path)
		if err != nil {
			return // closing: Close counts the error
		}
		_ = x.AddField("Host", l.target.host)
		l.sent = append(l.sent, time.Now().UnixNano())
		if err := x.End(nil); err != nil {
			l.sent = l.sent[:len(l.sent)-1] // not sent: nothing to wait for
			l.errors.Add(1)
			l.finishWhenIdle()
			return
		}
	}
}

// runLoad dials conns connections and runs them for dur.
func runLoad(t loadTarget, conns, depth, loops int, dur time.Duration, progress io.Writer) (*loadResult, error) {
	cl, err := poller.NewClient(poller.ClientConfig{Loops: loops, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, nil)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var stop atomic.Bool
	var wg sync.WaitGroup
	loaders := make([]*loader, conns)
	dialed := make(chan error, conns)
	pcs := make([]*poller.Conn, conns)
	for i := range loaders {
		l := &loader{target: &t, depth: depth, stop: &stop, done: wg.Done}
		loaders[i] = l
		cl.Dial(context.Background(), t.addr, l, func(c *poller.Conn, err error) {
			pcs[i] = c
			dialed <- err
		})
	}
	for range loaders {
		if err := <-dialed; err != nil {
			return nil, err
		}
	}
	start := time.Now()
	wg.Add(conns)
	for i, c := range pcs {
		l := loaders[i]
		if err := c.Submit(c.Gen(), func() { l.fill(c.Client()) }); err != nil {
			return nil, err
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	end := time.After(dur)
run:
	for {
		select {
		case <-tick.C:
			var n int64
			for _, l := range loaders {
				n += l.requests.Load()
			}
			fmt.Fprintf(progress, "\r%3.0fs  %d requests  %.0f/s   ", time.Since(start).Seconds(), n, float64(n)/time.Since(start).Seconds())
		case <-end:
			break run
		}
	}
	stop.Store(true) // the requests in flight still count: the run ends with their responses
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		return nil, errors.New("requests still in flight 10 s after the end")
	}
	elapsed := time.Since(start)
	fmt.Fprintln(progress)
	res := &loadResult{elapsed: elapsed}
	for _, l := range loaders {
		res.requests += l.requests.Load()
		res.errors += l.errors.Load()
		res.latencies = append(res.latencies, l.lat...)
	}
	slices.Sort(res.latencies)
	return res, nil
}
