package poller

import (
	"bufio"
	"fmt"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/engine"
)

// parkingHandler parks the loop's goroutine in every request (a channel
// receive from a goroutine of its own), so that the runtime may resume it
// on another OS thread, then checks that the loop still knows itself:
// Conn.InEvent is true, and Stats, which reads the caller's own loop
// in place rather than waiting for a task of it, returns.
type parkingHandler struct {
	srv    atomic.Pointer[Server]
	wrong  atomic.Int64
	served atomic.Int64
}

func (h *parkingHandler) Request(s *engine.Stream, _ *codec.Request) {
	c := s.Conn().(*Conn)
	ch := make(chan struct{})
	go func() { ch <- struct{}{} }()
	<-ch
	if !c.InEvent() {
		h.wrong.Add(1)
	}
	_ = h.srv.Load().Stats() // waits for its own loop if it does not know it
	h.served.Add(1)
	_ = s.SetHead(200, "", nil)
}
func (h *parkingHandler) Body(*engine.Stream, []byte)            {}
func (h *parkingHandler) End(s *engine.Stream, _ []codec.Header) { _ = s.End([]byte("ok")) }
func (h *parkingHandler) Drain(*engine.Stream)                   {}
func (h *parkingHandler) Close(*engine.Stream, error)            {}

// TestLoopKnowsItselfAfterChangingThreads: a loop is told by its
// goroutine, not by its OS thread (identity.go), so a loop whose goroutine
// parks in a handler and resumes on another thread still runs its calls
// at once, and Stats called there does not wait for the loop itself. With
// goroutines kept busy beside it so that threads change hands.
func TestLoopKnowsItselfAfterChangingThreads(t *testing.T) {
	if lockThreads {
		t.Skip("loops are locked to their threads on this architecture")
	}
	h := &parkingHandler{}
	s := startServer(t, Config{}, h)
	h.srv.Store(s)
	stop := make(chan struct{})
	defer close(stop)
	for range runtime.GOMAXPROCS(0) {
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
					runtime.Gosched()
				}
			}
		}()
	}
	c := dial(t, s)
	r := bufio.NewReader(c)
	const n = 300
	for i := range n {
		fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: a\r\n\r\n", i)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp.Body.Close()
	}
	if h.served.Load() != n || h.wrong.Load() != 0 {
		t.Fatalf("served %d of %d; InEvent false on its own loop %d times", h.served.Load(), n, h.wrong.Load())
	}
}
