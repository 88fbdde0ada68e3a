package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// processRSS returns this process's resident set size in KiB.
func processRSS(t *testing.T) int64 {
	t.Helper()
	n := procStatusKiB("/proc/self/status", "VmRSS:")
	if n == 0 {
		t.Skip("no VmRSS in /proc/self/status")
	}
	return n
}

// TestDemoNonReadersAreBounded: eight clients ask /bytes/104857600 and one
// /stream/100000000 and never read; the demo writes while Write reports
// room and waits for 'drain', and the server stops reading them, so the
// process's RSS grows by well under 64 MiB, and a healthy client is
// answered promptly meanwhile. (Before, 8 such clients cost 1.5 GiB.)
func TestDemoNonReadersAreBounded(t *testing.T) {
	base := startTest(t)
	addr := strings.TrimPrefix(base, "http://")
	before := processRSS(t)
	targets := []string{"/stream/100000000"}
	for i := 0; i < 8; i++ {
		targets = append(targets, "/bytes/104857600")
	}
	for _, target := range targets {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", target)
	}
	healthy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer healthy.Close()
	r := bufio.NewReader(healthy)
	var slowest time.Duration
	peak := before
	for i := 0; i < 50; i++ {
		start := time.Now()
		fmt.Fprintf(healthy, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		healthy.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		slowest = max(slowest, time.Since(start))
		peak = max(peak, processRSS(t))
		time.Sleep(20 * time.Millisecond) // spread the samples over a second
	}
	t.Logf("9 clients not reading ~100 MB each: RSS %d KiB before, peak %d KiB; slowest healthy answer %v", before, peak, slowest)
	if peak-before > 64<<10 {
		t.Errorf("RSS grew by %d MiB; want under 64 MiB", (peak-before)>>10)
	}
	if slowest > time.Second {
		t.Errorf("a healthy request waited %v", slowest)
	}
}
