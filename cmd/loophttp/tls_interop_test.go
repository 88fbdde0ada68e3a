package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loophttp/loophttp/api"
)

// HTTPS against real peers: curl, openssl s_client, Python requests and
// Node's https client against serve; the loophttp client against nginx
// with TLS and openssl s_server. The tools are real components: with
// LOOPHTTP_INTEROP=1 (set by .ci/interop-tls, which installs them) a
// missing one fails its test; otherwise it is skipped.

// tlsPeerServer starts serve with a certificate from files and returns
// its address, the server (for its counters) and the certificate file
// (the authority to trust).
func tlsPeerServer(t *testing.T) (addr string, srv *api.Server, certFile string) {
	t.Helper()
	certFile, keyFile, _ := writeCert(t, t.TempDir(), "interop")
	srv, addr, _, err := startDemo([]string{"-addr", "127.0.0.1:0", "-quiet", "-loops", "2", "-tls-cert", certFile, "-tls-key", keyFile}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, srv)
	return addr, srv, certFile
}

// sha returns the hex sha256 of b.
func sha(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }

// runTool runs a tool with stdin and returns its standard output, failing
// the test with its standard error when it fails.
func runTool(t *testing.T, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s %q: %v\nstdout: %s\nstderr: %s", name, args, err, out.Bytes(), errOut.Bytes())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s %q: no end after 60 s\nstderr: %s", name, args, errOut.Bytes())
	}
	return append(out.Bytes(), errOut.Bytes()...)
}

// TestTLSInteropCurl: curl --cacert downloads and uploads large bodies
// intact, reusing one connection for several URLs, over TLS 1.2 and 1.3.
func TestTLSInteropCurl(t *testing.T) {
	curl := findInterop(t, "curl", ".ci/interop-tls")
	addr, srv, ca := tlsPeerServer(t)
	up := bytes.Repeat([]byte("upload 0123456789\n"), 200_000) // 3.6 MB
	upFile := filepath.Join(t.TempDir(), "up")
	os.WriteFile(upFile, up, 0o600)
	for _, v := range []string{"--tlsv1.2 --tls-max 1.2", "--tlsv1.3"} {
		before := srv.Stats().TotalConns
		args := append(strings.Fields(v), "-sS", "--cacert", ca,
			"https://"+addr+"/bytes/5000000", "https://"+addr+"/bytes/1")
		out := runTool(t, nil, curl, args...)
		if len(out) != 5_000_001 {
			t.Fatalf("curl %s: %d bytes; want 5000001", v, len(out))
		}
		if n := srv.Stats().TotalConns - before; n != 1 {
			t.Fatalf("curl %s: %d connections for two URLs; want 1 (keep-alive)", v, n)
		}
		echo := runTool(t, nil, curl, append(strings.Fields(v), "-sS", "--cacert", ca, "--data-binary", "@"+upFile, "https://"+addr+"/echo")...)
		if sha(echo) != sha(up) {
			t.Fatalf("curl %s: the echoed upload differs (%d bytes of %d)", v, len(echo), len(up))
		}
	}
	// Plain HTTP to the TLS port: Go's answer.
	out := runTool(t, nil, curl, "-sS", "http://"+addr+"/")
	if string(out) != "Client sent an HTTP request to an HTTPS server.\n" {
		t.Fatalf("plain HTTP: %q", out)
	}
}

// TestTLSInteropOpenSSLClient: openssl s_client negotiates TLS 1.2 and 1.3
// with ALPN http/1.1, and resumes a session it saved.
func TestTLSInteropOpenSSLClient(t *testing.T) {
	openssl := findInterop(t, "openssl", ".ci/interop-tls")
	addr, _, ca := tlsPeerServer(t)
	sess := filepath.Join(t.TempDir(), "sess")
	req := []byte("GET /bytes/100 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	for _, c := range []struct{ flag, name string }{{"-tls1_2", "TLSv1.2"}, {"-tls1_3", "TLSv1.3"}} {
		for i, sessFlag := range []string{"-sess_out", "-sess_in"} {
			out := string(runTool(t, req, openssl, "s_client", "-connect", addr, c.flag, "-alpn", "http/1.1",
				"-CAfile", ca, "-verify_return_error", "-ign_eof", sessFlag, sess))
			for _, want := range []string{"Protocol  : " + c.name, "ALPN protocol: http/1.1", "HTTP/1.1 200 OK", "Verify return code: 0 (ok)"} {
				if !strings.Contains(out, want) {
					t.Fatalf("%s %s: no %q in:\n%s", c.name, sessFlag, want, out)
				}
			}
			if reused := strings.Contains(out, "Reused, "+c.name); reused != (i == 1) {
				t.Fatalf("%s %s: session reused %v; want %v:\n%s", c.name, sessFlag, reused, i == 1, out)
			}
		}
	}
}

// TestTLSInteropPython: Python requests, one Session: bodies down and up
// compared by sha256, and one connection for all of them.
func TestTLSInteropPython(t *testing.T) {
	python := findInterop(t, "python3", ".ci/interop-tls")
	if err := exec.Command(python, "-c", "import requests").Run(); err != nil {
		if os.Getenv("LOOPHTTP_INTEROP") != "" {
			t.Fatal("python3 has no requests module (.ci/interop-tls installs python3-requests)")
		}
		t.Skip("python3 has no requests module; .ci/interop-tls installs it")
	}
	addr, srv, ca := tlsPeerServer(t)
	script := `
import hashlib, sys, requests
base, ca = sys.argv[1], sys.argv[2]
s = requests.Session()
out = []
for n in (1, 100000, 4000000):
    r = s.get(base + "/bytes/%d" % n, verify=ca)
    out.append("%d %d %s" % (r.status_code, len(r.content), hashlib.sha256(r.content).hexdigest()))
body = bytes(range(256)) * 12000
r = s.post(base + "/echo", data=body, verify=ca)
out.append("%d %s %s" % (r.status_code, hashlib.sha256(r.content).hexdigest(), hashlib.sha256(body).hexdigest()))
print("\n".join(out))
`
	before := srv.Stats().TotalConns
	out := strings.Split(strings.TrimSpace(string(runTool(t, nil, python, "-c", script, "https://"+addr, ca))), "\n")
	for i, n := range []int{1, 100000, 4000000} {
		if want := fmt.Sprintf("200 %d %s", n, sha(bytesBody(n))); out[i] != want {
			t.Fatalf("GET /bytes/%d: %q; want %q", n, out[i], want)
		}
	}
	if f := strings.Fields(out[3]); len(f) != 3 || f[0] != "200" || f[1] != f[2] {
		t.Fatalf("POST /echo: %q", out[3])
	}
	if n := srv.Stats().TotalConns - before; n != 1 {
		t.Fatalf("%d connections for one Session; want 1", n)
	}
}

// TestTLSInteropNode: Node's https client with a keep-alive agent: bodies
// compared by sha256, the socket reused.
func TestTLSInteropNode(t *testing.T) {
	node := findInterop(t, "node", ".ci/interop-tls")
	addr, srv, ca := tlsPeerServer(t)
	script := `
const https = require('https'), fs = require('fs'), crypto = require('crypto');
const [host, port] = process.argv[1].split(':'); // with -e, the arguments start at 1
const agent = new https.Agent({keepAlive: true, ca: fs.readFileSync(process.argv[2])});
const sha = b => crypto.createHash('sha256').update(b).digest('hex');
function req(method, path, body) {
  return new Promise((resolve, reject) => {
    const r = https.request({host, port, method, path, agent, servername: 'localhost'}, res => {
      const parts = [], proto = res.socket.getProtocol(), alpn = res.socket.alpnProtocol;
      res.on('data', c => parts.push(c));
      res.on('end', () => resolve({status: res.statusCode, body: Buffer.concat(parts), reused: r.reusedSocket, proto, alpn}));
    });
    r.on('error', reject);
    r.end(body);
  });
}
(async () => {
  const out = [];
  for (const n of [1, 100000, 3000000]) {
    const r = await req('GET', '/bytes/' + n);
    out.push([r.status, r.body.length, sha(r.body), r.reused, r.proto, r.alpn].join(' '));
  }
  const body = Buffer.alloc(2500000, 'node ');
  const r = await req('POST', '/echo', body);
  out.push([r.status, sha(r.body) === sha(body), r.reused].join(' '));
  console.log(out.join('\n'));
  agent.destroy();
})().catch(e => { console.error(e); process.exit(1); });
`
	before := srv.Stats().TotalConns
	out := strings.Split(strings.TrimSpace(string(runTool(t, nil, node, "-e", script, addr, ca))), "\n")
	for i, n := range []int{1, 100000, 3000000} {
		// Node's agent offers no ALPN unless asked: alpnProtocol is false.
		if want := fmt.Sprintf("200 %d %s %v TLSv1.3 false", n, sha(bytesBody(n)), i > 0); out[i] != want {
			t.Fatalf("GET /bytes/%d: %q; want %q", n, out[i], want)
		}
	}
	if out[3] != "200 true true" {
		t.Fatalf("POST /echo: %q; want the body back on the same socket", out[3])
	}
	if n := srv.Stats().TotalConns - before; n != 1 {
		t.Fatalf("%d connections for a keep-alive agent; want 1", n)
	}
}

// apiFetch gets url with the api client through agent and returns the
// status, the body and the socket it came on.
func apiFetch(t *testing.T, agent *api.Agent, url string, roots *x509.CertPool) (int, []byte, *api.Socket) {
	t.Helper()
	type result struct {
		status int
		body   []byte
		sock   *api.Socket
		err    error
	}
	done := make(chan result, 1)
	var res result
	req, err := api.RequestURL(url, api.RequestOptions{Agent: agent, TLS: &api.TLSOptions{RootCAs: roots}}, func(m *api.IncomingMessage) {
		res.status = m.StatusCode
		m.OnData(func(c []byte) { res.body = append(res.body, c...) })
		m.OnEnd(func() { done <- res })
	})
	if err != nil {
		t.Fatal(err)
	}
	req.OnSocket(func(s *api.Socket) { res.sock = s })
	req.OnError(func(err error) { done <- result{err: err} })
	req.End(nil, nil)
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("GET %s: %v", url, r.err)
		}
		return r.status, r.body, r.sock
	case <-time.After(30 * time.Second):
		t.Fatalf("GET %s: no answer", url)
	}
	return 0, nil, nil
}

// certPool reads the PEM certificate file into a pool.
func certPool(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		t.Fatalf("%s: no certificate", file)
	}
	return p
}

// TestTLSInteropClientAgainstNginx: the loophttp client gets files from
// nginx over TLS, intact, on one kept-alive connection.
func TestTLSInteropClientAgainstNginx(t *testing.T) {
	bin := findInterop(t, "nginx", ".ci/interop-tls")
	dir := t.TempDir()
	certFile, keyFile, _ := writeCert(t, dir, "nginx")
	www := filepath.Join(dir, "www")
	os.Mkdir(www, 0o755)
	files := map[string][]byte{"small": bytesBody(100), "large": bytesBody(6 << 20)}
	for name, b := range files {
		os.WriteFile(filepath.Join(www, name), b, 0o644)
	}
	addr := runNginx(t, bin, dir, func(port string) string {
		return fmt.Sprintf(`
	server {
		listen 127.0.0.1:%s ssl;
		ssl_certificate %s;
		ssl_certificate_key %s;
		root %s;
	}`, port, certFile, keyFile, www)
	})
	agent := api.NewAgent(api.AgentOptions{Loops: 1})
	defer agent.Destroy()
	roots := certPool(t, certFile)
	var first *api.Socket
	for _, name := range []string{"small", "large", "small"} {
		status, body, sock := apiFetch(t, agent, "https://"+addr+"/"+name, roots)
		if status != 200 || sha(body) != sha(files[name]) {
			t.Fatalf("GET /%s: %d, %d bytes of %d", name, status, len(body), len(files[name]))
		}
		if first == nil {
			first = sock
			if st := sock.TLS(); st == nil || st.NegotiatedProtocol != "http/1.1" {
				t.Fatalf("TLS state %+v; want ALPN http/1.1", st)
			}
		} else if sock != first {
			t.Fatalf("GET /%s came on another connection: keep-alive not reused", name)
		}
	}
}

// TestTLSInteropClientAgainstOpenSSLServer: loophttp get against openssl
// s_server -www (its status page, HTTP/1.0), with -cacert.
func TestTLSInteropClientAgainstOpenSSLServer(t *testing.T) {
	openssl := findInterop(t, "openssl", ".ci/interop-tls")
	certFile, keyFile, _ := writeCert(t, t.TempDir(), "s_server")
	port := freePort(t)
	cmd := exec.Command(openssl, "s_server", "-accept", "127.0.0.1:"+port, "-cert", certFile, "-key", keyFile, "-www", "-quiet")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", port)
	waitListening(t, addr)
	out, err := runGet(t, "-cacert", certFile, "-i", "https://"+addr+"/")
	if err != nil || !strings.HasPrefix(out, "HTTP/1.0 200 ok") || !strings.Contains(out, "s_server") {
		t.Fatalf("get: %v\n%s", err, out)
	}
}
