// Command loophttp serves loophttp's demo application, fetches URLs, and
// generates load, all on loophttp's engine.
//
//	loophttp                 serve the demo on 127.0.0.1:8080
//	loophttp serve [flags]   the same, with -addr, -loops, -pin, -timeout, -max-body, -inspect, -quiet, -cpuprofile
//	loophttp get [flags] URL one request: the body (-i with the head, -json all of it)
//	loophttp load [flags] URL keep-alive (or pipelined) load: requests/s, latency percentiles
//
// Demo endpoints: / (text), /json, /anything (the request as JSON),
// /echo, /status/{code}, /bytes/{n}, /stream/{n} (chunked lines),
// /delay/{ms} (answered from a timer). With -inspect every request gets its
// JSON description. Ctrl-C stops gracefully.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/loophttp/loophttp/api"
	"github.com/loophttp/loophttp/codec"
)

func main() {
	args := os.Args[1:]
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(args, os.Stdout)
	case "get":
		err = get(args, os.Stdin, os.Stdout, os.Stderr)
	case "load":
		err = load(args, os.Stdout, os.Stderr)
	default:
		err = fmt.Errorf("unknown command %q (want serve, get or load)", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loophttp:", err)
		os.Exit(1)
	}
}

// serve runs the demo until an interrupt.
func serve(args []string, out io.Writer) error {
	srv, addr, profile, err := startDemo(args, out)
	if err != nil {
		return err
	}
	if profile != "" {
		stopProfile, err := startProfile(profile)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	fmt.Fprintln(out, "loophttp listening on http://"+addr)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	<-stop
	fmt.Fprintln(out, "stopping")
	done := make(chan error, 1)
	srv.Close(func(err error) { done <- err })
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		return errors.New("connections still open after 10 s")
	}
}

// startDemo parses the serve flags and starts the demo server. It returns
// the server, its address and the -cpuprofile path ("" for none).
func startDemo(args []string, out io.Writer) (srv *api.Server, addr, profile string, err error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(out)
	listen := fs.String("addr", "127.0.0.1:8080", "listen address (host:port; port 0 picks one)")
	loops := fs.Int("loops", 0, "event loops (0: one per CPU)")
	pin := fs.Bool("pin", false, "pin each event loop to a CPU")
	timeout := fs.Duration("timeout", api.DefaultTimeout, "idle timeout of a request in progress (0: off)")
	inspect := fs.Bool("inspect", false, "answer every request with its JSON description")
	quiet := fs.Bool("quiet", false, "log nothing")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile to this file until the server stops")
	maxBody := fs.Int64("max-body", 0, "largest request body in bytes (0: 64 MiB); over it: 413, or a close once the answer began")
	if err := fs.Parse(args); err != nil {
		return nil, "", "", err
	}
	host, portStr, err := net.SplitHostPort(*listen)
	if err != nil {
		return nil, "", "", err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, "", "", fmt.Errorf("port %q: %w", portStr, err)
	}
	opts := &api.Options{Loops: *loops, PinCPU: *pin, ReuseMessages: true, Limits: codec.Limits{MaxBodySize: *maxBody}}
	if *quiet {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d := &demo{inspect: *inspect}
	srv = api.CreateServer(d.handle, opts)
	srv.SetTimeout(*timeout, nil)
	if err := srv.Listen(port, host, 0, nil); err != nil {
		return nil, "", "", err
	}
	a := srv.Address()
	return srv, net.JoinHostPort(a.Address, strconv.Itoa(a.Port)), *cpuprofile, nil
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
