package api

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loophttp/loophttp/engine"
	"github.com/loophttp/loophttp/internal/testcert"
	"github.com/loophttp/loophttp/poller"
)

// tlsEvents records a TLS server's 'secureConnection' and 'tlsClientError'
// events, in order, with the client certificate each secure connection
// presented ("-" for none).
type tlsEvents struct {
	mu     sync.Mutex
	events []string
	errs   []error
	got    chan struct{} // one value per event
}

func (e *tlsEvents) note(ev string, err error) {
	e.mu.Lock()
	e.events = append(e.events, ev)
	if err != nil {
		e.errs = append(e.errs, err)
	}
	e.mu.Unlock()
	e.got <- struct{}{}
}

func (e *tlsEvents) snapshot() ([]string, []error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.events...), append([]error(nil), e.errs...)
}

// wait waits for n events in all.
func (e *tlsEvents) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-e.got:
		case <-time.After(10 * time.Second):
			ev, _ := e.snapshot()
			t.Fatalf("events so far %v; want %d", ev, n)
		}
	}
}

// mutualTLSServer starts an HTTPS server with cfg whose handler answers
// with the common name of the client's certificate (or "-"), recording
// its TLS events.
func mutualTLSServer(t *testing.T, cfg *tls.Config) (string, *tlsEvents) {
	ev := &tlsEvents{got: make(chan struct{}, 64)}
	opts := quiet()
	opts.TLS = cfg
	opts.HandshakeTimeout = 300 * time.Millisecond
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		res.End([]byte(peerName(req.Socket)), nil)
	}, opts)
	srv.OnSecureConnection(func(s *Socket) {
		if !s.pc.InEvent() {
			t.Errorf("'secureConnection' off the loop")
		}
		ev.note("secure "+peerName(s), nil)
	})
	srv.OnTLSClientError(func(err error, s *Socket) {
		if s == nil || s.TLS() != nil {
			t.Errorf("'tlsClientError' socket %v, TLS state %v", s, s.TLS())
		}
		ev.note("error", err)
	})
	return listen(t, srv), ev
}

// peerName is the common name of the certificate the peer of s presented,
// "-" for none, or "no TLS state".
func peerName(s *Socket) string {
	st := s.TLS()
	switch {
	case st == nil:
		return "no TLS state"
	case len(st.PeerCertificates) == 0:
		return "-"
	}
	return st.PeerCertificates[0].Subject.CommonName
}

// clientCertServer is the test certificate, asking every client for a
// certificate signed by pool (policy).
func clientCertServer(pool *x509.CertPool, policy tls.ClientAuthType) *tls.Config {
	cfg := testcert.Server()
	cfg.ClientCAs, cfg.ClientAuth = pool, policy
	return cfg
}

// TestHTTPSClientCertificates: a server that requires client certificates
// serves a client that presents one (the api client, with its own
// certificate in TLSOptions.Config), and the handler and
// 'secureConnection' see it in Socket.TLS().PeerCertificates, over TLS 1.2
// and 1.3; a client without one fails with one error and the server hears
// 'tlsClientError'.
func TestHTTPSClientCertificates(t *testing.T) {
	clientCert, err := testcert.NewClient("client one")
	if err != nil {
		t.Fatal(err)
	}
	trusted := x509.NewCertPool()
	trusted.AddCert(clientCert.Leaf)
	addr, ev := mutualTLSServer(t, clientCertServer(trusted, tls.RequireAndVerifyClientCert))
	_, serverPool := testcert.Pair()
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cfg := &tls.Config{RootCAs: serverPool, Certificates: []tls.Certificate{clientCert}, MinVersion: v, MaxVersion: v}
		a := testAgent(t, AgentOptions{})
		o := fetchHTTPS(t, "https://"+addr+"/", RequestOptions{Agent: a, TLS: &TLSOptions{Config: cfg}}, nil)
		if len(o.errs) != 0 || o.status != 200 || string(o.body) != "client one" {
			t.Fatalf("%s with a certificate: errors %v, status %d, body %q", tls.VersionName(v), o.errs, o.status, o.body)
		}
	}
	ev.wait(t, 2)
	if got, _ := ev.snapshot(); strings.Join(got, ",") != "secure client one,secure client one" {
		t.Fatalf("events %q; want two secure connections with the client's certificate", got)
	}

	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cfg := &tls.Config{RootCAs: serverPool, MinVersion: v, MaxVersion: v}
		a := testAgent(t, AgentOptions{})
		o := fetchHTTPS(t, "https://"+addr+"/", RequestOptions{Agent: a, TLS: &TLSOptions{Config: cfg}}, nil)
		if len(o.errs) != 1 || o.closes != 1 || o.status != 0 || !strings.Contains(o.errs[0].Error(), "remote error: tls: ") {
			t.Fatalf("%s without a certificate: errors %v, closes %d, status %d; want one error that brings the server's alert", tls.VersionName(v), o.errs, o.closes, o.status)
		}
		t.Logf("%s: the client's error: %v", tls.VersionName(v), o.errs[0])
	}
	ev.wait(t, 2)
	got, errs := ev.snapshot()
	if strings.Join(got[2:], ",") != "error,error" || len(errs) != 2 {
		t.Fatalf("events %q; want two 'tlsClientError'", got)
	}
	for _, err := range errs {
		if !strings.Contains(err.Error(), "certificate") {
			t.Errorf("'tlsClientError' brought %v; want crypto/tls's certificate error", err)
		}
	}
}

// TestHTTPSOptionalClientCertificate: with a certificate only asked for,
// a client without one is served and the handler sees none.
func TestHTTPSOptionalClientCertificate(t *testing.T) {
	addr, ev := mutualTLSServer(t, clientCertServer(x509.NewCertPool(), tls.VerifyClientCertIfGiven))
	a := testAgent(t, AgentOptions{})
	o := fetchHTTPS(t, "https://"+addr+"/", RequestOptions{Agent: a, TLS: &TLSOptions{Config: testcert.Client()}}, nil)
	if len(o.errs) != 0 || o.status != 200 || string(o.body) != "-" {
		t.Fatalf("errors %v, status %d, body %q; want 200 and no certificate", o.errs, o.status, o.body)
	}
	ev.wait(t, 1)
	if got, _ := ev.snapshot(); len(got) != 1 || got[0] != "secure -" {
		t.Fatalf("events %q", got)
	}
}

// TestHTTPSSecureConnectionBeforeRequest: 'secureConnection' fires once
// per connection, after 'connection' and before the connection's first
// 'request', with the TLS state readable; a listener may destroy the
// socket there, and no request of it is served.
func TestHTTPSSecureConnectionBeforeRequest(t *testing.T) {
	opts := quiet()
	opts.TLS = testcert.Server()
	var mu sync.Mutex
	var order []string
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		note("request " + req.URL)
		res.End([]byte("ok"), nil)
	}, opts)
	srv.OnConnection(func(*Socket) { note("connection") })
	srv.OnSecureConnection(func(s *Socket) {
		note("secure " + tls.VersionName(s.TLS().Version))
		if s.TLS().ServerName == "refused.example" {
			s.Destroy()
		}
	})
	addr := listen(t, srv)
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: testcert.Client().RootCAs, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, p := range []string{"/a", "/b"} {
		if _, err := c.Write([]byte("GET " + p + " HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		readOK(t, c)
	}
	mu.Lock()
	got := strings.Join(order, ",")
	mu.Unlock()
	if got != "connection,secure TLS 1.3,request /a,request /b" {
		t.Fatalf("events %q", got)
	}

	d, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "refused.example"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, _ = d.Write([]byte("GET /c HTTP/1.1\r\nHost: x\r\n\r\n"))
	_ = d.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := d.Read(make([]byte, 1)); err == nil || n != 0 {
		t.Fatalf("a destroyed socket answered: %d bytes, %v", n, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(strings.Join(order, ","), "/c") {
		t.Fatalf("a request of a destroyed socket was served: %q", order)
	}
}

// readOK reads one response with a 2-byte body from c.
func readOK(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got []byte
	buf := make([]byte, 512)
	for !strings.HasSuffix(string(got), "\r\n\r\nok") {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("read %q: %v", got, err)
		}
		got = append(got, buf[:n]...)
	}
}

// TestHTTPSClientErrorKinds: what 'tlsClientError' brings for a handshake
// that times out, plain HTTP on the TLS port, and bytes that are neither;
// each connection closes after it.
func TestHTTPSClientErrorKinds(t *testing.T) {
	addr, ev := mutualTLSServer(t, testcert.Server())
	cases := []struct {
		name string
		send string
		want error
	}{
		{"a stalled handshake", "\x16\x03\x01\x00", poller.ErrHandshakeTimeout},
		{"plain HTTP", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", poller.ErrNotTLS},
		{"neither", "\x00\x01\x02\x03", poller.ErrNotTLS},
	}
	for i, tc := range cases {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte(tc.send)); err != nil {
			t.Fatal(err)
		}
		ev.wait(t, 1)
		_, errs := ev.snapshot()
		if len(errs) != i+1 || !errors.Is(errs[i], tc.want) {
			t.Fatalf("%s: 'tlsClientError' brought %v; want %v", tc.name, errs, tc.want)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil {
				break // closed: EOF, or a reset once the linger is over
			}
		}
		c.Close()
	}
	if !errors.Is(poller.ErrHandshakeTimeout, engine.ErrTimeout) || !errors.Is(poller.ErrNotTLS, engine.ErrInvalid) {
		t.Fatal("the TLS errors' kinds")
	}
}

// TestHTTPSTLSListenersPanicking: a 'secureConnection' listener that
// panics closes its connection (no request served) and a 'tlsClientError'
// one that panics changes nothing; the server serves on.
func TestHTTPSTLSListenersPanicking(t *testing.T) {
	opts := quiet()
	opts.TLS = testcert.Server()
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) { res.End([]byte("ok"), nil) }, opts)
	srv.OnSecureConnection(func(s *Socket) {
		if s.TLS().ServerName == "panic.example" {
			panic("a listener's bug")
		}
	})
	var failed atomic.Int64
	srv.OnTLSClientError(func(error, *Socket) { failed.Add(1); panic("another listener's bug") })
	addr := listen(t, srv)

	d, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "panic.example"})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = d.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	_ = d.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := d.Read(make([]byte, 1)); err == nil || n != 0 {
		t.Fatalf("the panicking listener's connection answered: %d bytes, %v", n, err)
	}
	d.Close()

	for _, send := range []string{"\x00\x01\x02", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "\x00"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte(send))
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.Copy(io.Discard, c)
		c.Close()
	}
	if failed.Load() != 3 {
		t.Fatalf("'tlsClientError' heard %d failures; want 3", failed.Load())
	}
	c, err := tls.Dial("tcp", addr, testcert.Client())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	readOK(t, c)
}

// TestHTTPSClientCertificateOption: TLSOptions.Certificates (Node's cert
// and key) presents the client's certificate; requests with different
// certificates through one agent never share a connection, so each is
// served as its own client, and requests with the same options share one.
func TestHTTPSClientCertificateOption(t *testing.T) {
	one, err := testcert.NewClient("client one")
	if err != nil {
		t.Fatal(err)
	}
	two, err := testcert.NewClient("client two")
	if err != nil {
		t.Fatal(err)
	}
	trusted := x509.NewCertPool()
	trusted.AddCert(one.Leaf)
	trusted.AddCert(two.Leaf)
	addr, ev := mutualTLSServer(t, clientCertServer(trusted, tls.RequireAndVerifyClientCert))
	_, serverPool := testcert.Pair()
	a := testAgent(t, AgentOptions{})
	asOne := &TLSOptions{RootCAs: serverPool, Certificates: []tls.Certificate{one}}
	asTwo := &TLSOptions{RootCAs: serverPool, Certificates: []tls.Certificate{two}}
	for i, c := range []struct {
		opts *TLSOptions
		want string
	}{{asOne, "client one"}, {asTwo, "client two"}, {asOne, "client one"}, {asTwo, "client two"}} {
		o := fetchHTTPS(t, "https://"+addr+"/", RequestOptions{Agent: a, TLS: c.opts}, nil)
		if len(o.errs) != 0 || o.status != 200 || string(o.body) != c.want {
			t.Fatalf("request %d: errors %v, status %d, body %q; want %q", i, o.errs, o.status, o.body, c.want)
		}
	}
	ev.wait(t, 2)
	if got, _ := ev.snapshot(); strings.Join(got, ",") != "secure client one,secure client two" {
		t.Fatalf("connections %q; want one per certificate, kept alive", got)
	}
}
