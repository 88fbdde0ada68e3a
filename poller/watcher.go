package poller

import (
	"errors"
	"sync"

	"golang.org/x/sys/unix"
)

// watcher tells the loops when sockets whose output the kernel refused
// become writable again. gnet reports writability only to drain its own
// output buffer, which the poller does not use (see output.go), so a
// Server or Client runs one watcher: a goroutine waiting on an epoll set
// of its own, where each socket with pending output is registered for
// EPOLLOUT|EPOLLONESHOT (one wake-up per arming, no busy loop). When one
// fires, the watcher posts the connection's flush to its loop with
// SubmitConn, whose generation check drops it if the connection has gone.
//
// arm and disarm run on the connections' loops; the goroutine only reads
// the table under mu. A socket's entry is removed (disarm) before gnet
// closes the descriptor, so a reused descriptor number is never confused
// with an old connection for more than one harmless extra flush.
type watcher struct {
	epfd int
	wake int // an eventfd that stops the goroutine

	mu    sync.Mutex
	conns map[int32]watched // by socket descriptor; guarded by mu
	done  chan struct{}     // closed when the goroutine has returned
}

// watched is a connection waiting for its socket to become writable.
type watched struct {
	c   *Conn
	gen uint32
}

// newWatcher starts a watcher.
func newWatcher() (*watcher, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, err
	}
	w := &watcher{epfd: epfd, wake: wake, conns: map[int32]watched{}, done: make(chan struct{})}
	go w.run()
	return w, nil
}

// arm asks for one wake-up when c's socket is writable. Loop only.
func (w *watcher) arm(c *Conn) error {
	fd := int32(c.gc.Fd())
	ev := unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLONESHOT, Fd: fd}
	w.mu.Lock()
	_, known := w.conns[fd]
	w.conns[fd] = watched{c, c.Gen()}
	w.mu.Unlock()
	if known {
		if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_MOD, int(fd), &ev); !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	return unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
}

// disarm forgets c's socket. Loop only, before the descriptor is closed.
func (w *watcher) disarm(c *Conn) {
	fd := int32(c.gc.Fd())
	w.mu.Lock()
	e, ok := w.conns[fd]
	if ok && e.c == c {
		delete(w.conns, fd)
	}
	w.mu.Unlock()
	if ok && e.c == c {
		_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
	}
}

// run waits for writable sockets and posts their flushes to their loops.
func (w *watcher) run() {
	defer close(w.done)
	events := make([]unix.EpollEvent, 64)
	for {
		n, err := unix.EpollWait(w.epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return
		}
		for _, ev := range events[:n] {
			if int(ev.Fd) == w.wake {
				return
			}
			w.mu.Lock()
			e, ok := w.conns[ev.Fd]
			w.mu.Unlock()
			if ok {
				_ = e.c.SubmitConn(e.gen, (*Conn).onWritable)
			}
		}
	}
}

// stop ends the goroutine and releases the descriptors. Safe from any
// goroutine, once, after the loops have stopped arming.
func (w *watcher) stop() {
	var one = [8]byte{1}
	_, _ = unix.Write(w.wake, one[:])
	<-w.done
	unix.Close(w.epfd)
	unix.Close(w.wake)
}
