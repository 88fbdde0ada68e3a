package wirealloc

import (
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Precise is PerRequest without rounding: it returns the allocations and
// bytes allocated per request, as fractions, over 5,000 requests (after
// 1,000 to warm the server's pools), so that a cost paid once every few
// requests (a chunk shared by many) shows. The whole process is counted.
func Precise(t testing.TB, addr, req, wantSuffix string) (allocs, bytes float64) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute)) // a hung server fails the test, not the run
	raw := []byte(req)
	buf := make([]byte, 4096)
	c.Write(raw)
	size, err := c.Read(buf)
	if err != nil || !strings.HasSuffix(string(buf[:size]), wantSuffix) {
		t.Fatalf("first response %q, %v; want it to end with %q", buf[:size], err, wantSuffix)
	}
	roundTrip := func() {
		c.Write(raw)
		if _, err := io.ReadFull(c, buf[:size]); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 1000; i++ {
		roundTrip()
	}
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
