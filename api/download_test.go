package api

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLargeDownloadDefaultOptions downloads a 200 MB body (past the
// codec's 64 MiB default limit, which a client does not apply to bodies
// unless told to), framed by Content-Length and chunked, with a default
// Agent, hashing it as it arrives: the SHA-256 matches what the server
// sent, and the heap in use never grows by more than a small bound while
// the body streams through (the client keeps none of it). About a second
// per framing under -race on loopback.
func TestLargeDownloadDefaultOptions(t *testing.T) {
	const total = 200_000_000
	const heapBound = 16 << 20
	block := make([]byte, 256<<10)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := 0; i+8 <= len(block); i += 8 {
		binary.LittleEndian.PutUint64(block[i:], rnd.Uint64())
	}
	sums := make(chan [sha256.Size]byte, 2)
	host, port, _ := rawServer(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		line, err := r.ReadString('\n')
		if err != nil || readHead(r) != nil {
			return
		}
		sums <- serveBody(c, block, total, strings.HasPrefix(line, "GET /chunked "))
	})
	for _, path := range []string{"/length", "/chunked"} {
		t.Run(path[1:], func(t *testing.T) {
			a := testAgent(t, AgentOptions{})
			var (
				h        = sha256.New()
				n        int
				peak     uint64
				ms       runtime.MemStats
				nextPeek int
			)
			runtime.GC()
			runtime.ReadMemStats(&ms)
			base := ms.HeapInuse
			start := time.Now()
			o := &outcome{}
			done := make(chan struct{})
			req, err := RequestURL(fmt.Sprintf("http://%s:%d%s", host, port, path), RequestOptions{Agent: a}, func(res *IncomingMessage) {
				o.status = res.StatusCode
				res.OnData(func(c []byte) {
					h.Write(c)
					n += len(c)
					if n >= nextPeek { // every 4 MiB: ReadMemStats stops the world
						nextPeek = n + 4<<20
						runtime.ReadMemStats(&ms)
						peak = max(peak, ms.HeapInuse)
					}
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			req.OnError(func(err error) { o.errs = append(o.errs, err) })
			req.OnClose(func() { close(done) })
			req.End(nil, nil)
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				t.Fatal("download did not finish")
			}
			want := <-sums
			if len(o.errs) != 0 || o.status != 200 || n != total {
				t.Fatalf("status %d, %d of %d bytes, errors %v", o.status, n, total, o.errs)
			}
			if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
				t.Fatalf("sha256 %x; the server sent %x", got, want)
			}
			growth := int64(peak) - int64(base)
			t.Logf("%d bytes in %v; heap in use %d MiB before, at most %d MiB during (+%d KiB); RSS %s",
				n, time.Since(start).Round(time.Millisecond), base>>20, peak>>20, growth>>10, rss())
			if growth > heapBound {
				t.Fatalf("heap in use grew by %d MiB while downloading %d MiB; want under %d MiB", growth>>20, total>>20, heapBound>>20)
			}
		})
	}
}

// serveBody writes a 200 response of total bytes built from block (each
// copy stamped with its index, so that no two are alike), framed by
// Content-Length or chunked, and returns the SHA-256 of the body.
func serveBody(w io.Writer, block []byte, total int, chunked bool) [sha256.Size]byte {
	bw := bufio.NewWriterSize(w, 64<<10)
	if chunked {
		io.WriteString(bw, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
	} else {
		io.WriteString(bw, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(total)+"\r\nConnection: close\r\n\r\n")
	}
	h := sha256.New()
	buf := bytes.Clone(block)
	for i, sent := 0, 0; sent < total; i++ {
		binary.LittleEndian.PutUint64(buf, uint64(i))
		p := buf[:min(len(buf), total-sent)]
		h.Write(p)
		if chunked {
			io.WriteString(bw, strconv.FormatInt(int64(len(p)), 16)+"\r\n")
		}
		if _, err := bw.Write(p); err != nil {
			break
		}
		if chunked {
			io.WriteString(bw, "\r\n")
		}
		sent += len(p)
	}
	if chunked {
		io.WriteString(bw, "0\r\n\r\n")
	}
	bw.Flush()
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// rss returns the process's resident set size from /proc, or "n/a".
func rss() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "n/a"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "n/a"
}
