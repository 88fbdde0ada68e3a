package api

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestServerLateListeners: the request's 'end' and 'close' and the
// response's 'finish' and 'close', listened to after they fired, from the
// exchange's own callbacks or from another goroutine once the exchange is
// over (its state then serving later requests of the connection), run at
// once, once each, and never for a later exchange. With and without a
// worker pool.
func TestServerLateListeners(t *testing.T) {
	for _, workers := range []int{0, 2} {
		t.Run(fmt.Sprint("workers=", workers), func(t *testing.T) {
			opts := quiet()
			opts.Workers = workers
			serverLateListeners(t, opts)
		})
	}
}

func serverLateListeners(t *testing.T, opts *Options) {
	const rounds = 50
	type counts struct{ inEnd, inClose, reqEnd, reqClose, resFinish, resClose atomic.Int64 }
	var c [rounds]counts
	all := make(chan int, 6*rounds)
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		var i int
		fmt.Sscanf(req.URL, "/%d", &i)
		k := &c[i]
		req.OnEnd(func() {
			req.OnEnd(func() { k.inEnd.Add(1); all <- i }) // 'end' is firing: late
			res.End([]byte("ok"), nil)
		})
		res.OnClose(func() {
			req.OnClose(func() { k.inClose.Add(1); all <- i }) // 'close' is firing: late
			go func() {                                        // the exchange is over
				req.OnEnd(func() { k.reqEnd.Add(1); all <- i })
				req.OnClose(func() { k.reqClose.Add(1); all <- i })
				res.OnFinish(func() { k.resFinish.Add(1); all <- i })
				res.OnClose(func() {
					k.resClose.Add(1)
					all <- i
				})
			}()
		})
	}, opts)
	addr := listen(t, srv)
	for i := 0; i < rounds; i++ { // one keep-alive connection: exchanges are reused
		resp, body := get(t, addr, fmt.Sprintf("/%d", i))
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("round %d: %d %q", i, resp.StatusCode, body)
		}
		for j := 0; j < 6; j++ { // the six late listeners
			select {
			case <-all:
			case <-time.After(10 * time.Second):
				t.Fatalf("round %d: %d late listeners ran; want 6", i, j)
			}
		}
	}
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	for i := range c {
		k := &c[i]
		got := [6]int64{k.inEnd.Load(), k.inClose.Load(), k.reqEnd.Load(), k.reqClose.Load(), k.resFinish.Load(), k.resClose.Load()}
		if got != [6]int64{1, 1, 1, 1, 1, 1} {
			t.Errorf("round %d: late end, close (from callbacks), end, close, finish, close (after): %v; want once each", i, got)
		}
	}
}

// TestServerLateErrorListener: a request's 'error' (a body limit passed
// after the response began) reaches a listener added after it fired, from
// the 'close' that follows it, with the error.
func TestServerLateErrorListener(t *testing.T) {
	const limit = 1000
	lateErr := make(chan error, 2)
	opts := quiet()
	opts.Limits.MaxBodySize = limit
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		req.OnData(func(c []byte) { res.Write(c, nil) }) // the head goes out with the first chunk
		req.OnClose(func() { req.OnError(func(err error) { lateErr <- err }) })
	}, opts)
	addr := listen(t, srv)
	c := dialRaw(t, addr, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n200\r\n"+strings.Repeat("a", 0x200)+"\r\n")
	r := bufio.NewReader(c)
	if line, err := r.ReadString('\n'); err != nil || line != "HTTP/1.1 200 OK\r\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	io.WriteString(c, "300\r\n"+strings.Repeat("b", 0x300)+"\r\n0\r\n\r\n")
	io.ReadAll(r) // the server closes
	select {
	case err := <-lateErr:
		var le *BodyLimitError
		if !errors.As(err, &le) || le.Limit != limit {
			t.Fatalf("late OnError heard %v; want the *BodyLimitError", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the late error listener never ran")
	}
	if len(lateErr) != 0 {
		t.Fatal("the late error listener ran twice")
	}
}
