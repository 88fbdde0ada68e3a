package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The demo behind a real nginx reverse proxy with upstream keep-alive:
// early answers to large uploads arrive as answers, never as nginx's 502
// (which it gives when the upstream resets the connection while nginx is
// still sending the body), and large bodies pass whole. nginx is a real
// component: with LOOPHTTP_INTEROP=1 (set by .ci/interop-nginx, which
// installs it) a missing nginx fails the test; otherwise it is skipped.

// findInterop returns the path of the real component name, or skips the
// test when it is not installed; under LOOPHTTP_INTEROP=1 (set by script,
// which installs it) a missing one fails the test instead.
func findInterop(t *testing.T, name, script string) string {
	t.Helper()
	for _, p := range []string{name, "/usr/sbin/" + name} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("LOOPHTTP_INTEROP") != "" {
		t.Fatalf("%s not found (LOOPHTTP_INTEROP is set: %s installs it)", name, script)
	}
	t.Skipf("%s not installed; %s installs it and runs this test", name, script)
	return ""
}

// startNginx runs nginx in the foreground as a reverse proxy to upstream,
// with request buffering on or off, and returns its base URL.
func startNginx(t *testing.T, upstream string, buffering bool) string {
	bin := findInterop(t, "nginx", ".ci/interop-nginx")
	onOff := map[bool]string{true: "on", false: "off"}[buffering]
	return "http://" + runNginx(t, bin, t.TempDir(), func(port string) string {
		return fmt.Sprintf(`
	upstream loophttp {
		server %[1]s;
		keepalive 16;
	}
	server {
		listen 127.0.0.1:%[2]s;
		client_max_body_size 100m;
		location / {
			proxy_pass http://loophttp;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_request_buffering %[3]s;
		}
	}`, upstream, port, onOff)
	})
}

// runNginx runs nginx (bin) with its files in dir and the http block's
// servers made by servers from the port picked, until the test ends, and
// returns the address it listens on once it does. nginx's error.log is
// shown when the test failed.
func runNginx(t *testing.T, bin, dir string, servers func(port string) string) string {
	port := freePort(t)
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // the workers write temporary files in dir
	}
	conf := fmt.Sprintf(`%s
worker_processes 1;
daemon off;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 256; }
http {
	access_log off;
	client_body_temp_path %[2]s/body;
	proxy_temp_path %[2]s/proxy;
	fastcgi_temp_path %[2]s/fastcgi;
	uwsgi_temp_path %[2]s/uwsgi;
	scgi_temp_path %[2]s/scgi;
%[3]s
}
`, user, dir, servers(port))
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if log, _ := os.ReadFile(filepath.Join(dir, "error.log")); t.Failed() && len(log) > 0 {
			t.Logf("nginx error.log:\n%s", log)
		}
	})
	addr := "127.0.0.1:" + port
	waitListening(t, addr)
	return addr
}

func TestNginxInFront(t *testing.T) {
	findInterop(t, "nginx", ".ci/interop-nginx")
	srv, addr, _, err := startDemo([]string{"-addr", "127.0.0.1:0", "-quiet"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(nil) })
	upload := bytes.Repeat([]byte("u"), 3<<20)
	for _, buffering := range []bool{true, false} {
		t.Run(fmt.Sprintf("request buffering %v", buffering), func(t *testing.T) {
			base := startNginx(t, addr, buffering)
			client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			bad := 0
			for i := 0; i < 20; i++ {
				if status := postEarly(t, strings.TrimPrefix(base, "http://"), upload); status != 404 {
					bad++
					t.Errorf("try %d: status %d; want the upstream's 404", i, status)
				}
			}
			t.Logf("early answers to 3 MiB uploads through nginx: %d of 20 not the upstream's", bad)

			const n = 16 << 20
			resp, err := client.Get(fmt.Sprintf("%s/bytes/%d", base, n))
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			got, err := io.Copy(h, resp.Body)
			resp.Body.Close()
			if err != nil || got != n || resp.StatusCode != 200 {
				t.Fatalf("GET /bytes/%d through nginx: status %d, %d bytes, %v", n, resp.StatusCode, got, err)
			}
			if !strings.HasPrefix(resp.Proto, "HTTP/1") {
				t.Fatalf("proto %s", resp.Proto)
			}
		})
	}
}

// postEarly posts body to /status/404 on a raw connection, reading the
// answer while the body is still being sent (as curl does; nginx may close
// the client's connection once it has relayed an early answer), and
// returns the status.
func postEarly(t *testing.T, addr string, body []byte) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		fmt.Fprintf(c, "POST /status/404 HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", len(body))
		c.Write(body) // may fail once the answer is in: nginx closes
	}()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
