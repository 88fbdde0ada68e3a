package engine

import (
	"testing"
	"time"

	"github.com/loophttp/loophttp/codec"
)

// TestStatsCounters checks each engine counter against what one
// connection did, on the fake clock.
func TestStatsCounters(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		run  func(h *harness)
		want func(s *Stats)
	}{
		{"keep-alive timeout", Config{KeepAliveTimeout: time.Second}, func(h *harness) {
			h.send(get + get)
			h.fire()
		}, func(s *Stats) {
			s.Requests, s.Responses[2] = 2, 2
			s.Timeouts[TimeoutKeepAlive] = 1
		}},
		{"headers timeout, nothing sent", Config{HeadersTimeout: time.Second}, func(h *harness) {
			h.fire()
		}, func(s *Stats) { s.Timeouts[TimeoutHeaders] = 1 }},
		{"headers timeout, half a head: 408", Config{HeadersTimeout: time.Second}, func(h *harness) {
			h.send("GET / HTTP/1.1\r\n")
			h.fire()
		}, func(s *Stats) {
			s.Timeouts[TimeoutHeaders] = 1
			s.Responses[4] = 1
		}},
		{"idle timeout", Config{IdleTimeout: time.Second}, func(h *harness) {
			h.rec.onEnd = func(*Stream) {} // never answers
			h.send(get)
			h.fire()
		}, func(s *Stats) {
			s.Requests = 1
			s.Timeouts[TimeoutIdle] = 1
		}},
		{"too much unread", Config{MaxUnread: 1000}, func(h *harness) {
			h.rec.onEnd = func(*Stream) {}
			for i := 0; i < 100 && !h.conn.Ended(); i++ {
				h.send(get)
			}
		}, func(s *Stats) {
			s.Requests = 1
			s.TooMuchUnread = 1
		}},
		{"protocol error in a chunked body", Config{}, func(h *harness) {
			h.send("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
		}, func(s *Stats) {
			s.Requests = 1
			s.Responses[4] = 1
			s.ProtocolErrors[codec.ErrChunkSize] = 1
		}},
		{"statuses by class", Config{}, func(h *harness) {
			for _, status := range []int{200, 204, 301, 404, 503} {
				h.rec.onRequest = func(s *Stream, req *codec.Request) {
					_ = s.SetHead(status, "", nil)
					_ = s.End(nil)
				}
				h.send(get)
			}
		}, func(s *Stats) {
			s.Requests = 5
			s.Responses = [6]uint64{0, 0, 2, 1, 1, 1}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.cfg)
			tc.run(h)
			var want Stats
			tc.want(&want)
			if got := *h.sc.loop.Stats(); got != want {
				t.Fatalf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestStatsAdd: Add sums every counter.
func TestStatsAdd(t *testing.T) {
	a := Stats{Requests: 1, Responses: [6]uint64{1, 2, 3, 4, 5, 6}, TooMuchUnread: 7, Timeouts: [TimeoutKinds]uint64{8, 9, 10}}
	a.ProtocolErrors[codec.ErrHost] = 11
	sum := a
	sum.Add(&a)
	want := Stats{Requests: 2, Responses: [6]uint64{2, 4, 6, 8, 10, 12}, TooMuchUnread: 14, Timeouts: [TimeoutKinds]uint64{16, 18, 20}}
	want.ProtocolErrors[codec.ErrHost] = 22
	if sum != want {
		t.Fatalf("got %+v; want %+v", sum, want)
	}
}

// TestProtocolKindNames: every codec.Error kind has a counter and a
// distinct metrics name, so a kind added to codec cannot go uncounted.
func TestProtocolKindNames(t *testing.T) {
	if got := codec.Error(ProtocolKinds).Error(); got != "http: unknown protocol error" {
		t.Fatalf("codec.Error(%d) is %q: ProtocolKinds misses a kind", ProtocolKinds, got)
	}
	seen := map[string]bool{}
	for i := range ProtocolKinds {
		name := ProtocolKindName(i)
		if name == "" || seen[name] {
			t.Fatalf("kind %d: name %q empty or repeated", i, name)
		}
		seen[name] = true
	}
	for k := range TimeoutKinds {
		if k.String() == "unknown" || k.String() == "" {
			t.Fatalf("timeout kind %d has no name", k)
		}
	}
}
