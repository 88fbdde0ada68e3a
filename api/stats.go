package api

import "github.com/loophttp/loophttp/poller"

// Stats is a snapshot of a server's counters: connections open, accepted
// and paused, requests, responses by status class, protocol errors and
// timeouts by kind, bytes in and out (see poller.Stats and engine.Stats).
type Stats = poller.Stats

// Stats returns a snapshot of the server's counters since Listen, summed
// over its event loops; the zero Stats before Listen. Counting is always on
// and costs the loops plain increments: each loop owns its counters and
// copies them on the loop when asked, so Stats waits for every loop to get
// to it (a loop blocked in a handler delays it). Any goroutine, a handler
// included.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	ps := s.ps
	s.mu.Unlock()
	if ps == nil {
		return Stats{}
	}
	return ps.Stats()
}
