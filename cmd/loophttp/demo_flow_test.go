package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loophttp/loophttp/api"
)

// The streaming handlers (/bytes, /stream, /echo) under backpressure:
// bodies of every size arrive whole, to a client that reads as fast as it
// can and to one that reads a small piece at each tick of a ticker, and the
// handler never hands Write much more than the client has read.

// flowDemo is the demo app on its own server, as `loophttp serve` runs it,
// counting the body bytes its handlers hand to Write.
type flowDemo struct {
	addr  string
	wrote atomic.Int64
}

func startFlowDemo(t *testing.T) *flowDemo {
	t.Helper()
	f := &flowDemo{}
	d := &demo{wrote: func(n int) { f.wrote.Add(int64(n)) }}
	srv := api.CreateServer(d.handle, &api.Options{Loops: 1, ReuseMessages: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := srv.Listen(0, "127.0.0.1", 0, nil); err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, srv)
	a := srv.Address()
	f.addr = net.JoinHostPort(a.Address, strconv.Itoa(a.Port))
	return f
}

// Sizes from nothing to 16 MiB, around the pieces (16 KiB) and the
// high-water mark (64 KiB).
var flowSizes = []int{0, 1, 16<<10 - 1, 16 << 10, 64<<10 + 1, 1<<20 + 7, 16 << 20}

// bytesBody is /bytes/n's body; streamBody is /stream/n's.
func bytesBody(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

func streamBody(n int) []byte {
	var b []byte
	for i := range n {
		b = fmt.Appendf(b, "line %d\n", i)
	}
	return b
}

// streamLines returns how many lines make a /stream body of about size
// bytes.
func streamLines(size int) int {
	n := 0
	for total := 0; total < size; n++ {
		total += len("line \n") + len(strconv.Itoa(n))
	}
	return n
}

// flowCase is one request to a streaming endpoint and the body it must
// get back.
type flowCase struct {
	name   string
	method string
	path   string
	upload []byte // the request body (echo)
	want   []byte
}

func flowCases() []flowCase {
	var cs []flowCase
	for _, n := range flowSizes {
		cs = append(cs, flowCase{name: fmt.Sprintf("bytes %d", n), method: "GET", path: fmt.Sprintf("/bytes/%d", n), want: bytesBody(n)})
		lines := streamLines(n)
		cs = append(cs, flowCase{name: fmt.Sprintf("stream %d lines", lines), method: "GET", path: fmt.Sprintf("/stream/%d", lines), want: streamBody(lines)})
		up := bytesBody(n + 3)[3:] // not the same bytes as /bytes
		cs = append(cs, flowCase{name: fmt.Sprintf("echo %d", n), method: "POST", path: "/echo", upload: up, want: up})
	}
	return cs
}

// TestDemoStreamsWholeToAFastClient: net/http reading as fast as it can.
func TestDemoStreamsWholeToAFastClient(t *testing.T) {
	f := startFlowDemo(t)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	for _, tc := range flowCases() {
		var body io.Reader
		if tc.upload != nil {
			body = bytes.NewReader(tc.upload)
		}
		req, err := http.NewRequest(tc.method, "http://"+f.addr+tc.path, body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || !bytes.Equal(h.Sum(nil), sum(tc.want)) {
			t.Fatalf("%s: status %d, %d bytes (want %d), %v", tc.name, resp.StatusCode, n, len(tc.want), err)
		}
	}
}

// TestDemoStreamsWholeToASlowClient: a raw socket with a small receive
// buffer reads the response a small piece at each tick. Every body
// arrives whole, and at every read the bytes the handler has handed to
// Write exceed what the client has read by no more than what the sockets
// and the server's marks can hold.
func TestDemoStreamsWholeToASlowClient(t *testing.T) {
	f := startFlowDemo(t)
	for _, tc := range flowCases() {
		if len(tc.want) < 64<<10 {
			continue // the fast client covers the small ones
		}
		t.Run(tc.name, func(t *testing.T) {
			slowExchange(t, f, tc)
		})
	}
}

// slowRead is how much the slow client reads at each tick, and
// slowTick how often.
const (
	slowRead = 64 << 10
	slowTick = time.Millisecond
)

func slowExchange(t *testing.T, f *flowDemo, tc flowCase) {
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tcp := c.(*net.TCPConn)
	if err := tcp.SetReadBuffer(slowRead); err != nil {
		t.Fatal(err)
	}
	head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: test\r\n", tc.method, tc.path)
	if tc.upload != nil {
		head += fmt.Sprintf("Content-Length: %d\r\n", len(tc.upload))
	}
	sent := make(chan error, 1)
	go func() { // the upload goes out while the answer is read
		_, err := c.Write(append([]byte(head+"\r\n"), tc.upload...))
		sent <- err
	}()
	start := f.wrote.Load()
	bound := inFlightBound(t)
	r := &slowReader{c: c, tick: time.NewTicker(slowTick)}
	defer r.tick.Stop()
	var most int64 // the handler's greatest lead over the client
	r.check = func() { most = max(most, f.wrote.Load()-start-r.read) }
	resp, err := http.ReadResponse(bufio.NewReaderSize(r, 4096), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(h.Sum(nil), sum(tc.want)) {
		t.Fatalf("status %d, %d bytes (want %d), %v", resp.StatusCode, n, len(tc.want), err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if most > bound {
		t.Fatalf("the handler wrote up to %d bytes ahead of the client; bound %d", most, bound)
	}
	t.Logf("the handler wrote at most %d bytes ahead of the client", most)
}

// slowReader reads at most slowRead bytes at each tick, and checks the
// handler's lead before each read.
type slowReader struct {
	c     net.Conn
	tick  *time.Ticker
	read  int64
	check func()
}

func (r *slowReader) Read(p []byte) (int, error) {
	<-r.tick.C
	r.check()
	n, err := r.c.Read(p[:min(len(p), slowRead)])
	r.read += int64(n)
	return n, err
}

// inFlightBound is how far the handler's writes may run ahead of the
// client's reads: the server's send buffer (Linux grows it up to
// tcp_wmem's maximum), the client's receive buffer (twice what was asked:
// the kernel doubles it), the engine's and the api's high-water marks
// (64 KiB each) with a piece over each, and a MiB of slack. A handler that
// ignores Write's false runs ahead by the whole body.
func inFlightBound(t *testing.T) int64 {
	wmem := int64(4 << 20)
	if b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_wmem"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 3 {
			if v, err := strconv.ParseInt(f[2], 10, 64); err == nil {
				wmem = v
			}
		}
	}
	return wmem + 2*slowRead + 2*(64<<10+pieceSize) + 1<<20
}

func sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
