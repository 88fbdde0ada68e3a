package api

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// echoServer is T2/T17's echo server: it collects the body, then answers
// with it and Connection: close. It counts its events.
func echoServer(t *testing.T) (*Server, string, *atomic.Int64, *atomic.Int64) {
	var requests, connections atomic.Int64
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		requests.Add(1)
		var body []byte
		req.OnData(func(c []byte) { body = append(body, c...) })
		req.OnEnd(func() {
			res.WriteHead(200, "", Header{"Connection", "close"}, Header{"Content-Length", fmt.Sprint(len(body))})
			res.Write(body, nil)
			res.End(nil, nil)
		})
	}, quiet())
	srv.OnConnection(func(*Socket) { connections.Add(1) })
	return srv, listen(t, srv), &requests, &connections
}

// TestEchoCounts ports T2 and T17: three concurrent requests, one
// connection each (Connection: close), exact counts of events.
func TestEchoCounts(t *testing.T) {
	_, addr, requests, connections := echoServer(t)
	bodies := []string{"posted with write then end", "", "close server"}
	var wg sync.WaitGroup
	for i, b := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			method := "POST"
			if b == "" {
				method = "GET"
			}
			req, _ := http.NewRequest(method, "http://"+addr+"/", strings.NewReader(b))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(got) != b || resp.StatusCode != 200 || !resp.Close {
				t.Errorf("request %d: %d %q close=%v", i, resp.StatusCode, got, resp.Close)
			}
		}()
	}
	wg.Wait()
	if requests.Load() != 3 || connections.Load() != 3 {
		t.Fatalf("requests %d connections %d; want 3 and 3", requests.Load(), connections.Load())
	}
}

// TestBinaryBodies ports T3: byte-exact bodies both ways.
func TestBinaryBodies(t *testing.T) {
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		var body []byte
		req.OnData(func(c []byte) { body = append(body, c...) })
		req.OnEnd(func() {
			if !bytes.Equal(body, []byte{0xE6, 0x7F, 0x03, 0x06, 0x07}) {
				t.Errorf("request body % x", body)
			}
			res.End([]byte{0x03, 0x7F, 0x06, 0x07, 0xE6}, nil)
		})
	}, quiet())
	addr := listen(t, srv)
	out := roundTrip(t, addr, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n\xE6\x7F\x03\x06\x07")
	if !strings.HasSuffix(out, "\r\n\r\n\x03\x7F\x06\x07\xE6") {
		t.Fatalf("response %q", out)
	}
}

// TestHeadVersion ports T7: the version of a HEAD request, and a HEAD
// response that ends without a body.
func TestHeadVersion(t *testing.T) {
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		if req.HTTPVersion != "1.1" || req.Method != "HEAD" {
			t.Errorf("version %q method %q", req.HTTPVersion, req.Method)
		}
		res.WriteHead(200, "")
		res.End(nil, nil)
	}, quiet())
	addr := listen(t, srv)
	resp, err := http.Head("http://" + addr + "/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	resp.Body.Close()
}

// TestStatusCodes ports T8 with loophttp's decision: final statuses as
// given (510 and other codes outside the table get "unknown"), 204 and 304
// without a body, and 1xx only as interim responses before a final one.
func TestStatusCodes(t *testing.T) {
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		var body []byte
		req.OnData(func(c []byte) { body = append(body, c...) })
		req.OnEnd(func() {
			var code int
			fmt.Sscan(string(body), &code)
			if code < 200 {
				res.WriteInformation(code)
				code = 200
			}
			res.WriteHead(code, "")
			res.End([]byte("body"), nil)
		})
	}, quiet())
	addr := listen(t, srv)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for _, code := range []int{150, 199, 200, 204, 304, 404, 510} {
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n%d", code)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("code %d: %v", code, err)
		}
		if code < 200 {
			// The 1xx is interim: net/http's ReadResponse returns it,
			// bodiless, and the final response follows.
			if resp.StatusCode != code {
				t.Fatalf("interim %d: got %d", code, resp.StatusCode)
			}
			if resp, err = http.ReadResponse(r, nil); err != nil {
				t.Fatalf("after interim %d: %v", code, err)
			}
		}
		b, _ := io.ReadAll(resp.Body)
		want, wantBody := code, "body"
		if code < 200 {
			want = 200
		}
		if code == 204 || code == 304 {
			wantBody = ""
		}
		if resp.StatusCode != want || string(b) != wantBody {
			t.Fatalf("code %d: got %d %q", code, resp.StatusCode, b)
		}
		if code == 510 && resp.Status != "510 Not Extended" {
			t.Fatalf("status line %q", resp.Status)
		}
	}
}

func TestExpectContinue(t *testing.T) {
	post := "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
	t.Run("automatic", func(t *testing.T) {
		srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
			var body []byte
			req.OnData(func(c []byte) { body = append(body, c...) })
			req.OnEnd(func() { res.End(body, nil) })
		}, quiet())
		addr := listen(t, srv)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, post)
		r := bufio.NewReader(c)
		line, _ := r.ReadString('\n')
		if line != "HTTP/1.1 100 Continue\r\n" {
			t.Fatalf("first line %q; want 100 Continue", line)
		}
		r.ReadString('\n')
		io.WriteString(c, "hi")
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(resp.Body); string(b) != "hi" {
			t.Fatalf("body %q", b)
		}
	})
	t.Run("check continue refuses", func(t *testing.T) {
		requests := 0
		srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) { requests++ }, quiet())
		srv.OnCheckContinue(func(req *IncomingMessage, res *ServerResponse) {
			res.WriteHead(417, "")
			res.End(nil, nil)
		})
		addr := listen(t, srv)
		out := roundTrip(t, addr, post)
		if !strings.HasPrefix(out, "HTTP/1.1 417 ") || strings.Contains(out, "100 Continue") || requests != 0 {
			t.Fatalf("got %q, %d requests", out, requests)
		}
	})
}

func TestBackpressureDrain(t *testing.T) {
	drained := make(chan struct{})
	var falses atomic.Int64
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		chunk := bytes.Repeat([]byte("x"), 32<<10)
		written := 0
		var write func()
		write = func() {
			for written < 64 {
				written++
				if !res.Write(chunk, nil) {
					falses.Add(1)
					return // resume on 'drain'
				}
			}
			res.End(nil, nil)
		}
		res.OnDrain(func() {
			select {
			case <-drained:
			default:
				close(drained)
			}
			write()
		})
		write()
	}, quiet())
	addr := listen(t, srv)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	// Read nothing for a while: the output piles up.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	if n != 64*32<<10 {
		t.Fatalf("body %d bytes; want %d", n, 64*32<<10)
	}
	if falses.Load() == 0 {
		t.Fatal("Write never reported backpressure")
	}
	select {
	case <-drained:
	case <-time.After(10 * time.Second):
		t.Fatal("OnDrain never fired")
	}
	if n == 0 {
		t.Fatal("no body")
	}
}

func TestHandlerPanicAnswers500(t *testing.T) {
	opts := quiet()
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		if req.URL == "/boom" {
			panic("boom")
		}
		res.End([]byte("fine"), nil)
	}, opts)
	addr := listen(t, srv)
	out := roundTrip(t, addr, "GET /boom HTTP/1.1\r\nHost: a\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 500 ") {
		t.Fatalf("got %q", out)
	}
	if out := roundTrip(t, addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"); !strings.HasSuffix(out, "fine") {
		t.Fatalf("server did not carry on: %q", out)
	}
}

// TestHeaderRules ports T20 with loophttp's decisions: an invalid name or
// value is an error; WriteHead merges over SetHeader case-insensitively and
// wins (Node), so the client sees Test: 2 once; 1xx is not a final status.
func TestHeaderRules(t *testing.T) {
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		res.SetHeader("test", "1")
		if err := res.SetHeader("", "bar"); err == nil {
			t.Error("empty name accepted")
		}
		if err := res.SetHeader("foo", "a\nb"); err == nil {
			t.Error("LF in a value accepted")
		}
		res.WriteHead(200, "", Header{"Test", "2"})
		if err := res.WriteHead(100, ""); err == nil {
			t.Error("WriteHead(100) accepted")
		}
		res.End(nil, nil)
	}, quiet())
	addr := listen(t, srv)
	resp, _ := get(t, addr, "/")
	if v := resp.Header.Values("Test"); len(v) != 1 || v[0] != "2" {
		t.Fatalf("Test header %q; want one value 2", v)
	}
}

// TestPanicAfterEndBlamesNoOtherRequest: a handler that ends its response
// and then panics, with another request pipelined behind it: its response
// goes out, the panic closes the connection, and the request behind it is
// neither answered with a 500 nor handed to the handler.
func TestPanicAfterEndBlamesNoOtherRequest(t *testing.T) {
	opts := quiet()
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	var second atomic.Int32
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		if req.URL == "/boom" {
			res.End([]byte("ended"), nil)
			panic("boom after End")
		}
		second.Add(1)
		res.End([]byte("fine"), nil)
	}, opts)
	out := roundTrip(t, listen(t, srv), "GET /boom HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(out, "\r\n\r\nended") || strings.Count(out, "HTTP/1.1 ") != 1 || second.Load() != 0 {
		t.Fatalf("responses %q; the second handler ran %d times", out, second.Load())
	}
}
