package main

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// dripServer answers every connection's first request with a head
// announcing 1,000 bytes, then sends one byte every interval: it never
// goes quiet long enough for an idle timeout, and never finishes.
func dripServer(t *testing.T, interval time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	quit := make(chan struct{})
	t.Cleanup(func() { close(quit); ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				if _, err := readRequest(bufio.NewReader(c)); err != nil {
					return
				}
				c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"))
				tick := time.NewTicker(interval)
				defer tick.Stop()
				for {
					select {
					case <-quit:
						return
					case <-tick.C:
						if _, err := c.Write([]byte("x")); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/"
}

// TestGetMaxTime: -max-time bounds the whole exchange even when data keeps
// coming (a byte every 20 ms defeats -timeout), and exits 3.
func TestGetMaxTime(t *testing.T) {
	url := dripServer(t, 20*time.Millisecond)
	start := time.Now()
	out, errOut, status := runCLI("get", "-timeout", "200ms", "-max-time", "500ms", url)
	took := time.Since(start)
	// The body streams to stdout as it comes (as curl's does): what came
	// before the deadline is there.
	if status != 3 || strings.Trim(out, "x") != "" || !strings.Contains(errOut, "longer than 500ms (-max-time)") {
		t.Fatalf("status %d, stdout %q, stderr %q; want 3, the dripped bytes and the -max-time message", status, out, errOut)
	}
	if took < 500*time.Millisecond || took > 5*time.Second {
		t.Errorf("get took %v with -max-time 500ms", took)
	}
}

// TestGetIdleTimeout: -timeout ends a request that sees no data (exit 3).
func TestGetIdleTimeout(t *testing.T) {
	srv := &rawServer{stall: true}
	url := srv.start(t)
	_, errOut, status := runCLI("get", "-timeout", "100ms", url)
	if status != 3 || !strings.Contains(errOut, "no data for 100ms (-timeout)") {
		t.Fatalf("status %d, stderr %q", status, errOut)
	}
}

// TestGetExitFailure: a refused connect and a reset exit 1 with one line.
func TestGetExitFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String() + "/"
	ln.Close()
	reset := (&rawServer{reset: true}).start(t)
	for _, url := range []string{refused, reset} {
		out, errOut, status := runCLI("get", url)
		if status != 1 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "loophttp get: ") {
			t.Errorf("%s: status %d, stdout %q, stderr %q; want 1 and one line", url, status, out, errOut)
		}
	}
}

// TestGetOutputFile: -o writes what stdout would get to a file.
func TestGetOutputFile(t *testing.T) {
	url := startTest(t)
	file := filepath.Join(t.TempDir(), "out")
	out, errOut, status := runCLI("get", "-i", "-o", file, url+"/")
	if status != 0 || out != "" || errOut != "" {
		t.Fatalf("status %d, stdout %q, stderr %q", status, out, errOut)
	}
	b, err := os.ReadFile(file)
	if err != nil || !strings.HasPrefix(string(b), "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(string(b), "\r\n\r\nHello, World!") {
		t.Fatalf("file %q, %v", b, err)
	}
	if _, _, status := runCLI("get", "-o", filepath.Join(file, "not-a-dir"), url+"/"); status != 1 {
		t.Errorf("writing into a file as a directory: status %d; want 1", status)
	}
}

// TestGetVerbose: -v writes the request head as sent and the response
// head on stderr, curl's way; -H fields keep their order, and a name given
// twice goes out once with both values.
func TestGetVerbose(t *testing.T) {
	srv := &rawServer{}
	url := srv.start(t)
	out, errOut, status := runCLI("get", "-v", "-H", "X-B: 2", "-H", "X-A: 1", "-H", "x-b: 3", "-d", "hi", url+"p")
	if status != 0 || out != "hello" {
		t.Fatalf("status %d, stdout %q, stderr %q", status, out, errOut)
	}
	host := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/")
	sent := "POST /p HTTP/1.1\r\nHost: " + host + "\r\nX-B: 2, 3\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nhi"
	if got := srv.firstRequest(); got != sent {
		t.Fatalf("the server read\n%q\nwant\n%q", got, sent)
	}
	want := "> " + strings.ReplaceAll(strings.TrimSuffix(sent, "\r\n\r\nhi"), "\r\n", "\r\n> ") + "\r\n>\r\n" +
		"< HTTP/1.1 200 X\r\n< Content-Length: 5\r\n<\r\n"
	if errOut != want {
		t.Fatalf("-v wrote\n%q\nwant\n%q", errOut, want)
	}
}
