package api

import "sync"

// workerPool runs the callbacks of blocking handlers (Options.Workers) on a
// fixed number of goroutines. Jobs queue without bound: with one exchange
// per connection, and a connection paused while its exchange has work
// queued, the queue holds at most a few jobs per connection.
type workerPool struct {
	mu     sync.Mutex
	cond   *sync.Cond
	jobs   []func()
	closed bool
	wg     sync.WaitGroup
}

func newWorkerPool(n int) *workerPool {
	p := &workerPool{}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(n)
	for i := 0; i < n; i++ {
		go p.run()
	}
	return p
}

// submit queues job for a worker; once the pool has stopped (the server
// closed), job runs on a goroutine of its own, so that what an exchange
// still owes its callbacks is never lost.
func (p *workerPool) submit(job func()) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		go job()
		return
	}
	p.jobs = append(p.jobs, job)
	p.mu.Unlock()
	p.cond.Signal()
}

func (p *workerPool) run() {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		for len(p.jobs) == 0 && !p.closed {
			p.cond.Wait()
		}
		if len(p.jobs) == 0 {
			p.mu.Unlock()
			return
		}
		job := p.jobs[0]
		p.jobs[0] = nil
		p.jobs = p.jobs[1:]
		p.mu.Unlock()
		job()
	}
}

// stop lets the workers finish the queued jobs, then ends them.
func (p *workerPool) stop() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cond.Broadcast()
	p.wg.Wait()
}

// serial runs one exchange's callbacks on the pool, one at a time and in
// order.
type serial struct {
	mu      sync.Mutex
	queue   []func()
	running bool
}

// post queues fn for the exchange; the first job of an idle queue starts a
// pool job that works through it.
func (ex *exchange) post(fn func()) {
	q := &ex.work
	q.mu.Lock()
	q.queue = append(q.queue, fn)
	start := !q.running
	q.running = true
	q.mu.Unlock()
	if start {
		ex.sock.srv.pool.submit(ex.drainWork)
	}
}

// drainWork runs the exchange's queued callbacks on a worker. A panic is
// logged and answered like on the loop: 500 if the head is not out, then
// the connection is destroyed.
func (ex *exchange) drainWork() {
	q := &ex.work
	for {
		q.mu.Lock()
		if len(q.queue) == 0 {
			q.running = false
			q.mu.Unlock()
			ex.resumeAfterWork()
			return
		}
		fn := q.queue[0]
		q.queue[0] = nil
		q.queue = q.queue[1:]
		q.mu.Unlock()
		ex.runOnWorker(fn)
	}
}

func (ex *exchange) runOnWorker(fn func()) {
	defer func() {
		if v := recover(); v != nil {
			recovered(ex.sock.srv.logger(), "handler", v)
			if res := &ex.msg.res; !res.HeadersSent() {
				_ = res.WriteHead(500, "", Header{"Connection", "close"})
				_ = res.End(nil, nil)
			}
			ex.sock.End()
		}
	}()
	fn()
}

// resumeAfterWork lets the loop deliver the body again once the workers
// have caught up with this exchange.
func (ex *exchange) resumeAfterWork() {
	_ = ex.sock.pc.Submit(ex.gen, func() {
		if !ex.done && ex.paused {
			ex.paused = false
			ex.stream.Resume()
		}
	})
}
