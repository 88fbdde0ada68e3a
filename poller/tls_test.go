package poller

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

// testCert is a self-signed certificate for 127.0.0.1 and localhost, made
// once per test binary.
var testCert = sync.OnceValues(func() (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "loophttp test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
})

// serverTLS returns a server configuration with the test certificate.
func serverTLS() *tls.Config {
	cert, _ := testCert()
	return &tls.Config{Certificates: []tls.Certificate{cert}}
}

// clientTLS returns a client configuration that trusts the test
// certificate.
func clientTLS() *tls.Config {
	_, pool := testCert()
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

// TestTLSTemporaryReadErrorIsNotSticky pins what the record layer on the
// loop relies on: crypto/tls returns a Temporary net.Error from the
// transport to the caller of Read without keeping it, and a later Read,
// with the rest of the record fed, returns the data. Should a Go release
// make such errors sticky, every TLS connection would fail on its first
// partial record; this test fails first.
func TestTLSTemporaryReadErrorIsNotSticky(t *testing.T) {
	sp, cp := net.Pipe()
	defer sp.Close()
	defer cp.Close()
	layer := &tlsLayer{direct: sp, wake: make(chan struct{}, 1)}
	layer.tc = tls.Server(layer, serverTLS())
	client := tls.Client(cp, clientTLS())
	errc := make(chan error, 1)
	go func() { errc <- client.Handshake() }()
	if err := layer.tc.Handshake(); err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	// From now on the server side reads what is fed to it, as on a loop.
	layer.direct = nil
	go func() { _, _ = client.Write([]byte("hello, records")) }()
	var rec []byte
	buf := make([]byte, 4096)
	for len(rec) < 5 || len(rec) < 5+int(rec[3])<<8|int(rec[4]) {
		n, err := sp.Read(buf)
		if err != nil {
			t.Fatalf("reading the client's record: %v", err)
		}
		rec = append(rec, buf[:n]...)
	}
	plain := make([]byte, 64)
	// Fed in three parts: within the header, within the payload, the last
	// byte. crypto/tls keeps what it has taken; each part is fed once.
	parts := [][]byte{rec[:3], rec[3 : len(rec)-1], rec[len(rec)-1:]}
	for _, part := range parts[:2] {
		layer.src, layer.took = part, 0
		n, err := layer.tc.Read(plain)
		var ne net.Error
		if n != 0 || !errors.As(err, &ne) || !ne.Temporary() {
			t.Fatalf("Read with %d bytes fed: %d, %v; want 0 and a temporary error", len(part), n, err)
		}
		if layer.took != len(part) {
			t.Fatalf("crypto/tls took %d of %d bytes fed", layer.took, len(part))
		}
	}
	layer.src, layer.took = parts[2], 0
	n, err := layer.tc.Read(plain)
	if err != nil || string(plain[:n]) != "hello, records" {
		t.Fatalf("Read after the rest came: %q, %v; want the record and no error", plain[:n], err)
	}
}

// TestTLSTransportReadWaitsDuringHandshake: the handshake goroutine's
// Read blocks until the loop feeds bytes, and fails once the connection
// is gone.
func TestTLSTransportReadWaitsDuringHandshake(t *testing.T) {
	layer := &tlsLayer{shaking: true, starving: true, wake: make(chan struct{}, 1)}
	got := make(chan string, 1)
	go func() {
		b := make([]byte, 8)
		n, _ := layer.Read(b)
		got <- string(b[:n])
	}()
	select {
	case s := <-got:
		t.Fatalf("Read returned %q before anything was fed", s)
	case <-time.After(20 * time.Millisecond):
	}
	layer.feed([]byte("abc"))
	if s := <-got; s != "abc" {
		t.Fatalf("Read = %q; want abc", s)
	}
	// The loop has been told the handshake starves (the test has no loop
	// to tell: a Read that had to ask would post to a nil connection), so
	// the next Read only waits, however it races the close.
	layer.mu.Lock()
	layer.starving = true
	layer.mu.Unlock()
	errc := make(chan error, 1)
	go func() {
		_, err := layer.Read(make([]byte, 8))
		errc <- err
	}()
	layer.end()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after end: %v; want net.ErrClosed", err)
	}
}

// TestTLSPlaintextBufferGoesBack: once the engine has consumed all the
// plaintext, the connection holds no buffer.
func TestTLSPlaintextBufferGoesBack(t *testing.T) {
	l := &loop{}
	layer := &tlsLayer{c: &Conn{loop: l}}
	room := layer.room()
	if len(room) < minPlainRoom {
		t.Fatalf("room = %d bytes; want at least %d", len(room), minPlainRoom)
	}
	copy(room, "GET / HTTP/1.1\r\n\r\nGET")
	layer.plain = layer.plain[:21]
	layer.discard(18)
	if got := string(layer.input()); got != "GET" {
		t.Fatalf("input = %q; want GET", got)
	}
	layer.room() // compacts
	if got := string(layer.input()); got != "GET" || layer.poff != 0 {
		t.Fatalf("after compaction: input %q at %d; want GET at 0", got, layer.poff)
	}
	layer.discard(3)
	if layer.plain != nil || layer.input() != nil {
		t.Fatal("the plaintext buffer is kept after all was consumed")
	}
	if len(l.plainFree) != 1 {
		t.Fatalf("the loop's pool holds %d buffers; want the one given back", len(l.plainFree))
	}
	layer.room()
	if len(l.plainFree) != 0 {
		t.Fatal("the next read did not take the pooled buffer")
	}
}

// rawTLS dials the server with crypto/tls and returns the connection.
func rawTLS(t *testing.T, s *Server, cfg *tls.Config) *tls.Conn {
	t.Helper()
	if cfg == nil {
		cfg = clientTLS()
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", s.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readAllFrom reads c to its end, failing the test on anything but EOF.
func readAllFrom(t *testing.T, c net.Conn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	var b bytes.Buffer
	_, err := io.Copy(&b, c)
	if err != nil {
		t.Fatalf("reading to the end: %v (after %q)", err, b.Bytes())
	}
	return b.Bytes()
}

// TestTLSPlaintextBufferAllocs: taking and giving back the plaintext
// buffer of an event allocates nothing once the loop's pool has one. It
// runs past 42,000 cycles: bytebufferpool, used here before, calibrates
// its sizes then on the bytes used, and dropped these record-sized
// buffers from that point on, one allocation of 4 KiB or more per event.
func TestTLSPlaintextBufferAllocs(t *testing.T) {
	layer := &tlsLayer{c: &Conn{loop: &loop{}}}
	cycle := func() {
		room := layer.room()
		n := copy(room, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		layer.plain = layer.plain[:n]
		layer.discard(n)
	}
	cycle()
	if got := testing.AllocsPerRun(100_000, cycle); got != 0 {
		t.Fatalf("%v allocations per event; want 0", got)
	}
}
