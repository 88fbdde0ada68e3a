package engine

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/internal/fakeconn"
)

// The connection lifecycle at engine level: when the transport should
// read, how a close waits for the output and lingers, and which timers run
// while output is still leaving.

// drain tells the engine that the held output has reached the kernel.
func (h *harness) drain() {
	h.conn.Pending = 0
	h.sc.OnDrain(h.clock.now)
}

func TestWantsInput(t *testing.T) {
	h := newHarness(t, Config{})
	var held *Stream
	h.rec.onEnd = func(s *Stream) { held = s }
	if !h.sc.WantsInput() {
		t.Fatal("a new connection does not want input")
	}
	h.send(get + get)
	if h.sc.WantsInput() {
		t.Fatal("wants input while a request is being handled (the next one waits in the kernel)")
	}
	h.conn.HoldOutput = true
	held.End([]byte("ok"))
	if h.sc.WantsInput() {
		t.Fatal("wants input while output waits for the socket")
	}
	h.drain() // the second request is taken and held
	if h.sc.WantsInput() || h.rec.requests != 2 {
		t.Fatalf("requests %d, wants input %v; want the second request taken and reading off", h.rec.requests, h.sc.WantsInput())
	}
	held.End([]byte("ok"))
	h.drain()
	if !h.sc.WantsInput() {
		t.Fatal("an idle keep-alive connection does not want input")
	}

	// A paused body stops reading; Resume starts it again.
	h.rec.onRequest = func(s *Stream, _ *codec.Request) { s.Pause(); held = s }
	h.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab")
	if h.sc.WantsInput() {
		t.Fatal("wants input while the body is paused")
	}
	held.Resume()
	if !h.sc.WantsInput() {
		t.Fatal("a resumed body does not want input")
	}
}

// TestCloseLingers: an early answer to a body larger than MaxDiscard
// closes in stages: the write side once the output has drained, then the
// input is read and dropped until the peer closes.
func TestCloseLingers(t *testing.T) {
	h := newHarness(t, Config{})
	h.conn.HoldOutput = true
	h.rec.onRequest = func(s *Stream, _ *codec.Request) { s.End([]byte("no")) }
	h.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10000000\r\n\r\npart")
	if !strings.Contains(string(h.conn.Out), "Connection: close") || h.conn.Closed {
		t.Fatalf("closed %v, output %q; want Connection: close and no close yet", h.conn.Closed, h.conn.Out)
	}
	if !h.sc.WantsInput() {
		// Reading stays off until the answer is out; then the
		// lingering reads and drops.
		h.drain()
	}
	if !h.sc.WantsInput() {
		t.Fatal("a lingering connection does not read")
	}
	h.send(strings.Repeat("x", 1<<20))
	if len(h.conn.In) != 0 || h.conn.Closed {
		t.Fatalf("%d bytes kept, closed %v; want the input dropped and the connection lingering", len(h.conn.In), h.conn.Closed)
	}
	h.eof()
	if !h.conn.Closed {
		t.Fatal("the peer's end of file did not end the lingering")
	}
}

// TestLingerDeadlines: the lingering ends after CloseDrainTimeout without
// input, and after LingerTime however often the peer sends.
func TestLingerDeadlines(t *testing.T) {
	h := newHarness(t, Config{CloseDrainTimeout: time.Second, LingerTime: 3 * time.Second})
	h.send("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n") // 400
	start := h.clock.now
	for !h.conn.Closed {
		h.clock.advance(900 * time.Millisecond)
		h.send("x") // within the silence bound every time
		if h.conn.Deadline.IsZero() {
			t.Fatal("no timer armed while lingering")
		}
		if h.clock.now.After(h.conn.Deadline) || h.clock.now.Equal(h.conn.Deadline) {
			h.sc.OnTimer(h.clock.now)
		}
		if h.clock.now.Sub(start) > 4*time.Second {
			t.Fatal("lingering past LingerTime")
		}
	}
	if got := h.clock.now.Sub(start); got < 3*time.Second {
		t.Fatalf("closed after %v; want LingerTime, 3 s", got)
	}

	h = newHarness(t, Config{CloseDrainTimeout: time.Second})
	h.send("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n")
	start = h.clock.now
	h.fire()
	if !h.conn.Closed || h.clock.now.Sub(start) != time.Second {
		t.Fatalf("closed %v after %v; want closed after 1 s of silence", h.conn.Closed, h.clock.now.Sub(start))
	}
}

// TestCloseWaitsForOutput: a close after a response (Connection: close)
// keeps the connection while its output is leaving, however long, as long
// as it makes progress within the idle timeout; without progress it is
// given up at the idle timeout.
func TestCloseWaitsForOutput(t *testing.T) {
	h := newHarness(t, Config{IdleTimeout: time.Second})
	h.conn.HoldOutput = true
	h.send("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	for i := 0; i < 10; i++ {
		h.clock.advance(800 * time.Millisecond)
		h.sc.OnDrain(h.clock.now) // some of it was written
		if h.conn.Closed {
			t.Fatalf("closed after %d progress reports while output was leaving", i+1)
		}
	}
	h.fire()
	if !h.conn.Closed {
		t.Fatal("no progress for the idle timeout did not close the connection")
	}
}

// TestKeepAliveTimerStartsWhenDrained: the keep-alive timeout counts from
// when the response has left, not from when it ended.
func TestKeepAliveTimerStartsWhenDrained(t *testing.T) {
	h := newHarness(t, Config{KeepAliveTimeout: time.Second, IdleTimeout: time.Minute})
	h.conn.HoldOutput = true
	h.send(get)
	h.clock.advance(5 * time.Second) // the output is still leaving
	h.sc.OnTimer(h.clock.now)
	if h.conn.Ended() {
		t.Fatal("the keep-alive timeout closed a connection whose response was still leaving")
	}
	h.drain()
	drained := h.clock.now
	h.fire()
	if !h.conn.Closed || h.clock.now.Sub(drained) != time.Second {
		t.Fatalf("closed %v after %v; want a quiet close 1 s after the drain", h.conn.Closed, h.clock.now.Sub(drained))
	}
}

// TestIdleTimeoutCountsWrites: a handler that keeps writing keeps the
// connection past the idle timeout.
func TestIdleTimeoutCountsWrites(t *testing.T) {
	h := newHarness(t, Config{IdleTimeout: time.Second})
	var s *Stream
	h.rec.onEnd = func(st *Stream) { s = st }
	h.send(get)
	for i := 0; i < 5; i++ {
		h.clock.advance(700 * time.Millisecond)
		h.sc.SetNow(h.clock.now) // a call handed to the loop
		if _, err := s.Write([]byte("tick")); err != nil {
			t.Fatal(err)
		}
		if !h.conn.Deadline.After(h.clock.now) {
			h.sc.OnTimer(h.clock.now) // timers are lazy: the due one re-arms
		}
		if h.conn.Ended() {
			t.Fatalf("closed after write %d, each within the idle timeout of the last", i)
		}
	}
	last := h.clock.now
	for i := 0; i < 3 && !h.conn.Closed; i++ {
		h.fire()
	}
	if !h.conn.Closed || len(h.rec.closes) != 1 || !errors.Is(h.rec.closes[0], ErrIdleTimeout) || h.clock.now.Sub(last) != time.Second {
		t.Fatalf("closed %v %v after the last write, Close calls %v; want ErrIdleTimeout 1 s after the writes stop",
			h.conn.Closed, h.clock.now.Sub(last), h.rec.closes)
	}
}

// TestEOFWaitsForOutput: after the peer's end of file the connection
// closes once its output has drained, not before.
func TestEOFWaitsForOutput(t *testing.T) {
	h := newHarness(t, Config{})
	h.conn.HoldOutput = true
	h.send(get)
	h.eof()
	if h.conn.Closed {
		t.Fatal("closed at end of file with output still leaving")
	}
	h.drain()
	if !h.conn.Closed {
		t.Fatal("not closed once the output drained after end of file")
	}
}

// TestBadHeadDropsItsInputAtOnce: input that ends in a malformed head is
// dropped in the same event that answers it, as the lingering close drops
// all later input. It was left buffered until the next read, so a
// connection that had just passed MaxUnread's check held more than
// MaxUnread (found by FuzzEngine).
func TestBadHeadDropsItsInputAtOnce(t *testing.T) {
	h := newHarness(t, Config{MaxUnread: 4096})
	head := "GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + strings.Repeat("v", 4000)
	h.send(head) // incomplete: kept, under MaxUnread
	if n := len(h.conn.In); n != len(head) {
		t.Fatalf("%d bytes buffered after the incomplete head; want %d", n, len(head))
	}
	h.send("\x01\r\n\r\n") // a control character: 400
	if !strings.HasPrefix(string(h.conn.Out), "HTTP/1.1 400 ") {
		t.Fatalf("response %q; want a 400", h.conn.Out)
	}
	if h.conn.Closed {
		t.Fatal("closed at once; want the lingering close")
	}
	if n := len(h.conn.In); n != 0 {
		t.Fatalf("%d bytes of the bad head still buffered; want them dropped with the answer", n)
	}
}

// TestLastRequestMarksOneConnection: LastRequest makes the next request of
// its connection the last (Connection: close, then the close), and no
// other connection's of the loop, as Loop.Drain would.
func TestLastRequestMarksOneConnection(t *testing.T) {
	h := newHarness(t, Config{})
	other := &fakeconn.Conn{}
	osc := h.sc.loop.NewServerConn(other, &recorder{t: t})
	osc.Open(h.clock.now)

	h.sc.LastRequest()
	h.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if out := string(h.conn.Out); !strings.Contains(out, "Connection: close\r\n") || !h.conn.Ended() {
		t.Fatalf("marked connection: %q, ended %v; want its answer with Connection: close, then the close", out, h.conn.Ended())
	}
	other.Feed([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
	osc.OnData(h.clock.now)
	if out := string(other.Out); strings.Contains(out, "Connection: close") || other.Ended() {
		t.Fatalf("other connection of the loop: %q, ended %v; want it kept", out, other.Ended())
	}
}
