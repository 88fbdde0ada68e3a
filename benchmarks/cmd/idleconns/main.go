// Command idleconns measures a server's resident memory per idle
// keep-alive connection: it reads the server's RSS, opens n connections,
// sends one request on each and reads the response, waits for the server
// to settle, reads the RSS again, and prints the difference per
// connection. It works with any server process given its address and pid.
// It also counts the server's open file descriptors before and after, so a
// server that closed idle connections early (loophttp's keep-alive timeout
// is 5 s) shows as fewer new descriptors than connections. Loopback only;
// it closes everything before exiting. It holds n descriptors itself, so n
// must stay under its `ulimit -n`.
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
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "server address (loopback)")
	pid := flag.Int("pid", 0, "server process id, for its RSS")
	n := flag.Int("n", 10000, "connections")
	workers := flag.Int("workers", 8, "connections opened at once")
	settle := flag.Duration("settle", 2*time.Second, "wait after the last response before reading RSS")
	flag.Parse()
	if *pid == 0 {
		log.Fatal("-pid is required")
	}
	before, fdsBefore := rss(*pid), fds(*pid)
	start := time.Now()
	// A few dialers at once, so that 10,000 connections open in about a
	// second, well inside loophttp's 5 s keep-alive timeout.
	conns := make([]net.Conn, *n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	var wg sync.WaitGroup
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < *n; i += *workers {
				c, err := net.Dial("tcp", *addr)
				if err != nil {
					log.Fatalf("connection %d: %v", i, err)
				}
				conns[i] = c
				if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: bench\r\n\r\n"); err != nil {
					log.Fatal(err)
				}
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					log.Fatalf("response %d: %v", i, err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	opened := time.Since(start)
	time.Sleep(*settle) // let the server's allocations settle before reading RSS
	after, fdsAfter := rss(*pid), fds(*pid)
	fmt.Printf("connections=%d open_s=%.1f rss_before_kib=%d rss_after_kib=%d bytes_per_conn=%.0f server_fds_added=%d\n",
		*n, opened.Seconds(), before, after, float64(after-before)*1024/float64(*n), fdsAfter-fdsBefore)
}

// fds counts a process's open file descriptors.
func fds(pid int) int {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		log.Fatal(err)
	}
	return len(ents)
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
