package api

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loophttp/loophttp/engine"
)

// TestClientPauseInDataStopsAtOnce: a response's Pause made in its 'data'
// listener stops the body before the next chunk, although the rest of the
// response is already buffered (Node: no 'data' after pause()); Resume
// from another goroutine delivers the rest, whole.
func TestClientPauseInDataStopsAtOnce(t *testing.T) {
	const chunks = 100
	var body bytes.Buffer
	var want []byte
	for i := range chunks {
		c := fmt.Sprintf("chunk %03d;", i)
		fmt.Fprintf(&body, "%x\r\n%s\r\n", len(c), c)
		want = append(want, c...)
	}
	response := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body.String() + "0\r\n\r\n"
	host, port, _ := rawServer(t, func(c net.Conn) {
		if readHead(bufio.NewReader(c)) == nil {
			_, _ = c.Write([]byte(response)) // one write: the client reads it at once
		}
		_, _ = c.Read(make([]byte, 1)) // until the client closes
	})
	a := testAgent(t, AgentOptions{})
	var (
		mu       sync.Mutex
		got      []byte
		atPause  = -1 // 'data' events before Resume
		events   int
		resumed  bool
		paused   = make(chan *IncomingMessage, 1)
		closed   = make(chan struct{})
		failures []error
	)
	req, err := Get(RequestOptions{Host: host, Port: port, Agent: a}, func(res *IncomingMessage) {
		res.OnData(func(c []byte) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, c...)
			events++
			if events == 1 {
				res.Pause()
				paused <- res
			}
			if !resumed {
				atPause = events
			}
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	req.OnError(func(err error) { mu.Lock(); failures = append(failures, err); mu.Unlock() })
	req.OnClose(func() { close(closed) })
	var res *IncomingMessage
	select {
	case res = <-paused:
	case <-time.After(10 * time.Second):
		t.Fatal("no data")
	}
	mu.Lock()
	resumed = true
	mu.Unlock()
	res.Resume()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not close")
	}
	mu.Lock()
	defer mu.Unlock()
	if atPause != 1 {
		t.Errorf("%d 'data' events before Resume; want 1 (no data after Pause)", atPause)
	}
	if !bytes.Equal(got, want) || len(failures) != 0 || !res.Complete {
		t.Fatalf("body %q (want %d bytes), errors %v, complete %v", got, len(want), failures, res.Complete)
	}
}

// TestClientTooManyInterim: a server that sends 1xx without end fails the
// request with a clear error after engine.DefaultMaxInterim of them.
func TestClientTooManyInterim(t *testing.T) {
	host, port, _ := rawServer(t, func(c net.Conn) {
		if readHead(bufio.NewReader(c)) != nil {
			return
		}
		cont := []byte(strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 64))
		for {
			if _, err := c.Write(cont); err != nil {
				return // the client gave up
			}
		}
	})
	a := testAgent(t, AgentOptions{})
	req, err := Request(RequestOptions{Host: host, Port: port, Agent: a}, nil)
	if err != nil {
		t.Fatal(err)
	}
	infos := 0
	var failure error
	done := make(chan struct{})
	req.OnInformation(func(Information) { infos++ })
	req.OnError(func(err error) { failure = err })
	req.OnClose(func() { close(done) })
	if err := req.End(nil, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not close")
	}
	if !errors.Is(failure, engine.ErrTooManyInterim) || infos != engine.DefaultMaxInterim {
		t.Fatalf("error %v after %d interim responses; want %v after %d", failure, infos, engine.ErrTooManyInterim, engine.DefaultMaxInterim)
	}
}

// TestClientPausedDownload: a client pauses a 64 MiB download for a second
// and resumes it: the body arrives whole, and while paused the heap grows
// by less than 8 MiB (TCP flow control holds the server).
func TestClientPausedDownload(t *testing.T) {
	const size = 64 << 20
	piece := make([]byte, 64<<10)
	for i := range piece {
		piece[i] = byte(i * 7)
	}
	want := sha256.New()
	for range size / len(piece) {
		want.Write(piece)
	}
	host, port, _ := rawServer(t, func(c net.Conn) {
		if readHead(bufio.NewReader(c)) != nil {
			return
		}
		if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size); err != nil {
			return
		}
		for range size / len(piece) {
			if _, err := c.Write(piece); err != nil {
				return
			}
		}
		_, _ = c.Read(make([]byte, 1)) // until the client closes
	})
	a := testAgent(t, AgentOptions{})
	before := liveHeap()
	var grown int64
	got := sha256.New()
	var failure error
	done := make(chan struct{})
	req, err := Get(RequestOptions{Host: host, Port: port, Agent: a}, func(res *IncomingMessage) {
		res.Pause()
		time.AfterFunc(time.Second, func() {
			grown = liveHeap() - before
			res.Resume()
		})
		res.OnData(func(c []byte) { got.Write(c) })
	})
	if err != nil {
		t.Fatal(err)
	}
	req.OnError(func(err error) { failure = err })
	req.OnClose(func() { close(done) })
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the download did not end")
	}
	if failure != nil || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatalf("error %v, body whole %v", failure, bytes.Equal(got.Sum(nil), want.Sum(nil)))
	}
	if grown > 8<<20 {
		t.Fatalf("the heap grew by %d bytes while the download was paused", grown)
	}
	t.Logf("heap growth while paused: %d bytes", grown)
}
