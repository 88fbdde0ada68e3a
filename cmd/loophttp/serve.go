package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/loophttp/loophttp/api"
	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/engine"
)

const serveSynopsis = "usage: loophttp serve [flags]"

const serveAbout = `Serves the demo application until SIGTERM or SIGINT (Ctrl-C), then stops
gracefully: the listening socket closes at once, idle connections close,
requests in progress are answered with Connection: close, for -grace at most;
a second signal, or the end of -grace, cuts what is left. Exit status 0 when
nothing was cut, 1 when something was.
Endpoints: / (text), /json, /anything (the request as JSON), /echo,
/status/{code}, /bytes/{n}, /stream/{n} (chunked lines), /delay/{ms}.
HTTPS: -tls-cert and -tls-key (SIGHUP reloads them), or -tls-self-signed;
-tls-client-ca requires client certificates (mutual TLS).`

// serve runs the demo until SIGTERM or SIGINT, then stops gracefully
// within the grace period; a second signal cuts what is left. interrupts
// starts delivering the signals.
func serve(args []string, out io.Writer, interrupts func() <-chan os.Signal) error {
	srv, addr, f, err := startServe(args, out)
	if err != nil {
		return err
	}
	if f.certs != nil {
		defer reloadOnHUP(f.certs, out)()
	}
	stop := interrupts()
	if f.profile != "" {
		stopProfile, err := startProfile(f.profile)
		if err != nil {
			_ = srv.Shutdown(context.Background())
			return err
		}
		defer stopProfile()
	}
	fmt.Fprintln(out, "loophttp listening on "+f.scheme+"://"+addr)
	sig := <-stop
	fmt.Fprintf(out, "%v: stopping within %v (a second signal stops at once)\n", sig, f.grace)
	return stopGracefully(srv, f.grace, stop, out)
}

// stopGracefully shuts srv down within grace, or at once on a signal from
// stop, and reports whether connections had to be cut.
func stopGracefully(srv *api.Server, grace time.Duration, stop <-chan os.Signal, out io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	forced := make(chan os.Signal, 1)
	go func() {
		select {
		case sig := <-stop:
			forced <- sig
			cancel()
		case <-ctx.Done():
		}
	}()
	start := time.Now()
	err := srv.Shutdown(ctx)
	cancel()
	switch {
	case err == nil:
		fmt.Fprintf(out, "stopped in %v\n", time.Since(start).Round(time.Millisecond))
		return nil
	case len(forced) > 0:
		return fmt.Errorf("%v: stopped at once, connections still open were cut", <-forced)
	default:
		return fmt.Errorf("grace period of %v over: connections still open were cut", grace)
	}
}

// serveFlags are the serve flags startServe hands back.
type serveFlags struct {
	profile string        // -cpuprofile ("" for none)
	grace   time.Duration // -grace
	scheme  string        // "http", or "https" with a TLS flag
	certs   *certStore    // -tls-cert and -tls-key, reloaded on SIGHUP; nil without
}

// startDemo parses the serve flags and starts the demo server. It returns
// the server, its address and the -cpuprofile path ("" for none). -h
// prints the usage on out.
func startDemo(args []string, out io.Writer) (srv *api.Server, addr, profile string, err error) {
	srv, addr, f, err := startServe(args, out)
	return srv, addr, f.profile, err
}

// startServe is startDemo, with every flag serve needs after the start.
func startServe(args []string, out io.Writer) (srv *api.Server, addr string, f serveFlags, err error) {
	fs := newFlagSet("serve")
	listen := fs.String("addr", "127.0.0.1:8080", "listen address (host:port; port 0 picks one)")
	loops := fs.Int("loops", 0, "event loops (0: one per CPU)")
	pin := fs.Bool("pin", false, "pin each event loop to a CPU")
	reuseport := fs.Bool("reuseport", false, "listen with SO_REUSEPORT: a new process can bind the same port, for restarts without downtime")
	timeout := fs.Duration("timeout", api.DefaultTimeout, "idle timeout of a request in progress (0: off)")
	keepAlive := fs.Duration("keepalive", 5*time.Second, "how long an idle keep-alive connection is kept between requests (0: for ever)")
	grace := fs.Duration("grace", 10*time.Second, "on SIGTERM or SIGINT, how long requests in progress get to finish before their connections are cut")
	inspect := fs.Bool("inspect", false, "answer every request with its JSON description")
	quiet := fs.Bool("quiet", false, "log nothing")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile to this file until the server stops")
	maxBody := fs.Int64("max-body", 0, "largest request body in bytes (0: 64 MiB); over it: 413, or a close once the answer began")
	metricsAddr := fs.String("metrics", "", "serve the counters in the Prometheus text format at http://`ADDR`/metrics (host:port; off when empty)")
	accessLog := fs.Bool("log", false, "log one line per request (method, target, status, bytes, duration) to the output")
	tf := addTLSFlags(fs)
	pos, err := parseArgs(fs, args, serveSynopsis, serveAbout, out)
	if err != nil {
		return nil, "", f, err
	}
	host, port, err := checkServeFlags(fs, pos, *listen, *loops, *timeout)
	if err != nil {
		return nil, "", f, err
	}
	if *maxBody < 0 {
		return nil, "", f, &usageError{cmd: fs.Name(), msg: fmt.Sprintf("-max-body %d: want 0 (the default) or more", *maxBody)}
	}
	if *keepAlive < 0 {
		return nil, "", f, &usageError{cmd: fs.Name(), msg: fmt.Sprintf("-keepalive %v: want 0 (for ever) or more", *keepAlive)}
	}
	if *grace < 0 {
		return nil, "", f, &usageError{cmd: fs.Name(), msg: fmt.Sprintf("-grace %v: want 0 (cut at once) or more", *grace)}
	}
	opts := &api.Options{Loops: *loops, PinCPU: *pin, ReusePort: *reuseport, ReuseMessages: true, Limits: codec.Limits{MaxBodySize: *maxBody},
		KeepAliveTimeout: *keepAlive}
	if *keepAlive == 0 {
		opts.KeepAliveTimeout = engine.Disabled
	}
	f.scheme = "http"
	if opts.TLS, f.certs, err = tf.config(fs, out); err != nil {
		return nil, "", f, err
	}
	if opts.TLS != nil {
		f.scheme = "https"
	}
	if *quiet {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if *accessLog {
		opts.AccessLog = slog.New(slog.NewTextHandler(out, nil))
	}
	var metrics *metricsServer
	if *metricsAddr != "" {
		if metrics, err = listenMetrics(*metricsAddr); err != nil {
			return nil, "", f, err
		}
	}
	d := &demo{inspect: *inspect}
	srv = api.CreateServer(d.handle, opts)
	srv.SetTimeout(*timeout, nil)
	if err := srv.Listen(port, host, 0, nil); err != nil {
		if metrics != nil {
			metrics.ln.Close()
		}
		return nil, "", f, err
	}
	if metrics != nil {
		metrics.start(srv, out)
		fmt.Fprintln(out, "metrics on http://"+metrics.Addr()+"/metrics")
	}
	a := srv.Address()
	f.profile, f.grace = *cpuprofile, *grace
	return srv, net.JoinHostPort(a.Address, strconv.Itoa(a.Port)), f, nil
}

// checkServeFlags refuses arguments and values serve cannot use, and
// splits -addr.
func checkServeFlags(fs interface{ Name() string }, pos []string, listen string, loops int, timeout time.Duration) (string, int, error) {
	bad := func(format string, args ...any) error {
		return &usageError{cmd: fs.Name(), msg: fmt.Sprintf(format, args...)}
	}
	if len(pos) > 0 {
		return "", 0, bad("unexpected argument %q (serve takes flags only)", pos[0])
	}
	if loops < 0 {
		return "", 0, bad("-loops %d: want 0 (one per CPU) or more", loops)
	}
	if timeout < 0 {
		return "", 0, bad("-timeout %v: want 0 (off) or more", timeout)
	}
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, bad("-addr %q: want host:port", listen)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, bad("-addr %q: port %q is not 0..65535", listen, portStr)
	}
	return host, port, nil
}

// startProfile writes a CPU profile to path until the returned function is
// called.
func startProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
