package api

import "golang.org/x/sys/unix"

// loopCPU returns the CPU time, in nanoseconds, used by the calling
// thread. Called from a handler of a server whose loops are locked to
// their threads (Options.PinCPU), it is the loop's.
func loopCPU() int64 {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &ru) != nil {
		return -1
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// processCPU returns the CPU time, in nanoseconds, used by the process.
func processCPU() int64 {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return -1
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
