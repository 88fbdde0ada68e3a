package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Scale-out, for real: three `loophttp serve` processes behind HAProxy
// with health checks, as users who outgrow one process run them. Requests
// spread over all three; a graceful stop of one (SIGTERM) under load loses
// nothing; a rolling restart of all three loses nothing; a kill -9 loses
// at most the requests in flight on the killed one. HAProxy is a real
// component: .ci/interop-haproxy installs it and sets LOOPHTTP_INTEROP, so
// that a missing haproxy fails the test instead of skipping it (findInterop).

// waitListening waits until something accepts on addr.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond) // polling for a process to listen
	}
}

// backend is one `loophttp serve` process.
type backend struct {
	addr string
	cmd  *exec.Cmd
	done chan error
}

func startBackend(t *testing.T, addr string) *backend {
	t.Helper()
	b := &backend{addr: addr, cmd: command("serve", "-addr", addr, "-quiet", "-loops", "1"), done: make(chan error, 1)}
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.done <- b.cmd.Wait() }()
	waitListening(t, addr)
	return b
}

// stop sends sig and waits for the process to end.
func (b *backend) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	b.cmd.Process.Signal(sig)
	select {
	case err := <-b.done:
		return err
	case <-time.After(30 * time.Second):
		b.cmd.Process.Kill()
		t.Fatalf("serve on %s did not stop within 30 s of %v", b.addr, sig)
		return nil
	}
}

// startHAProxy runs haproxy in the foreground in front of servers and
// returns its address.
func startHAProxy(t *testing.T, servers []string) string {
	bin := findInterop(t, "haproxy", ".ci/interop-haproxy")
	dir := t.TempDir()
	front := "127.0.0.1:" + freePort(t)
	var lines bytes.Buffer
	for i, s := range servers {
		fmt.Fprintf(&lines, "\tserver s%d %s check\n", i+1, s)
	}
	conf := fmt.Sprintf(`global
	maxconn 2000
defaults
	mode http
	timeout connect 2s
	timeout client 30s
	timeout server 30s
	option http-keep-alive
	retries 3
	retry-on conn-failure
	option redispatch
frontend fe
	bind %s
	default_backend be
backend be
	balance roundrobin
	option httpchk GET /
	http-check expect status 200
	default-server inter 100ms fall 2 rise 1
	http-response set-header X-Server %%s
%s`, front, lines.String())
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-db", "-f", path)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy output:\n%s", out.String())
		}
	})
	waitListening(t, front)
	return front
}

// lbLoad sends requests through front from clients goroutines until stop
// is closed, and counts them by the server that answered and the failures.
type lbLoad struct {
	mu       sync.Mutex
	byServer map[string]int
	ok       atomic.Int64
	failed   atomic.Int64
	lastErr  atomic.Value
	wg       sync.WaitGroup
	stop     chan struct{}
}

func startLBLoad(front string, clients int) *lbLoad {
	l := &lbLoad{byServer: map[string]int{}, stop: make(chan struct{})}
	for i := 0; i < clients; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			tr := &http.Transport{MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				// POST: Go's client never sends it again on its own (it
				// would a GET whose connection broke), so every loss counts.
				resp, err := client.Post("http://"+front+"/delay/50", "text/plain", nil)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					l.failed.Add(1)
					l.lastErr.Store(err.Error())
					continue
				}
				l.ok.Add(1)
				l.mu.Lock()
				l.byServer[resp.Header.Get("X-Server")]++
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *lbLoad) end() (ok, failed int64, byServer map[string]int) {
	close(l.stop)
	l.wg.Wait()
	return l.ok.Load(), l.failed.Load(), l.byServer
}

func TestHAProxyScaleOut(t *testing.T) {
	findInterop(t, "haproxy", ".ci/interop-haproxy")
	var addrs []string
	backends := map[string]*backend{}
	for i := 0; i < 3; i++ {
		addr := "127.0.0.1:" + freePort(t)
		addrs = append(addrs, addr)
		backends[addr] = startBackend(t, addr)
	}
	t.Cleanup(func() {
		for _, b := range backends {
			b.cmd.Process.Kill()
		}
	})
	front := startHAProxy(t, addrs)
	const clients = 8

	// Spread, and a graceful stop of one backend under load.
	l := startLBLoad(front, clients)
	time.Sleep(500 * time.Millisecond) // load runs meanwhile
	if err := backends[addrs[0]].stop(t, syscall.SIGTERM); err != nil {
		t.Errorf("serve stopped by SIGTERM: %v; want exit 0", err)
	}
	time.Sleep(500 * time.Millisecond)
	ok, failed, by := l.end()
	t.Logf("spread and graceful stop of s1: %d answered, %d failed, by server %v", ok, failed, by)
	if by["s1"] == 0 || by["s2"] == 0 || by["s3"] == 0 {
		t.Errorf("requests did not reach all three backends: %v", by)
	}
	if failed != 0 {
		t.Errorf("%d requests failed across a graceful stop (last: %v)", failed, l.lastErr.Load())
	}

	// A rolling restart of all three under load loses nothing.
	backends[addrs[0]] = startBackend(t, addrs[0])
	l = startLBLoad(front, clients)
	for _, addr := range addrs {
		time.Sleep(300 * time.Millisecond) // load runs meanwhile; the health check sees the new one
		if err := backends[addr].stop(t, syscall.SIGTERM); err != nil {
			t.Errorf("serve on %s stopped by SIGTERM: %v; want exit 0", addr, err)
		}
		backends[addr] = startBackend(t, addr)
	}
	time.Sleep(300 * time.Millisecond)
	ok, failed, by = l.end()
	t.Logf("rolling restart of all three: %d answered, %d failed, by server %v", ok, failed, by)
	if failed != 0 {
		t.Errorf("%d requests failed across a rolling restart (last: %v)", failed, l.lastErr.Load())
	}

	// A kill -9 loses at most the requests in flight on the killed one.
	l = startLBLoad(front, clients)
	time.Sleep(300 * time.Millisecond)
	backends[addrs[1]].cmd.Process.Kill()
	<-backends[addrs[1]].done
	time.Sleep(500 * time.Millisecond)
	ok, failed, by = l.end()
	t.Logf("kill -9 of s2: %d answered, %d failed (at most the %d clients' requests in flight), by server %v", ok, failed, clients, by)
	if failed > clients {
		t.Errorf("%d requests failed when one backend was killed; want at most %d (those in flight)", failed, clients)
	}
}
