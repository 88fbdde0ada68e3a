package api

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestStreamingProxyToSlowReader: a streaming proxy written with the api
// (server request → client request → upstream), as a newcomer writes one
// with Node's backpressure idiom: the upstream response is paused while the
// downstream response is over its mark and resumed on 'drain'. A body far
// larger than any buffer moves whole (sha256) to a reader that reads
// slowly, and the process's memory stays flat: TCP flow control holds the
// upstream, end to end.
func TestStreamingProxyToSlowReader(t *testing.T) {
	n := int64(64 << 20)
	rate := int64(32 << 20) // bytes a second: 2 s
	if os.Getenv("LOOPHTTP_FULL") != "" {
		n, rate = 1<<30, 64<<20
	}
	piece := make([]byte, 64<<10)
	for i := range piece {
		piece[i] = byte(i * 13)
	}
	upstream := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		var sent int64
		var pump func()
		pump = func() {
			for sent < n {
				b := piece[:min(int64(len(piece)), n-sent)]
				sent += int64(len(b))
				if !res.Write(b, nil) {
					return
				}
			}
			res.End(nil, nil)
		}
		res.OnDrain(pump)
		pump()
	}, quiet())
	uhost, uport := splitAddr(t, listen(t, upstream))
	agent := testAgent(t, AgentOptions{})

	proxy := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		up, err := Request(RequestOptions{Host: uhost, Port: uport, Path: req.URL, Agent: agent}, func(ur *IncomingMessage) {
			res.SetHeader("Content-Type", "application/octet-stream")
			res.OnDrain(ur.Resume)
			ur.OnData(func(chunk []byte) {
				if !res.Write(chunk, nil) {
					ur.Pause()
				}
			})
			ur.OnEnd(func() { res.End(nil, nil) })
		})
		if err != nil {
			res.WriteHead(502, "")
			res.End(nil, nil)
			return
		}
		up.OnError(func(error) { res.Socket().Destroy() })
		up.End(nil, nil)
	}, quiet())
	addr := listen(t, proxy)

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Minute))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}

	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	base := rssKiB(t)
	go func() {
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if r := rssKiB(t); r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	}()
	h := sha256.New()
	buf := make([]byte, 256<<10)
	var got int64
	start := time.Now()
	for {
		m, err := resp.Body.Read(buf)
		h.Write(buf[:m])
		got += int64(m)
		// A slow reader, on purpose: pace to rate.
		if ahead := time.Duration(got)*time.Second/time.Duration(rate) - time.Since(start); ahead > 0 {
			time.Sleep(ahead)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
	}
	close(stop)
	<-sampled
	want := sha256.New()
	for off := int64(0); off < n; off += int64(len(piece)) {
		want.Write(piece[:min(int64(len(piece)), n-off)])
	}
	if got != n || string(h.Sum(nil)) != string(want.Sum(nil)) {
		t.Fatalf("%d bytes (sha256 match %v); want %d", got, string(h.Sum(nil)) == string(want.Sum(nil)), n)
	}
	t.Logf("%d MiB through the proxy in %v; RSS %d KiB at the start, peak %d KiB", n>>20, time.Since(start).Round(time.Millisecond), base, peak.Load())
	if grew := peak.Load() - base; grew > 32<<10 {
		t.Errorf("RSS grew by %d KiB; want under 32 MiB", grew)
	}
}

// rssKiB returns the process's resident set size in KiB.
func rssKiB(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kb)
			return kb
		}
	}
	runtime.KeepAlive(b)
	return 0
}
