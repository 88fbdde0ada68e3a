package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram counts latencies in log-linear buckets, as HdrHistogram does:
// every power of two is split into 2^subBits equal buckets, so a recorded
// value is known to within 1/2^subBits (0.8%) whatever the run's length,
// in a fixed 35 KiB. Values below 2^subBits ns are exact; values above
// maxValue are counted as maxValue.
//
// load keeps its own instead of a dependency: it needs record, quantile
// and max, which take fifty lines, and counters updated atomically from
// every event loop while the progress line and the Ctrl-C summary read
// them from other goroutines, which HdrHistogram's Go port does not offer
// without a lock or a merge per loop.
//
// Every method is safe from any goroutine.
type histogram struct {
	counts [buckets]atomic.Uint64
	n      atomic.Uint64
	max    atomic.Int64
}

const (
	subBits  = 7                     // 128 buckets per power of two
	maxBits  = 42                    // values up to 2^42 ns (73 minutes)
	maxValue = int64(1)<<maxBits - 1 // the largest value told apart
	buckets  = (maxBits - subBits + 1) << subBits
)

// bucketOf returns the bucket of v (0 ≤ v ≤ maxValue).
func bucketOf(v int64) int {
	if v < 1<<subBits {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBits - 1
	return (shift+1)<<subBits + int(v>>shift) - 1<<subBits
}

// bucketTop returns the largest value bucket i holds.
func bucketTop(i int) int64 {
	if i < 1<<subBits {
		return int64(i)
	}
	shift := i>>subBits - 1
	low := int64(i&(1<<subBits-1)+1<<subBits) << shift
	return low + 1<<shift - 1
}

// record counts one latency.
func (h *histogram) record(d time.Duration) {
	v := min(max(int64(d), 0), maxValue)
	h.counts[bucketOf(v)].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// count returns how many latencies were recorded.
func (h *histogram) count() uint64 { return h.n.Load() }

// maximum returns the largest latency recorded.
func (h *histogram) maximum() time.Duration { return time.Duration(h.max.Load()) }

// quantiles returns the latency at or below which each fraction q of the
// recordings fall (q in ascending order), as the top of its bucket (never
// above the maximum). Recordings made meanwhile may or may not be counted.
func (h *histogram) quantiles(qs ...float64) []time.Duration {
	out := make([]time.Duration, len(qs))
	n := h.n.Load()
	if n == 0 {
		return out
	}
	top := h.max.Load()
	var seen uint64
	j := 0
	for i := range h.counts {
		seen += h.counts[i].Load()
		for j < len(qs) && float64(seen) >= qs[j]*float64(n) {
			out[j] = time.Duration(min(bucketTop(i), top))
			j++
		}
		if j == len(qs) {
			return out
		}
	}
	for ; j < len(qs); j++ { // recorded after n was read
		out[j] = time.Duration(top)
	}
	return out
}
