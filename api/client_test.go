package api

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/loophttp/loophttp/codec"
)

// testAgent returns an agent destroyed at the end of the test (before
// servers started earlier close, as cleanups run last-in first-out).
func testAgent(t *testing.T, opts AgentOptions) *Agent {
	t.Helper()
	if opts.Loops == 0 {
		opts.Loops = 2
	}
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	a := NewAgent(opts)
	t.Cleanup(a.Destroy)
	return a
}

// outcome is what a fetch collected.
type outcome struct {
	res      *IncomingMessage
	status   int
	body     []byte
	trailers []string
	infos    []Information
	errs     []error
	closes   int
	sockets  int
	finishes int
	endCalls []error // what End's callback was called with, each time
	events   []string
}

// fetch runs one request to completion (OnClose) and returns its outcome.
// body == nil ends without data.
func fetch(t *testing.T, opts RequestOptions, body []byte) *outcome {
	t.Helper()
	o := &outcome{}
	var mu sync.Mutex
	note := func(e string) { mu.Lock(); o.events = append(o.events, e); mu.Unlock() }
	done := make(chan struct{})
	req, err := Request(opts, func(res *IncomingMessage) {
		note("response")
		o.res, o.status = res, res.StatusCode
		res.OnData(func(c []byte) { o.body = append(o.body, c...) })
		res.OnEnd(func() { note("end"); o.trailers = res.RawTrailers })
		res.OnClose(func() { note("res-close") })
	})
	if err != nil {
		t.Fatal(err)
	}
	req.OnSocket(func(*Socket) { note("socket"); o.sockets++ })
	req.OnInformation(func(i Information) { o.infos = append(o.infos, i) })
	req.OnFinish(func() { note("finish"); o.finishes++ })
	req.OnError(func(err error) { note("error"); o.errs = append(o.errs, err) })
	req.OnClose(func() {
		note("close")
		o.closes++
		if o.closes == 1 {
			close(done)
		}
	})
	if err := req.End(body, func(err error) { mu.Lock(); o.endCalls = append(o.endCalls, err); mu.Unlock() }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("request %s %s did not close", opts.Method, opts.Path)
	}
	mu.Lock()
	defer mu.Unlock()
	return o
}

func splitAddr(t *testing.T, addr string) (string, int) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return host, p
}

func TestClientGetAndPostAgainstEcho(t *testing.T) {
	// T2: an echo server, a GET with an empty body and a POST with a
	// Content-Length, the server closed only after both completed.
	_, addr, requests, _ := echoServer(t)
	host, port := splitAddr(t, addr)
	a := testAgent(t, AgentOptions{})
	o := fetch(t, RequestOptions{Host: host, Port: port, Agent: a}, nil)
	if len(o.errs) != 0 || o.status != 200 || len(o.body) != 0 {
		t.Fatalf("GET: %+v", o)
	}
	o = fetch(t, RequestOptions{Host: host, Port: port, Method: "POST", Agent: a,
		Headers: map[string]string{"Content-Length": "12"}}, []byte("close server"))
	if len(o.errs) != 0 || o.status != 200 || string(o.body) != "close server" {
		t.Fatalf("POST: %+v", o)
	}
	want := "socket finish response end close res-close"
	if got := strings.Join(o.events, " "); got != want {
		t.Fatalf("events %q; want %q", got, want)
	}
	if requests.Load() != 2 {
		t.Fatalf("server saw %d requests", requests.Load())
	}
}

func TestClientBinaryBodies(t *testing.T) {
	// T3: byte-exact bodies both ways, a Buffer given to End.
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		var got []byte
		req.OnData(func(c []byte) { got = append(got, c...) })
		req.OnEnd(func() {
			if !bytes.Equal(got, []byte{0xE6, 0x7F, 0x03, 0x06, 0x07}) {
				res.WriteHead(400, "", Header{"Content-Length", "0"})
				res.End(nil, nil)
				return
			}
			res.End([]byte{0x03, 0x7F, 0x06, 0x07, 0xE6}, nil)
		})
	}, quiet())
	host, port := splitAddr(t, listen(t, srv))
	a := testAgent(t, AgentOptions{})
	o := fetch(t, RequestOptions{Host: host, Port: port, Method: "POST", Agent: a}, []byte{0xE6, 0x7F, 0x03, 0x06, 0x07})
	if o.status != 200 || !bytes.Equal(o.body, []byte{0x03, 0x7F, 0x06, 0x07, 0xE6}) {
		t.Fatalf("status %d body % x", o.status, o.body)
	}
}

// rawServer answers each connection with answer(conn) and counts
// connections; it is closed at the end of the test.
func rawServer(t *testing.T, answer func(c net.Conn)) (string, int, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1) // the accept loop: a connection's Add then never races Wait
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				answer(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	host, port := splitAddr(t, ln.Addr().String())
	return host, port, &conns
}

// readHead reads one request head from r.
func readHead(r *bufio.Reader) error {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if line == "\r\n" {
			return nil
		}
	}
}

func TestClientResponseTwice(t *testing.T) {
	// T5: a raw server writes a complete response twice; the client
	// delivers the first intact, once, and drops the connection.
	resp := "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 14\r\nContent-Type: text/plain\r\n" +
		"Date: Fri + 5 May 2017 12:00:00 GMT\r\nHost: localhost\r\nAccess-Control-Allow-Credentials: true\r\n" +
		"Server: Custom (Server) 1.0\r\n\r\nHello IoT.js\r\n"
	host, port, _ := rawServer(t, func(c net.Conn) {
		if readHead(bufio.NewReader(c)) == nil {
			io.WriteString(c, resp)
			io.WriteString(c, resp)
			io.Copy(io.Discard, c)
		}
	})
	a := testAgent(t, AgentOptions{})
	o := fetch(t, RequestOptions{Host: host, Port: port, Agent: a}, nil)
	if o.status != 500 || string(o.body) != "Hello IoT.js\r\n" || len(o.errs) != 0 {
		t.Fatalf("%d %q %v", o.status, o.body, o.errs)
	}
}

func TestClientRequestKinds(t *testing.T) {
	// T6: a close-delimited response body, End with a callback and no
	// response listener, a byte body, and HEAD (no body even with a
	// Content-Length, on a kept connection).
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		var got []byte
		req.OnData(func(c []byte) { got = append(got, c...) })
		req.OnEnd(func() {
			switch req.URL {
			case "/eof":
				res.WriteHead(200, "", Header{"Connection", "close"})
				res.Write(got, nil)
				res.End(nil, nil)
			case "/head":
				res.WriteHead(200, "", Header{"Content-Length", "10"})
				res.End(nil, nil)
			default:
				res.End(got, nil)
			}
		})
	}, quiet())
	host, port := splitAddr(t, listen(t, srv))
	a := testAgent(t, AgentOptions{})

	o := fetch(t, RequestOptions{Host: host, Port: port, Method: "POST", Path: "/eof", Agent: a}, []byte("Hello IoT.js"))
	if o.status != 200 || string(o.body) != "Hello IoT.js" {
		t.Fatalf("eof-delimited: %d %q %v", o.status, o.body, o.errs)
	}

	finished := make(chan error, 1)
	req, err := Request(RequestOptions{Host: host, Port: port, Method: "POST", Agent: a}, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.End([]byte("Hello IoT.js"), func(err error) { finished <- err })
	if err := waitErr(t, finished); err != nil {
		t.Fatalf("End callback: %v", err)
	}

	o = fetch(t, RequestOptions{Host: host, Port: port, Method: "HEAD", Path: "/head", Agent: a}, nil)
	if o.status != 200 || len(o.body) != 0 || o.res.Header("content-length") != "10" || len(o.errs) != 0 {
		t.Fatalf("HEAD: %d %q %v", o.status, o.body, o.errs)
	}
}

func waitErr(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("timed out")
		return nil
	}
}

func TestClientRefused(t *testing.T) {
	// T12: nothing listens; OnError then OnClose, and no response.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host, port := splitAddr(t, ln.Addr().String())
	ln.Close()
	o := fetch(t, RequestOptions{Host: host, Port: port, Agent: testAgent(t, AgentOptions{})}, nil)
	if len(o.errs) != 1 || !errors.Is(o.errs[0], syscall.ECONNREFUSED) || o.res != nil || o.closes != 1 {
		t.Fatalf("errors %v response %v closes %d", o.errs, o.res, o.closes)
	}
	if got := strings.Join(o.events, " "); got != "error close" {
		t.Fatalf("events %q", got)
	}
}

func TestClientDNSFailure(t *testing.T) {
	o := fetch(t, RequestOptions{Host: "no-such-host.invalid", Port: 80, Agent: testAgent(t, AgentOptions{})}, nil)
	var dnsErr *net.DNSError
	if len(o.errs) != 1 || !errors.As(o.errs[0], &dnsErr) || o.closes != 1 {
		t.Fatalf("errors %v closes %d", o.errs, o.closes)
	}
}

func TestClientParseError(t *testing.T) {
	// T13: a server answering "Bad http": exactly one error, a ParseError.
	host, port, _ := rawServer(t, func(c net.Conn) {
		io.WriteString(c, "Bad http\r\n\r\n")
	})
	o := fetch(t, RequestOptions{Host: host, Port: port, Agent: testAgent(t, AgentOptions{})}, nil)
	var pe *ParseError
	if len(o.errs) != 1 || !errors.As(o.errs[0], &pe) || pe.Kind != codec.ErrVersion || o.closes != 1 {
		t.Fatalf("errors %v closes %d", o.errs, o.closes)
	}
}

func TestClientHangUpAndTruncated(t *testing.T) {
	host, port, _ := rawServer(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		if readHead(r) != nil {
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"); err != nil {
			return
		}
	})
	a := testAgent(t, AgentOptions{})
	var resErr error
	o := &outcome{}
	done := make(chan struct{})
	req, _ := Request(RequestOptions{Host: host, Port: port, Agent: a}, func(res *IncomingMessage) {
		res.OnData(func(c []byte) { o.body = append(o.body, c...) })
		res.OnError(func(err error) { resErr = err })
	})
	req.OnError(func(err error) { o.errs = append(o.errs, err) })
	req.OnClose(func() { close(done) })
	req.End(nil, nil)
	<-done
	if len(o.errs) != 1 || !errors.Is(o.errs[0], ErrResponseAborted) || !errors.Is(resErr, ErrResponseAborted) || string(o.body) != "abc" {
		t.Fatalf("errors %v response error %v body %q", o.errs, resErr, o.body)
	}

	host, port, _ = rawServer(t, func(c net.Conn) { readHead(bufio.NewReader(c)) })
	o = fetch(t, RequestOptions{Host: host, Port: port, Agent: a}, nil)
	if len(o.errs) != 1 || !errors.Is(o.errs[0], ErrSocketHangUp) || o.closes != 1 {
		t.Fatalf("hang up: errors %v closes %d", o.errs, o.closes)
	}
}

func TestClientTimeoutDestroys(t *testing.T) {
	// T14: the server never answers; a 100 ms timeout whose listener
	// destroys the socket ends the request, once.
	host, port, _ := rawServer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	var timeouts atomic.Int64
	done := make(chan struct{})
	req, _ := Request(RequestOptions{Host: host, Port: port, Agent: testAgent(t, AgentOptions{})}, nil)
	var sock *Socket
	req.OnSocket(func(s *Socket) { sock = s })
	req.SetTimeout(100*time.Millisecond, func() {
		timeouts.Add(1)
		sock.Destroy()
	})
	var errs []error
	req.OnError(func(err error) { errs = append(errs, err) })
	req.OnClose(func() { close(done) })
	start := time.Now()
	req.End(nil, nil)
	<-done
	if timeouts.Load() != 1 || len(errs) != 1 || !errors.Is(errs[0], ErrSocketDestroyed) {
		t.Fatalf("timeouts %d errors %v", timeouts.Load(), errs)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("timed out after %v", d)
	}
}

func TestClientTimeoutSetDuringBody(t *testing.T) {
	// T15: the server sends a head and one byte, then nothing; a shorter
	// timeout set from the first data event destroys the request.
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) { res.Write([]byte("."), nil) }, quiet())
	// The response never ends: the server keeps the exchange (a peer that
	// half-closed still gets its answer) until its idle timeout.
	srv.SetTimeout(500*time.Millisecond, nil)
	host, port := splitAddr(t, listen(t, srv))
	done := make(chan struct{})
	var fired atomic.Int64
	var req *ClientRequest
	req, _ = Request(RequestOptions{Host: host, Port: port, Agent: testAgent(t, AgentOptions{})}, func(res *IncomingMessage) {
		res.OnData(func([]byte) {
			req.SetTimeout(100*time.Millisecond, func() {
				if fired.Add(1) == 1 {
					req.Destroy(nil)
				}
			})
		})
	})
	req.SetTimeout(time.Second, nil)
	req.OnClose(func() { close(done) })
	start := time.Now()
	req.End(nil, nil)
	<-done
	if fired.Load() != 1 || time.Since(start) >= time.Second {
		t.Fatalf("destroyer fired %d times, after %v", fired.Load(), time.Since(start))
	}
}

func TestClientTimeoutClearedOnCompletion(t *testing.T) {
	// The idle timer ends with the response: a slow second exchange on the
	// same connection, longer than the first's timeout, fires nothing.
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		if req.URL == "/slow" {
			time.AfterFunc(200*time.Millisecond, func() { res.End([]byte("slow"), nil) })
			return
		}
		res.End([]byte("x"), nil)
	}, quiet())
	var conns atomic.Int64
	srv.OnConnection(func(*Socket) { conns.Add(1) })
	host, port := splitAddr(t, listen(t, srv))
	a := testAgent(t, AgentOptions{MaxSockets: 1})
	var timeouts atomic.Int64
	req, _ := Request(RequestOptions{Host: host, Port: port, Agent: a, Timeout: 50 * time.Millisecond}, nil)
	req.OnTimeout(func() { timeouts.Add(1) })
	done := make(chan struct{})
	req.OnClose(func() { close(done) })
	req.End(nil, nil)
	<-done
	var body []byte
	req2, _ := Request(RequestOptions{Host: host, Port: port, Agent: a, Path: "/slow"}, func(res *IncomingMessage) {
		res.OnData(func(c []byte) { body = append(body, c...) })
	})
	req2.OnTimeout(func() { timeouts.Add(1) })
	done2 := make(chan struct{})
	req2.OnClose(func() { close(done2) })
	req2.End(nil, nil)
	<-done2
	if string(body) != "slow" || conns.Load() != 1 {
		t.Fatalf("second exchange: %q on %d connections", body, conns.Load())
	}
	if timeouts.Load() != 0 {
		t.Fatalf("%d timeouts after the response completed", timeouts.Load())
	}
}

func TestClientEventCountsAndReuse(t *testing.T) {
	// T17: three concurrent requests, each with exactly one 'socket' and
	// one 'response'; keep-alive reuse counted at the server.
	var requests, connections atomic.Int64
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		requests.Add(1)
		var body []byte
		req.OnData(func(c []byte) { body = append(body, c...) })
		req.OnEnd(func() { res.End(body, nil) })
	}, quiet())
	srv.OnConnection(func(*Socket) { connections.Add(1) })
	host, port := splitAddr(t, listen(t, srv))
	a := testAgent(t, AgentOptions{})
	bodies := []string{"posted with write then end", "", "close server"}
	outs := make([]*outcome, len(bodies))
	var wg sync.WaitGroup
	for i, b := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			method := "POST"
			if b == "" {
				method = "GET"
			}
			outs[i] = fetch(t, RequestOptions{Host: host, Port: port, Method: method, Agent: a}, []byte(b))
		}()
	}
	wg.Wait()
	for i, o := range outs {
		if o.sockets != 1 || o.status != 200 || string(o.body) != bodies[i] || o.closes != 1 || len(o.errs) != 0 {
			t.Fatalf("request %d: sockets %d status %d body %q errors %v", i, o.sockets, o.status, o.body, o.errs)
		}
	}
	c0 := connections.Load()
	for i := 0; i < 5; i++ {
		if o := fetch(t, RequestOptions{Host: host, Port: port, Agent: a}, nil); o.status != 200 || o.sockets != 1 {
			t.Fatalf("sequential %d: %+v", i, o)
		}
	}
	if requests.Load() != 8 || connections.Load() != c0 || c0 > 3 {
		t.Fatalf("requests %d, connections %d then %d: sequential requests must reuse", requests.Load(), c0, connections.Load())
	}
}

func TestClientPanicInResponseCallback(t *testing.T) {
	// T18: a panic in the response callback is recovered; the request
	// still closes, and the agent carries on.
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) { res.End([]byte("bye"), nil) }, quiet())
	host, port := splitAddr(t, listen(t, srv))
	a := testAgent(t, AgentOptions{})
	done := make(chan struct{})
	req, _ := Request(RequestOptions{Host: host, Port: port, Agent: a}, func(*IncomingMessage) { panic("get did fail") })
	var errs []error
	req.OnError(func(err error) { errs = append(errs, err) })
	req.OnClose(func() { close(done) })
	req.End(nil, nil)
	<-done
	if len(errs) != 1 {
		t.Fatalf("errors %v; want the panic reported once", errs)
	}
	if o := fetch(t, RequestOptions{Host: host, Port: port, Agent: a}, nil); o.status != 200 || string(o.body) != "bye" {
		t.Fatalf("after the panic: %+v", o)
	}
}

func TestClientInvalidRequests(t *testing.T) {
	for _, opts := range []RequestOptions{
		{Path: "/up load"},
		{Path: "/a\x00b"},
		{Method: "GE T"},
		{Headers: map[string]string{"X": "a\r\nInjected: 1"}},
		{Port: 70000},
	} {
		if _, err := Request(opts, nil); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%+v: %v", opts, err)
		}
	}
	if _, err := RequestURL("ws://example.com/", RequestOptions{}, nil); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("ws URL: %v", err)
	}
}

func TestClientWireFormat(t *testing.T) {
	// The head as sent: Host with the port, headers from options in name
	// order, SetHeader in call order, then the framing.
	heads := make(chan string, 4)
	host, port, _ := rawServer(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			var head strings.Builder
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				head.WriteString(line)
				if line == "\r\n" {
					break
				}
			}
			h := head.String()
			if strings.Contains(h, "Content-Length: 3") {
				buf := make([]byte, 3)
				io.ReadFull(r, buf)
				h += string(buf)
			}
			heads <- h
			io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
		}
	})
	a := testAgent(t, AgentOptions{})
	req, err := Request(RequestOptions{Host: host, Port: port, Method: "PUT", Path: "/p?q=1", Agent: a,
		Headers: map[string]string{"X-B": "2", "X-A": "1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetHeader("X-Set", "s")
	req.SetHeader("X-Gone", "g")
	if req.GetHeader("x-set") != "s" {
		t.Fatal("GetHeader")
	}
	req.RemoveHeader("x-gone")
	done := make(chan struct{})
	req.OnClose(func() { close(done) })
	req.End([]byte("abc"), nil)
	want := fmt.Sprintf("PUT /p?q=1 HTTP/1.1\r\nHost: %s:%d\r\nX-A: 1\r\nX-B: 2\r\nX-Set: s\r\nContent-Length: 3\r\n\r\nabc", host, port)
	if got := <-heads; got != want {
		t.Fatalf("head %q\nwant %q", got, want)
	}
	<-done
	if err := req.SetHeader("X-Late", "1"); !errors.Is(err, ErrHeadersSent) {
		t.Fatalf("SetHeader after the head: %v", err)
	}
	if err := req.End(nil, nil); !errors.Is(err, ErrWriteAfterEnd) {
		t.Fatalf("second End: %v", err)
	}
}

func TestClientStreamedBodyAndDrain(t *testing.T) {
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		n := 0
		req.OnData(func(c []byte) { n += len(c) })
		req.OnEnd(func() { res.End([]byte(strconv.Itoa(n)+" "+req.Header("transfer-encoding")), nil) })
	}, quiet())
	host, port := splitAddr(t, listen(t, srv))
	a := testAgent(t, AgentOptions{})
	var got []byte
	done := make(chan struct{})
	req, _ := Request(RequestOptions{Host: host, Port: port, Method: "POST", Agent: a}, func(res *IncomingMessage) {
		res.OnData(func(c []byte) { got = append(got, c...) })
	})
	req.OnClose(func() { close(done) })
	drained := make(chan struct{}, 16)
	req.OnDrain(func() { drained <- struct{}{} })
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	total, waits := 0, 0
	for i := 0; i < 64; i++ {
		total += len(chunk)
		if !req.Write(chunk, nil) {
			waits++
			select {
			case <-drained:
			case <-time.After(10 * time.Second):
				t.Fatal("no drain")
			}
		}
	}
	req.End(nil, nil)
	<-done
	if string(got) != strconv.Itoa(total)+" chunked" {
		t.Fatalf("server saw %q; want %d chunked", got, total)
	}
	if waits == 0 {
		t.Fatal("2 MiB written without backpressure")
	}
}

func TestClientInterimResponses(t *testing.T) {
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		req.OnEnd(func() { res.End([]byte("done"), nil) })
	}, quiet())
	host, port := splitAddr(t, listen(t, srv))
	a := testAgent(t, AgentOptions{})
	req, _ := Request(RequestOptions{Host: host, Port: port, Method: "POST", Agent: a,
		Headers: map[string]string{"Expect": "100-continue"}}, nil)
	var got []byte
	done := make(chan struct{})
	req.OnResponse(func(res *IncomingMessage) { res.OnData(func(c []byte) { got = append(got, c...) }) })
	var infos []int
	req.OnInformation(func(i Information) { infos = append(infos, i.StatusCode) })
	req.OnContinue(func() { req.End([]byte("body"), nil) })
	req.OnClose(func() { close(done) })
	req.Write(nil, nil) // send the head; the body waits for 100 Continue
	<-done
	if string(got) != "done" || len(infos) != 1 || infos[0] != 100 {
		t.Fatalf("body %q infos %v", got, infos)
	}
}

func TestClientPoolLimitsAndQueue(t *testing.T) {
	var open, peak atomic.Int64
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		go func() { // answer a little later, so requests pile up
			time.Sleep(5 * time.Millisecond)
			res.End([]byte(req.URL), nil)
		}()
	}, quiet())
	srv.OnConnection(func(s *Socket) {
		n := open.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		s.OnClose(func() { open.Add(-1) })
	})
	host, port := splitAddr(t, listen(t, srv))
	a := testAgent(t, AgentOptions{MaxSockets: 2})
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := "/" + strconv.Itoa(i)
			if o := fetch(t, RequestOptions{Host: host, Port: port, Path: path, Agent: a}, nil); string(o.body) != path || len(o.errs) != 0 {
				t.Errorf("%s: %q %v", path, o.body, o.errs)
			}
		}()
	}
	wg.Wait()
	if peak.Load() > 2 {
		t.Fatalf("%d connections at once; MaxSockets is 2", peak.Load())
	}
}

func TestClientManyConcurrent(t *testing.T) {
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) { res.End([]byte(req.URL), nil) }, quiet())
	host, port := splitAddr(t, listen(t, srv))
	a := testAgent(t, AgentOptions{MaxSockets: 16})
	var wg sync.WaitGroup
	var failures atomic.Int64
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				path := fmt.Sprintf("/%d/%d", g, i)
				if o := fetch(t, RequestOptions{Host: host, Port: port, Path: path, Agent: a}, nil); string(o.body) != path {
					failures.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d of 200 requests failed", failures.Load())
	}
}

func TestClientServerClosedIdleConnection(t *testing.T) {
	// The server closes a kept connection while it is idle in the pool:
	// once the client has seen the close, the next request never uses it.
	var conns atomic.Int64
	socks := make(chan *Socket, 4)
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) { res.End([]byte("ok"), nil) }, quiet())
	srv.OnConnection(func(s *Socket) { conns.Add(1); socks <- s })
	host, port := splitAddr(t, listen(t, srv))
	a := testAgent(t, AgentOptions{})
	clientClosed := make(chan struct{})
	req, _ := Request(RequestOptions{Host: host, Port: port, Agent: a}, nil)
	req.OnSocket(func(s *Socket) { s.OnClose(func() { close(clientClosed) }) })
	done := make(chan struct{})
	req.OnClose(func() { close(done) })
	req.End(nil, nil)
	<-done
	(<-socks).Destroy()
	<-clientClosed
	o := fetch(t, RequestOptions{Host: host, Port: port, Agent: a}, nil)
	if o.status != 200 || len(o.errs) != 0 || conns.Load() != 2 {
		t.Fatalf("status %d errors %v connections %d", o.status, o.errs, conns.Load())
	}
}

func TestClientRetriesIdempotentOnStaleConnection(t *testing.T) {
	// The server takes a second request on a kept connection and closes
	// without answering (as when its keep-alive timer fires as the request
	// arrives): a GET goes again on a new connection; a POST fails.
	var n atomic.Int64
	host, port, conns := rawServer(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for i := 0; ; i++ {
			if readHead(r) != nil {
				return
			}
			if i == 1 && n.Add(1) <= 2 {
				return // close with the request unanswered
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	a := testAgent(t, AgentOptions{MaxSockets: 1})
	if o := fetch(t, RequestOptions{Host: host, Port: port, Agent: a}, nil); o.status != 200 {
		t.Fatal(o.errs)
	}
	// Sent twice, the GET still calls End's callback and fires 'finish' once.
	if o := fetch(t, RequestOptions{Host: host, Port: port, Agent: a}, nil); o.status != 200 || len(o.errs) != 0 || o.sockets != 1 ||
		o.finishes != 1 || len(o.endCalls) != 1 || o.endCalls[0] != nil {
		t.Fatalf("GET on a stale connection: status %d errors %v sockets %d, 'finish' %d times, End callback %v (events %v)",
			o.status, o.errs, o.sockets, o.finishes, o.endCalls, o.events)
	}
	if conns.Load() != 2 {
		t.Fatalf("%d connections; want the retry on a second", conns.Load())
	}
	o := fetch(t, RequestOptions{Host: host, Port: port, Agent: a, Method: "POST"}, []byte("x"))
	if len(o.errs) != 1 || !errors.Is(o.errs[0], ErrSocketHangUp) {
		t.Fatalf("POST on a stale connection: errors %v", o.errs)
	}
}

func TestClientAbortBeforeAndAfterConnect(t *testing.T) {
	host, port, _ := rawServer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	a := testAgent(t, AgentOptions{})
	req, _ := Request(RequestOptions{Host: host, Port: port, Agent: a}, nil)
	var events []string
	done := make(chan struct{})
	req.OnAbort(func() { events = append(events, "abort") })
	req.OnError(func(error) { events = append(events, "error") })
	req.OnClose(func() { events = append(events, "close"); close(done) })
	req.OnSocket(func(*Socket) { req.Abort() })
	req.End(nil, nil)
	<-done
	if strings.Join(events, " ") != "abort close" {
		t.Fatalf("events %v", events)
	}
	// Before the connection: 'abort' and 'close' come after Abort
	// returns (never inside it: the listener would wait for the release
	// below until it gave up), on the agent's runner.
	req, _ = Request(RequestOptions{Host: host, Port: port, Agent: a}, nil)
	events = nil
	released, done := make(chan struct{}), make(chan struct{})
	req.OnAbort(func() {
		select {
		case <-released:
			events = append(events, "abort")
		case <-time.After(10 * time.Second):
			events = append(events, "abort inside Abort")
		}
	})
	req.OnClose(func() { events = append(events, "close"); close(done) })
	req.Abort()
	close(released)
	<-done
	if strings.Join(events, " ") != "abort close" {
		t.Fatalf("events before connect %v", events)
	}
	if err := req.End(nil, nil); !errors.Is(err, ErrWriteAfterEnd) {
		t.Fatalf("End after Abort: %v", err)
	}
}

func TestClientRequestFromCloseReusesConnection(t *testing.T) {
	// Node frees a kept socket before 'close': a request made from OnClose
	// takes it instead of opening another.
	var conns atomic.Int64
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) { res.End([]byte("ok"), nil) }, quiet())
	srv.OnConnection(func(*Socket) { conns.Add(1) })
	host, port := splitAddr(t, listen(t, srv))
	a := testAgent(t, AgentOptions{})
	done := make(chan struct{})
	var chain func(n int)
	chain = func(n int) {
		req, _ := Request(RequestOptions{Host: host, Port: port, Agent: a}, nil)
		req.OnClose(func() {
			if n == 1 {
				close(done)
				return
			}
			chain(n - 1)
		})
		req.End(nil, nil)
	}
	chain(10)
	<-done
	if conns.Load() != 1 {
		t.Fatalf("10 chained requests used %d connections", conns.Load())
	}
}

func TestClientIdleConnectionClosedBeforeItsLoopBindsTheRequest(t *testing.T) {
	// A request takes an idle connection from the pool and hands itself
	// to the connection's loop; the server closes the connection before
	// the loop gets there (here the loop is busy in a callback). The
	// request must go on a new connection, not wait forever.
	idle := make(chan net.Conn, 1)
	release := make(chan struct{})
	host, port, _ := rawServer(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(r)
			if err != nil {
				return
			}
			switch req.URL.Path {
			case "/block":
				<-release
			case "/idle":
				idle <- c
			}
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
				return
			}
		}
	})
	a := testAgent(t, AgentOptions{Loops: 1})
	// A first connection whose response will block the (only) loop.
	inCallback, unblock := make(chan struct{}), make(chan struct{})
	blocker, _ := Request(RequestOptions{Host: host, Port: port, Path: "/block", Agent: a}, func(*IncomingMessage) {
		close(inCallback)
		<-unblock
	})
	blocker.End(nil, nil)
	// A second one, left idle in the pool.
	if o := fetch(t, RequestOptions{Host: host, Port: port, Path: "/idle", Agent: a}, nil); o.status != 200 {
		t.Fatalf("/idle: %d %v", o.status, o.errs)
	}
	kept := <-idle
	close(release)
	<-inCallback
	kept.Close() // the server closes the idle connection while the loop is busy
	after, _ := Request(RequestOptions{Host: host, Port: port, Path: "/after", Agent: a}, nil)
	tr := trace(after, true)
	after.End(nil, nil)
	// The request has taken the idle connection once the pool is empty.
	if !waitFor(5*time.Second, func() bool { _, _, free, _ := agentCounts(a); return free == 0 }) {
		t.Fatal("the request did not take the idle connection")
	}
	close(unblock)
	if !tr.wait(10 * time.Second) {
		t.Fatal("the request given the closed connection never closed")
	}
	if o := tr.snapshot(); o.status != 200 || string(o.body) != "ok" || len(o.errs) != 0 {
		t.Fatalf("after the close: status %d body %q errors %v", o.status, o.body, o.errs)
	}
}

func TestClientAgentDestroyFailsRequestsInFlight(t *testing.T) {
	host, port, _ := rawServer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	a := NewAgent(AgentOptions{Loops: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer a.Destroy()
	req, _ := Request(RequestOptions{Host: host, Port: port, Agent: a}, nil)
	bound := make(chan struct{})
	req.OnSocket(func(*Socket) { close(bound) })
	var errs []error
	done := make(chan struct{})
	req.OnError(func(err error) { errs = append(errs, err) })
	req.OnClose(func() { close(done) })
	req.End(nil, nil)
	<-bound
	a.Destroy()
	<-done
	if len(errs) != 1 || !errors.Is(errs[0], ErrAgentDestroyed) {
		t.Fatalf("errors %v; want ErrAgentDestroyed once", errs)
	}
}

// TestClientAbortRacingStaleConnection: Abort called while the server
// resets the kept connection the request went out on (the loop held so
// that both reach it together) ends the request with 'abort' and 'close',
// never an error, a response or a retry on a new connection. (gnet runs
// the Abort's task before it reads the reset, so this does not reach the
// other order, where a hang-up is seen first: there the request's stop
// mark keeps retry from sending it again; see ClientRequest.retry.)
func TestClientAbortRacingStaleConnection(t *testing.T) {
	got, hangup := make(chan struct{}, 1), make(chan struct{})
	host, port, conns := rawServer(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for i := 0; ; i++ {
			if readHead(r) != nil {
				return
			}
			if i == 1 { // the second request on a kept connection: hang up
				got <- struct{}{}
				<-hangup
				c.(*net.TCPConn).SetLinger(0)
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	for round := 0; round < 20; round++ {
		a := NewAgent(AgentOptions{Loops: 1, MaxSockets: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if o := fetch(t, RequestOptions{Host: host, Port: port, Agent: a}, nil); o.status != 200 {
			t.Fatal(o.errs)
		}
		req, _ := Request(RequestOptions{Host: host, Port: port, Agent: a}, nil)
		socks := make(chan *Socket, 1)
		req.OnSocket(func(s *Socket) { socks <- s })
		var mu sync.Mutex
		var events []string
		note := func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }
		req.OnAbort(func() { note("abort") })
		req.OnResponse(func(*IncomingMessage) { note("response") })
		req.OnError(func(error) { note("error") })
		done := make(chan struct{})
		req.OnClose(func() { note("close"); close(done) })
		req.End(nil, nil)
		<-got // the server has the request and will not answer it
		sock := <-socks
		held, release := make(chan struct{}), make(chan struct{})
		if err := sock.pc.Submit(sock.gen, func() { close(held); <-release }); err != nil {
			t.Fatal(err)
		}
		<-held
		hangup <- struct{}{} // the server resets the connection while the loop is held
		req.Abort()
		close(release)
		<-done
		a.Destroy()
		mu.Lock()
		ev := strings.Join(events, " ")
		mu.Unlock()
		if ev != "abort close" {
			t.Fatalf("round %d: events %q; want \"abort close\"", round, ev)
		}
	}
	_ = conns
}

// TestClientConnectionClosingInsideEnd: a request waiting for the agent's
// only socket is sent from the loop as the response before it arrives,
// with the server's reset right behind it in the same read; the write of
// the waiting request can fail and close the connection inside End. Either
// way End's callback runs once, 'finish' at most once and never after
// 'close': a GET goes again on a new connection and succeeds, a POST fails
// with its callback told why. The loop is held (a response callback of
// another request waiting on a channel) while the server answers and
// resets, so that both reach the client before it reads either.
func TestClientConnectionClosingInsideEnd(t *testing.T) {
	for _, method := range []string{"POST", "GET"} {
		t.Run(method, func(t *testing.T) {
			gotFirst, release, written := make(chan struct{}), make(chan struct{}), make(chan struct{})
			var first atomic.Bool
			host, port, _ := rawServer(t, func(c net.Conn) {
				r := bufio.NewReader(c)
				if first.CompareAndSwap(false, true) {
					if readHead(r) != nil {
						return
					}
					close(gotFirst)
					<-release
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
					c.(*net.TCPConn).SetLinger(0)
					c.Close() // a reset right behind the response
					close(written)
					return
				}
				for readHead(r) == nil {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			})
			_, holdPort, _ := rawServer(t, func(c net.Conn) {
				if readHead(bufio.NewReader(c)) == nil {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
					io.Copy(io.Discard, c)
				}
			})
			a := testAgent(t, AgentOptions{Loops: 1, MaxSockets: 1})
			r1, _ := Request(RequestOptions{Host: host, Port: port, Agent: a}, nil)
			r1.End(nil, nil)
			<-gotFirst

			var mu sync.Mutex
			var events []string
			var endErrs []error
			note := func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }
			closed, called := make(chan struct{}), make(chan struct{})
			r2, _ := Request(RequestOptions{Host: host, Port: port, Method: method, Agent: a}, func(res *IncomingMessage) { note("response") })
			r2.OnFinish(func() { note("finish") })
			r2.OnError(func(error) { note("error") })
			r2.OnClose(func() { note("close"); close(closed) })
			r2.End(nil, func(err error) {
				mu.Lock()
				endErrs = append(endErrs, err)
				mu.Unlock()
				if len(endErrs) == 1 {
					close(called)
				}
			})

			held, hold := make(chan struct{}), make(chan struct{})
			rh, _ := Request(RequestOptions{Host: host, Port: holdPort, Agent: a}, func(*IncomingMessage) {
				close(held)
				<-hold // the loop waits here
			})
			rh.End(nil, nil)
			<-held
			close(release)
			<-written
			close(hold)
			<-closed
			<-called
			// One more request through the same loop: whatever the first
			// ones still had to do on it is done once it closes.
			last := make(chan struct{})
			r3, _ := Request(RequestOptions{Host: host, Port: port, Agent: a}, nil)
			r3.OnClose(func() { close(last) })
			r3.End(nil, nil)
			<-last

			mu.Lock()
			defer mu.Unlock()
			got := strings.Join(events, " ")
			closeAt := strings.Index(got, "close")
			if len(endErrs) != 1 || strings.Count(got, "finish") > 1 || strings.LastIndex(got, "finish") > closeAt {
				t.Fatalf("events %q, End callback %v; want the callback once, 'finish' at most once and before 'close'", got, endErrs)
			}
			if method == "GET" && (endErrs[0] != nil || got != "finish response close") {
				t.Fatalf("GET: events %q, End callback %v; want it sent again and answered", got, endErrs)
			}
			if method == "POST" && (endErrs[0] == nil && !strings.Contains(got, "response") || strings.Contains(got, "error") == strings.Contains(got, "response")) {
				t.Fatalf("POST: events %q, End callback %v; want an answer, or an error its callback heard too", got, endErrs)
			}
		})
	}
}

// TestClientHangUpByResetSaysSo: a server that resets the connection
// before its answer makes the request fail with ErrSocketHangUp that
// also matches the reset (errors.Is ECONNRESET) and names it, as Node's
// "read ECONNRESET"; a server that closes cleanly gives the plain hang-up.
func TestClientHangUpByResetSaysSo(t *testing.T) {
	host, port, _ := rawServer(t, func(c net.Conn) {
		if readHead(bufio.NewReader(c)) != nil {
			return
		}
		_ = c.(*net.TCPConn).SetLinger(0) // the close sends a reset
	})
	o := fetch(t, RequestOptions{Host: host, Port: port, Agent: testAgent(t, AgentOptions{})}, nil)
	if len(o.errs) != 1 || !errors.Is(o.errs[0], ErrSocketHangUp) || !errors.Is(o.errs[0], syscall.ECONNRESET) ||
		!strings.Contains(o.errs[0].Error(), "reset") {
		t.Fatalf("errors %v; want one hang-up that is the reset", o.errs)
	}
	host, port, _ = rawServer(t, func(c net.Conn) { readHead(bufio.NewReader(c)) })
	o = fetch(t, RequestOptions{Host: host, Port: port, Agent: testAgent(t, AgentOptions{})}, nil)
	if len(o.errs) != 1 || o.errs[0].Error() != ErrSocketHangUp.Error() {
		t.Fatalf("errors %v; want the plain hang-up", o.errs)
	}
}
