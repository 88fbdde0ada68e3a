// Command ceiling is the speed ceiling for loophttp's end-to-end
// benchmarks: a gnet server that answers every request head with a canned
// plaintext response without parsing anything (package internal/ceiling).
package main

import (
	"flag"
	"fmt"
	"log"
	"net"

	"github.com/panjf2000/gnet/v2"

	"github.com/loophttp/loophttp/benchmarks/internal/ceiling"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "listen address (port 0: the kernel picks one)")
	flag.Parse()
	log.Fatal(ceiling.Run(*addr, func(_ gnet.Engine, a net.Addr) { fmt.Println("ceiling listening on", a) }))
}
