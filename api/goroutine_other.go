//go:build !amd64 && !arm64

package api

// curg is the portable stand-in of the assembly stub: it tells no
// goroutine from another, so exactGoroutine is false and every call is
// handed to the loop as from another goroutine (correct, a little slower).
func curg() uintptr { return 0 }

// exactGoroutine reports that curg cannot tell goroutines apart.
const exactGoroutine = false
