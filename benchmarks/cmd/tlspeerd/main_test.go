package main

import (
	"bufio"
	"crypto/tls"
	"io"
	"net/http"
	"testing"

	"github.com/loophttp/loophttp/internal/testcert"
)

// TestAnswersOverTLS: each peer answers the benchmark's request over TLS
// 1.3 with the benchmark's body, negotiating http/1.1 by ALPN, twice on one
// connection.
func TestAnswersOverTLS(t *testing.T) {
	for _, impl := range []string{"fasthttp", "nethttp"} {
		t.Run(impl, func(t *testing.T) {
			stop, addr, err := start(impl, "127.0.0.1:0", testcert.Server())
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			cc := testcert.Client()
			cc.NextProtos = []string{"http/1.1"}
			c, err := tls.Dial("tcp", addr.String(), cc)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if st := c.ConnectionState(); st.NegotiatedProtocol != "http/1.1" || st.Version != tls.VersionTLS13 {
				t.Fatalf("TLS state %+v", st)
			}
			r := bufio.NewReader(c)
			for range 2 {
				if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(r, nil)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(resp.Body)
				if err != nil || resp.StatusCode != 200 || string(got) != string(body) || resp.Header.Get("Content-Type") != "text/plain" {
					t.Fatalf("status %d, type %q, body %q, %v", resp.StatusCode, resp.Header.Get("Content-Type"), got, err)
				}
			}
		})
	}
	if _, _, err := start("other", "127.0.0.1:0", testcert.Server()); err == nil {
		t.Fatal("an unknown -impl started")
	}
}
