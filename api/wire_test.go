package api

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loophttp/loophttp/codec"
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

// TestClientBodyLimit: a response body is not limited by default (a
// 65 MiB + 1 body, over the codec's default 64 MiB, arrives whole, framed
// either way); with AgentOptions.Limits.MaxBodySize set, a body over it
// fails the request with a *BodyLimitError naming the limit, never as a
// short success or a "connection closed".
func TestClientBodyLimit(t *testing.T) {
	const big = 64<<20 + 1
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	host, port, _ := rawServer(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		line, err := r.ReadString('\n')
		if err != nil || readHead(r) != nil {
			return
		}
		chunked := strings.HasPrefix(line, "GET /chunked ")
		w := bufio.NewWriterSize(c, 64<<10)
		if chunked {
			io.WriteString(w, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
		} else {
			fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", big)
		}
		for sent := 0; sent < big; {
			n := min(len(chunk), big-sent)
			if chunked {
				fmt.Fprintf(w, "%x\r\n", n)
			}
			if _, err := w.Write(chunk[:n]); err != nil {
				return
			}
			if chunked {
				io.WriteString(w, "\r\n")
			}
			sent += n
		}
		if chunked {
			io.WriteString(w, "0\r\n\r\n")
		}
		w.Flush()
		io.Copy(io.Discard, r)
	})
	for _, chunked := range []bool{false, true} {
		for _, limit := range []int64{0, 1 << 20} {
			t.Run(fmt.Sprintf("chunked=%v limit=%d", chunked, limit), func(t *testing.T) {
				a := testAgent(t, AgentOptions{Limits: codec.Limits{MaxBodySize: limit}, DisableKeepAlive: true})
				opts := RequestOptions{Host: host, Port: port, Agent: a, Path: "/length"}
				if chunked {
					opts.Path = "/chunked"
				}
				n := 0
				o := fetchCounting(t, opts, nil, &n)
				if limit == 0 {
					if len(o.errs) != 0 || n != big {
						t.Fatalf("errors %v, %d body bytes; want none and %d", o.errs, n, big)
					}
					return
				}
				var le *BodyLimitError
				if len(o.errs) != 1 || !errors.As(o.errs[0], &le) || le.Limit != limit ||
					!errors.Is(o.errs[0], codec.ErrBodyTooLarge) || !strings.Contains(o.errs[0].Error(), "1048576") {
					t.Fatalf("errors %v; want one *BodyLimitError naming the limit %d", o.errs, limit)
				}
				if int64(n) > limit {
					t.Fatalf("%d body bytes delivered past the limit %d", n, limit)
				}
			})
		}
	}
}

// fetchCounting is fetch that counts body bytes instead of keeping them.
func fetchCounting(t *testing.T, opts RequestOptions, body []byte, n *int) *outcome {
	t.Helper()
	o := &outcome{}
	done := make(chan struct{})
	req, err := Request(opts, func(res *IncomingMessage) {
		o.status = res.StatusCode
		res.OnData(func(c []byte) { *n += len(c) })
	})
	if err != nil {
		t.Fatal(err)
	}
	req.OnError(func(err error) { o.errs = append(o.errs, err) })
	req.OnClose(func() { close(done) })
	if err := req.End(body, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("request did not close")
	}
	return o
}

// TestServerBodyLimitAfterHead: a chunked request body that passes
// Options.Limits.MaxBodySize after the handler began its response closes
// the connection, and the handler hears a *BodyLimitError naming the
// limit on req.OnError (and 'clientError' too), before 'close'.
func TestServerBodyLimitAfterHead(t *testing.T) {
	const limit = 1000
	errs := make(chan error, 2)
	closed := make(chan struct{})
	opts := quiet()
	opts.Limits.MaxBodySize = limit
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		req.OnData(func(c []byte) { res.Write(c, nil) }) // an echo: the head goes out with the first chunk
		req.OnEnd(func() { res.End(nil, nil) })
		req.OnError(func(err error) { errs <- err })
		req.OnClose(func() { close(closed) })
	}, opts)
	clientErrs := make(chan error, 1)
	srv.OnClientError(func(err error, _ *Socket) { clientErrs <- err })
	addr := listen(t, srv)
	c := dialRaw(t, addr, "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n200\r\n"+strings.Repeat("a", 0x200)+"\r\n")
	r := bufio.NewReader(c)
	if line, err := r.ReadString('\n'); err != nil || line != "HTTP/1.1 200 OK\r\n" {
		t.Fatalf("first line %q, %v; want the echo's 200", line, err)
	}
	io.WriteString(c, "300\r\n"+strings.Repeat("b", 0x300)+"\r\n0\r\n\r\n")
	rest, err := io.ReadAll(r) // the server closes
	if err != nil {
		t.Fatalf("reading to the close: %v", err)
	}
	if strings.HasSuffix(string(rest), "0\r\n\r\n") {
		t.Fatalf("the response was ended as if the body were whole: %q", rest)
	}
	for _, ch := range []chan error{errs, clientErrs} {
		select {
		case err := <-ch:
			var le *BodyLimitError
			if !errors.As(err, &le) || le.Limit != limit || !strings.Contains(err.Error(), "1000 bytes") {
				t.Fatalf("error %v; want a *BodyLimitError naming the limit %d", err, limit)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no error reached the handler")
		}
	}
	<-closed
}

// TestClientSendsTargetAsGiven: a URL's target goes out byte for byte, as
// curl sends it (no re-encoding, no decoding), whatever the server will
// make of it; a #fragment is stripped; only what no server may receive
// (a space, a control character, a non-ASCII octet) is refused.
func TestClientSendsTargetAsGiven(t *testing.T) {
	lines := make(chan string, 1)
	host, port, _ := rawServer(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		line, err := r.ReadString('\n')
		if err != nil || readHead(r) != nil {
			return
		}
		lines <- line
		io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
	})
	base := fmt.Sprintf("http://%s:%d", host, port)
	for _, tc := range []struct{ url, target string }{
		{"/anything?ids[]=1", "/anything?ids[]=1"},
		{"/?filter[name]=x", "/?filter[name]=x"},
		{"/?q=a|b", "/?q=a|b"},
		{"/?q={1}", "/?q={1}"},
		{"/a|b", "/a|b"},
		{"/p[1]/a|b", "/p[1]/a|b"},
		{"/a\\b", "/a\\b"},
		{"/?q=100%", "/?q=100%"},
		{"/100%", "/100%"}, // the server refuses it; the client sends it, as curl does
		{"/a%20b?c=%2F", "/a%20b?c=%2F"},
		{"/\"<>^`{}", "/\"<>^`{}"},
		{"/p?q=1#frag", "/p?q=1"},
		{"/p#", "/p"},
		{"#top", "/"},
		{"", "/"},
		{"?x=1", "/?x=1"},
	} {
		a := testAgent(t, AgentOptions{})
		o := fetchURL(t, base+tc.url, a)
		if len(o.errs) != 0 || o.status != 204 {
			t.Fatalf("%q: status %d, errors %v", tc.url, o.status, o.errs)
		}
		if got := <-lines; got != "GET "+tc.target+" HTTP/1.1\r\n" {
			t.Errorf("%q: request-line %q; want target %q", tc.url, got, tc.target)
		}
	}
	for _, bad := range []string{"/a b", "/a\x01", "/a\x7f", "/caf\xc3\xa9", "/?q=\t"} {
		if _, err := RequestURL(base+bad, RequestOptions{}, nil); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%q: %v; want ErrInvalidRequest", bad, err)
		}
	}
	for _, bad := range []string{"httpx://example.com/", "ftp://example.com/", "http:///x", "example.com/x", "http://[::1/"} {
		if _, err := RequestURL(bad, RequestOptions{}, nil); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%q: %v; want ErrInvalidRequest", bad, err)
		}
	}
}

// fetchURL runs one GET of rawURL to completion.
func fetchURL(t *testing.T, rawURL string, a *Agent) *outcome {
	t.Helper()
	o := &outcome{}
	done := make(chan struct{})
	req, err := RequestURL(rawURL, RequestOptions{Agent: a}, func(res *IncomingMessage) { o.status = res.StatusCode })
	if err != nil {
		t.Fatalf("%q: %v", rawURL, err)
	}
	req.OnError(func(err error) { o.errs = append(o.errs, err) })
	req.OnClose(func() { close(done) })
	req.End(nil, nil)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%q: request did not close", rawURL)
	}
	return o
}
