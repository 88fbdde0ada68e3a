package api

import (
	"bytes"
	"io"
	"net"
	"testing"
)

// BenchmarkKeepAliveGet measures one keep-alive GET answered with
// res.End(body) through the whole api, over a loopback socket. The client
// loop reuses its buffers and allocates nothing, so allocs/op are the
// server's.
func BenchmarkKeepAliveGet(b *testing.B) {
	body := []byte("Hello, World!")
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		res.SetHeader("Content-Type", "text/plain")
		res.End(body, nil)
	}, quiet())
	if err := srv.Listen(0, "127.0.0.1", 0, nil); err != nil {
		b.Fatal(err)
	}
	defer func() {
		done := make(chan error)
		srv.Close(func(err error) { done <- err })
		<-done
	}()
	a := srv.Address()
	c, err := net.Dial("tcp", net.JoinHostPort(a.Address, itoa(a.Port)))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET / HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: bench\r\n\r\n")
	// Learn the response size from the first response (its Date has a
	// fixed length, so every response has the same size).
	buf := make([]byte, 4096)
	c.Write(req)
	n, err := c.Read(buf)
	if err != nil || !bytes.HasSuffix(buf[:n], body) {
		b.Fatalf("first response %q, %v", buf[:n], err)
	}
	size := n
	b.ReportAllocs()
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf[:size]); err != nil {
			b.Fatal(err)
		}
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
