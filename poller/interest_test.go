package poller

import (
	"bufio"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/engine"
)

// The read pause and the output path rely on how gnet v2 registers and
// serves a connection (interest.go, output.go). These tests pin each of
// those behaviours, so an upgrade of gnet that changes one fails here
// rather than in production.

// connOK answers "ok" and records the connection it answered on.
type connOK struct {
	okHandler
	conn atomic.Pointer[Conn]
}

func (h *connOK) End(s *engine.Stream, _ []codec.Header) {
	h.conn.Store(s.Conn().(*Conn))
	s.End([]byte("ok"))
}

// TestGnetRegistration: gnet registers a connection in its loop's epoll
// set for EPOLLIN|EPOLLPRI, level-triggered, without EPOLLRDHUP (with it,
// gnet would close on a peer's FIN even while paused); findEpoll finds
// that set; a pause registers the socket for nothing and a resume restores
// gnet's words.
func TestGnetRegistration(t *testing.T) {
	h := &connOK{}
	c := dial(t, startServer(t, Config{}, h))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	readResponses(t, bufio.NewReader(c), 1)
	conn := h.conn.Load()
	runOnLoop(t, conn, func() error {
		fd := conn.gc.Fd()
		epfd, err := conn.loop.epoll(conn)
		if err != nil {
			return err
		}
		check := func(when string, want uint32) {
			got, err := registeredEvents(epfd, fd)
			if err != nil || got != want {
				t.Errorf("%s: registered for %#x (%v); want %#x", when, got, err, want)
			}
		}
		check("as gnet registered it", readEvents)
		if err := setReading(epfd, fd, false); err != nil {
			return err
		}
		check("paused", 0)
		if err := setReading(epfd, fd, true); err != nil {
			return err
		}
		check("resumed", readEvents)
		return nil
	})
}

// TestOutputBypassesGnetBuffer: a response larger than the socket takes
// waits in the poller's pending buffer, never in gnet's (whose draining
// would re-register the socket for reading behind the pause), and reading
// is off meanwhile.
func TestOutputBypassesGnetBuffer(t *testing.T) {
	_, _, st, conn := holdOne(t)
	runOnLoop(t, conn, func() error {
		_ = st.End(make([]byte, 32<<20))
		conn.afterEvent()
		if n := conn.gc.OutboundBuffered(); n != 0 {
			t.Errorf("gnet buffered %d bytes; want 0", n)
		}
		if conn.Buffered() == 0 {
			t.Error("nothing pending after 32 MiB to a client that does not read")
		}
		if !conn.paused {
			t.Error("reading is on while output is pending")
		}
		return nil
	})
}

// registeredEvents returns the events fd is registered for in the epoll
// set epfd, from its fdinfo ("tfd: <fd> events: <hex> ..."), without
// EPOLLERR and EPOLLHUP, which the kernel adds to every registration.
func registeredEvents(epfd, fd int) (uint32, error) {
	b, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(epfd))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == "tfd:" && f[1] == strconv.Itoa(fd) && f[2] == "events:" {
			ev, err := strconv.ParseUint(f[3], 16, 32)
			return uint32(ev) &^ (unix.EPOLLERR | unix.EPOLLHUP), err
		}
	}
	return 0, errNoEpoll
}
