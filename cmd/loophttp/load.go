package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/poller"
)

const loadSynopsis = "usage: loophttp load [flags] URL"

const loadAbout = `Keeps -c connections busy for -d, each with -pipeline requests in flight,
or, with -R, sends -R requests a second in all, then prints the summary
(also on Ctrl-C). A connection that closes or fails is replaced by a new
one; a failure counts once, however many requests it took with it.
With -R, latencies are corrected for coordinated omission as wrk2 does:
each is measured from when its request was meant to go out.
https:// URLs verify the server against the system's roots, or -cacert's;
-k accepts any certificate; -cert and -key present a client certificate.
Each new connection makes a full handshake (no
session is reused).

Exit status: 0 when the run got at least one response (failures and
non-2xx answers are in the summary), 1 when it got none, 2 for a usage
error.`

// loadConfig is a load run, from the flags.
type loadConfig struct {
	target    loadTarget
	method    string
	headers   []field
	hostSet   bool // a -H Host replaces the URL's
	closeEach bool // a -H Connection: close ends each connection after one response
	body      []byte
	conns     int
	depth     int
	loops     int
	dur       time.Duration
	rate      float64       // requests/s over all connections; 0: as fast as they go
	timeout   time.Duration // a request's idle timeout
	tls       *tls.Config   // https; nil for http
}

// field is a header field of a request.
type field struct{ name, value string }

// load runs `loophttp load`. interrupt ends the run early (Ctrl-C); nil
// for none.
func load(args []string, out, errOut io.Writer, interrupt <-chan os.Signal) error {
	fs := newFlagSet("load")
	conns := fs.Int("c", 16, "connections")
	dur := fs.Duration("d", 10*time.Second, "duration")
	pipeline := fs.Int("pipeline", 1, "requests in flight per connection")
	loops := fs.Int("loops", 1, "client event loops")
	rate := fs.Float64("R", 0, "requests per second over all connections (0: as fast as possible)")
	method := fs.String("m", "", "request method (default GET, or POST with -body)")
	var headers headerFlags
	fs.Var(&headers, "H", "a header field 'Name: value' (repeatable, sent in order)")
	body := fs.String("body", "", "request body; @file reads a file")
	timeout := fs.Duration("timeout", 5*time.Second, "a request that sees no data for this long fails (timeout)")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	quiet := fs.Bool("quiet", false, "no progress line")
	tf := addClientTLSFlags(fs)
	pos, err := parseArgs(fs, args, loadSynopsis, loadAbout, out)
	if err != nil {
		return err
	}
	switch {
	case len(pos) != 1:
		return usagef(fs, "want one URL, got %d arguments", len(pos))
	case *conns < 1:
		return usagef(fs, "-c %d: want at least 1", *conns)
	case *pipeline < 1:
		return usagef(fs, "-pipeline %d: want at least 1", *pipeline)
	case *loops < 1:
		return usagef(fs, "-loops %d: want at least 1", *loops)
	case *dur <= 0:
		return usagef(fs, "-d %v: want a positive duration", *dur)
	case *rate < 0:
		return usagef(fs, "-R %v: want 0 or more", *rate)
	case *timeout <= 0:
		return usagef(fs, "-timeout %v: want a positive duration", *timeout)
	}
	cfg := &loadConfig{conns: *conns, depth: *pipeline, loops: *loops, dur: *dur, rate: *rate, timeout: *timeout}
	if cfg.target, err = parseTarget(pos[0]); err != nil {
		return usagef(fs, "%v", err)
	}
	if cfg.target.https {
		o, err := tf.options(fs)
		if err != nil {
			return err
		}
		cfg.tls = clientConfig(o, cfg.target.addr)
	}
	if cfg.body, err = readBody(*body, nil); err != nil {
		return usagef(fs, "-body %s: %v", *body, err)
	}
	cfg.method = methodFor(*method, *body != "")
	if err := codec.ValidRequestLine(cfg.method, cfg.target.path); err != nil {
		return usagef(fs, "-m %q: %v", cfg.method, err)
	}
	if cfg.headers, err = parseFields(headers); err != nil {
		return usagef(fs, "%v", err)
	}
	for _, h := range cfg.headers {
		cfg.hostSet = cfg.hostSet || strings.EqualFold(h.name, "host")
		cfg.closeEach = cfg.closeEach || strings.EqualFold(h.name, "connection") && hasToken(h.value, "close")
	}
	progress := errOut
	if *quiet {
		progress = io.Discard
	}
	res, err := runLoad(cfg, progress, interrupt)
	if err != nil {
		return err
	}
	if *asJSON {
		err = res.writeJSON(out)
	} else {
		err = res.print(out)
	}
	if err == nil && res.requests == 0 {
		err = errors.New("no response in the whole run")
	}
	return err
}

// methodFor is the method of a request: the one given, else GET, or POST
// with a body.
func methodFor(method string, hasBody bool) string {
	switch {
	case method != "":
		return method
	case hasBody:
		return "POST"
	}
	return "GET"
}

// parseFields turns -H values into fields, in order.
func parseFields(hs []string) ([]field, error) {
	out := make([]field, 0, len(hs))
	for _, h := range hs {
		name, value, ok := strings.Cut(h, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok {
			return nil, fmt.Errorf("-H %q: want 'Name: value'", h)
		}
		if err := codec.ValidHeader(name, value); err != nil {
			return nil, fmt.Errorf("-H %q: %v", h, err)
		}
		out = append(out, field{name, value})
	}
	return out, nil
}

// hasToken reports whether the comma-separated list v holds token
// (compared without regard to case).
func hasToken(v, token string) bool {
	for _, t := range strings.Split(v, ",") {
		if strings.EqualFold(strings.TrimSpace(t), token) {
			return true
		}
	}
	return false
}

// loadTarget is where load sends its requests.
type loadTarget struct {
	addr, host, path string
	https            bool
}

// url is the target as a URL, for the summary.
func (t loadTarget) url() string {
	scheme := "http://"
	if t.https {
		scheme = "https://"
	}
	return scheme + t.host + t.path
}

func parseTarget(raw string) (loadTarget, error) {
	// The target is kept as written, as get (api.RequestURL) and curl
	// send it; the authority alone goes through net/url (IP literals,
	// ports).
	https := len(raw) > 8 && strings.EqualFold(raw[:8], "https://")
	split := raw
	if https {
		split = "http://" + raw[8:]
	}
	authority, target, ok := codec.SplitURL(split)
	if !ok {
		return loadTarget{}, fmt.Errorf("URL %q: only http:// and https:// URLs", raw)
	}
	u, err := url.Parse("http://" + authority)
	if err != nil {
		return loadTarget{}, err
	}
	if u.Hostname() == "" {
		return loadTarget{}, fmt.Errorf("URL %q: no host", raw)
	}
	port := u.Port()
	switch {
	case port != "":
	case https:
		port = "443"
	default:
		port = "80"
	}
	return loadTarget{addr: net.JoinHostPort(u.Hostname(), port), host: u.Host, path: target, https: https}, nil
}

// loadRun is one run's shared state. The counters are updated from the
// loops and read from any goroutine.
type loadRun struct {
	cfg      *loadConfig
	cl       *poller.Client
	interval int64 // -R: ns between two requests of one connection; 0 without -R
	start    time.Time
	stop     atomic.Bool    // no new request from now on
	active   sync.WaitGroup // loaders whose part is not over
	inFlight atomic.Int64   // requests sent and not yet answered or lost

	hist      histogram
	responses atomic.Int64
	bytes     atomic.Int64
	last      atomic.Int64              // UnixNano of the last response
	status    [600]atomic.Int64         // responses by status code
	errs      [numErrKinds]atomic.Int64 // failures by kind
}

// recordResponse counts a complete response. Any goroutine.
func (r *loadRun) recordResponse(status int, bytes, now int64) {
	r.responses.Add(1)
	r.bytes.Add(bytes)
	if status >= 0 && status < len(r.status) {
		r.status[status].Add(1)
	}
	r.last.Store(now) // responses of different loops may land out of order: close enough for a rate
}

// countError counts a failure. Any goroutine.
func (r *loadRun) countError(k errKind) { r.errs[k].Add(1) }

// endGrace is how long a run waits after its end for the responses in
// flight beyond the request timeout (which ends each of them anyway).
const endGrace = time.Second

// runLoad runs cfg, printing progress each second, until its duration
// passes or interrupt fires. At the end the requests in flight get up to
// the request timeout to complete; on an interrupt the summary is taken at
// once.
func runLoad(cfg *loadConfig, progress io.Writer, interrupt <-chan os.Signal) (*loadResult, error) {
	// A connect that fails before the run fails the run: a wrong port
	// should be an error, not a run of connect failures.
	probe, err := net.DialTimeout("tcp", cfg.target.addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	probe.Close()
	r := &loadRun{cfg: cfg}
	if cfg.rate > 0 {
		r.interval = int64(float64(cfg.conns) * float64(time.Second) / cfg.rate)
	}
	r.cl, err = poller.NewClient(poller.ClientConfig{Loops: cfg.loops, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, r)
	if err != nil {
		return nil, err
	}
	defer r.cl.Close()
	r.start = time.Now()
	r.active.Add(cfg.conns)
	for i := range cfg.conns {
		// With -R the connections take turns: connection i's first
		// request is meant for i/conns of an interval after the start.
		l := &loader{r: r, next: r.start.UnixNano() + r.interval*int64(i)/int64(cfg.conns)}
		r.dial(l)
	}
	interrupted := r.wait(progress, interrupt)
	r.stop.Store(true)
	if !interrupted {
		r.settle()
	}
	fmt.Fprintln(progress)
	return r.result(interrupted), nil
}

// wait prints progress each second until the run's end; it reports
// whether interrupt cut it short.
func (r *loadRun) wait(progress io.Writer, interrupt <-chan os.Signal) bool {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	end := time.NewTimer(r.cfg.dur)
	defer end.Stop()
	for {
		select {
		case <-tick.C:
			secs := time.Since(r.start).Seconds()
			n := r.responses.Load()
			fmt.Fprintf(progress, "\r%3.0fs  %d responses  %.0f/s  %d errors   ", secs, n, float64(n)/secs, r.errors())
		case <-end.C:
			return false
		case <-interrupt:
			return true
		}
	}
}

// settle waits until the requests in flight at the end have completed or
// failed (each fails at the latest at its timeout): until every loader
// has finished, or none has a request in flight (a loader waiting for its
// next -R slot finishes only then). The grace bounds the wait in any case.
func (r *loadRun) settle() {
	done := make(chan struct{})
	go func() { r.active.Wait(); close(done) }()
	deadline := time.NewTimer(r.cfg.timeout + endGrace)
	defer deadline.Stop()
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case <-done:
			return
		case <-deadline.C:
			return
		case <-poll.C:
			if r.inFlight.Load() == 0 {
				return
			}
		}
	}
}

func (r *loadRun) errors() int64 {
	var n int64
	for i := range r.errs {
		n += r.errs[i].Load()
	}
	return n
}
