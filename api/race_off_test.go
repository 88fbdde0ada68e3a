//go:build !race

package api

// raceEnabled: the race detector slows every goroutine several times, so
// timing bounds get a wider margin under it.
const raceEnabled = false
