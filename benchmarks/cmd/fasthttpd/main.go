// Command fasthttpd is fasthttp's side of the end-to-end benchmarks: every
// request gets 200 with Content-Type text/plain and "Hello, World!", on a
// keep-alive connection. It is configured as fasthttp's entry in the
// TechEmpower benchmarks is (DisableHeaderNamesNormalizing; ReduceMemoryUsage,
// which trades speed for memory, stays off; one process, as prefork gains
// nothing on the one core the server is pinned to), except that it sends no
// Server header, so its response has the same fields as loophttp's
// (Content-Type, Content-Length, Date). GOMAXPROCS is whatever the
// environment gives (one core when pinned with taskset).
//
// With -addr 127.0.0.1:0 the kernel picks the port; the first line printed
// is "fasthttpd listening on HOST:PORT".
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"

	"github.com/valyala/fasthttp"
)

var body = []byte("Hello, World!")

func handle(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain")
	ctx.SetBody(body)
}

// start listens on addr and serves in the background until the returned
// server is shut down.
func start(addr string) (*fasthttp.Server, net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	srv := &fasthttp.Server{
		Handler:                       handle,
		NoDefaultServerHeader:         true,
		DisableHeaderNamesNormalizing: true,
	}
	go func() { _ = srv.Serve(ln) }()
	return srv, ln.Addr(), nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address (port 0: the kernel picks one)")
	flag.Parse()
	srv, a, err := start(*addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("fasthttpd listening on", a)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	<-stop
	_ = srv.Shutdown()
}
