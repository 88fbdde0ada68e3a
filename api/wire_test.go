package api

import (
	"strings"
	"sync/atomic"
	"testing"
)

// TestUntakenConnectAndUpgradeSocket: with no 'connect' or 'upgrade'
// listener, a CONNECT or an Upgrade request followed at once by more bytes
// (tunnel data, a new protocol's frames) goes to OnRequest, gets its
// answer, and the connection closes: the bytes after the head, here a
// well-formed request, never reach the handler.
func TestUntakenConnectAndUpgradeSocket(t *testing.T) {
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
	for _, head := range []string{
		"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
		"GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	} {
		t.Run(strings.Fields(head)[0], func(t *testing.T) {
			var requests atomic.Int32
			srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
				requests.Add(1)
				if req.URL == "/smuggled" {
					t.Errorf("the bytes after the head were parsed as a request")
				}
				res.WriteHead(404, "")
				res.End([]byte("no"), nil)
			}, quiet())
			addr := listen(t, srv)
			out := roundTrip(t, addr, head+smuggled)
			if n := strings.Count(out, "HTTP/1.1 "); n != 1 || !strings.HasPrefix(out, "HTTP/1.1 404 ") {
				t.Fatalf("%d responses; want one 404: %q", n, out)
			}
			if n := requests.Load(); n != 1 {
				t.Fatalf("%d requests reached OnRequest; want 1", n)
			}
		})
	}
}

// TestMinorVersionAsReceived: HTTP/1.2 is processed as 1.1 (kept alive,
// answered with HTTP/1.1) and reported as received.
func TestMinorVersionAsReceived(t *testing.T) {
	got := make(chan string, 2)
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		got <- req.HTTPVersion
		res.End(nil, nil)
	}, quiet())
	addr := listen(t, srv)
	out := roundTrip(t, addr, "GET / HTTP/1.2\r\nHost: a\r\n\r\nGET / HTTP/1.9\r\nHost: a\r\nConnection: close\r\n\r\n")
	if n := strings.Count(out, "HTTP/1.1 200 OK\r\n"); n != 2 {
		t.Fatalf("%d responses; want two: %q", n, out)
	}
	for _, want := range []string{"1.2", "1.9"} {
		if v := <-got; v != want {
			t.Fatalf("HTTPVersion %q; want %q", v, want)
		}
	}
}
