//go:build amd64 || arm64

package poller

// goroutine returns the address of the calling goroutine's runtime
// descriptor (its g), read by a two-instruction stub (goid_$GOARCH.s): on
// amd64 from thread-local storage, on arm64 from the register the runtime
// keeps it in. The address is never dereferenced.
func goroutine() uintptr

// exactGoroutine reports that goroutine tells goroutines apart.
const exactGoroutine = true
