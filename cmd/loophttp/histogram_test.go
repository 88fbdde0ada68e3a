package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestHistogramBuckets: every value falls in a bucket that holds it, the
// buckets tile the range in order, and a bucket is at most 1/128 of its
// values wide.
func TestHistogramBuckets(t *testing.T) {
	prevTop := int64(-1)
	for i := 0; i < buckets; i++ {
		top := bucketTop(i)
		low := prevTop + 1
		if bucketOf(low) != i || bucketOf(top) != i {
			t.Fatalf("bucket %d holds %d..%d, but they map to %d and %d", i, low, top, bucketOf(low), bucketOf(top))
		}
		if width := top - low + 1; low >= 1<<subBits && float64(width)/float64(low) > 1.0/(1<<subBits) {
			t.Fatalf("bucket %d (%d..%d) is %d wide", i, low, top, width)
		}
		prevTop = top
	}
	if prevTop != maxValue {
		t.Fatalf("the last bucket ends at %d; want %d", prevTop, maxValue)
	}
}

// TestHistogramQuantiles compares the histogram's quantiles with those of
// the sorted samples: within the bucket width, never below.
func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	r := rand.New(rand.NewPCG(1, 2))
	samples := make([]time.Duration, 100_000)
	for i := range samples {
		// Log-uniform from 1 µs to 10 s, the spread of real latencies.
		samples[i] = time.Duration(1e3 * math.Pow(10, r.Float64()*7))
		h.record(samples[i])
	}
	h.record(-1)                         // a clock step back counts as 0
	h.record(100 * 365 * 24 * time.Hour) // beyond the range counts as its top
	samples = append(samples, 0, time.Duration(maxValue))
	slices.Sort(samples)
	qs := []float64{0.5, 0.9, 0.99, 0.999, 1}
	got := h.quantiles(qs...)
	for i, q := range qs {
		want := samples[int(q*float64(len(samples)))-1]
		if d := got[i] - want; d < 0 || float64(d) > float64(want)/(1<<subBits) {
			t.Errorf("q %v: %v; want %v within 1/128", q, got[i], want)
		}
	}
	if h.count() != uint64(len(samples)) || h.maximum() != time.Duration(maxValue) {
		t.Errorf("count %d, max %v", h.count(), h.maximum())
	}
	var empty histogram
	if q := empty.quantiles(0.5); q[0] != 0 {
		t.Errorf("empty: %v", q)
	}
}
