package api

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// size picks the short figure, or the full one under LOOPHTTP_FULL=1 (see
// "Reliability tests" in README.md).
func size(short, full int) int {
	if os.Getenv("LOOPHTTP_FULL") != "" {
		return full
	}
	return short
}

// TestReliabilityLateResponsesRace: handlers hand every response to a
// timer that finishes it 0 to 60 ms later, from its own goroutine, while
// clients vanish (with a reset, after the head, or after the whole
// response), a 30 ms idle timeout (turned off by some responses) and a 50 ms
// keep-alive timeout close connections that wait, some
// responses are ended twice from two goroutines at once, and the server
// is closed in the middle. Run under -race. No panic or race; every Write
// and End callback is called exactly once (End's only when End accepted
// the call); every response hears 'close' exactly once; nothing stays open.
func TestReliabilityLateResponsesRace(t *testing.T) {
	var requests, closes, extraCloses, wantCbs, cbs atomic.Int64
	opts := quiet()
	opts.KeepAliveTimeout = 50 * time.Millisecond // a client waiting for the close
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		i := requests.Add(1)
		var once atomic.Bool
		res.OnClose(func() {
			if !once.CompareAndSwap(false, true) {
				extraCloses.Add(1)
			}
			closes.Add(1)
		})
		cb := func(error) { cbs.Add(1) }
		time.AfterFunc(time.Duration(i%61)*time.Millisecond, func() {
			wantCbs.Add(1)
			res.Write([]byte("part,"), cb)
			if i%7 == 0 {
				res.SetTimeout(time.Duration(i%5)*time.Millisecond, nil)
			}
			if i%5 == 0 { // two goroutines race to end it
				var wg sync.WaitGroup
				for k := 0; k < 2; k++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						wantCbs.Add(1)
						if err := res.End([]byte("end"), cb); err != nil {
							wantCbs.Add(-1) // refused at once: no callback
						}
					}()
				}
				wg.Wait()
				return
			}
			wantCbs.Add(1)
			if err := res.End([]byte("end"), cb); err != nil {
				t.Errorf("End: %v", err)
				wantCbs.Add(-1)
			}
		})
	}, opts)
	srv.SetTimeout(30*time.Millisecond, nil)
	addr := listen(t, srv)

	clients := size(200, 20_000)
	const parallel = 16
	var next atomic.Int64
	var wg sync.WaitGroup
	closeAt := int64(clients * 3 / 4)
	closed := make(chan error, 1)
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(clients) {
					return
				}
				if i == closeAt {
					srv.Close(func(err error) { closed <- err })
				}
				lateClient(addr, i)
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not close in 10 s")
	}
	deadline := time.Now().Add(5 * time.Second)
	for closes.Load() != requests.Load() || cbs.Load() != wantCbs.Load() {
		if time.Now().After(deadline) {
			break
		}
		runtime.Gosched()
		time.Sleep(5 * time.Millisecond) // waiting for timers and callbacks, not synchronising
	}
	t.Logf("%d requests, %d responses closed, %d of %d callbacks", requests.Load(), closes.Load(), cbs.Load(), wantCbs.Load())
	if requests.Load() == 0 {
		t.Fatal("no request reached the handler")
	}
	if closes.Load() != requests.Load() || extraCloses.Load() != 0 {
		t.Fatalf("%d requests, %d 'close' events (%d repeated); want one each", requests.Load(), closes.Load(), extraCloses.Load())
	}
	if cbs.Load() != wantCbs.Load() {
		t.Fatalf("%d callbacks called; want %d", cbs.Load(), wantCbs.Load())
	}
}

// lateClient makes one request and leaves in one of four ways: a reset
// at once, a reset after the head, after the whole response, or waiting
// until the server closes (the idle timeout).
func lateClient(addr string, i int64) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return // the server is closing
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: a\r\n\r\n", i); err != nil {
		return
	}
	r := bufio.NewReader(c)
	switch i % 4 {
	case 0:
		c.(*net.TCPConn).SetLinger(0)
	case 1:
		if _, err := http.ReadResponse(r, nil); err == nil {
			c.(*net.TCPConn).SetLinger(0)
		}
	case 2:
		if resp, err := http.ReadResponse(r, nil); err == nil {
			io.Copy(io.Discard, resp.Body)
		}
	case 3:
		io.Copy(io.Discard, r)
	}
}
