package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loophttp/loophttp/internal/testcert"
)

// writeCert writes a new certificate named cn and its key as PEM files in
// dir (replacing what is there) and returns their paths and the
// certificate.
func writeCert(t *testing.T, dir, cn string) (certFile, keyFile string, cert tls.Certificate) {
	t.Helper()
	cert, err := testcert.New(cn)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = writePair(t, dir, "", cert)
	return certFile, keyFile, cert
}

// writeClientCert is writeCert for a client certificate, in
// client.pem and client-key.pem.
func writeClientCert(t *testing.T, dir, cn string) (certFile, keyFile string) {
	t.Helper()
	cert, err := testcert.NewClient(cn)
	if err != nil {
		t.Fatal(err)
	}
	return writePair(t, dir, "client-", cert)
}

// writePair writes cert and its key as PEM files in dir, named
// <prefix>cert.pem and <prefix>key.pem.
func writePair(t *testing.T, dir, prefix string, cert tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	c, k, err := testcert.PEM(cert)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, prefix+"cert.pem"), filepath.Join(dir, prefix+"key.pem")
	// Written beside and renamed, as a certificate renewal does: a reload
	// never reads half a file.
	for _, f := range []struct {
		path string
		data []byte
	}{{certFile, c}, {keyFile, k}} {
		if err := os.WriteFile(f.path+".new", f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(f.path+".new", f.path); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

// startTLSDemo starts the demo in this process with the TLS flags args
// and returns its address and what it printed.
func startTLSDemo(t *testing.T, args ...string) (addr string, out *bytes.Buffer) {
	t.Helper()
	out = new(bytes.Buffer)
	srv, addr, _, err := startDemo(append([]string{"-addr", "127.0.0.1:0", "-quiet", "-loops", "1"}, args...), out)
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, srv)
	return addr, out
}

// peerCert returns the certificate the server at addr presents.
func peerCert(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

// TestServeSelfSigned: -tls-self-signed serves HTTPS with a certificate
// whose fingerprint it printed.
func TestServeSelfSigned(t *testing.T) {
	addr, out := startTLSDemo(t, "-tls-self-signed")
	fp := fingerprint(peerCert(t, addr))
	if !strings.Contains(out.String(), "SHA-256 fingerprint "+fp+"\n") {
		t.Fatalf("printed %q; want the fingerprint %s", out, fp)
	}
	got, err := runGet(t, "-k", "https://"+addr+"/bytes/5")
	if err != nil || len(got) != 5 {
		t.Fatalf("get -k: %q, %v", got, err)
	}
}

// TestServeTLSFlagErrors: the TLS flags refuse what they cannot use.
func TestServeTLSFlagErrors(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := writeCert(t, dir, "a")
	for _, args := range [][]string{
		{"-tls-cert", certFile},
		{"-tls-key", keyFile},
		{"-tls-self-signed", "-tls-cert", certFile, "-tls-key", keyFile},
		{"-tls-cert", filepath.Join(dir, "missing.pem"), "-tls-key", keyFile},
		{"-tls-client-ca", certFile},
		{"-tls-self-signed", "-tls-client-ca", filepath.Join(dir, "missing.pem")},
		{"-tls-self-signed", "-tls-client-ca", keyFile}, // no certificate in it
	} {
		if srv, _, _, err := startDemo(append([]string{"-addr", "127.0.0.1:0", "-quiet"}, args...), io.Discard); err == nil {
			closeOnCleanup(t, srv)
			t.Errorf("serve %q started", args)
		}
	}
}

// TestGetAndLoadHTTPS: get trusts -cacert's authorities, or any with -k,
// and fails with one line naming the certificate problem without them;
// load runs on https.
func TestGetAndLoadHTTPS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := writeCert(t, dir, "get")
	addr, _ := startTLSDemo(t, "-tls-cert", certFile, "-tls-key", keyFile)
	url := "https://" + addr + "/json"
	for _, args := range [][]string{{"-cacert", certFile, url}, {"-k", url}} {
		if got, err := runGet(t, args...); err != nil || !strings.Contains(got, "Hello, World!") {
			t.Fatalf("get %q: %q, %v", args, got, err)
		}
	}
	_, err := runGet(t, url)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("get without trust: %v; want a certificate error", err)
	}
	// 2 s: under -race on a loaded machine the two handshakes alone took
	// longer than a 300 ms run.
	var out bytes.Buffer
	if err := load([]string{"-k", "-c", "2", "-d", "2s", "-quiet", "https://" + addr + "/"}, &out, io.Discard, nil); err != nil {
		t.Fatalf("load: %v\n%s", err, out.String())
	}
	if s := out.String(); !strings.Contains(s, "status:      200: ") || !strings.Contains(s, "errors:      0\n") {
		t.Fatalf("load summary:\n%s", s)
	}
}

// TestServeAndGetClientCertificates: serve -tls-client-ca serves only
// clients whose certificate an authority in the file signed; get and load
// present one with -cert and -key, and get without one fails with one
// error naming the server's alert.
func TestServeAndGetClientCertificates(t *testing.T) {
	dir := t.TempDir()
	clientCert, clientKey := writeClientCert(t, dir, "a client")
	addr, _ := startTLSDemo(t, "-tls-self-signed", "-tls-client-ca", clientCert)
	url := "https://" + addr + "/bytes/3"
	if got, err := runGet(t, "-k", "-cert", clientCert, "-key", clientKey, url); err != nil || len(got) != 3 {
		t.Fatalf("get with a certificate: %q, %v", got, err)
	}
	_, err := runGet(t, "-k", url)
	if err == nil || !strings.Contains(err.Error(), "tls: ") {
		t.Fatalf("get without a certificate: %v; want the server's alert", err)
	}
	if _, err := runGet(t, "-k", "-cert", clientCert, url); err == nil {
		t.Fatal("get -cert without -key: no error")
	}
	var out bytes.Buffer
	if err := load([]string{"-k", "-cert", clientCert, "-key", clientKey, "-c", "2", "-d", "2s", "-quiet", "https://" + addr + "/"}, &out, io.Discard, nil); err != nil {
		t.Fatalf("load: %v\n%s", err, out.String())
	}
	if s := out.String(); !strings.Contains(s, "status:      200: ") || !strings.Contains(s, "errors:      0\n") {
		t.Fatalf("load summary:\n%s", s)
	}
}

// TestServeReloadsCertificateOnSIGHUP: serve in a process of its own; a
// SIGHUP after the files changed makes new handshakes get the new
// certificate, while a connection open across it (with a request in
// flight) goes on with the old one, uncut.
func TestServeReloadsCertificateOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, first := writeCert(t, dir, "first")
	cmd := command("serve", "-addr", "127.0.0.1:0", "-loops", "1", "-tls-cert", certFile, "-tls-key", keyFile)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	line := waitLine(t, lines, "loophttp listening on https://")
	addr := strings.TrimPrefix(line, "loophttp listening on https://")
	if got := peerCert(t, addr); !got.Equal(first.Leaf) {
		t.Fatalf("the server presents %q; want %q", got.Subject.CommonName, "first")
	}
	pool := x509.NewCertPool()
	pool.AddCert(first.Leaf)
	old, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	r := bufio.NewReader(old)
	fmt.Fprintf(old, "GET /delay/300 HTTP/1.1\r\nHost: a\r\n\r\n")

	_, _, second := writeCert(t, dir, "second")
	cmd.Process.Signal(syscall.SIGHUP)
	waitLine(t, lines, "SIGHUP: certificate reloaded, SHA-256 fingerprint "+fingerprint(second.Leaf))
	if got := peerCert(t, addr); !got.Equal(second.Leaf) {
		t.Fatalf("after SIGHUP the server presents %q; want %q", got.Subject.CommonName, "second")
	}
	// The old connection: its request in flight is answered, and it
	// serves another.
	for i, want := range []string{"/delay/300", "/bytes/3"} {
		if i > 0 {
			fmt.Fprintf(old, "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", want)
		}
		old.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := readResponse(r)
		if err != nil || resp != 200 {
			t.Fatalf("%s on the connection opened before SIGHUP: %d, %v", want, resp, err)
		}
	}
	// A reload that fails keeps the certificate in use.
	os.WriteFile(certFile, []byte("not PEM"), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	waitLine(t, lines, "the certificate in use stays")
	if got := peerCert(t, addr); !got.Equal(second.Leaf) {
		t.Fatalf("after a failed reload the server presents %q", got.Subject.CommonName)
	}
}

// waitLine returns the first line from lines that holds text.
func waitLine(t *testing.T, lines <-chan string, text string) string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the output ended before %q", text)
			}
			if strings.Contains(l, text) {
				return l
			}
		case <-timeout:
			t.Fatalf("no line %q", text)
		}
	}
}

// readResponse reads one response and its body, and returns its status.
func readResponse(r *bufio.Reader) (int, error) {
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// TestMetricsTLS: -metrics counts the TLS handshakes and the plain HTTP
// requests a TLS port turned away.
func TestMetricsTLS(t *testing.T) {
	out := new(lockedBuffer)
	srv, addr, _, err := startDemo([]string{"-addr", "127.0.0.1:0", "-quiet", "-loops", "1", "-metrics", "127.0.0.1:0", "-tls-self-signed"}, out)
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, srv)
	m := regexp.MustCompile(`metrics on (http://\S+/metrics)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no metrics address in %q", out.String())
	}
	if got, err := runGet(t, "-k", "https://"+addr+"/"); err != nil || got != "Hello, World!" {
		t.Fatalf("get -k: %q, %v", got, err)
	}
	if got, err := runGet(t, "http://"+addr+"/"); err != nil || got != "Client sent an HTTP request to an HTTPS server.\n" {
		t.Fatalf("plain get: %q, %v", got, err)
	}
	resp, err := http.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	got := parseExposition(t, string(body))
	for name, want := range map[string]float64{
		`loophttp_tls_handshakes_total{result="done"}`:   1,
		`loophttp_tls_handshakes_total{result="failed"}`: 0,
		"loophttp_tls_plain_requests_total":              1,
	} {
		if got[name] != want {
			t.Errorf("%s = %v; want %v", name, got[name], want)
		}
	}
}
