package api

import (
	"sync"
)

// runner runs the callbacks of an agent's requests that have no
// connection whose loop could run them: the 'error' and 'close' of a
// request whose connect failed, of one aborted or destroyed before it got
// a connection, or failed by Agent.Destroy; and the calls of listeners
// added after a request closed. They run one after the other, in the
// order posted, on one goroutine that lasts while there is work (so an
// idle agent holds none): never inside the call that caused them, and
// never beside another callback of the same request. Like the loops, the
// runner must not be blocked by a callback. The zero value is ready.
type runner struct {
	mu      sync.Mutex
	queue   []func()
	running bool
}

// post queues fn and starts the runner's goroutine if it is not running.
// Safe from any goroutine.
func (rn *runner) post(fn func()) {
	rn.mu.Lock()
	rn.queue = append(rn.queue, fn)
	start := !rn.running
	rn.running = true
	rn.mu.Unlock()
	if start {
		go rn.run()
	}
}

// run runs the queue until it is empty. Each fn is a request's own call
// path (ClientRequest.call recovers a listener's panic).
func (rn *runner) run() {
	for {
		rn.mu.Lock()
		if len(rn.queue) == 0 {
			rn.queue, rn.running = nil, false
			rn.mu.Unlock()
			return
		}
		fn := rn.queue[0]
		rn.queue[0] = nil
		rn.queue = rn.queue[1:]
		rn.mu.Unlock()
		fn()
	}
}
