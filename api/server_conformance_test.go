package api

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/loophttp/loophttp/internal/conformance"
)

// TestConformanceServerSocket runs every request case of the corpus
// through an api server over loopback (write raw, half-close, read to the
// close) and judges what the handler saw, as the user sees it (Method,
// URL, "HTTP/"+HTTPVersion, RawHeaders, the body from OnData, RawTrailers),
// and what came back. Keep-alive decisions are judged by the engine and
// poller corpus tests: the api does not expose them, so they are not
// compared here.
func TestConformanceServerSocket(t *testing.T) {
	vs := conformance.MustLoad(t)
	var (
		mu   sync.Mutex
		msgs []conformance.Message
	)
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		m := conformance.Message{
			Method: octetsOf(req.Method), Target: octetsOf(req.URL), Version: octetsOf("HTTP/" + req.HTTPVersion),
			Headers: fieldsOf(req.RawHeaders), Body: octetsOf(""),
		}
		req.OnData(func(c []byte) { *m.Body = append(*m.Body, c...) })
		req.OnEnd(func() {
			m.Trailers = fieldsOf(req.RawTrailers)
			if len(m.Trailers) == 0 {
				m.Trailers = nil
			}
			mu.Lock()
			msgs = append(msgs, m)
			mu.Unlock()
			res.End([]byte("ok"), nil)
		})
	}, quiet())
	addr := listen(t, srv)
	for i := range vs {
		v := withoutKeepAlive(vs[i])
		if v.Side != "request" {
			continue
		}
		t.Run(v.ID, func(t *testing.T) {
			mu.Lock()
			msgs = nil
			mu.Unlock()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write(v.Raw); err != nil {
				t.Fatal(err)
			}
			var out []byte
			if len(v.ThenSend) > 0 {
				if want, _ := v.WantsInterim(); want {
					const line = "HTTP/1.1 100 Continue\r\n\r\n"
					buf := make([]byte, len(line))
					if _, err := io.ReadFull(c, buf); err != nil || string(buf) != line {
						t.Fatalf("want 100 Continue before then_send; got %q, %v", buf, err)
					}
					out = buf
				}
				if _, err := c.Write(v.ThenSend); err != nil {
					t.Fatal(err)
				}
			}
			c.(*net.TCPConn).CloseWrite()
			rest, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("reading to EOF: %v", err)
			}
			out = append(out, rest...)
			mu.Lock()
			got := msgs
			mu.Unlock()
			if msg := v.JudgeServer(got, out); msg != "" {
				t.Fatalf("%s\n  raw %q\n  out %q", msg, v.Raw, out)
			}
		})
	}
}

// withoutKeepAlive returns v with no keep_alive expectation.
func withoutKeepAlive(v conformance.Vector) *conformance.Vector {
	v.KeepAlive = nil
	parsed := make([]conformance.Message, len(v.Parsed))
	for i, m := range v.Parsed {
		m.KeepAlive = nil
		parsed[i] = m
	}
	if v.Parsed != nil {
		v.Parsed = parsed
	}
	return &v
}
