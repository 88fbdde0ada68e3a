package api

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// listenReturns calls Listen and returns its error; it fails the test
// when Listen does not return within 10 s (returnsWithin).
func listenReturns(t *testing.T, srv *Server, port int, cb func()) (err error) {
	t.Helper()
	returnsWithin(t, "Listen", func() { err = srv.Listen(port, "127.0.0.1", 0, cb) })
	return err
}

// TestServerEventsNeverRunInsideListen: 'listening' (Listen's cb and
// OnListening) and 'error' run after Listen has returned, never inside
// it, as Node emits them on a later tick. Each listener here waits until
// Listen has returned.
func TestServerEventsNeverRunInsideListen(t *testing.T) {
	returned := make(chan struct{})
	heard := make(chan string, 3)
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) { res.End(nil, nil) }, quiet())
	srv.OnListening(func() { <-returned; heard <- "OnListening" })
	if err := listenReturns(t, srv, 0, func() { <-returned; heard <- "cb" }); err != nil {
		t.Fatal(err)
	}
	close(returned)
	defer srv.Shutdown(context.Background())
	if a, b := <-heard, <-heard; a != "OnListening" || b != "cb" {
		t.Fatalf("'listening' listeners ran as %s, %s; want OnListening, then cb (the order added)", a, b)
	}

	port := srv.Address().Port
	taken := CreateServer(nil, quiet())
	errReturned := make(chan struct{})
	var got error
	var wg sync.WaitGroup
	wg.Add(1)
	taken.OnError(func(err error) { <-errReturned; got = err; wg.Done() })
	err := listenReturns(t, taken, port, nil)
	close(errReturned)
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("Listen on a taken port: %v; want EADDRINUSE", err)
	}
	wg.Wait()
	if !errors.Is(got, syscall.EADDRINUSE) {
		t.Fatalf("OnError heard %v; want EADDRINUSE", got)
	}
}

// returnsWithin runs call on a goroutine of its own and fails the test
// when it does not return within 10 s (a callback it ran inside itself,
// waiting for its return, would deadlock it).
func returnsWithin(t *testing.T, what string, call func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { call(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return: it ran a callback inside itself", what)
	}
}

// TestServerCloseEventsInOrderAndLate: 'close' listeners then Close
// callbacks run after the stop, in the order added, one at a time; a
// 'close' listener added after the event fired runs once, never inside
// OnClose; Close on a stopped server calls back with ErrNotRunning, never
// inside Close. The callbacks here wait until the call that caused them
// has returned.
func TestServerCloseEventsInOrderAndLate(t *testing.T) {
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) { res.End(nil, nil) }, quiet())
	if err := srv.Listen(0, "127.0.0.1", 0, nil); err != nil {
		t.Fatal(err)
	}
	a := srv.Address()
	c, r, err := dialGet(net.JoinHostPort(a.Address, strconv.Itoa(a.Port)), "/")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readResponse(r); err != nil {
		t.Fatal(err)
	}
	c.Close()
	var order []string // written by the callbacks, one at a time
	all := make(chan struct{})
	srv.OnClose(func() { order = append(order, "close 1") })
	srv.OnClose(func() { order = append(order, "close 2") })
	srv.Close(func(err error) { order = append(order, "cb "+errName(err)); close(all) })
	awaitClose(t, all, "the close callback")
	if got := strings.Join(order, ", "); got != "close 1, close 2, cb nil" {
		t.Errorf("events ran as %q; want close 1, close 2, cb nil", got)
	}

	added, late := make(chan struct{}), make(chan struct{})
	returnsWithin(t, "OnClose after 'close'", func() {
		srv.OnClose(func() { <-added; close(late) }) // a second run would panic
	})
	close(added)
	awaitClose(t, late, "the 'close' listener added after the event")

	called, again := make(chan struct{}), make(chan error, 1)
	returnsWithin(t, "Close on a stopped server", func() {
		srv.Close(func(err error) { <-called; again <- err })
	})
	close(called)
	if err := <-again; !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Close on a stopped server: %v; want ErrNotRunning", err)
	}
}

// awaitClose waits until ch is closed, for 10 s at most.
func awaitClose(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s never ran", what)
	}
}

func errName(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}
