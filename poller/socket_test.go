package poller

import (
	"context"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/loophttp/loophttp/engine"
)

// onLoop runs fn on the loop of a fresh connection to s and waits for it.
func onLoop(t *testing.T, s *Server, held chan *engine.Stream, fn func(c *Conn)) {
	t.Helper()
	c := dial(t, s)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	st := <-held
	conn := st.Conn().(*Conn)
	done := make(chan struct{})
	if err := conn.Submit(conn.Gen(), func() { fn(conn); st.End(nil); close(done) }); err != nil {
		t.Fatal(err)
	}
	<-done
}

func TestLoopThreadPinnedAndNoDelay(t *testing.T) {
	held := make(chan *engine.Stream, 1)
	s := startServer(t, Config{PinCPU: true}, &holdHandler{held: held})
	var cpus, nodelay int
	onLoop(t, s, held, func(c *Conn) {
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(0, &set); err == nil {
			cpus = set.Count()
		}
		nodelay, _ = unix.GetsockoptInt(c.gc.Fd(), unix.IPPROTO_TCP, unix.TCP_NODELAY)
	})
	if cpus != 1 {
		t.Errorf("loop thread may run on %d CPUs; want pinned to 1", cpus)
	}
	if nodelay == 0 {
		t.Error("TCP_NODELAY is off")
	}
}

func TestBacklog(t *testing.T) {
	ss, err := exec.LookPath("ss")
	if err != nil {
		t.Skip("ss (iproute2) is not installed: cannot read the listen backlog")
	}
	s := startServer(t, Config{Backlog: 77}, newEcho())
	port := strconv.Itoa(s.Addr().(*net.TCPAddr).Port)
	out, err := exec.Command(ss, "-ltnH", "sport = :"+port).Output()
	if err != nil {
		t.Fatalf("ss: %v", err)
	}
	fields := strings.Fields(string(out))
	// State Recv-Q Send-Q Local Peer: for a listener Send-Q is the backlog.
	if len(fields) < 3 || fields[2] != "77" {
		t.Fatalf("ss reports %q; want a backlog (Send-Q) of 77", out)
	}
}

func TestReusePort(t *testing.T) {
	a := startServer(t, Config{ReusePort: true}, newEcho())
	cfg := Config{Addr: a.Addr().String(), ReusePort: true, Loops: 1, Logger: quietLogger()}
	b, err := Start(cfg, newEcho(), nil)
	if err != nil {
		t.Fatalf("second server on %s with SO_REUSEPORT: %v", a.Addr(), err)
	}
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestShutdownDeadlineForcesClose(t *testing.T) {
	held := make(chan *engine.Stream, 1)
	cfg := Config{Addr: "127.0.0.1:0", Loops: 1, Tick: 10 * time.Millisecond, Logger: quietLogger()}
	s, err := Start(cfg, &holdHandler{held: held}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	<-held // never answered
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Shutdown: %v; want the context's deadline error", err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("connection not closed by the forced shutdown: %v", err)
	}
}
