package api

import "golang.org/x/sys/unix"

// loopCPU returns the CPU time, in nanoseconds, used by the calling
// thread. Called from a callback on a loop locked to its thread (a
// server's with Options.PinCPU, any client's), it is the loop's.
func loopCPU() int64 {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &ru) != nil {
		return -1
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
