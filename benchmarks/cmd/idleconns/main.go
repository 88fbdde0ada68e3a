// Command idleconns measures a server's resident memory per idle
// keep-alive connection: it reads the server's RSS, opens n connections,
// sends one request on each and reads the response, waits for the server
// to settle, reads the RSS again, and prints the difference per
// connection. Loopback only; it closes everything before exiting.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "server address (loopback)")
	pid := flag.Int("pid", 0, "server process id, for its RSS")
	n := flag.Int("n", 10000, "connections")
	flag.Parse()
	if *pid == 0 {
		log.Fatal("-pid is required")
	}
	before := rss(*pid)
	conns := make([]net.Conn, 0, *n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < *n; i++ {
		c, err := net.Dial("tcp", *addr)
		if err != nil {
			log.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: bench\r\n\r\n"); err != nil {
			log.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			log.Fatalf("response %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	time.Sleep(2 * time.Second) // let the server's allocations settle before reading RSS
	after := rss(*pid)
	fmt.Printf("connections=%d rss_before_kib=%d rss_after_kib=%d bytes_per_conn=%.0f\n",
		*n, before, after, float64(after-before)*1024/float64(*n))
}

// rss reads VmRSS (KiB) of a process.
func rss(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		log.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			k, _ := strconv.Atoi(f[0])
			return k
		}
	}
	log.Fatal("no VmRSS")
	return 0
}
