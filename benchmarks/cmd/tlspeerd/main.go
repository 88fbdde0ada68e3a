// Command tlspeerd is the peers' side of the HTTPS benchmark
// (benchmarks/wrk/tls.sh): fasthttp or net/http serving "Hello, World!" as
// text/plain over crypto/tls with the certificate and key given, configured
// as cmd/fasthttpd and cmd/nethttpd are for plain HTTP (fasthttp without a
// Server header and without header-name normalising, net/http as it
// comes), ALPN http/1.1 only. The loophttp side is `loophttp serve
// -tls-cert -tls-key`.
//
// With -addr 127.0.0.1:0 the kernel picks the port; the first line printed
// is "tlspeerd (IMPL) listening on HOST:PORT".
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"

	"github.com/valyala/fasthttp"
)

var (
	body        = []byte("Hello, World!")
	contentType = []string{"text/plain"}
)

func fastHandle(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain")
	ctx.SetBody(body)
}

func netHandle(w http.ResponseWriter, _ *http.Request) {
	w.Header()["Content-Type"] = contentType
	_, _ = w.Write(body)
}

// start serves impl ("fasthttp" or "nethttp") over TLS with cfg's
// certificates, offering http/1.1 by ALPN, on addr in the background; stop
// ends it.
func start(impl, addr string, cfg *tls.Config) (stop func(), a net.Addr, err error) {
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	tln := tls.NewListener(ln, cfg)
	switch impl {
	case "fasthttp":
		srv := &fasthttp.Server{Handler: fastHandle, NoDefaultServerHeader: true, DisableHeaderNamesNormalizing: true}
		go func() { _ = srv.Serve(tln) }()
		return func() { _ = srv.Shutdown() }, ln.Addr(), nil
	case "nethttp":
		srv := &http.Server{Handler: http.HandlerFunc(netHandle)}
		go func() { _ = srv.Serve(tln) }()
		return func() { _ = srv.Close() }, ln.Addr(), nil
	}
	ln.Close()
	return nil, nil, fmt.Errorf("unknown -impl %q (fasthttp or nethttp)", impl)
}

func main() {
	impl := flag.String("impl", "fasthttp", "fasthttp or nethttp")
	addr := flag.String("addr", "127.0.0.1:8443", "listen address (port 0: the kernel picks one)")
	certFile := flag.String("cert", "", "certificate file (PEM)")
	keyFile := flag.String("key", "", "key file (PEM)")
	flag.Parse()
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	stop, a, err := start(*impl, *addr, cfg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("tlspeerd (%s) listening on %s\n", *impl, a)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	<-sig
	stop()
}
