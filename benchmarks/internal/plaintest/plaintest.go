// Package plaintest checks that a benchmark server answers like the others:
// 200, Content-Type text/plain, body "Hello, World!", on a connection that
// stays open for a second request.
package plaintest

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// Check sends two requests on one connection to addr, the second in the
// TechEmpower plaintext shape, and fails t unless both get the plaintext
// answer with Content-Length 13.
func Check(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	for _, req := range []string{
		"GET / HTTP/1.1\r\nHost: bench\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: server\r\nAccept: text/plain,text/html;q=0.9," +
			"application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\nConnection: keep-alive\r\n\r\n",
	} {
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || string(b) != "Hello, World!" || resp.ContentLength != 13 ||
			resp.Header.Get("Content-Type") != "text/plain" || resp.Close {
			t.Fatalf("got %d %q, Content-Length %d, Content-Type %q, close %v",
				resp.StatusCode, b, resp.ContentLength, resp.Header.Get("Content-Type"), resp.Close)
		}
	}
}
