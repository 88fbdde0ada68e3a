package api

import (
	"bufio"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestClientReadsEarlyAnswerWhileUploading: a server answers a large
// upload early (413) and stops reading it; the client, its request body
// still stuck in its output, reads the answer anyway ('response' fires),
// rather than stalling until the server gives up.
func TestClientReadsEarlyAnswerWhileUploading(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		c.Write([]byte("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbig!"))
		<-got // the body is never read while the client works
	}()
	host, port := splitAddr(t, ln.Addr().String())
	status := make(chan int, 1)
	req, err := Request(RequestOptions{Host: host, Port: port, Method: "POST", Path: "/up", Agent: testAgent(t, AgentOptions{})}, func(res *IncomingMessage) {
		status <- res.StatusCode
	})
	if err != nil {
		t.Fatal(err)
	}
	req.OnError(func(error) {}) // the upload fails once the server closes
	req.End(make([]byte, 32<<20), nil)
	select {
	case s := <-status:
		if s != 413 {
			t.Fatalf("status %d; want 413", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no response while the request body was stuck")
	}
	close(got)
}
