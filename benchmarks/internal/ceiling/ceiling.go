// Package ceiling is the speed ceiling for loophttp's end-to-end
// benchmarks: a gnet server that answers every request head with a canned
// plaintext response without parsing anything. It counts heads by their
// final CRLF CRLF, so it is only correct for requests without a body, which
// is what the benchmarks send.
package ceiling

import (
	"bytes"
	"net"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// Response is byte for byte what loophttp's plaintext server sends, with a
// fixed Date.
var Response = []byte("HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n" +
	"Date: Tue, 24 Nov 2026 08:00:00 GMT\r\n\r\nHello, World!")

var headEnd = []byte("\r\n\r\n")

type server struct {
	gnet.BuiltinEventEngine
	out    []byte // one per loop would be needed with several loops; see -loops
	booted func(gnet.Engine, net.Addr)
}

// OnBoot reports the address the listener is bound to (the kernel's pick
// when the port was 0).
func (s *server) OnBoot(eng gnet.Engine) gnet.Action {
	if s.booted == nil {
		return gnet.None
	}
	var addr net.Addr
	if fd, err := eng.Dup(); err == nil {
		if sa, err := unix.Getsockname(fd); err == nil {
			if in4, ok := sa.(*unix.SockaddrInet4); ok {
				addr = &net.TCPAddr{IP: net.IP(in4.Addr[:]), Port: in4.Port}
			} else if in6, ok := sa.(*unix.SockaddrInet6); ok {
				addr = &net.TCPAddr{IP: net.IP(in6.Addr[:]), Port: in6.Port}
			}
		}
		_ = unix.Close(fd)
	}
	s.booted(eng, addr)
	return gnet.None
}

func (s *server) OnTraffic(c gnet.Conn) gnet.Action {
	in, _ := c.Peek(-1)
	out := s.out[:0]
	used := 0
	for {
		i := bytes.Index(in[used:], headEnd)
		if i < 0 {
			break
		}
		used += i + len(headEnd)
		out = append(out, Response...)
	}
	if used > 0 {
		_, _ = c.Discard(used)
		_, _ = c.Write(out)
	}
	s.out = out
	return gnet.None
}

// Run serves on addr until the engine is stopped, calling booted once the
// listener is up.
func Run(addr string, booted func(gnet.Engine, net.Addr)) error {
	// One loop: the benchmarks pin the server to one core, and the shared
	// out buffer is only safe with a single loop.
	return gnet.Run(&server{booted: booted}, "tcp://"+addr, gnet.WithNumEventLoop(1), gnet.WithLockOSThread(true),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay), gnet.WithReuseAddr(true))
}
