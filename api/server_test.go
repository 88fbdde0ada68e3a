package api

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func quiet() *Options {
	return &Options{Loops: 2, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// listen starts srv on a free loopback port and closes it at the end of
// the test, waiting for the close callback.
func listen(t *testing.T, srv *Server) string {
	t.Helper()
	if err := srv.Listen(0, "127.0.0.1", 0, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Close waits for open connections, as Node's does: drop the
		// client's idle keep-alive ones first.
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		done := make(chan error, 1)
		srv.Close(func(err error) { done <- err })
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, ErrNotRunning) {
				t.Errorf("Close: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("server did not close")
		}
	})
	a := srv.Address()
	return net.JoinHostPort(a.Address, fmt.Sprint(a.Port))
}

// get fetches path from addr with net/http's client and returns the
// response and its whole body; it fails the test on a transport error.
func get(t *testing.T, addr, path string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// roundTrip sends raw on a new connection, half-closes, and returns all
// that came back.
func roundTrip(t *testing.T, addr, raw string) string {
	t.Helper()
	c := dialRaw(t, addr, raw)
	c.(*net.TCPConn).CloseWrite()
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestHelloAndKeepAlive(t *testing.T) {
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		res.SetHeader("Content-Type", "text/plain")
		res.End([]byte("hello "+req.Method+" "+req.URL), nil)
	}, quiet())
	addr := listen(t, srv)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	for i := 0; i < 3; i++ {
		resp, err := client.Get("http://" + addr + "/x?y=" + fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("hello GET /x?y=%d", i); string(b) != want || resp.Header.Get("Content-Type") != "text/plain" {
			t.Fatalf("got %q %v; want %q", b, resp.Header, want)
		}
	}
}

func TestPostEventOrder(t *testing.T) {
	var mu sync.Mutex
	var events []string
	log := func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }
	done := make(chan struct{})
	srv := CreateServer(nil, quiet())
	srv.OnConnection(func(s *Socket) { log("connection") })
	srv.OnRequest(func(req *IncomingMessage, res *ServerResponse) {
		log("request")
		var body []byte
		req.OnData(func(chunk []byte) { log("data"); body = append(body, chunk...) })
		req.OnEnd(func() {
			log("end")
			res.End(body, func(err error) { log("end callback") })
		})
		res.OnFinish(func() { log("finish") })
		res.OnClose(func() { log("close"); close(done) })
	})
	addr := listen(t, srv)
	out := roundTrip(t, addr, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
	<-done
	if !strings.HasSuffix(out, "\r\n\r\nhello") {
		t.Fatalf("response %q", out)
	}
	mu.Lock()
	got := strings.Join(events, ",")
	mu.Unlock()
	if got != "connection,request,data,end,end callback,finish,close" {
		t.Fatalf("events %s", got)
	}
}

// TestHeaderOperations ports T1: remove an absent header, set, remove,
// get-and-replace, 500 headers, Content-Length 0.
func TestHeaderOperations(t *testing.T) {
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		req.OnEnd(func() {
			res.RemoveHeader("h1")
			res.SetHeader("h1", "h1")
			res.SetHeader("h2", "h2")
			res.SetHeader("h3", "h3")
			res.RemoveHeader("H2")
			if res.GetHeader("H3") == "h3" {
				res.SetHeader("h3", "h3prime")
			}
			for i := 5; i < 505; i++ {
				res.SetHeader(fmt.Sprintf("h%d", i), fmt.Sprintf("h%d", i))
			}
			res.SetHeader("content-length", "0")
			res.End(nil, nil)
		})
	}, quiet())
	addr := listen(t, srv)
	resp, _ := get(t, addr, "/")
	if resp.StatusCode != 200 || resp.Header.Get("h1") != "h1" || resp.Header.Get("h2") != "" ||
		resp.Header.Get("h3") != "h3prime" || resp.Header.Get("h504") != "h504" || resp.ContentLength != 0 {
		t.Fatalf("status %d headers %v", resp.StatusCode, resp.Header)
	}
}

func TestHeaderValidation(t *testing.T) {
	errs := make(chan []error, 1)
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		errs <- []error{
			res.SetHeader("X-Bad", "a\r\nSet-Cookie: evil=1"),
			res.SetHeader("bad name", "v"),
			res.WriteHead(200, "", Header{"X", "a\x00b"}),
		}
		res.End(nil, nil)
	}, quiet())
	addr := listen(t, srv)
	out := roundTrip(t, addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	for i, err := range <-errs {
		if err == nil {
			t.Errorf("call %d accepted an invalid header", i)
		}
	}
	if strings.Contains(out, "evil") {
		t.Fatalf("injected header reached the wire: %q", out)
	}
}

// TestStatusMessage ports T19: a custom reason phrase.
func TestStatusMessage(t *testing.T) {
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		res.StatusCode = 200
		res.StatusMessage = "Custom Message"
		res.End(nil, nil)
	}, quiet())
	addr := listen(t, srv)
	out := roundTrip(t, addr, "GET / HTTP/1.1\r\nConnection: close\r\nHost: a\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 200 Custom Message\r\n") {
		t.Fatalf("got %q", out)
	}
}

func TestWriteHeadMergesAndLastWins(t *testing.T) {
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		res.SetHeader("test", "1")
		res.WriteHead(201, "", Header{"Test", "2"})
		res.WriteHead(202, "Fine", Header{"Head", "Value"})
		if err := res.WriteHead(100, ""); err == nil {
			t.Error("WriteHead(100) accepted: 1xx are interim")
		}
		res.End([]byte("x"), nil)
		if err := res.SetHeader("late", "1"); !errors.Is(err, ErrHeadersSent) {
			t.Errorf("SetHeader after End: %v; want ErrHeadersSent", err)
		}
	}, quiet())
	addr := listen(t, srv)
	resp, _ := get(t, addr, "/")
	if resp.StatusCode != 202 || resp.Status != "202 Fine" || resp.Header.Values("Test")[0] != "2" ||
		len(resp.Header.Values("Test")) != 1 || resp.Header.Get("Head") != "Value" {
		t.Fatalf("%s %v", resp.Status, resp.Header)
	}
}

func TestCompletionFromGoroutine(t *testing.T) {
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		go func() {
			res.SetHeader("X-From", "goroutine")
			res.Write([]byte("part1,"), nil)
			res.End([]byte("part2"), nil)
		}()
	}, quiet())
	addr := listen(t, srv)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get("http://" + addr + "/")
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "part1,part2" || resp.Header.Get("X-From") != "goroutine" {
				t.Errorf("got %q %v", b, resp.Header)
			}
		}()
	}
	wg.Wait()
}

func TestWriteAfterEndReportsError(t *testing.T) {
	got := make(chan error, 2)
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		res.End([]byte("done"), nil)
		res.Write([]byte("late"), func(err error) { got <- err })
		got <- res.End(nil, nil)
	}, quiet())
	addr := listen(t, srv)
	out := roundTrip(t, addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	for i := 0; i < 2; i++ {
		if err := <-got; !errors.Is(err, ErrWriteAfterEnd) {
			t.Fatalf("late call: %v; want ErrWriteAfterEnd", err)
		}
	}
	if strings.Contains(out, "late") {
		t.Fatalf("late write reached the wire: %q", out)
	}
}

func TestResponseAfterClientGone(t *testing.T) {
	held := make(chan *ServerResponse, 1)
	closed := make(chan struct{})
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		res.OnClose(func() { close(closed) })
		held <- res
	}, quiet())
	addr := listen(t, srv)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	res := <-held
	// The client resets: seen at once. (A FIN alone is not read while
	// the answer is owed: a half-closed client still gets it.)
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	<-closed
	errc := make(chan error, 1)
	res.End([]byte("too late"), func(err error) { errc <- err })
	if err := <-errc; !errors.Is(err, ErrConnectionGone) {
		t.Fatalf("End after the client left: %v; want ErrConnectionGone", err)
	}
}

func TestClientErrorGets400(t *testing.T) {
	gotErr := make(chan error, 1)
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) { res.End(nil, nil) }, quiet())
	srv.OnClientError(func(err error, s *Socket) { gotErr <- err })
	addr := listen(t, srv)
	out := roundTrip(t, addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\nGARBAGE\r\n\r\n")
	if !strings.Contains(out, "HTTP/1.1 400 Bad Request\r\n") || !strings.Contains(out, "Connection: close") {
		t.Fatalf("got %q", out)
	}
	select {
	case err := <-gotErr:
		if err == nil {
			t.Fatal("nil client error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnClientError did not fire")
	}
}

func TestHeadAndNoBodyStatuses(t *testing.T) {
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		if req.URL == "/204" {
			res.WriteHead(204, "")
		}
		res.End([]byte("body"), nil)
	}, quiet())
	addr := listen(t, srv)
	out := roundTrip(t, addr, "HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET /204 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if strings.Contains(out, "body") || strings.Count(out, "HTTP/1.1 ") != 2 || !strings.Contains(out, "204 No Content") {
		t.Fatalf("got %q", out)
	}
}

func TestIncomingHeaders(t *testing.T) {
	got := make(chan *IncomingMessage, 1)
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		got <- req
		res.End(nil, nil)
	}, quiet())
	addr := listen(t, srv)
	roundTrip(t, addr, "GET /p HTTP/1.0\r\nHost: a\r\nHost2: b\r\nAccept: x\r\nACCEPT: y\r\nCookie: a=1\r\ncookie: b=2\r\nSet-Cookie: s1\r\nSet-Cookie: s2\r\n\r\n")
	req := <-got
	h := req.Headers()
	if req.HTTPVersion != "1.0" || h["accept"] != "x, y" || h["cookie"] != "a=1; b=2" || h["host"] != "a" ||
		req.Header("ACCEPT") != "x, y" || len(req.HeaderValues("set-cookie")) != 2 || req.RawHeaders[6] != "ACCEPT" {
		t.Fatalf("version %q headers %v raw %q", req.HTTPVersion, h, req.RawHeaders)
	}
}

func TestListenErrorAndAddress(t *testing.T) {
	a := CreateServer(nil, quiet())
	addr := listen(t, a)
	if a.Address().Port == 0 || a.Address().Family != "IPv4" {
		t.Fatalf("address %+v", a.Address())
	}
	b := CreateServer(nil, quiet())
	onErr := make(chan error, 1)
	b.OnError(func(err error) { onErr <- err })
	_, port, _ := net.SplitHostPort(addr)
	var p int
	fmt.Sscan(port, &p)
	err := b.Listen(p, "127.0.0.1", 0, nil)
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("second listen: %v; want EADDRINUSE", err)
	}
	if heard := <-onErr; !errors.Is(heard, syscall.EADDRINUSE) {
		t.Fatalf("OnError heard %v; want EADDRINUSE", heard)
	}
}

func TestCloseWaitsForConnections(t *testing.T) {
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) { res.End([]byte("ok"), nil) }, quiet())
	if err := srv.Listen(0, "127.0.0.1", 0, nil); err != nil {
		t.Fatal(err)
	}
	a := srv.Address()
	c, err := net.Dial("tcp", net.JoinHostPort(a.Address, fmt.Sprint(a.Port)))
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	readBody(t, r)
	closed := make(chan error, 1)
	srvClose := make(chan struct{})
	srv.OnClose(func() { close(srvClose) })
	srv.Close(func(err error) { closed <- err })
	// A request on the open keep-alive connection (idle for less than
	// the shutdown's quiet period) is still answered after Close (with
	// Connection: close once the stop has begun: Close starts it on a
	// goroutine of its own).
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	readBody(t, r)
	select {
	case <-closed:
		t.Fatal("Close callback before the last connection closed")
	default:
	}
	c.Close()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close callback never came")
	}
	<-srvClose
	notRunning := make(chan error, 1)
	srv.Close(func(err error) { notRunning <- err })
	if err := <-notRunning; !errors.Is(err, ErrNotRunning) {
		t.Fatalf("second Close: %v; want ErrNotRunning", err)
	}
}

func readBody(t *testing.T, r *bufio.Reader) {
	t.Helper()
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
}

// TestServerTimeout ports T16: the handler never answers; the server
// timeout, set after Listen and before any connection, fires its listener,
// which destroys the socket.
func TestServerTimeout(t *testing.T) {
	fired := make(chan struct{}, 1)
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {}, quiet())
	addr := listen(t, srv)
	srv.SetTimeout(200*time.Millisecond, func(s *Socket) {
		fired <- struct{}{}
		s.Destroy()
	})
	start := time.Now()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n") // no half-close: it would close the connection
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	select {
	case <-fired:
	default:
		t.Fatal("timeout listener did not run")
	}
	if out != "" || time.Since(start) > 5*time.Second {
		t.Fatalf("got %q after %v", out, time.Since(start))
	}
}

// TestStaleHandlesAfterReuse: a connection reuses its exchange state for
// the next request, so a request and response kept from an earlier
// exchange must neither act on the new one nor change under the user.
func TestStaleHandlesAfterReuse(t *testing.T) {
	type kept struct {
		req *IncomingMessage
		res *ServerResponse
		url string
	}
	keptc := make(chan kept, 2)
	late := make(chan string, 8)
	endErr := make(chan error, 1)
	var endOwed atomic.Bool
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		if req.URL == "/second" {
			k := <-keptc
			// The first exchange's handles, used during the second.
			// (Its state may be serving another request by now, or
			// waiting in the pool: either way the calls fail.)
			// The callback runs on the loop, after this handler: the
			// test's goroutine reads it.
			if err := k.res.End([]byte("stale"), func(err error) { endErr <- err }); err != nil && !errors.Is(err, ErrWriteAfterEnd) {
				t.Errorf("stale End: %v", err)
			} else if err == nil {
				endOwed.Store(true)
			}
			if err := k.res.SetHeader("X-Stale", "1"); !errors.Is(err, ErrConnectionGone) && !errors.Is(err, ErrHeadersSent) {
				t.Errorf("stale SetHeader: %v", err)
			}
			if k.res.Write([]byte("stale"), nil) {
				t.Error("stale Write accepted")
			}
			// Its events have fired: listeners added now run at once,
			// once each, and hear nothing of the second exchange.
			k.req.OnEnd(func() { late <- "end" })
			k.res.OnFinish(func() { late <- "finish" })
			k.res.OnDrain(func() { late <- "drain" }) // not fired: never runs
			if k.req.URL != k.url || k.req.Method != "GET" {
				t.Errorf("the first request changed: %q %q", k.req.Method, k.req.URL)
			}
		}
		res.SetHeader("Content-Type", "text/plain")
		res.End([]byte(req.URL), nil)
		if req.URL == "/first-with-a-longer-path" {
			keptc <- kept{req, res, req.URL}
		}
	}, quiet())
	addr := listen(t, srv)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for _, path := range []string{"/first-with-a-longer-path", "/second"} {
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if string(body) != path || resp.Header.Get("X-Stale") != "" {
			t.Fatalf("%s: body %q, X-Stale %q", path, body, resp.Header.Get("X-Stale"))
		}
	}
	c.Close()
	if endOwed.Load() {
		select {
		case err := <-endErr:
			if !errors.Is(err, ErrConnectionGone) {
				t.Errorf("stale End's callback: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("stale End's callback never ran")
		}
	}
	got := map[string]int{}
	for i := 0; i < 2; i++ {
		select {
		case e := <-late:
			got[e]++
		case <-time.After(10 * time.Second):
			t.Fatalf("late listeners of the stale handles: got %v; want end and finish", got)
		}
	}
	if got["end"] != 1 || got["finish"] != 1 || len(late) != 0 {
		t.Errorf("late listeners of the stale handles: got %v (and %d more); want end and finish once", got, len(late))
	}
}

// TestMessageCopies serves pipelined requests of different shapes on one
// connection, with and without Options.ReuseMessages: each handler sees
// its own request (heads longer than the inline storage, more fields than
// the inline list, leading empty lines and an empty last field included).
// That the objects are reused is shown by TestKeepAliveAllocs (no
// allocation per request).
func TestMessageCopies(t *testing.T) {
	for _, reuse := range []bool{false, true} {
		t.Run(fmt.Sprint("reuse=", reuse), func(t *testing.T) { testMessageCopies(t, reuse) })
	}
}

func testMessageCopies(t *testing.T, reuse bool) {
	opts := quiet()
	opts.ReuseMessages = reuse
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		res.SetHeader("Content-Type", "text/plain")
		res.End([]byte(fmt.Sprintf("%s %s %d %s", req.Method, req.URL, len(req.RawHeaders)/2, req.Header("x-tag"))), nil)
	}, opts)
	addr := listen(t, srv)
	long := strings.Repeat("v", 300)
	var many strings.Builder
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&many, "F%d: %d\r\n", i, i)
	}
	reqs := []struct{ raw, want string }{
		{"GET /a HTTP/1.1\r\nHost: h\r\nX-Tag: one\r\n\r\n", "GET /a 2 one"},
		{"POST /bb?q=" + long + " HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nX-Tag: " + long + "\r\n\r\n", "POST /bb?q=" + long + " 3 " + long},
		{"DELETE /c HTTP/1.1\r\nHost: h\r\n" + many.String() + "X-Tag: three\r\n\r\n", "DELETE /c 22 three"},
		{"\r\nPATCH /e HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\nX-Tag:\r\n\r\n", "PATCH /e 3 "},
		{"GET /d HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", "GET /d 2 "},
	}
	var raw strings.Builder
	for _, r := range reqs {
		raw.WriteString(r.raw)
	}
	c := dialRaw(t, addr, raw.String())
	br := bufio.NewReader(c)
	for i, r := range reqs {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != r.want {
			t.Errorf("response %d: %q, want %q", i, b, r.want)
		}
	}
}

// TestRetain: under Options.ReuseMessages, a response retained by its
// handler can be completed later from another goroutine, and its request
// keeps its strings after the connection has served others.
func TestRetain(t *testing.T) {
	opts := quiet()
	opts.ReuseMessages = true
	type held struct {
		req *IncomingMessage
		res *ServerResponse
	}
	first := make(chan held, 1)
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		if req.URL == "/later" {
			res.Retain()
			first <- held{req, res}
			return
		}
		res.End([]byte("now "+req.URL), nil)
	}, opts)
	addr := listen(t, srv)
	c := dialRaw(t, addr, "GET /later HTTP/1.1\r\nHost: h\r\n\r\n")
	br := bufio.NewReader(c)
	h := <-first
	go h.res.End([]byte("later "+h.req.URL), nil)
	readOne := func(want string) {
		t.Helper()
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != want {
			t.Fatalf("body %q, want %q", b, want)
		}
	}
	readOne("later /later")
	for _, p := range []string{"/a", "/b"} {
		if _, err := c.Write([]byte("GET " + p + " HTTP/1.1\r\nHost: h\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		readOne("now " + p)
	}
	if h.req.URL != "/later" {
		t.Errorf("retained request's URL is now %q", h.req.URL)
	}
	if err := h.res.SetHeader("X", "y"); !errors.Is(err, ErrConnectionGone) {
		t.Errorf("SetHeader on the finished retained response: %v, want ErrConnectionGone", err)
	}
}

// TestIncomingHeadCopies: every size of request head, on both sides of the
// bounds of each message's inline storage (newMessage), is copied whole,
// and the copies of earlier requests on the connection stay intact.
func TestIncomingHeadCopies(t *testing.T) {
	type head struct {
		method, url string
		raw         []string
	}
	// mk returns a head of n fields whose copy (headBytes) takes size bytes.
	mk := func(method string, n, size int) head {
		h := head{method: method, url: "/"}
		h.raw = append(h.raw, "Host", "v") // RFC 9112 §3.2: a 1.1 request has one
		for i := 1; i < n; i++ {
			h.raw = append(h.raw, fmt.Sprintf("X-%d", i), "v")
		}
		used := len(method) + len(" ") + len(h.url) + len(" HTTP/1.1") // headBytes: method to last value
		for j := 0; j < len(h.raw); j += 2 {
			used += len("\r\n") + len(h.raw[j]) + len(": ") + len(h.raw[j+1])
		}
		if size < used {
			t.Fatalf("a head of %d fields takes at least %d bytes", n, used)
		}
		h.url += strings.Repeat("u", size-used)
		return h
	}
	var heads []head
	for _, b := range []struct{ fields, size int }{{2, 48}, {3, 48}, {2, 49}, {5, 144}, {6, 144}, {5, 145}, {8, 304}, {9, 304}, {8, 305}, {40, 2000}} {
		heads = append(heads, mk("GET", b.fields, b.size), mk("PATCH", b.fields, b.size))
	}
	got := make(chan *IncomingMessage, len(heads))
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		got <- req
		res.End(nil, nil)
	}, quiet())
	addr := listen(t, srv)
	var raw strings.Builder
	for i, h := range heads {
		fmt.Fprintf(&raw, "%s %s HTTP/1.1\r\n", h.method, h.url)
		for j := 0; j < len(h.raw); j += 2 {
			fmt.Fprintf(&raw, "%s: %s\r\n", h.raw[j], h.raw[j+1])
		}
		if i == len(heads)-1 {
			raw.WriteString("Connection: close\r\n")
			heads[i].raw = append(heads[i].raw, "Connection", "close")
		}
		raw.WriteString("\r\n")
	}
	if out := roundTrip(t, addr, raw.String()); strings.Count(out, "HTTP/1.1 200") != len(heads) {
		t.Fatalf("responses %q", out)
	}
	var reqs []*IncomingMessage
	for range heads {
		reqs = append(reqs, <-got)
	}
	for i, h := range heads {
		req := reqs[i]
		if req.Method != h.method || req.URL != h.url || !slices.Equal(req.RawHeaders, h.raw) {
			t.Errorf("request %d: got %s %q %q; want %s %q %q", i, req.Method, req.URL, req.RawHeaders, h.method, h.url, h.raw)
		}
	}
}

// TestConflictingFramingHeaders: Content-Length and Transfer-Encoding both
// set on a response: the engine leaves the later one out (a peer could
// not tell where the body ends), and the fields after it still go out.
func TestConflictingFramingHeaders(t *testing.T) {
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		res.SetHeader("Content-Length", "2")
		res.SetHeader("Transfer-Encoding", "chunked")
		res.SetHeader("X-After", "1")
		res.End([]byte("ok"), nil)
	}, quiet())
	out := roundTrip(t, listen(t, srv), "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
	if !strings.Contains(out, "Content-Length: 2\r\n") || !strings.Contains(out, "X-After: 1\r\n") ||
		strings.Contains(out, "Transfer-Encoding") || !strings.HasSuffix(out, "\r\n\r\nok") {
		t.Fatalf("response %q", out)
	}
}

// TestLateCallsRaceRetire: response methods called from another goroutine
// while the loop retires the exchange and reuses it for the next request
// of the connection read the exchange only while it is theirs (run under
// -race; a stale call used to read the exchange's socket as the loop
// cleared it).
func TestLateCallsRaceRetire(t *testing.T) {
	const requests = 100
	done := make(chan struct{}, requests) // one per request's goroutine
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; i < 500; i++ {
				res.SetTimeout(time.Minute, nil)
				req.Header("host")
			}
		}()
		res.End([]byte("ok"), nil)
	}, quiet())
	c := dialRaw(t, listen(t, srv), "")
	br := bufio.NewReader(c)
	for i := 0; i < requests; i++ {
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if b, _ := io.ReadAll(resp.Body); string(b) != "ok" {
			t.Fatalf("response %d: %q", i, b)
		}
	}
	for range requests {
		<-done
	}
}

// TestExchangeStateClearedForNextRequest: a connection's exchange state is
// pooled and serves later requests; what one response set (headers,
// status, listeners) must not reach the next one that takes the state.
// Each even request leaves everything set; the odd one after it sets
// nothing. The test checks that the state really was reused at least once.
func TestExchangeStateClearedForNextRequest(t *testing.T) {
	var mu sync.Mutex
	var states []*resState
	finished, ended := 0, 0
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		mu.Lock()
		states = append(states, res.st)
		mu.Unlock()
		if req.URL == "/set" {
			res.SetHeader("X-Set", "1")
			res.WriteHead(201, "Made")
			res.OnFinish(func() { finished++ })
			req.OnEnd(func() { ended++ })
		}
		res.End([]byte(req.URL), nil)
	}, quiet())
	c, err := net.Dial("tcp", listen(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	const pairs = 8
	for range pairs {
		for _, path := range []string{"/set", "/plain"} {
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			want := 200
			if path == "/set" {
				want = 201
			}
			if resp.StatusCode != want || string(body) != path || (path == "/plain") != (resp.Header.Get("X-Set") == "") {
				t.Fatalf("%s: %d %q, X-Set %q", path, resp.StatusCode, body, resp.Header.Get("X-Set"))
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if finished != pairs || ended != pairs {
		t.Errorf("'finish' fired %d times, 'end' %d; want %d each (a listener outlived its exchange)", finished, ended, pairs)
	}
	reused := 0
	for i := 1; i < len(states); i++ {
		if states[i] == states[i-1] {
			reused++
		}
	}
	if reused == 0 {
		t.Error("no request reused the state of the one before: the test checked nothing")
	}
}
