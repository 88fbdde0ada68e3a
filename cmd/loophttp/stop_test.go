package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startServeProcess runs loophttp serve with args in a process of its own
// and returns it, its address and its output so far (more follows).
func startServeProcess(t *testing.T, args ...string) (*exec.Cmd, string, *bufio.Reader) {
	t.Helper()
	cmd := command(append([]string{"serve", "-addr", "127.0.0.1:0", "-quiet", "-loops", "2"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	r := bufio.NewReader(stdout)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "loophttp listening on http://")
	if !ok {
		t.Fatalf("first line %q", line)
	}
	return cmd, addr, r
}

// keepAliveClient sends GET / on one connection, one after another, until
// a response says Connection: close or stop is closed; every request must
// get a whole response, and the close must follow the last. It returns
// the responses it got.
func keepAliveClient(addr string, stop <-chan struct{}) (int, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for n := 0; ; n++ {
		select {
		case <-stop:
			return n, nil
		default:
		}
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
			return n, fmt.Errorf("request %d: %w", n, err)
		}
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			return n, fmt.Errorf("request %d: no whole response: %w", n, err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return n, fmt.Errorf("request %d: truncated: %w", n, err)
		}
		if resp.Close {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
				return n + 1, fmt.Errorf("after Connection: close: %v; want EOF", err)
			}
			return n + 1, nil
		}
	}
}

// TestServeStopsGracefullyOnSignal: SIGTERM and SIGINT stop serve under
// load from keep-alive clients with requests in flight: every request is
// answered whole, the last on each connection with Connection: close, and
// the process exits 0 well within the grace period.
func TestServeStopsGracefullyOnSignal(t *testing.T) {
	for _, sig := range []os.Signal{syscall.SIGTERM, os.Interrupt} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd, addr, out := startServeProcess(t, "-grace", "10s")
			const clients, inflight = 4, 20
			stop := make(chan struct{})
			var wg sync.WaitGroup
			errs := make(chan error, clients+inflight)
			for i := 0; i < clients; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := keepAliveClient(addr, stop); err != nil {
						errs <- fmt.Errorf("keep-alive client: %w", err)
					}
				}()
			}
			// Requests answered 500 ms later, all sent before the signal.
			conns := make([]net.Conn, inflight)
			for i := range conns {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				io.WriteString(c, "GET /delay/500 HTTP/1.1\r\nHost: a\r\n\r\n")
				conns[i] = c
			}
			// The delayed requests have reached the server once a request
			// sent after them on each connection's loop is answered: ask.
			if _, err := http.Get("http://" + addr + "/"); err != nil {
				t.Fatal(err)
			}
			http.DefaultTransport.(*http.Transport).CloseIdleConnections()
			start := time.Now()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			for i, c := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := bufio.NewReader(c)
					c.SetReadDeadline(time.Now().Add(10 * time.Second))
					resp, err := http.ReadResponse(r, nil)
					if err == nil {
						_, err = io.Copy(io.Discard, resp.Body)
					}
					c.Close() // as a client does after Connection: close
					if err != nil {
						errs <- fmt.Errorf("delayed request %d: %w", i, err)
					} else if !resp.Close {
						errs <- fmt.Errorf("delayed request %d: answered without Connection: close", i)
					}
				}()
			}
			rest, _ := io.ReadAll(out) // until the process exits
			err := cmd.Wait()
			took := time.Since(start)
			close(stop)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if err != nil {
				t.Fatalf("serve: %v; want exit 0 (output %q)", err, rest)
			}
			if !strings.Contains(string(rest), "stopped in ") {
				t.Errorf("output %q", rest)
			}
			if took > 5*time.Second {
				t.Errorf("stopped %v after the signal; the grace period is 10 s, the slowest request 500 ms", took)
			}
			t.Logf("%v: exit 0 %v after the signal; %s", sig, took.Round(time.Millisecond), strings.TrimSpace(string(rest)))
		})
	}
}

// TestServeSecondSignalForces: a second signal cuts a request that would
// take longer, and the exit status says something was cut; so does the
// end of the grace period.
func TestServeSecondSignalForces(t *testing.T) {
	for _, tc := range []struct {
		name   string
		grace  string
		second bool
	}{{"second signal", "1m", true}, {"grace over", "300ms", false}} {
		t.Run(tc.name, func(t *testing.T) {
			cmd, addr, out := startServeProcess(t, "-grace", tc.grace)
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, "GET /delay/60000 HTTP/1.1\r\nHost: a\r\n\r\n")
			if _, err := http.Get("http://" + addr + "/"); err != nil {
				t.Fatal(err)
			}
			http.DefaultTransport.(*http.Transport).CloseIdleConnections()
			cmd.Process.Signal(syscall.SIGTERM)
			// The first signal is taken once serve says so.
			if line, err := out.ReadString('\n'); err != nil || !strings.Contains(line, "stopping") {
				t.Fatalf("after SIGTERM: %q, %v", line, err)
			}
			if tc.second {
				cmd.Process.Signal(syscall.SIGTERM)
			}
			start := time.Now()
			err = cmd.Wait()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("serve: %v; want exit status 1", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("stopped %v after the signal", d)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if b, err := io.ReadAll(c); len(b) != 0 || err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("the cut request got %q, %v; want a close", b, err)
			}
		})
	}
}
