package api

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestContentLengthMismatch: a body longer or shorter than the
// Content-Length the handler declared makes Write or End report
// ErrContentLengthMismatch (Node's ERR_HTTP_CONTENT_LENGTH_MISMATCH), and the
// connection closes after what was sent, so the peer sees the end of the
// stream instead of waiting for bytes that never come. A second request
// on the same connection is never answered.
func TestContentLengthMismatch(t *testing.T) {
	cases := []struct {
		name     string
		goAnswer bool // answer from another goroutine
		// answer answers; cb is the callback to give a Write that
		// breaks the length. It reports whether Write said true.
		answer    func(res *ServerResponse, cb func(error)) (writeOK bool, endErr error)
		wantWrite bool  // what Write reports
		wantCB    error // what the Write callback hears
		wantEnd   error
		sent      string // the body bytes that reach the peer (the breaking call sends none)
	}{
		{name: "end longer", wantEnd: ErrContentLengthMismatch, answer: func(res *ServerResponse, _ func(error)) (bool, error) {
			res.SetHeader("Content-Length", "3")
			return false, res.End([]byte("hello"), nil)
		}},
		{name: "end shorter", wantEnd: ErrContentLengthMismatch, answer: func(res *ServerResponse, _ func(error)) (bool, error) {
			res.SetHeader("Content-Length", "5")
			return false, res.End([]byte("abc"), nil)
		}},
		{name: "end shorter from a goroutine", goAnswer: true, wantEnd: ErrContentLengthMismatch,
			answer: func(res *ServerResponse, _ func(error)) (bool, error) {
				res.SetHeader("Content-Length", "5")
				return false, res.End([]byte("abc"), nil)
			}},
		{name: "writes then short end", wantWrite: true, wantEnd: ErrContentLengthMismatch, sent: "ab",
			answer: func(res *ServerResponse, _ func(error)) (bool, error) {
				res.WriteHead(200, "", Header{"Content-Length", "4"})
				ok := res.Write([]byte("ab"), nil)
				return ok, res.End(nil, nil)
			}},
		{name: "write longer", wantCB: ErrContentLengthMismatch, wantEnd: ErrWriteAfterEnd, sent: "ab",
			answer: func(res *ServerResponse, cb func(error)) (bool, error) {
				res.SetHeader("Content-Length", "3")
				res.Write([]byte("ab"), nil)
				ok := res.Write([]byte("cd"), cb)
				return ok, res.End([]byte("z"), nil) // the mismatch ended the response
			}},
		{name: "write longer from a goroutine", goAnswer: true, wantCB: ErrContentLengthMismatch, wantEnd: ErrWriteAfterEnd,
			answer: func(res *ServerResponse, cb func(error)) (bool, error) {
				res.SetHeader("Content-Length", "3")
				ok := res.Write([]byte("hello"), cb)
				return ok, res.End(nil, nil)
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			type result struct {
				writeOK bool
				endErr  error
			}
			got := make(chan result, 1)
			cbErr := make(chan error, 1)
			srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
				run := func() {
					ok, endErr := tc.answer(res, func(err error) { cbErr <- err })
					got <- result{ok, endErr}
				}
				if tc.goAnswer {
					go run()
				} else {
					run()
				}
			}, quiet())
			addr := listen(t, srv)
			// Two pipelined requests, and the write side left open: only
			// the server's close can end the read.
			c := dialRaw(t, addr, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
			out, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("reading the answer: %v (the connection did not close); got %q", err, out)
			}
			r := <-got
			if r.writeOK != tc.wantWrite {
				t.Errorf("Write: got %v; want %v", r.writeOK, tc.wantWrite)
			}
			if tc.wantCB != nil {
				if err := <-cbErr; !errors.Is(err, tc.wantCB) {
					t.Errorf("Write's callback: got %v; want %v", err, tc.wantCB)
				}
			}
			if !errors.Is(r.endErr, tc.wantEnd) {
				t.Errorf("End: got %v; want %v", r.endErr, tc.wantEnd)
			}
			if n := strings.Count(string(out), "HTTP/1.1 "); n != 1 {
				t.Errorf("got %d responses; want 1 (the head, then the close): %q", n, out)
			}
			if _, body, _ := strings.Cut(string(out), "\r\n\r\n"); body != tc.sent {
				t.Errorf("body on the wire: got %q; want %q", body, tc.sent)
			}
		})
	}
}

// TestContentLengthMatchAndBodiless: an exact body keeps the connection,
// and a response that carries no body (HEAD, 204, 304) may declare any
// length without an error (RFC 9110 §8.6: a HEAD response's Content-Length
// is the length a GET would have had).
func TestContentLengthMatchAndBodiless(t *testing.T) {
	errs := make(chan error, 3)
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		res.SetHeader("Content-Length", "5")
		switch req.URL {
		case "/exact":
			res.Write([]byte("he"), nil)
			errs <- res.End([]byte("llo"), nil)
		case "/304":
			res.StatusCode = 304
			errs <- res.End(nil, nil)
		default: // HEAD
			errs <- res.End(nil, nil)
		}
	}, quiet())
	addr := listen(t, srv)
	out := roundTrip(t, addr, "GET /exact HTTP/1.1\r\nHost: a\r\n\r\n"+
		"HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET /304 HTTP/1.1\r\nHost: a\r\n\r\n")
	for i := 0; i < 3; i++ {
		if err := <-errs; err != nil {
			t.Errorf("End: %v", err)
		}
	}
	if n := strings.Count(out, "HTTP/1.1 "); n != 3 || !strings.Contains(out, "\r\n\r\nhelloHTTP/1.1 200") {
		t.Errorf("got %q; want three answers, the first with its body", out)
	}
}

// TestClientContentLengthMismatch: a client request whose body breaks the
// Content-Length it declared reports ErrContentLengthMismatch from the
// Write or End that breaks it, fails with it (OnError, then OnClose, once
// each), and its connection closes after what was sent, so the server
// never waits for the rest.
func TestClientContentLengthMismatch(t *testing.T) {
	// The cases that write first wait for the socket, so that what they
	// wrote is on its way before the call that breaks the length.
	cases := []struct {
		name   string
		send   func(req *ClientRequest, socket <-chan struct{}, cb func(error)) (writeOK bool, endErr error)
		wantCB bool // the Write's callback hears the mismatch
		sent   string
	}{
		{name: "end longer", send: func(req *ClientRequest, _ <-chan struct{}, _ func(error)) (bool, error) {
			return false, req.End([]byte("hello"), nil)
		}},
		{name: "write then short end", sent: "ab", send: func(req *ClientRequest, socket <-chan struct{}, _ func(error)) (bool, error) {
			req.Write([]byte("ab"), nil)
			<-socket
			return false, req.End(nil, nil)
		}},
		{name: "write longer", wantCB: true, sent: "ab", send: func(req *ClientRequest, socket <-chan struct{}, cb func(error)) (bool, error) {
			req.Write([]byte("ab"), nil)
			<-socket
			ok := req.Write([]byte("cd"), cb)
			err := req.End(nil, nil)
			if !errors.Is(err, ErrWriteAfterEnd) {
				return ok, fmt.Errorf("End after the mismatch: %v; want ErrWriteAfterEnd", err)
			}
			return ok, ErrContentLengthMismatch
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan string, 1)
			host, port, _ := rawServer(t, func(c net.Conn) {
				c.SetDeadline(time.Now().Add(10 * time.Second))
				b, _ := io.ReadAll(c) // until the client closes
				got <- string(b)
			})
			req, err := Request(RequestOptions{Host: host, Port: port, Method: "POST",
				Agent: testAgent(t, AgentOptions{}), Headers: map[string]string{"Content-Length": "3"}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			var errs []error
			var mu sync.Mutex
			closed := make(chan struct{})
			req.OnError(func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() })
			req.OnClose(func() { close(closed) })
			cbErr := make(chan error, 1)
			socket := make(chan struct{})
			req.OnSocket(func(*Socket) { close(socket) })
			ok, endErr := tc.send(req, socket, func(err error) { cbErr <- err })
			if ok || !errors.Is(endErr, ErrContentLengthMismatch) {
				t.Errorf("Write reported %v, End %v; want false and ErrContentLengthMismatch", ok, endErr)
			}
			if tc.wantCB {
				if err := <-cbErr; !errors.Is(err, ErrContentLengthMismatch) {
					t.Errorf("Write's callback: %v; want ErrContentLengthMismatch", err)
				}
			}
			select {
			case <-closed:
			case <-time.After(10 * time.Second):
				t.Fatal("the request did not close")
			}
			mu.Lock()
			if len(errs) != 1 || !errors.Is(errs[0], ErrContentLengthMismatch) {
				t.Errorf("OnError heard %v; want ErrContentLengthMismatch once", errs)
			}
			mu.Unlock()
			if tc.sent == "" {
				return // nothing was sent: no connection is needed
			}
			wire := <-got
			if _, body, _ := strings.Cut(wire, "\r\n\r\n"); body != tc.sent {
				t.Errorf("the server read %q; want the body %q, then the close", wire, tc.sent)
			}
		})
	}
}

// TestDeclaredLength: the length the response is checked against is the
// one the engine frames it with (engine.Stream's reading of the fields).
func TestDeclaredLength(t *testing.T) {
	cl := func(v string) Header { return Header{"Content-Length", v} }
	te := func(v string) Header { return Header{"transfer-encoding", v} }
	for _, tc := range []struct {
		fields []Header
		n      int64
		ok     bool
	}{
		{nil, 0, false},
		{[]Header{{"X", "1"}, cl("3")}, 3, true},
		{[]Header{cl("003")}, 3, true},
		{[]Header{cl("+3")}, 0, false},
		{[]Header{cl("3 ")}, 0, false},
		{[]Header{cl("x"), cl("4")}, 4, true},           // the invalid one is left out
		{[]Header{te("chunked"), cl("3")}, 0, false},    // chunked wins
		{[]Header{cl("3"), te("Chunked")}, 3, true},     // the coding is left out
		{[]Header{te("gzip"), cl("3")}, 3, true},        // the engine sends only chunked
		{[]Header{cl("9223372036854775808")}, 0, false}, // past int64
	} {
		if n, ok := declaredLength(tc.fields); n != tc.n || ok != tc.ok {
			t.Errorf("declaredLength(%v) = %d, %v; want %d, %v", tc.fields, n, ok, tc.n, tc.ok)
		}
	}
}
