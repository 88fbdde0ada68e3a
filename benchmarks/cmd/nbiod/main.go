// Command nbiod is nbio's side of the end-to-end benchmarks: an
// nbhttp.Engine (github.com/lesismal/nbio/nbhttp) whose handler answers
// every request with 200, Content-Type text/plain and "Hello, World!", on a
// keep-alive connection. It is set up for throughput: non-blocking I/O (every
// connection on nbio's pollers, the mode nbio's own benchmark servers use),
// handlers run straight on the poller goroutine that read the request
// (Config.ServerExecutor calling the function in place, instead of the
// default hand-off to nbio's goroutine pool), and no client-side executor
// (SupportServerOnly). The handler sets Content-Length itself, as nbhttp
// would otherwise answer chunked. GOMAXPROCS is whatever the environment
// gives (one core when pinned with taskset).
//
// With -addr 127.0.0.1:0 the kernel picks the port; the first line printed
// is "nbiod listening on HOST:PORT".
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
	"time"

	"github.com/lesismal/nbio/logging"
	"github.com/lesismal/nbio/nbhttp"
)

var (
	body          = []byte("Hello, World!")
	contentType   = []string{"text/plain"}
	contentLength = []string{"13"}
)

func handle(w http.ResponseWriter, _ *http.Request) {
	// nbhttp frames a response without Content-Length as chunked.
	w.Header()["Content-Type"] = contentType
	w.Header()["Content-Length"] = contentLength
	_, _ = w.Write(body)
}

// start listens on addr and serves until the returned engine is stopped.
func start(addr string) (*nbhttp.Engine, net.Addr, error) {
	logging.SetLevel(logging.LevelError)
	var bound net.Addr
	engine := nbhttp.NewEngine(nbhttp.Config{
		Network: "tcp",
		Addrs:   []string{addr},
		Handler: http.HandlerFunc(handle),
		IOMod:   nbhttp.IOModNonBlocking,
		// Run each handler on the poller goroutine that parsed the request:
		// no hand-off, no goroutine pool. Safe here, as the handler never
		// blocks.
		ServerExecutor:    func(f func()) { f() },
		SupportServerOnly: true,
		// The default listener, recording the address the kernel gave.
		Listen: func(network, addr string) (net.Listener, error) {
			ln, err := net.Listen(network, addr)
			if err == nil {
				bound = ln.Addr()
			}
			return ln, err
		},
	})
	if err := engine.Start(); err != nil {
		return nil, nil, err
	}
	return engine, bound, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address (port 0: the kernel picks one)")
	flag.Parse()
	engine, a, err := start(*addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("nbiod listening on", a)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	<-stop
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = engine.Shutdown(ctx)
}
