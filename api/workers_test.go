package api

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestWorkersDoNotBlockTheLoop: with a worker pool, a handler that blocks
// does not keep the (single) loop from serving another connection, and the
// request's events still arrive in order on the workers.
func TestWorkersDoNotBlockTheLoop(t *testing.T) {
	release := make(chan struct{})
	opts := quiet()
	opts.Loops, opts.Workers = 1, 2
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		var body []byte
		req.OnData(func(c []byte) { body = append(body, c...) })
		req.OnEnd(func() {
			if req.URL == "/block" {
				<-release // blocking work, allowed on a worker
			}
			res.End(append([]byte(req.URL+":"), body...), nil)
		})
	}, opts)
	addr := listen(t, srv)

	blocked := make(chan string, 1)
	go func() {
		resp, err := http.Post("http://"+addr+"/block", "text/plain", strings.NewReader("slow"))
		if err != nil {
			blocked <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		blocked <- string(b)
	}()
	for i := 0; i < 3; i++ {
		resp, err := http.Post("http://"+addr+"/fast", "text/plain", strings.NewReader(strings.Repeat("x", 100000)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "/fast:"+strings.Repeat("x", 100000) {
			t.Fatalf("fast request while another blocks: %d bytes", len(b))
		}
	}
	select {
	case got := <-blocked:
		t.Fatalf("blocked request finished early: %q", got)
	default:
	}
	close(release)
	select {
	case got := <-blocked:
		if got != "/block:slow" {
			t.Fatalf("blocked request got %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("blocked request never finished")
	}
}

// TestWorkersGetOwnCopies: body chunks and trailers reach worker callbacks
// as copies that stay valid after the loop moved on.
func TestWorkersGetOwnCopies(t *testing.T) {
	opts := quiet()
	opts.Workers = 1
	got := make(chan string, 1)
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		var body []byte
		req.OnData(func(c []byte) { body = append(body, c...) })
		req.OnEnd(func() {
			got <- string(body) + "|" + req.Trailer("x-sum")
			res.End(nil, nil)
		})
	}, opts)
	addr := listen(t, srv)
	// No half-close: gnet takes it as a close, and the body is still
	// waiting for the worker.
	dialRaw(t, addr, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n")
	select {
	case g := <-got:
		if g != "abcde|5" {
			t.Fatalf("got %q", g)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnEnd never ran on the worker")
	}
}
