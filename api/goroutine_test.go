package api

import (
	"runtime"
	"testing"
)

// TestCurgTellsGoroutinesApart: curg is stable on one goroutine (across a
// reschedule) and differs on every other goroutine alive meanwhile.
func TestCurgTellsGoroutinesApart(t *testing.T) {
	if !exactGoroutine {
		t.Skip("no stub for this architecture: every call is handed to the loop")
	}
	mine := curg()
	if mine == 0 {
		t.Fatal("curg() = 0")
	}
	runtime.Gosched()
	if got := curg(); got != mine {
		t.Fatalf("curg() changed on one goroutine: %#x, then %#x", mine, got)
	}
	const n = 50
	others := make(chan uintptr, n)
	release := make(chan struct{})
	for i := 0; i < n; i++ {
		go func() {
			others <- curg()
			<-release // alive while the others are compared
		}()
	}
	seen := map[uintptr]bool{mine: true}
	for i := 0; i < n; i++ {
		g := <-others
		if seen[g] {
			t.Errorf("curg() %#x seen on two live goroutines", g)
		}
		seen[g] = true
	}
	close(release)
}
