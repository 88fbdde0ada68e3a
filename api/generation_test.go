package api

import (
	"math"
	"testing"
)

// TestRetiredHandlesStaleAcrossTheWrap: a handle of a retired exchange is
// refused, also for the exchange whose generation came after the counter
// wrapped (an exchange object serves a loop's requests again and again,
// so 2^32 of them go through the busiest one in about an hour at a
// million a second): generations skip 0, and retiring moves the state to
// the next generation at once, so no stale handle matches it.
func TestRetiredHandlesStaleAcrossTheWrap(t *testing.T) {
	for _, start := range []uint32{0, 1, math.MaxUint32 - 1, math.MaxUint32} {
		ex := new(exchange)
		ex.reqSt.clear(ex)
		ex.resSt.clear(ex)
		ex.xgen = start
		for range 3 {
			ex.xgen = nextGen(ex.xgen)
			if ex.xgen == 0 {
				t.Fatalf("from %d: generation 0 handed out", start)
			}
			ex.reqSt.gen.open(ex.xgen)
			ex.resSt.gen.open(ex.xgen)
			res := &ServerResponse{st: &ex.resSt, gen: ex.xgen}
			req := &IncomingMessage{st: &ex.reqSt, gen: ex.xgen}
			if s := res.lock(); s == nil {
				t.Fatalf("from %d: the current response refused", start)
			} else {
				s.mu.Unlock()
			}
			ex.reqSt.retire()
			ex.resSt.retire()
			if s := res.lock(); s != nil {
				s.mu.Unlock()
				t.Fatalf("from %d: a retired response (generation %d) still served", start, res.gen)
			}
			if s := req.lock(); s != nil {
				s.lmu.Unlock()
				t.Fatalf("from %d: a retired request (generation %d) still served", start, req.gen)
			}
		}
	}
}
