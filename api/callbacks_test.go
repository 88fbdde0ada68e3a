package api

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loophttp/loophttp/poller"
)

// TestCallbacksOfAFinishedExchange: the callbacks that calls through the
// handles of a finished exchange owe (End's and Write's callbacks, late
// 'close' and 'finish' listeners) run once each, on the connection's loop
// (its goroutine, told by poller.CallerID), never on a goroutine of their
// own, while the loop runs; once the server has stopped, once each still.
func TestCallbacksOfAFinishedExchange(t *testing.T) {
	var loopID atomic.Uintptr
	held := make(chan [2]any, 1)
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		loopID.Store(poller.CallerID())
		if req.URL == "/keep" {
			held <- [2]any{req, res}
		}
		res.End([]byte("ok"), nil)
	}, quiet())
	addr := listen(t, srv)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	roundTrip := func(path string) {
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	roundTrip("/keep")
	roundTrip("/next") // the first exchange is over and its state serves this one
	h := <-held
	req, res := h[0].(*IncomingMessage), h[1].(*ServerResponse)

	calls := func() (ran chan uintptr, total int) {
		ran = make(chan uintptr, 16)
		tid := func() { ran <- poller.CallerID() }
		res.End(nil, func(err error) {
			if err != ErrConnectionGone {
				t.Errorf("End's callback: %v; want ErrConnectionGone", err)
			}
			tid()
		})
		res.Write([]byte("x"), func(err error) {
			if err != ErrConnectionGone {
				t.Errorf("Write's callback: %v; want ErrConnectionGone", err)
			}
			tid()
		})
		res.OnClose(tid)
		res.OnFinish(tid)
		req.OnClose(tid)
		req.OnEnd(tid)
		return ran, 6
	}
	ran, n := calls()
	for i := 0; i < n; i++ {
		select {
		case got := <-ran:
			if want := loopID.Load(); got != want {
				t.Errorf("callback %d ran on goroutine %#x; want the loop's, %#x", i, got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d callbacks ran", i, n)
		}
	}

	c.Close()
	done := make(chan error)
	srv.Close(func(err error) { done <- err })
	<-done
	ran, n = calls() // no loop now: each still runs, once
	for i := 0; i < n; i++ {
		select {
		case <-ran:
		case <-time.After(10 * time.Second):
			t.Fatalf("after the server stopped, %d of %d callbacks ran", i, n)
		}
	}
	select {
	case <-ran:
		t.Fatal("a callback ran twice")
	default:
	}
}

// TestWorkerCallbacksAfterStop: with Options.Workers, a callback owed
// after the server stopped (its worker pool with it) still runs, once.
func TestWorkerCallbacksAfterStop(t *testing.T) {
	opts := quiet()
	opts.Workers = 2
	held := make(chan *ServerResponse, 1)
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		res.End([]byte("ok"), nil)
		held <- res
	}, opts)
	resp, _ := get(t, listen(t, srv), "/")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	res := <-held
	done := make(chan error)
	srv.Close(func(err error) { done <- err })
	<-done
	ran := make(chan error, 2)
	res.Write([]byte("late"), func(err error) { ran <- err })
	select {
	case err := <-ran:
		if err == nil {
			t.Error("a Write after End succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the callback of a Write after the server stopped never ran")
	}
	select {
	case <-ran:
		t.Fatal("the callback ran twice")
	default:
	}
}
