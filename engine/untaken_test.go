package engine

import (
	"strings"
	"testing"

	"github.com/loophttp/loophttp/codec"
)

// TestUntakenConnectAndUpgrade: a CONNECT or Upgrade request the handler
// answers without switching (no Tunnel, no Detach) gets its answer, and the
// bytes that followed its head (tunnel or new-protocol data sent
// optimistically) are never parsed as a request: the connection closes.
// After a CONNECT it always does. An Upgrade nobody takes is an ordinary
// request (RFC 9110 §7.8 lets the server ignore Upgrade): it closes when
// bytes followed the request before its answer ended, and otherwise stays
// an ordinary keep-alive exchange.
func TestUntakenConnectAndUpgrade(t *testing.T) {
	// What follows each head would pass for a request if it were parsed.
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
	cases := []struct {
		name, head string
		async      bool // answered after the input arrived, not inside End
		connect    bool
	}{
		{"connect", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", false, true},
		{"connect answered later", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", true, true},
		{"upgrade", "GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", false, false},
		{"upgrade answered later", "GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", true, false},
		{"upgrade with a body", "POST /up HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: x\r\nContent-Length: 3\r\n\r\nabc", false, false},
		{"upgrade with a chunked body", "POST /up HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", false, false},
	}
	for _, c := range cases {
		for _, split := range []bool{false, true} {
			name := c.name
			if split {
				name += ", data in a later read"
				if !c.connect && !c.async {
					// Answered before the data came: the data is a new request.
					continue
				}
			}
			t.Run(name, func(t *testing.T) {
				h := newHarness(t, Config{})
				var pending *Stream
				h.rec.onEnd = func(s *Stream) {
					if c.async {
						pending = s
						return
					}
					answer404(t, s)
				}
				if split {
					h.send(c.head)
					h.send(smuggled)
				} else {
					h.send(c.head + smuggled)
				}
				if pending != nil {
					answer404(t, pending)
				}
				if h.rec.requests != 1 {
					t.Fatalf("%d requests reached the handler; want 1 (the bytes after the head were parsed)", h.rec.requests)
				}
				// The answer says the connection closes, except an
				// Upgrade's that went out before the data came or
				// whose chunked body's end was not yet known.
				rs := h.responses()
				sayClose := c.connect || !split && !strings.Contains(c.head, "chunked")
				if len(rs) != 1 || rs[0].Status != 404 || sayClose && !rs[0].Close {
					t.Fatalf("responses %+v; want one 404 (with Connection: close: %v)", rs, sayClose)
				}
				if !h.conn.Ended() {
					t.Fatal("connection left open")
				}
			})
		}
	}

	for _, head := range []string{
		"GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
		"POST /up HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	} {
		t.Run("upgrade with nothing after it", func(t *testing.T) {
			h := newHarness(t, Config{})
			h.send(head)
			h.send("GET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
			if rs := h.responses(); len(rs) != 2 || rs[0].Close || h.conn.Ended() {
				t.Fatalf("responses %+v, closed %v; want two on a kept connection", rs, h.conn.Ended())
			}
		})
	}
}

// answer404 answers s with 404 "NO", failing t on an error.
func answer404(t *testing.T, s *Stream) {
	t.Helper()
	if err := s.SetHead(404, "", []codec.Header{{Name: []byte("Content-Type"), Value: []byte("text/plain")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.End([]byte("NO")); err != nil {
		t.Fatal(err)
	}
}
