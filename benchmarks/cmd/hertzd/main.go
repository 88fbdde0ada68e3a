// Command hertzd is CloudWeGo Hertz's side of the end-to-end benchmarks:
// a Hertz server on its netpoll transport (netpoll's event loops, the
// transport Hertz's own benchmark servers use and its default on Linux)
// whose handler answers every request with 200, Content-Type text/plain
// and "Hello, World!", on a keep-alive connection. It is set up as Hertz's
// benchmark servers are: server.New (no default middleware), the netpoll
// transport, an idle timeout longer than any run; and it sends no Server
// header, so its response has the same fields as loophttp's (Content-Type,
// Content-Length, Date). netpoll sizes its event loops from GOMAXPROCS (one
// core when pinned with taskset, so one loop).
//
// With -addr 127.0.0.1:0 the kernel picks the port; the first line printed
// is "hertzd listening on HOST:PORT".
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/app/server"
	"github.com/cloudwego/hertz/pkg/common/config"
	"github.com/cloudwego/hertz/pkg/common/hlog"
	"github.com/cloudwego/hertz/pkg/network/netpoll"
)

var body = []byte("Hello, World!")

func handle(_ context.Context, c *app.RequestContext) {
	c.Data(200, "text/plain", body)
}

// noServerHeader leaves out the Server field, which Hertz has no With
// option for.
var noServerHeader = config.Option{F: func(o *config.Options) { o.NoDefaultServerHeader = true }}

// start listens on addr and serves in the background until the returned
// server is closed.
func start(addr string) (*server.Hertz, net.Addr, error) {
	hlog.SetLevel(hlog.LevelWarn)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	h := server.New(
		server.WithListener(ln),
		server.WithTransport(netpoll.NewTransporter),
		server.WithIdleTimeout(time.Hour),
		server.WithDisablePrintRoute(true),
		noServerHeader,
	)
	h.GET("/", handle)
	go func() { _ = h.Run() }()
	return h, ln.Addr(), nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address (port 0: the kernel picks one)")
	flag.Parse()
	h, a, err := start(*addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("hertzd listening on", a)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	<-stop
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = h.Shutdown(ctx)
}
