package poller

import "golang.org/x/sys/unix"

// How a call tells whether it runs on a given loop (Conn.InEvent, Stats,
// Client.OnLoop) or inside a given callback (the api's): each records
// the identity of its goroutine (CallerID) when it starts, and a call
// compares its own.
//
// Where the goroutine can be read exactly (amd64 and arm64, by a
// two-instruction stub in goid_$GOARCH.s; no linkname) the identity is the
// goroutine itself, and the loops need no OS thread of their own: a
// goroutine the loop hands work to (a TLS handshake, a request from a
// user's goroutine) can then run on the loop's thread in turn, without an
// OS thread switch each way. Elsewhere it is the OS thread, and every
// loop is locked to its thread (lockThreads), which no other goroutine
// then runs on; a loop is also locked when pinned to a CPU
// (Config.PinCPU).
//
// An identity is compared only with one recorded by a goroutine that is
// still running, or where the comparison is moot once it has exited: the
// runtime gives the descriptor of a goroutine that has exited to later
// goroutines. (InEvent also needs the loop's current connection, which a
// stopped loop leaves nil.)

// lockThreads reports that loops must be locked to their OS threads for
// CallerID to tell them apart.
const lockThreads = !exactGoroutine

// CallerID returns the calling goroutine's identity, as above; never 0
// where goroutines are told apart. Safe from any goroutine.
func CallerID() uintptr {
	if exactGoroutine {
		return goroutine()
	}
	return uintptr(unix.Gettid())
}
