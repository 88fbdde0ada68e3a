package engine_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/engine"
	"github.com/loophttp/loophttp/poller"
)

// The client engine over real sockets (through package poller), for what
// the fake transport cannot show: a write that fails because the server
// reset the connection makes the transport close it synchronously, inside
// the engine's call.

// resetServer accepts connections and, on each, reads until depth
// requests have arrived, answers the first whole[i] of them (i counting
// connections), and resets the connection (SO_LINGER 0): the server that
// made `loophttp load -pipeline 4` panic.
type resetServer struct {
	ln    net.Listener
	depth int
	whole []int
	wg    sync.WaitGroup
}

func startResetServer(t *testing.T, depth int, whole []int) *resetServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &resetServer{ln: ln, depth: depth, whole: whole}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *resetServer) serve() {
	defer s.wg.Done()
	for i := 0; ; i++ {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(c.(*net.TCPConn), s.whole[i%len(s.whole)])
		}()
	}
}

const resetResponse = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"

func (s *resetServer) handle(c *net.TCPConn, whole int) {
	defer c.Close()
	var in []byte
	buf := make([]byte, 4096)
	for bytes.Count(in, []byte("\r\n\r\n")) < s.depth {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		in = append(in, buf[:n]...)
	}
	out := bytes.Repeat([]byte(resetResponse), whole)
	out = append(out, resetResponse[:20]...) // the next one cut short
	if _, err := c.Write(out); err != nil {
		return
	}
	_ = c.SetLinger(0) // Close sends RST
}

// loadConn keeps depth requests in flight on one connection as `loophttp
// load -pipeline depth` does: the next request goes out from the End of
// each response. Its fields belong to the connection's loop; the test
// reads them after closed has been closed.
type loadConn struct {
	depth    int
	inFlight int
	begun    int
	complete int // exchanges closed with nil
	failed   int
	closes   map[uint32]int // Close calls per exchange generation
	closed   chan struct{}
}

func (l *loadConn) Information(*engine.Exchange, *codec.Response) {}
func (l *loadConn) Response(*engine.Exchange, *codec.Response)    {}
func (l *loadConn) Body(*engine.Exchange, []byte)                 {}
func (l *loadConn) Drain(*engine.Exchange)                        {}
func (l *loadConn) Timeout(*engine.Exchange)                      {}
func (l *loadConn) End(x *engine.Exchange, _ []codec.Header)      { l.fill(x.Conn()) }
func (l *loadConn) Idle(c *engine.ClientConn)                     { l.fill(c) }

func (l *loadConn) Close(x *engine.Exchange, err error) {
	l.closes[x.Gen()]++
	l.inFlight--
	if err == nil {
		l.complete++
	} else {
		l.failed++
	}
}

// fill begins requests until depth are in flight (counting those whose
// End is being delivered, as load counts them).
func (l *loadConn) fill(c *engine.ClientConn) {
	for l.inFlight < l.depth {
		x, err := c.Begin(l, "GET", "/")
		if err != nil {
			return
		}
		l.begun++
		l.inFlight++
		_ = x.AddField("Host", "test")
		_ = x.End(nil)
	}
}

// closedHook reports each connection's close to its loadConn.
type closedHook struct{}

func (closedHook) Closed(c *poller.Conn) { close(c.Data.(*loadConn).closed) }

// TestClientPipelinedServerResets: a server resets connections with four
// pipelined requests in flight after answering 0, 1, 2 or 3 of them whole.
// No panic reaches the loop, every exchange begun closes exactly once, and
// at least the responses that arrived whole before the reset count as
// complete on some connection (the kernel may drop the rest with the
// reset).
func TestClientPipelinedServerResets(t *testing.T) {
	const depth, conns = 4, 40
	srv := startResetServer(t, depth, []int{0, 1, 2, 3})
	cl, err := poller.NewClient(poller.ClientConfig{Loops: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, closedHook{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	loads := make([]*loadConn, conns)
	for i := range loads {
		l := &loadConn{depth: depth, closes: map[uint32]int{}, closed: make(chan struct{})}
		loads[i] = l
		dialed := make(chan error, 1)
		cl.Dial(context.Background(), srv.ln.Addr().String(), l, func(c *poller.Conn, err error) {
			if err == nil {
				c.Data = l
				l.fill(c.Client())
			}
			dialed <- err
		})
		if err := <-dialed; err != nil {
			t.Fatal(err)
		}
	}
	complete := 0
	for i, l := range loads {
		select {
		case <-l.closed:
		case <-time.After(10 * time.Second):
			t.Fatalf("connection %d still open", i)
		}
		if l.begun < depth || l.complete+l.failed != l.begun || l.inFlight != 0 {
			t.Errorf("connection %d: %d begun, %d complete, %d failed, %d in flight", i, l.begun, l.complete, l.failed, l.inFlight)
		}
		for gen, n := range l.closes {
			if n != 1 {
				t.Errorf("connection %d: exchange %d closed %d times", i, gen, n)
			}
		}
		complete += l.complete
	}
	if complete == 0 {
		t.Error("no response arrived whole on any connection")
	}
	t.Logf("%d responses whole over %d connections", complete, conns)
}
