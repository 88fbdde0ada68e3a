// Command nethttpd is net/http's side of the end-to-end benchmarks: every
// request gets 200 with Content-Type text/plain and "Hello, World!", on a
// keep-alive connection, from a plain http.Server with its defaults
// (net/http adds Content-Length and Date). GOMAXPROCS is whatever the
// environment gives (one core when pinned with taskset).
//
// With -addr 127.0.0.1:0 the kernel picks the port; the first line printed
// is "nethttpd listening on HOST:PORT".
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
)

var (
	body        = []byte("Hello, World!")
	contentType = []string{"text/plain"}
)

func handle(w http.ResponseWriter, _ *http.Request) {
	w.Header()["Content-Type"] = contentType
	_, _ = w.Write(body)
}

// start listens on addr and serves in the background until the returned
// server is shut down.
func start(addr string) (*http.Server, net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(handle)}
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
	fmt.Println("nethttpd listening on", a)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	<-stop
	_ = srv.Shutdown(context.Background())
}
