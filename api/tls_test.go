package api

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loophttp/loophttp/internal/testcert"
)

// tlsServer starts an HTTPS server whose handler answers with what the
// socket says of its TLS ("version cipher alpn sni"), or, for POST, the
// length and sha256 of the body; it counts connections.
func tlsServer(t *testing.T) (addr string, conns *atomic.Int64) {
	conns = new(atomic.Int64)
	opts := quiet()
	opts.TLS = testcert.Server()
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		h := sha256.New()
		var n int
		req.OnData(func(c []byte) { h.Write(c); n += len(c) })
		req.OnEnd(func() {
			if req.Method == "POST" {
				res.End([]byte(fmt.Sprintf("%d %x", n, h.Sum(nil))), nil)
				return
			}
			st := req.Socket.TLS()
			if st == nil {
				res.End([]byte("no TLS state"), nil)
				return
			}
			res.End([]byte(fmt.Sprintf("%s %s %s %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), st.NegotiatedProtocol, st.ServerName)), nil)
		})
	}, opts)
	srv.OnConnection(func(*Socket) { conns.Add(1) })
	return listen(t, srv), conns
}

// TestHTTPSServerSocketTLS: a handler sees the negotiated version, cipher
// suite, ALPN protocol and SNI name through Socket.TLS, and from another
// goroutine too.
func TestHTTPSServerSocketTLS(t *testing.T) {
	addr, _ := tlsServer(t)
	_, pool := testcert.Pair()
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: v, MaxVersion: v, NextProtos: []string{"http/1.1"}}}
		resp, err := (&http.Client{Transport: tr}).Get("https://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		want := fmt.Sprintf("%s %s http/1.1 localhost", tls.VersionName(v), tls.CipherSuiteName(resp.TLS.CipherSuite))
		if string(body) != want {
			t.Fatalf("handler saw %q; want %q", body, want)
		}
	}
}

// TestHTTPSSocketTLSFromAnotherGoroutine: Socket.TLS asked off the loop
// gets the same answer.
func TestHTTPSSocketTLSFromAnotherGoroutine(t *testing.T) {
	opts := quiet()
	opts.TLS = testcert.Server()
	socks := make(chan *Socket, 1)
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		socks <- req.Socket
		go func() {
			st := req.Socket.TLS()
			if st == nil {
				res.End([]byte("none"), nil)
				return
			}
			res.End([]byte(tls.VersionName(st.Version)), nil)
		}()
	}, opts)
	tr := getsVersionName(t, listen(t, srv))
	defer tr.CloseIdleConnections()
	// Once the connection has closed, TLS answers nil at once.
	sock := <-socks
	closed := make(chan struct{})
	sock.OnClose(func() { close(closed) })
	tr.CloseIdleConnections()
	<-closed
	if st := sock.TLS(); st != nil {
		t.Fatalf("TLS after the close: %+v; want nil", st)
	}
}

// TestHTTPSClient: the api client speaks https:// to the api server: large
// bodies both ways intact, keep-alive reused (one connection for several
// requests), an https pool apart from the http one.
func TestHTTPSClient(t *testing.T) {
	addr, conns := tlsServer(t)
	_, pool := testcert.Pair()
	a := testAgent(t, AgentOptions{})
	opts := RequestOptions{Agent: a, TLS: &TLSOptions{RootCAs: pool}}
	for i := 0; i < 3; i++ {
		o := fetchHTTPS(t, "https://"+addr+"/", opts, nil)
		if len(o.errs) != 0 || o.status != 200 || !strings.HasSuffix(string(o.body), " http/1.1 ") {
			t.Fatalf("GET %d: errors %v, status %d, body %q", i, o.errs, o.status, o.body)
		}
	}
	body := bytes.Repeat([]byte("0123456789abcdef"), 256<<10) // 4 MiB
	opts.Method = "POST"
	o := fetchHTTPS(t, "https://"+addr+"/upload", opts, body)
	if want := fmt.Sprintf("%d %x", len(body), sha256.Sum256(body)); len(o.errs) != 0 || string(o.body) != want {
		t.Fatalf("POST: errors %v, body %q; want %q", o.errs, o.body, want)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("the server saw %d connections; want 1 (keep-alive)", n)
	}
}

// fetchHTTPS is fetch for a URL.
func fetchHTTPS(t *testing.T, url string, opts RequestOptions, body []byte) *outcome {
	t.Helper()
	if err := fromURL(url, &opts); err != nil {
		t.Fatal(err)
	}
	return fetch(t, opts, body)
}

// TestHTTPSClientBadCertificate: a server whose certificate the client does
// not trust fails the request with one clear error, the request's only
// one; InsecureSkipVerify accepts it.
func TestHTTPSClientBadCertificate(t *testing.T) {
	addr, _ := tlsServer(t)
	a := testAgent(t, AgentOptions{})
	o := fetchHTTPS(t, "https://"+addr+"/", RequestOptions{Agent: a}, nil)
	if len(o.errs) != 1 || o.closes != 1 || !strings.Contains(o.errs[0].Error(), "certificate") {
		t.Fatalf("errors %v, closes %d; want one certificate error", o.errs, o.closes)
	}
	t.Logf("the error: %v", o.errs[0])
	o = fetchHTTPS(t, "https://"+addr+"/", RequestOptions{Agent: a, TLS: &TLSOptions{InsecureSkipVerify: true}}, nil)
	if len(o.errs) != 0 || o.status != 200 {
		t.Fatalf("insecure: errors %v, status %d", o.errs, o.status)
	}
}

// TestHTTPSURLAndHost: https:// URLs default to port 443 and the Host
// header leaves 443 out; an unknown protocol is refused.
func TestHTTPSURLAndHost(t *testing.T) {
	var o RequestOptions
	if err := fromURL("HTTPS://example.com/a?b", &o); err != nil || o.Port != 443 || o.Protocol != "https:" || o.Path != "/a?b" {
		t.Fatalf("fromURL: %+v, %v", o, err)
	}
	a := testAgent(t, AgentOptions{})
	for _, c := range []struct {
		port int
		host string
	}{{443, "example.com"}, {80, "example.com:80"}, {8443, "example.com:8443"}} {
		r, err := Request(RequestOptions{Agent: a, Host: "example.com", Port: c.port, Protocol: "https:"}, nil)
		if err != nil || r.Host != c.host {
			t.Fatalf("port %d: Host %q, %v; want %q", c.port, r.Host, err, c.host)
		}
	}
	if _, err := Request(RequestOptions{Agent: a, Protocol: "ftp:"}, nil); err == nil {
		t.Fatal("protocol ftp: accepted")
	}
}

// TestHTTPSSocketTLSNeverWaitsForTheLoop: Socket.TLS from another goroutine
// answers while the connection's loop is busy (here, in the handler,
// waiting for that goroutine). It used to ask the loop and wait for its
// answer, which deadlocked this handler, and any two loops asking each
// other's sockets.
func TestHTTPSSocketTLSNeverWaitsForTheLoop(t *testing.T) {
	opts := quiet()
	opts.TLS = testcert.Server()
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		got := make(chan *tls.ConnectionState)
		go func() { got <- req.Socket.TLS() }()
		select {
		case st := <-got:
			if st == nil {
				res.End([]byte("none"), nil)
				return
			}
			res.End([]byte(tls.VersionName(st.Version)), nil)
		case <-time.After(5 * time.Second):
			res.End([]byte("Socket.TLS waited for the loop"), nil)
		}
	}, opts)
	tr := getsVersionName(t, listen(t, srv))
	defer tr.CloseIdleConnections()
}

// getsVersionName makes a GET over https to addr and checks that the body
// is the name of the TLS version negotiated. It returns the transport,
// whose idle connection the caller closes.
func getsVersionName(t *testing.T, addr string) *http.Transport {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: testcert.Client()}
	resp, err := (&http.Client{Transport: tr}).Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := tls.VersionName(resp.TLS.Version); string(body) != want {
		t.Fatalf("got %q; want %q", body, want)
	}
	return tr
}
