package poller

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// The listening sockets. gnet keeps its listeners open until its engine
// stops and has no call to close them earlier, yet a server that shuts
// down must refuse new connects at once (ECONNREFUSED, as Node and Go do)
// while it drains the connections it has. Closing a listener under gnet is
// not enough: gnet treats any accept error but EAGAIN as fatal and stops
// the whole engine, connections included. So closeListeners, for each
// listening socket of the server:
//
//  1. points gnet's descriptor number for it at an empty, non-blocking
//     AF_UNIX listening socket (dup2(2), atomic): from then on gnet's
//     accept on that number returns EAGAIN, which gnet takes calmly, while
//     the real socket stays open through the server's own duplicate;
//  2. accepts, through that duplicate, the connections the kernel had
//     already completed and queued, and enrolls them in a loop (gnet's
//     EventLoop.Enroll), until no handshake with the port is in progress
//     (3 ms at most): a peer whose connect succeeded is served, not reset;
//  3. shuts the socket down (shutdown(2) with SHUT_RD on a listening
//     socket takes it out of the kernel's listening table): new connects
//     are refused, or go to another socket of its SO_REUSEPORT group;
//  4. closes the duplicate, which releases the socket (and its
//     registration in gnet's epoll set).
//
// A connect whose handshake is still in progress at step 3 (it began in
// the microseconds before, or took more than 3 ms) is reset by the
// kernel, as under any server that closes its listener.
//
// The sockets are found once, when the server has started: gnet's first
// listener through Engine.Dup; with SO_REUSEPORT gnet opens one listener
// per loop, which it does not expose, so the others are found among the
// process's descriptors (listening, SO_REUSEPORT, bound to the same
// address) and claimed in a process-wide registry. Servers of the process
// that listen on the same address with SO_REUSEPORT start one at a time
// (reuseportMu) so that each claims exactly its own.

// listenSock is one listening socket of the server.
type listenSock struct {
	dup  int    // the server's duplicate of the socket
	ino  uint64 // the socket's inode: its identity in /proc
	gfds []int  // gnet's descriptor numbers for it
}

// reuseportMu serialises the start of servers listening with SO_REUSEPORT,
// from gnet opening their sockets to claimListeners: the sockets not
// claimed yet are then those of the server starting.
var reuseportMu sync.Mutex

// claimed is the registry of the listening sockets (by inode) of the
// process's running servers. Guarded by claimedMu.
var (
	claimedMu sync.Mutex
	claimed   = map[uint64]bool{}
)

// inodeOf returns the inode of the socket fd.
func inodeOf(fd int) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// socketFds lists the process's descriptors that are sockets, with their
// inodes, from /proc/self/fd ("socket:[inode]").
func socketFds() (map[int]uint64, error) {
	dir, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	fds := make(map[int]uint64, len(dir))
	for _, e := range dir {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		link, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil || !strings.HasPrefix(link, "socket:[") || !strings.HasSuffix(link, "]") {
			continue
		}
		ino, err := strconv.ParseUint(link[len("socket:["):len(link)-1], 10, 64)
		if err == nil {
			fds[fd] = ino
		}
	}
	return fds, nil
}

// claimListeners records the server's listening sockets: first (a
// duplicate of gnet's first listener, taken at boot) and, with
// SO_REUSEPORT, the other loops' listeners. It runs once the engine has
// opened every listener (the first tick).
func (s *Server) claimListeners(first int) error {
	ino, err := inodeOf(first)
	if err != nil {
		unix.Close(first)
		return err
	}
	claimedMu.Lock()
	defer claimedMu.Unlock()
	fds, err := socketFds()
	if err != nil {
		unix.Close(first)
		return err
	}
	s.lns = append(s.lns, listenSock{dup: first, ino: ino, gfds: gnetFds(fds, ino, first)})
	claimed[ino] = true
	if !s.cfg.ReusePort {
		return nil
	}
	seen := map[uint64]bool{ino: true}
	for fd, ino := range fds {
		if seen[ino] || claimed[ino] || !s.isOwnListener(fd) {
			continue
		}
		seen[ino] = true
		dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("duplicating a listener: %w", err)
		}
		// The backlog, as OnBoot set it on the first listener.
		if err := unix.Listen(dup, s.cfg.Backlog); err != nil {
			unix.Close(dup)
			return fmt.Errorf("setting the backlog: %w", err)
		}
		s.lns = append(s.lns, listenSock{dup: dup, ino: ino, gfds: gnetFds(fds, ino, dup)})
		claimed[ino] = true
	}
	return nil
}

// gnetFds returns the descriptors of fds that are the socket ino, but dup.
func gnetFds(fds map[int]uint64, ino uint64, dup int) []int {
	var out []int
	for fd, i := range fds {
		if i == ino && fd != dup {
			out = append(out, fd)
		}
	}
	return out
}

// isOwnListener reports whether fd is a listening SO_REUSEPORT socket
// bound to the server's address.
func (s *Server) isOwnListener(fd int) bool {
	if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || v == 0 {
		return false
	}
	if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT); err != nil || v == 0 {
		return false
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return false
	}
	a, ok := s.addr.(*net.TCPAddr)
	b := sockaddrToTCP(sa)
	return ok && b != nil && a.Port == b.Port && a.IP.Equal(b.IP)
}

// closeListeners closes the server's listening sockets, serving what the
// kernel had queued (see the top of this file). It runs once, from
// Shutdown.
func (s *Server) closeListeners() {
	claimedMu.Lock()
	lns := s.lns
	s.lns = nil
	for _, ln := range lns {
		delete(claimed, ln.ino)
	}
	claimedMu.Unlock()
	if len(lns) == 0 {
		return
	}
	blind, err := emptyListener()
	if err != nil {
		s.cfg.Logger.Error("loophttp: closing the listener: no stand-in socket", "err", err)
	}
	var waits []<-chan gnet.RegisteredResult
	for _, ln := range lns {
		if blind >= 0 {
			for _, fd := range ln.gfds {
				_ = unix.Dup3(blind, fd, unix.O_CLOEXEC) // gnet's number for it now accepts nothing
			}
		}
		waits = s.settle(ln.dup, waits)
		_ = unix.Shutdown(ln.dup, unix.SHUT_RD)
		_ = unix.Close(ln.dup)
	}
	if blind >= 0 {
		_ = unix.Close(blind)
	}
	s.awaitOpen(waits) // after the shutdowns: connects are refused meanwhile
}

// settle accepts what is queued on the listening socket ln until no
// handshake with its port is in progress (diag.go), for maxSettle at most:
// a handshake in progress when the socket closes is reset by the kernel.
func (s *Server) settle(ln int, waits []<-chan gnet.RegisteredResult) []<-chan gnet.RegisteredResult {
	port := 0
	if a, ok := s.addr.(*net.TCPAddr); ok {
		port = a.Port
	}
	start := time.Now()
	for {
		// Accept after looking, so that what completed meanwhile is
		// taken too.
		done := port == 0 || !handshaking(port) || time.Since(start) >= maxSettle
		waits = s.acceptQueued(ln, waits)
		if done {
			return waits
		}
		time.Sleep(settleStep)
	}
}

// How long settle waits for handshakes in progress, and how often it
// looks. On loopback a handshake completes within microseconds; a peer
// that keeps connecting (or, with SO_REUSEPORT, another process's
// handshakes on the port) keeps one in progress all along, and settle then
// waits its maximum.
const (
	maxSettle  = 3 * time.Millisecond
	settleStep = 200 * time.Microsecond
)

// emptyListener returns a non-blocking AF_UNIX socket listening on an
// abstract address of the kernel's choosing, which nobody connects to:
// accept on it returns EAGAIN.
func emptyListener() (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	// An empty name binds an abstract address of the kernel's choosing.
	if err = unix.Bind(fd, &unix.SockaddrUnix{}); err == nil {
		err = unix.Listen(fd, 1)
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// acceptQueued accepts the connections queued on the listening socket ln
// and enrolls each in a loop; it returns what to wait on for their open.
func (s *Server) acceptQueued(ln int, waits []<-chan gnet.RegisteredResult) []<-chan gnet.RegisteredResult {
	for i := len(waits); ; i++ {
		nfd, _, err := unix.Accept4(ln, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err == unix.EINTR || err == unix.ECONNABORTED {
			continue
		}
		if err != nil {
			return waits // EAGAIN: the queue is empty
		}
		if ch := s.enroll(nfd, i); ch != nil {
			waits = append(waits, ch)
		}
	}
}

// awaitOpen waits until the connections enrolled by acceptQueued have
// opened (and so count in OpenConns).
func (s *Server) awaitOpen(waits []<-chan gnet.RegisteredResult) {
	for _, ch := range waits {
		if r := <-ch; r.Err != nil {
			s.cfg.Logger.Warn("loophttp: serving a connection queued at shutdown failed", "err", r.Err)
		}
	}
}

// enroll hands the accepted socket nfd to a loop (the i-th known, round
// robin), which opens it as if gnet had accepted it. gnet takes a
// duplicate; nfd is closed here.
func (s *Server) enroll(nfd, i int) <-chan gnet.RegisteredResult {
	f := os.NewFile(uintptr(nfd), "")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		s.cfg.Logger.Warn("loophttp: a connection queued at shutdown", "err", err)
		return nil
	}
	var ch <-chan gnet.RegisteredResult
	if el := s.loops.nth(i); el != nil {
		ch, err = el.Enroll(context.Background(), nc)
	} else {
		ch, err = s.eng.Register(gnet.NewNetConnContext(context.Background(), nc))
	}
	if err != nil {
		nc.Close()
		s.cfg.Logger.Warn("loophttp: a connection queued at shutdown", "err", err)
		return nil
	}
	return ch
}

// Connections in transit. Without SO_REUSEPORT gnet accepts on a goroutine
// of its own and hands each connection to a loop as a task; until the loop
// runs it (OnOpen) the server does not count the connection. Shutdown
// therefore notes the process's sockets on the server's port right after
// closing the listeners (portSockets), and waits, once its count is zero,
// until those are closed too (stillOpen): a connection gnet accepted just
// before is served, never cut by the engine's stop.

// portSockets returns the inodes of the process's TCP sockets with local
// port port that are not listening.
func portSockets(port int) map[uint64]bool {
	inos := map[uint64]bool{}
	want := fmt.Sprintf(":%04X", port)
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(line)
			if len(fields) < 10 || fields[3] == "0A" || !strings.HasSuffix(fields[1], want) {
				continue
			}
			if ino, err := strconv.ParseUint(fields[9], 10, 64); err == nil && ino != 0 {
				inos[ino] = true
			}
		}
	}
	mine, err := socketFds()
	if err != nil {
		return nil
	}
	own := map[uint64]bool{}
	for _, ino := range mine {
		if inos[ino] {
			own[ino] = true
		}
	}
	return own
}

// stillOpen returns the sockets of set the process still has open.
func stillOpen(set map[uint64]bool) map[uint64]bool {
	if len(set) == 0 {
		return nil
	}
	mine, err := socketFds()
	if err != nil {
		return nil
	}
	left := map[uint64]bool{}
	for _, ino := range mine {
		if set[ino] {
			left[ino] = true
		}
	}
	return left
}
