package fuzz

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/engine"
	"github.com/loophttp/loophttp/internal/conformance"
	"github.com/loophttp/loophttp/internal/fakeconn"
)

// Bounds of the fuzzed connections: small, so the fuzzer reaches them.
const (
	fuzzMaxUnread = 4096
	fuzzHighWater = 512
	// fuzzOneResponse bounds one response of fuzzHandler, or one error
	// response of the engine: the output may pass HighWater by that much
	// (the response in progress when it was reached).
	fuzzOneResponse = 512
)

// FuzzEngine feeds arbitrary bytes, split at fuzzer-chosen points with the
// clock moving between pieces, through a ServerConn on an in-memory conn
// and a fake clock, with a handler whose behaviour the input also picks
// (answer at once, stream, hold and answer later, panic) and whether the
// transport drops the connection part way (a reset). It checks:
//   - no panic escapes the engine (handler panics are recovered);
//   - input left buffered after the engine returns never passes
//     MaxUnread on a connection still open;
//   - output not yet on the wire never passes HighWater plus one
//     response, whatever the peer pipelines while not reading;
//   - nothing is written after a close;
//   - everything written parses as HTTP/1.1 responses;
//   - every exchange the handler saw is closed exactly once, and the
//     handler hears nothing of an exchange after its Close;
//   - after EOF and the timers, or the transport's close, the connection
//     ends closed, with every pooled decoder and field buffer given back.
//
// With cut bit 64 the transport reads as the poller does: only while
// WantsInput reports true, so the half-close (EOF) comes only once no
// answer is owed, and then no input may ever pile up to MaxUnread. With
// cut bit 128 the handler pauses the body at each chunk and resumes it
// later.
func FuzzEngine(f *testing.F) {
	vs, _ := conformance.Load()
	for _, v := range vs {
		if v.Side == "request" {
			f.Add(v.Input(), uint16(len(v.Raw)/2), byte(0))
		}
	}
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), uint16(20), byte(1))
	f.Add([]byte("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), uint16(40), byte(2))
	f.Add([]byte("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc"), uint16(60), byte(3))
	// Pipelined without reading (output held): the output stays bounded.
	f.Add([]byte(strings.Repeat("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 200)), uint16(63), byte(128|8))
	// Dropped by the transport mid-body, mid-chunk and mid-response.
	f.Add([]byte("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n"+strings.Repeat("b", 100)), uint16(10), byte(64))
	f.Add([]byte("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n"), uint16(7), byte(64|1))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), uint16(5), byte(64|2))
	// Read as the poller does (only while the engine wants input), with a
	// body paused and resumed, and a half-close behind held answers.
	f.Add([]byte("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789GET / HTTP/1.1\r\nHost: a\r\n\r\n"), uint16(64|128|3), byte(2))
	f.Add([]byte(strings.Repeat("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 50)), uint16(64|9), byte(8|2))
	f.Fuzz(func(t *testing.T, data []byte, cut uint16, mode byte) {
		cfg, err := engine.Config{
			MaxUnread: fuzzMaxUnread, HighWater: fuzzHighWater, MaxDiscard: 1024,
			HeadersTimeout: time.Second, KeepAliveTimeout: time.Second, IdleTimeout: 2 * time.Second,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		}.Resolve()
		if err != nil {
			t.Fatal(err)
		}
		conn := &fakeconn.Conn{HoldOutput: mode&8 != 0}
		h := &fuzzHandler{t: t, mode: mode, open: map[uint32]bool{}, pause: cut&128 != 0}
		gated := cut&64 != 0
		loop := engine.NewLoop(&cfg, nil)
		sc := loop.NewServerConn(conn, h)
		now := time.Unix(1700000000, 0)
		sc.Open(now)
		checkBounds := func(after string) {
			t.Helper()
			if !conn.Closed && len(conn.In) > fuzzMaxUnread {
				t.Fatalf("after %s: %d bytes of input left buffered; bound %d", after, len(conn.In), fuzzMaxUnread)
			}
			if conn.Pending > fuzzHighWater+fuzzOneResponse {
				t.Fatalf("after %s: %d bytes of output pending; bound %d", after, conn.Pending, fuzzHighWater+fuzzOneResponse)
			}
		}

		step := 1 + int(cut)%64
		// With mode bit 64 the transport drops the connection (a reset)
		// after about half of the input.
		resetAt := -1
		if mode&64 != 0 {
			resetAt = len(data) / 2
		}
		for i := 0; i < len(data) && !conn.Closed; i += step {
			if resetAt >= 0 && i >= resetAt {
				break
			}
			piece := data[i:min(i+step, len(data))]
			if gated && !progressUntilInput(sc, conn, h, &now, mode) {
				break // the engine wants no more input, whatever happens: on to EOF
			}
			conn.Feed(piece)
			sc.OnData(now)
			checkBounds("OnData")

			h.later(conn.Closed)
			checkBounds("a late answer")
			if mode&16 != 0 { // time passes between pieces
				now = now.Add(300 * time.Millisecond)
				if !conn.Deadline.IsZero() && !now.Before(conn.Deadline) {
					sc.OnTimer(now)
				}
			}
			// The peer reads now and then, or (mode bit 128) never.
			if conn.HoldOutput && mode&128 == 0 && conn.Pending > 0 && i%3 == 0 {
				conn.Pending = 0
				sc.OnDrain(now)
				checkBounds("OnDrain")
			}
		}
		if resetAt >= 0 && !conn.Closed {
			// The transport closed: from here a write would panic.
			conn.Closed = true
			sc.OnClose(now)
			h.later(true)
		}
		if !conn.Closed && (!gated || progressUntilInput(sc, conn, h, &now, mode)) {
			sc.OnEOF(now)
			h.later(conn.Closed)
		}
		for n := 0; !conn.Closed && !conn.Deadline.IsZero() && n < 10; n++ {
			now = conn.Deadline
			sc.OnTimer(now)
			h.later(conn.Closed)
		}
		if gated && h.unread {
			t.Fatal("closed for too much unread input by a transport that reads only while the engine wants input")
		}
		if !conn.Closed || !sc.Closed() {
			t.Fatalf("connection not closed after EOF and its timers (closed %v, engine closed %v, deadline %v)", conn.Closed, sc.Closed(), conn.Deadline)
		}
		if n := loop.InUse(); n != 0 {
			t.Fatalf("%d pooled decoders or field buffers not given back after the close", n)
		}
		if _, err := conformance.ParseReplies(conn.Out, h.methods); err != nil {
			t.Fatal(err)
		}
		for gen, open := range h.open {
			if open {
				t.Fatalf("exchange %d never closed", gen)
			}
		}
	})
}

// fuzzHandler answers according to mode and checks the engine's promises
// about the order of its calls.
type fuzzHandler struct {
	t       *testing.T
	mode    byte
	open    map[uint32]bool // exchanges seen and not yet closed
	methods []string
	held    *engine.Stream
	pause   bool           // pause the body at each chunk
	paused  *engine.Stream // resumed by later
	unread  bool           // an exchange closed with ErrTooMuchUnread
}

func (h *fuzzHandler) Request(s *engine.Stream, req *codec.Request) {
	if h.open[s.Gen()] {
		h.t.Fatalf("Request for exchange %d twice", s.Gen())
	}
	h.open[s.Gen()] = true
	h.methods = append(h.methods, string(req.Method))
	if h.mode&3 == 3 && len(req.Target) > 5 {
		panic("handler panic")
	}
	if h.mode&32 != 0 { // answer before the body
		_ = s.End([]byte("early"))
	}
}

func (h *fuzzHandler) Body(s *engine.Stream, chunk []byte) {
	h.alive(s, "Body")
	if h.pause {
		s.Pause()
		h.paused = s
	}
}

func (h *fuzzHandler) End(s *engine.Stream, _ []codec.Header) {
	h.alive(s, "End")
	if s.Ended() {
		return
	}
	switch h.mode & 3 {
	case 0, 3:
		_ = s.End([]byte("ok"))
	case 1:
		_, _ = s.Write([]byte("chunk one,"))
		_ = s.End([]byte("chunk two"))
	case 2:
		h.held = s // answered by later
	}
}

func (h *fuzzHandler) Drain(s *engine.Stream) { h.alive(s, "Drain") }

func (h *fuzzHandler) Close(s *engine.Stream, err error) {
	h.alive(s, "Close")
	h.open[s.Gen()] = false
	h.unread = h.unread || errors.Is(err, engine.ErrTooMuchUnread)
	if h.held == s {
		h.held = nil
	}
	if h.paused == s {
		h.paused = nil
	}
}

func (h *fuzzHandler) alive(s *engine.Stream, call string) {
	if !h.open[s.Gen()] {
		h.t.Fatalf("%s for exchange %d, which is not open", call, s.Gen())
	}
}

// later answers a held exchange, as a handler finishing on the loop later
// would.
func (h *fuzzHandler) later(closed bool) {
	if s := h.paused; s != nil && !closed {
		h.paused = nil
		s.Resume()
	}
	if s := h.held; s != nil && !closed {
		h.held = nil
		_ = s.End([]byte("later"))
	}
}

// progressUntilInput lets what the engine waits for happen (late answers,
// resumes, the peer reading the output, time passing) until it wants
// input again, as the poller waits before reading the socket. It reports
// false when the engine still wants none after a bounded number of steps
// or the connection closed.
func progressUntilInput(sc *engine.ServerConn, conn *fakeconn.Conn, h *fuzzHandler, now *time.Time, mode byte) bool {
	for n := 0; n < 20 && !conn.Closed; n++ {
		if sc.WantsInput() {
			return true
		}
		h.later(conn.Closed)
		if conn.Pending > 0 && mode&128 == 0 {
			conn.Pending = 0
			sc.OnDrain(*now)
		}
		if !sc.WantsInput() && !conn.Deadline.IsZero() && n > 10 {
			*now = conn.Deadline
			sc.OnTimer(*now)
		}
	}
	return !conn.Closed && sc.WantsInput()
}
