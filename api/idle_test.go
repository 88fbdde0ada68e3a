package api

import (
	"bytes"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// idleHeapBudget is the most heap one idle keep-alive connection may hold
// after one request, measured through the whole server: api, engine,
// poller and gnet. gnet's own state is about 365 bytes of it (its conn,
// the peer's address, its connection map); loophttp's is its Socket (64),
// poller.Conn (96) and engine.ServerConn (96): 644 bytes in all when this
// was written. The budget leaves room for noise, not for another object of
// 32 bytes per connection.
const idleHeapBudget = 672

// TestIdleConnectionHeap opens many keep-alive connections, makes one
// request on each and measures the live heap they hold once idle. The
// client side uses raw sockets, so the process's heap grows by the
// server's share only.
func TestIdleConnectionHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 2,000 connections")
	}
	const n = 2000
	raiseFileLimit(t, 2*n+200)
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		res.SetHeader("Content-Type", "text/plain")
		res.End(idleResponse, nil)
	}, &Options{Loops: 1, Logger: quiet().Logger})
	listen(t, srv)
	port := srv.Address().Port
	var fds []int
	t.Cleanup(func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	})
	buf := make([]byte, 512)
	open := func(k int) {
		for i := 0; i < k; i++ {
			fds = append(fds, dialAndGet(t, port, buf))
		}
	}
	open(100) // the loop's own state, pools and first blocks
	before := liveObjects()
	open(n)
	after := liveObjects()
	perConn := float64(after-before) / n
	t.Logf("%.0f bytes of heap per idle connection (budget %d)", perConn, idleHeapBudget)
	if perConn > idleHeapBudget {
		t.Errorf("%.0f bytes of heap per idle connection; budget %d", perConn, idleHeapBudget)
	}
}

// liveObjects collects garbage and returns the bytes of live heap objects
// (liveHeap counts whole spans, too coarse here). It collects twice:
// objects in a sync.Pool survive one collection in the pool's victim cache.
func liveObjects() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

var (
	idleRequest  = []byte("GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
	idleResponse = []byte("Hello, World!")
)

// dialAndGet connects a raw socket to the loopback port, sends one GET and
// reads its whole response into buf, and returns the socket, left open.
func dialAndGet(t *testing.T, port int, buf []byte) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A server that does not answer fails the test instead of hanging it.
	tv := unix.NsecToTimeval(int64(10 * time.Second))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	if _, err := unix.Write(fd, idleRequest); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	got := 0
	for !bytes.HasSuffix(buf[:got], idleResponse) {
		k, err := unix.Read(fd, buf[got:])
		if err != nil || k == 0 {
			unix.Close(fd)
			t.Fatalf("reading the response: %q, %v", buf[:got], err)
		}
		got += k
	}
	return fd
}

// raiseFileLimit makes sure the process may open n descriptors, raising
// its soft limit if need be, or skips the test.
func raiseFileLimit(t *testing.T, n uint64) {
	t.Helper()
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("reading RLIMIT_NOFILE: %v", err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Skipf("RLIMIT_NOFILE allows %d descriptors; the test needs %d", lim.Max, n)
	}
	lim.Cur = n
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("raising RLIMIT_NOFILE: %v", err)
	}
}
