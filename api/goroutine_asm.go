//go:build amd64 || arm64

package api

// curg returns the address of the calling goroutine's runtime descriptor
// (its g), read by a two-instruction stub (goroutine_$GOARCH.s): on amd64
// from thread-local storage, on arm64 from the register the runtime keeps
// it in. It is only ever compared with a value the same goroutine stored
// (exchange.cbG): precondition, that goroutine is still running when the
// comparison is made (it is: it stores 0 before its callback returns), so
// no other goroutine can have its address, and the comparison is exact.
// The address is never dereferenced.
func curg() uintptr

// exactGoroutine reports that curg tells goroutines apart.
const exactGoroutine = true
