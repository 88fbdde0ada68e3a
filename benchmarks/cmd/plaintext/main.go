// Command plaintext serves loophttp's trivial plaintext handler on the
// engine and poller layers (no api layer): every request gets
// "Hello, World!" as text/plain. It is the loophttp side of the end-to-end
// benchmarks against the ceiling server. With -api it serves the same answer
// through the api layer instead, as the README's server does; with -api
// -loops 0 it passes nil options to api.CreateServer, exactly the README's
// server.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"

	"github.com/loophttp/loophttp/api"
	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/engine"
	"github.com/loophttp/loophttp/poller"
)

var (
	body   = []byte("Hello, World!")
	fields = []codec.Header{{Name: []byte("Content-Type"), Value: []byte("text/plain")}}
)

type plaintext struct{}

func (plaintext) Request(s *engine.Stream, req *codec.Request) {}
func (plaintext) Body(s *engine.Stream, chunk []byte)          {}
func (plaintext) End(s *engine.Stream, _ []codec.Header) {
	_ = s.SetHead(200, "", fields)
	_ = s.End(body)
}
func (plaintext) Drain(s *engine.Stream)            {}
func (plaintext) Close(s *engine.Stream, err error) {}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	loops := flag.Int("loops", 1, "event loops (with -api, 0 serves with the api's default options)")
	pin := flag.Bool("pin", false, "pin each loop to a CPU")
	profile := flag.String("cpuprofile", "", "write a CPU profile to this file until interrupted")
	useAPI := flag.Bool("api", false, "serve through the Node-style api layer instead of the engine directly")
	reuse := flag.Bool("reuse", false, "with -api, set Options.ReuseMessages (as loophttp serve does)")
	flag.Parse()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	start := startEngine
	if *useAPI {
		start = startAPI
	}
	if *reuse {
		reuseMessages = true
	}
	shutdown, a, err := start(*addr, *loops, *pin)
	if err != nil {
		log.Fatal(err)
	}
	name := "plaintext"
	if *useAPI {
		name = "plaintext (api)"
	}
	fmt.Println(name, "listening on", a)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	<-stop
	shutdown()
}

// startEngine serves the answer at the engine level; the returned function
// shuts the server down.
func startEngine(addr string, loops int, pin bool) (func(), string, error) {
	srv, err := poller.Start(poller.Config{Addr: addr, Loops: loops, PinCPU: pin}, plaintext{}, nil)
	if err != nil {
		return nil, "", err
	}
	return func() { _ = srv.Shutdown(context.Background()) }, srv.Addr().String(), nil
}

// reuseMessages is the -reuse flag, for startAPI.
var reuseMessages bool

// startAPI serves the same answer through api.CreateServer; the returned
// function closes the server and waits until it has.
func startAPI(addr string, loops int, pin bool) (func(), string, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, "", err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, "", err
	}
	// With -loops 0 and no -pin: nil, the default options, as in the
	// README's server (the default loop count is GOMAXPROCS).
	var opts *api.Options
	if loops != 0 || pin || reuseMessages {
		opts = &api.Options{Loops: loops, PinCPU: pin, ReuseMessages: reuseMessages}
	}
	srv := api.CreateServer(func(req *api.IncomingMessage, res *api.ServerResponse) {
		_ = res.SetHeader("Content-Type", "text/plain")
		_ = res.End(body, nil)
	}, opts)
	if err := srv.Listen(port, host, 0, nil); err != nil {
		return nil, "", err
	}
	a := srv.Address()
	return func() {
		done := make(chan error, 1)
		srv.Close(func(err error) { done <- err })
		<-done
	}, net.JoinHostPort(a.Address, strconv.Itoa(a.Port)), nil
}
