package poller

import (
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/loophttp/loophttp/codec"
	"golang.org/x/sys/unix"
)

// TestCloseAfterFailedWrite: the peer resets the connection while a
// response that closes it waits on the loop; the write fails, gnet closes
// the connection there and then (OnClose inside our Flush), and Close,
// CloseWrite and the engine carry on without touching the closed Conn.
// The response is ended from a task queued behind a task that holds the
// loop until the reset has reached the server's socket.
func TestCloseAfterFailedWrite(t *testing.T) {
	for _, closeWrite := range []bool{false, true} {
		h, c, st, conn := holdOne(t)
		gen := conn.Gen()

		holding, release := make(chan int), make(chan struct{})
		if err := conn.Submit(gen, func() { holding <- conn.gc.Fd(); <-release }); err != nil {
			t.Fatal(err)
		}
		fd := <-holding
		if err := conn.Submit(gen, func() {
			status := 200
			if closeWrite {
				status = 400 // an error status: the engine shuts the write side and drains (stageClose)
			}
			_ = st.SetHead(status, "", []codec.Header{{Name: []byte("Connection"), Value: []byte("close")}})
			_ = st.End(make([]byte, 64<<10)) // bigger than one write can take after the reset
		}); err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).SetLinger(0)
		c.Close() // a reset
		waitTCPState(t, fd, unix.BPF_TCP_CLOSE)
		close(release)
		<-h.closed
	}
}

// waitTCPState waits, for at most ten seconds, until the kernel reports
// the socket fd in state (a reset from the peer moves it to TCP_CLOSE).
func waitTCPState(t *testing.T, fd int, state uint8) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err == nil && info.State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("socket state %v, %v; want %d", info, err, state)
		}
		runtime.Gosched()
	}
}
