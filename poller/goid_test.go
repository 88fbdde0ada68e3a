package poller

import (
	"runtime"
	"testing"
)

// TestGoroutineTellsGoroutinesApart: goroutine is stable on one goroutine
// (across a reschedule) and differs on every other goroutine alive
// meanwhile.
func TestGoroutineTellsGoroutinesApart(t *testing.T) {
	if !exactGoroutine {
		t.Skip("no stub for this architecture")
	}
	mine := goroutine()
	if mine == 0 {
		t.Fatal("goroutine() = 0")
	}
	runtime.Gosched()
	if got := goroutine(); got != mine {
		t.Fatalf("goroutine() changed on one goroutine: %#x, then %#x", mine, got)
	}
	const n = 50
	others := make(chan uintptr, n)
	release := make(chan struct{})
	for i := 0; i < n; i++ {
		go func() {
			others <- goroutine()
			<-release // alive while the others are compared
		}()
	}
	seen := map[uintptr]bool{mine: true}
	for i := 0; i < n; i++ {
		g := <-others
		if seen[g] {
			t.Errorf("goroutine() %#x seen on two live goroutines", g)
		}
		seen[g] = true
	}
	close(release)
}
