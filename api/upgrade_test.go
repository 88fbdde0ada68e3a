package api

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestUpgradeHandsOverTheSocket(t *testing.T) {
	requests := 0
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) { requests++ }, quiet())
	srv.OnUpgrade(func(req *IncomingMessage, sock *Socket, head []byte) {
		if req.Header("upgrade") != "echo" {
			t.Errorf("Upgrade %q", req.Header("upgrade"))
		}
		sock.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"))
		sock.OnData(func(chunk []byte) {
			if string(chunk) == "bye" {
				sock.End()
				return
			}
			sock.Write(append([]byte("echo:"), chunk...))
		})
	})
	addr := listen(t, srv)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhello")
	r := bufio.NewReader(c)
	head := ""
	for !strings.HasSuffix(head, "\r\n\r\n") {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("head %q: %v", head, err)
		}
		head += line
	}
	if !strings.HasPrefix(head, "HTTP/1.1 101 ") {
		t.Fatalf("head %q", head)
	}
	got := make([]byte, len("echo:hello"))
	if _, err := io.ReadFull(r, got); err != nil || string(got) != "echo:hello" {
		t.Fatalf("got %q, %v", got, err)
	}
	io.WriteString(c, "bye")
	rest, err := io.ReadAll(r)
	if err != nil || len(rest) != 0 {
		t.Fatalf("after bye: %q, %v; want a clean close", rest, err)
	}
	if requests != 0 {
		t.Fatal("the upgrade request also reached OnRequest")
	}
}

func TestConnectHandsOverTheSocket(t *testing.T) {
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) { res.End(nil, nil) }, quiet())
	srv.OnConnect(func(req *IncomingMessage, sock *Socket, head []byte) {
		if req.URL != "example.com:443" {
			t.Errorf("URL %q", req.URL)
		}
		sock.Write([]byte("HTTP/1.1 200 Connection Established\r\n\r\n"))
		sock.OnData(func(chunk []byte) { sock.Write(chunk); sock.End() })
	})
	addr := listen(t, srv)
	out := roundTripOpen(t, addr, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "tunnel bytes")
	if out != "HTTP/1.1 200 Connection Established\r\n\r\ntunnel bytes" {
		t.Fatalf("got %q", out)
	}
}

// roundTripOpen writes raw, then more once the first reply bytes arrive,
// and reads until the server closes, without half-closing (which gnet
// takes as a close).
func roundTripOpen(t *testing.T, addr, raw, more string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, raw)
	first := make([]byte, 1)
	if _, err := io.ReadFull(c, first); err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, more)
	rest, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(first) + string(rest)
}

func TestSocketErrorOnReset(t *testing.T) {
	gotErr := make(chan error, 1)
	closed := make(chan struct{})
	held := make(chan struct{})
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		req.Socket.OnError(func(err error) { gotErr <- err })
		req.Socket.OnClose(func() { close(closed) })
		close(held)
	}, quiet())
	addr := listen(t, srv)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	<-held
	c.(*net.TCPConn).SetLinger(0) // close with a reset
	c.Close()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("socket 'close' did not fire")
	}
	select {
	case err := <-gotErr:
		if err == nil {
			t.Fatal("nil error")
		}
	default:
		t.Fatal("socket 'error' did not fire before 'close' on a reset")
	}
}

// dialRaw connects, writes raw and returns the connection (closed at the
// end of the test).
func dialRaw(t *testing.T, addr, raw string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, raw)
	return c
}

// TestSocketAddressesOutliveTheConnection: a Socket keeps its addresses
// after its connection closed and the state was reused for another.
func TestSocketAddressesOutliveTheConnection(t *testing.T) {
	socks := make(chan *Socket, 2)
	opts := quiet()
	opts.Loops = 1
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		socks <- req.Socket
		res.End(nil, nil)
	}, opts)
	addr := listen(t, srv)
	var ports []int
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, c.LocalAddr().(*net.TCPAddr).Port)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		io.ReadAll(c)
		c.Close()
	}
	first, second := <-socks, <-socks
	if first.RemotePort() != ports[0] || second.RemotePort() != ports[1] || first.RemoteAddress() != "127.0.0.1" {
		t.Fatalf("ports %d, %d; want %v", first.RemotePort(), second.RemotePort(), ports)
	}
}
