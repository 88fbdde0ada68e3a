package api

import (
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// TestSocketListenersFromAnyGoroutine: Socket.OnClose and OnError may be
// called from a worker or any goroutine (a data race before), and a
// listener added after the socket closed runs at once: 'close' always,
// 'error' with the error the connection failed with, never after a clean
// close.
func TestSocketListenersFromAnyGoroutine(t *testing.T) {
	opts := quiet()
	opts.Workers = 2
	socks := make(chan *Socket, 2)
	var closes atomic.Int64
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		req.Socket.OnClose(func() { closes.Add(1) }) // on a worker
		go req.Socket.OnError(func(error) {})        // from a goroutine
		socks <- req.Socket
		if req.URL == "/hold" {
			return // the client resets the connection
		}
		res.SetHeader("Connection", "close")
		res.End([]byte("ok"), nil)
	}, opts)
	addr := listen(t, srv)

	// A clean close: late 'close' runs, late 'error' never. (The write
	// side stays open: the server's Connection: close ends the read.)
	out, err := io.ReadAll(dialRaw(t, addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
	if err != nil || len(out) == 0 {
		t.Fatalf("answer %q, %v", out, err)
	}
	sock := <-socks
	lateClose := make(chan struct{})
	var lateErrs atomic.Int64
	waitClosed(t, sock)
	sock.OnError(func(error) { lateErrs.Add(1) })
	sock.OnClose(func() { close(lateClose) })
	select {
	case <-lateClose:
	case <-time.After(10 * time.Second):
		t.Fatal("a close listener added after the close never ran")
	}
	if closes.Load() != 1 || lateErrs.Load() != 0 {
		t.Errorf("close listeners ran %d times, late error listeners %d; want 1 and 0", closes.Load(), lateErrs.Load())
	}

	// A reset: late 'error' hears the socket's error.
	c := dialRaw(t, addr, "GET /hold HTTP/1.1\r\nHost: a\r\n\r\n")
	sock = <-socks
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	waitClosed(t, sock)
	lateErr := make(chan error, 1)
	sock.OnError(func(err error) { lateErr <- err })
	select {
	case err := <-lateErr:
		if err == nil || err == io.EOF {
			t.Errorf("late OnError heard %v; want the reset", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an error listener added after the reset never ran")
	}
}

// waitClosed waits until the socket's connection has closed, through a
// close listener.
func waitClosed(t *testing.T, s *Socket) {
	t.Helper()
	done := make(chan struct{})
	s.OnClose(func() { close(done) })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection did not close")
	}
}
