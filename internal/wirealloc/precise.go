package wirealloc

import (
	"runtime"
	"testing"
)

// Precise is PerRequest without rounding: it returns the allocations and
// bytes allocated per request, as fractions, over 5,000 requests (after
// 1,000 to warm the server's pools), so that a cost paid once every few
// requests (a chunk shared by many) shows. The whole process is counted.
func Precise(t testing.TB, addr, req, wantSuffix string) (allocs, bytes float64) {
	t.Helper()
	roundTrip := dial(t, addr, req, wantSuffix, 1000)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const runs = 5000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < runs; i++ {
		roundTrip()
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / runs, float64(after.TotalAlloc-before.TotalAlloc) / runs
}
