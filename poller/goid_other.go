//go:build !amd64 && !arm64

package poller

// goroutine is the portable stand-in of the assembly stub: it tells no
// goroutine from another (exactGoroutine is false), so callers use the
// thread instead (identity.go).
func goroutine() uintptr { return 0 }

// exactGoroutine reports that goroutine cannot tell goroutines apart.
const exactGoroutine = false
