// Command ceiling is the speed ceiling for loophttp's end-to-end
// benchmarks: a gnet server that answers every request head with a canned
// plaintext response without parsing anything. It counts heads by their
// final CRLF CRLF, so it is only correct for requests without a body, which
// is what the benchmarks send.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"

	"github.com/panjf2000/gnet/v2"
)

// response is byte for byte what loophttp's plaintext server sends, with a
// fixed Date.
var response = []byte("HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n" +
	"Date: Tue, 24 Nov 2026 08:00:00 GMT\r\n\r\nHello, World!")

var headEnd = []byte("\r\n\r\n")

type server struct {
	gnet.BuiltinEventEngine
	out []byte // one per loop would be needed with several loops; see -loops
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
		out = append(out, response...)
	}
	if used > 0 {
		_, _ = c.Discard(used)
		_, _ = c.Write(out)
	}
	s.out = out
	return gnet.None
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "listen address")
	flag.Parse()
	fmt.Println("ceiling listening on", *addr)
	// One loop: the benchmarks pin the server to one core, and the shared
	// out buffer is only safe with a single loop.
	log.Fatal(gnet.Run(&server{}, "tcp://"+*addr, gnet.WithNumEventLoop(1), gnet.WithLockOSThread(true),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay), gnet.WithReuseAddr(true)))
}
