// Command plaintext serves loophttp's trivial plaintext handler on the
// engine and poller layers (no api layer): every request gets
// "Hello, World!" as text/plain. It is the loophttp side of the end-to-end
// benchmarks against the ceiling server.
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
	loops := flag.Int("loops", 1, "event loops")
	pin := flag.Bool("pin", false, "pin each loop to a CPU")
	profile := flag.String("cpuprofile", "", "write a CPU profile to this file until interrupted")
	useAPI := flag.Bool("api", false, "serve through the Node-style api layer instead of the engine directly")
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
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	if *useAPI {
		serveAPI(*addr, *loops, *pin, stop)
		return
	}
	srv, err := poller.Start(poller.Config{Addr: *addr, Loops: *loops, PinCPU: *pin}, plaintext{}, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("plaintext listening on", srv.Addr())
	<-stop
	_ = srv.Shutdown(context.Background())
}

// serveAPI serves the same answer through api.CreateServer.
func serveAPI(addr string, loops int, pin bool, stop chan os.Signal) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		log.Fatal(err)
	}
	port, _ := strconv.Atoi(portStr)
	srv := api.CreateServer(func(req *api.IncomingMessage, res *api.ServerResponse) {
		_ = res.SetHeader("Content-Type", "text/plain")
		_ = res.End(body, nil)
	}, &api.Options{Loops: loops, PinCPU: pin})
	if err := srv.Listen(port, host, 0, nil); err != nil {
		log.Fatal(err)
	}
	a := srv.Address()
	fmt.Println("plaintext (api) listening on", net.JoinHostPort(a.Address, strconv.Itoa(a.Port)))
	<-stop
	done := make(chan error)
	srv.Close(func(err error) { done <- err })
	<-done
}
