package main

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loophttp/loophttp/api"
)

// bigBody is the byte at offset i of the test bodies.
func bigBody(b []byte, off int64) {
	for i := range b {
		b[i] = byte((off + int64(i)) % 253)
	}
}

// startBigServer serves GET /N with N bytes of bigBody, chunked (no
// length: the client cannot size a buffer from the head), written while
// the output has room.
func startBigServer(t *testing.T) string {
	t.Helper()
	srv := api.CreateServer(func(req *api.IncomingMessage, res *api.ServerResponse) {
		var n int64
		fmt.Sscan(strings.TrimPrefix(req.URL, "/"), &n)
		var sent int64
		buf := make([]byte, 64<<10)
		var pump func()
		pump = func() {
			for sent < n {
				b := buf[:min(int64(len(buf)), n-sent)]
				bigBody(b, sent)
				sent += int64(len(b))
				if !res.Write(b, nil) {
					return
				}
			}
			res.End(nil, nil)
		}
		res.OnDrain(pump)
		pump()
	}, &api.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := srv.Listen(0, "127.0.0.1", 0, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(nil) })
	a := srv.Address()
	return "http://" + net.JoinHostPort(a.Address, fmt.Sprint(a.Port))
}

// hashWriter hashes what is written to it and samples the heap now and
// then, as a slow disk or pipe would be written.
type hashWriter struct {
	h    hash.Hash
	n    int64
	peak atomic.Uint64
}

func (w *hashWriter) Write(p []byte) (int, error) {
	w.h.Write(p)
	if w.n/(8<<20) != (w.n+int64(len(p)))/(8<<20) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse > w.peak.Load() {
			w.peak.Store(ms.HeapInuse)
		}
	}
	w.n += int64(len(p))
	return len(p), nil
}

func wantSum(n int64) []byte {
	h := sha256.New()
	buf := make([]byte, 64<<10)
	for off := int64(0); off < n; off += int64(len(buf)) {
		b := buf[:min(int64(len(buf)), n-off)]
		bigBody(b, off)
		h.Write(b)
	}
	return h.Sum(nil)
}

// TestGetStreamsLargeBodies: get writes a 200 MB body to its output as it
// arrives, whole (sha256), while the heap stays within a few MiB of where
// it started: the body is never held.
func TestGetStreamsLargeBodies(t *testing.T) {
	const n = 200_000_000
	url := startBigServer(t)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	w := &hashWriter{h: sha256.New()}
	start := time.Now()
	status := run([]string{"get", fmt.Sprintf("%s/%d", url, n)}, strings.NewReader(""), w, os.Stderr, nil)
	if status != 0 || w.n != n || fmt.Sprintf("%x", w.h.Sum(nil)) != fmt.Sprintf("%x", wantSum(n)) {
		t.Fatalf("status %d, %d bytes (sha256 %x); want 0 and %d bytes of the body", status, w.n, w.h.Sum(nil), n)
	}
	grew := int64(w.peak.Load()) - int64(base)
	t.Logf("%d MB in %v; heap in use %d KiB at the start, peak %d KiB", n/1_000_000, time.Since(start).Round(time.Millisecond), base>>10, w.peak.Load()>>10)
	if grew > 32<<20 {
		t.Errorf("the heap grew by %d MiB while streaming; want under 32 MiB", grew>>20)
	}
}

// TestGetOutputFileWhole: -o streams a large body into a file that
// appears once the whole response is in, and leaves nothing behind when
// the exchange fails.
func TestGetOutputFileWhole(t *testing.T) {
	url := startBigServer(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "out.bin")
	if out, errOut, status := runCLI("get", "-o", path, url+"/1000000"); status != 0 || out != "" {
		t.Fatalf("status %d, stdout %q, stderr %q", status, out, errOut)
	}
	got, err := os.ReadFile(path)
	if err != nil || len(got) != 1000000 || fmt.Sprintf("%x", sha256.Sum256(got)) != fmt.Sprintf("%x", wantSum(1000000)) {
		t.Fatalf("%d bytes, %v; want the 1 MB body", len(got), err)
	}
	bad := filepath.Join(dir, "bad.bin")
	if _, _, status := runCLI("get", "-o", bad, "http://127.0.0.1:1/"); status == 0 {
		t.Fatal("get of a refused port succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if _, err := os.Stat(bad); err == nil || len(entries) != 1 {
		t.Fatalf("after a failed get: %d entries in the directory (%v); want only out.bin", len(entries), err)
	}
}
