package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// serveProc is a loophttp serve process of a rolling restart.
type serveProc struct {
	cmd *exec.Cmd
	out *bufio.Reader
}

// startReuseport starts serve -reuseport on port and returns once it
// listens.
func startReuseport(t *testing.T, port string) *serveProc {
	t.Helper()
	cmd := command("serve", "-reuseport", "-addr", "127.0.0.1:"+port, "-quiet", "-loops", "2", "-grace", "10s")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	p := &serveProc{cmd: cmd, out: bufio.NewReader(stdout)}
	if line, err := p.out.ReadString('\n'); err != nil || !strings.HasPrefix(line, "loophttp listening on") {
		t.Fatalf("serve -reuseport: %q, %v", line, err)
	}
	return p
}

// stop sends SIGTERM and returns serve's output and how long it took to
// exit; it fails the test unless the exit status is 0.
func (p *serveProc) stop(t *testing.T) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(p.out) // until it exits
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("old serve: %v; want exit 0 (output %q)", err, rest)
	}
	return strings.TrimSpace(string(rest)), time.Since(start)
}

// TestRollingRestart restarts loophttp serve on one port without
// downtime, under continuous load from loophttp load (8 keep-alive
// connections): each round starts a new serve -reuseport on the port,
// then stops the old one with SIGTERM; it drains (its last responses say
// Connection: close, and load reconnects, to the new one). Not one request
// may fail. 3 restarts; LOOPHTTP_FULL=1 runs 10.
func TestRollingRestart(t *testing.T) {
	restarts := 3
	if os.Getenv("LOOPHTTP_FULL") == "1" {
		restarts = 10
	}
	port := freePort(t) // all the processes bind it
	old := startReuseport(t, port)
	url := "http://127.0.0.1:" + port + "/"
	ld := command("load", "-c", "8", "-d", "1h", "-json", "-quiet", url)
	var loadOut, loadErr bytes.Buffer
	ld.Stdout, ld.Stderr = &loadOut, &loadErr
	if err := ld.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ld.Process.Kill(); _ = ld.Wait() })
	// Load runs against the first process before the first restart: wait
	// for it to have connected, from the server's side.
	waitServed(t, url)
	start := time.Now()
	var stops []string
	for i := 0; i < restarts; i++ {
		time.Sleep(300 * time.Millisecond) // the load runs on the current process a while: pacing, not synchronisation
		next := startReuseport(t, port)
		out, took := old.stop(t)
		stops = append(stops, took.Round(time.Millisecond).String())
		if !strings.Contains(out, "stopped in ") {
			t.Fatalf("restart %d: old serve said %q", i+1, out)
		}
		old = next
	}
	elapsed := time.Since(start)
	if err := ld.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := ld.Wait(); err != nil {
		t.Fatalf("load: %v: %s", err, loadErr.String())
	}
	var sum struct {
		Responses int64            `json:"responses"`
		Errors    map[string]int64 `json:"errors"`
		Non2xx    int64            `json:"non_2xx"`
	}
	if err := json.Unmarshal(loadOut.Bytes(), &sum); err != nil {
		t.Fatalf("load's summary %q: %v", loadOut.String(), err)
	}
	var failed int64
	for _, n := range sum.Errors {
		failed += n
	}
	t.Logf("rolling restart: %d restarts in %v under load -c 8: %d responses, %d failed requests %v, %d non-2xx; old process exit 0 after SIGTERM in %s",
		restarts, elapsed.Round(time.Millisecond), sum.Responses, failed, sum.Errors, sum.Non2xx, strings.Join(stops, ", "))
	if failed != 0 || sum.Non2xx != 0 || sum.Responses == 0 {
		t.Fatalf("errors %v, non-2xx %d, responses %d; want no failure", sum.Errors, sum.Non2xx, sum.Responses)
	}
	old.stop(t)
}

// waitServed returns once a request to url has been answered.
func waitServed(t *testing.T, url string) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if b, err := io.ReadAll(c); err != nil || !bytes.HasPrefix(b, []byte("HTTP/1.1 200")) {
		t.Fatalf("%q, %v", b, err)
	}
}
