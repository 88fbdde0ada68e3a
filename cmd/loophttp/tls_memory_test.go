package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestTLSIdleMemory: the resident memory `loophttp serve` (a process of its
// own) holds per idle TLS keep-alive connection, each after a full
// handshake and one request. 2,000 connections by default, 10,000 with
// LOOPHTTP_FULL=1 (fasthttp, measured the same way, holds about 38 KiB
// each; half of it is the bound).
func TestTLSIdleMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector multiplies a process's memory")
	}
	n := 2000
	if os.Getenv("LOOPHTTP_FULL") != "" {
		n = 10000
	}
	certFile, keyFile, _ := writeCert(t, t.TempDir(), "memory")
	cmd := command("serve", "-addr", "127.0.0.1:0", "-loops", "1", "-quiet", "-keepalive", "0", "-tls-cert", certFile, "-tls-key", keyFile)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "loophttp listening on https://") {
		t.Fatalf("serve said %q, %v", line, err)
	}
	addr := strings.TrimSpace(strings.TrimPrefix(line, "loophttp listening on https://"))
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	before := procStatusKiB(status, "VmRSS:")
	if before == 0 {
		t.Skip("no VmRSS in /proc")
	}
	// The connections open 16 at a time (about 1,000 full handshakes a
	// second here); -keepalive 0 keeps them however long that takes.
	conns := make([]*tls.Conn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
				if err != nil {
					errs <- err
					return
				}
				conns[i] = c
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	opened := time.Since(start)
	after := procStatusKiB(status, "VmRSS:")
	per := float64(after-before) / float64(n)
	t.Logf("%d idle TLS connections (opened in %v): serve's RSS %d -> %d KiB, %.1f KiB per connection", n, opened.Round(time.Millisecond), before, after, per)
	if per > 19 {
		t.Errorf("%.1f KiB per idle TLS connection; want at most 19 (half of fasthttp's)", per)
	}
}
