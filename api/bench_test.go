package api

import (
	"bytes"
	"context"
	"io"
	"net"
	"strconv"
	"testing"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/engine"
	"github.com/loophttp/loophttp/internal/wirealloc"
	"github.com/loophttp/loophttp/poller"
)

// BenchmarkKeepAliveGet measures one keep-alive GET answered with
// res.End(body) through the whole api, over a loopback socket. The client
// loop reuses its buffers and allocates nothing, so allocs/op are the
// server's.
func BenchmarkKeepAliveGet(b *testing.B) {
	body := []byte("Hello, World!")
	c, err := net.Dial("tcp", plainServer(b, body, quiet()))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET / HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: bench\r\n\r\n")
	// Learn the response size from the first response (its Date has a
	// fixed length, so every response has the same size).
	buf := make([]byte, 4096)
	c.Write(req)
	n, err := c.Read(buf)
	if err != nil || !bytes.HasSuffix(buf[:n], body) {
		b.Fatalf("first response %q, %v", buf[:n], err)
	}
	size := n
	b.ReportAllocs()
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf[:size]); err != nil {
			b.Fatal(err)
		}
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// BenchmarkPipelined measures the server's own cost per request: batches
// of 64 pipelined TechEmpower plaintext requests (the request
// benchmarks/run.sh sends with wrk), answered through the whole api and, side by side,
// by an engine-level handler on the same runtime (the floor the api adds
// to). Besides the wall time, which includes the client, it reports
// server-ns/op: the CPU time of the server's one loop thread per request,
// system calls included, which is what the end-to-end benchmark's
// "requests per server CPU-second" measures, without wrk's noise. The
// servers set PinCPU, which locks the loop to its thread: unlocked, the
// loop's goroutine may change threads, and a thread's CPU time would not
// be the loop's.
func BenchmarkPipelined(b *testing.B) {
	body := []byte("Hello, World!")
	for _, reuse := range []bool{false, true} {
		name := "api"
		if reuse {
			name = "api-reuse"
		}
		b.Run(name, func(b *testing.B) {
			pipelined(b, plainServer(b, body, &Options{Loops: 1, PinCPU: true, Logger: quiet().Logger, ReuseMessages: reuse}), body)
		})
	}
	b.Run("engine", func(b *testing.B) {
		srv, err := poller.Start(poller.Config{Addr: "127.0.0.1:0", Loops: 1, PinCPU: true, Logger: quiet().Logger}, plainHandler{body}, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer srv.Shutdown(context.Background())
		pipelined(b, srv.Addr().String(), body)
	})
}

// cpuPath is the target the benchmark handlers answer with the CPU time
// of the loop thread running them (loopCPU), in decimal nanoseconds.
const cpuPath = "/loop-cpu"

// plainHandler answers every request with body, at the engine level.
type plainHandler struct{ body []byte }

func (h plainHandler) Request(s *engine.Stream, req *codec.Request) {
	if string(req.Target) == cpuPath {
		_ = s.SetHead(200, "", nil)
		_ = s.End([]byte(itoa(int(loopCPU()))))
		return
	}
	_ = s.SetHead(200, "", []codec.Header{{Name: []byte("Content-Type"), Value: []byte("text/plain")}})
}
func (h plainHandler) Body(*engine.Stream, []byte) {}
func (h plainHandler) End(s *engine.Stream, _ []codec.Header) {
	if !s.Ended() {
		_ = s.End(h.body)
	}
}
func (h plainHandler) Drain(*engine.Stream)        {}
func (h plainHandler) Close(*engine.Stream, error) {}

// techEmpowerRequest is the TechEmpower plaintext request as
// benchmarks/wrk/pipeline.lua sends it.
const techEmpowerRequest = "GET / HTTP/1.1\r\n" +
	"Host: server\r\n" +
	"Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\n" +
	"Connection: keep-alive\r\n" +
	"\r\n"

// pipelined sends b.N requests to addr in batches of 64 and reads the
// responses; one op is one request. It reports the server loop's CPU time
// per request (server-ns/op) when the platform can tell it.
func pipelined(b *testing.B, addr string, body []byte) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte(techEmpowerRequest)
	buf := make([]byte, 4096)
	c.Write(req)
	n, err := c.Read(buf)
	if err != nil || !bytes.HasSuffix(buf[:n], body) {
		b.Fatalf("first response %q, %v", buf[:n], err)
	}
	size := n
	const depth = 64
	batch := bytes.Repeat(req, depth)
	out := make([]byte, size*depth)
	cpu0 := serverCPU(b, addr)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += depth {
		k := min(depth, b.N-done)
		if _, err := c.Write(batch[:k*len(req)]); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, out[:k*size]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if cpu1 := serverCPU(b, addr); cpu0 >= 0 && cpu1 >= 0 {
		b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "server-ns/op")
	}
}

// serverCPU asks the server at addr, on a connection of its own, for the
// CPU time of its loop thread (cpuPath); -1 when the platform cannot tell.
func serverCPU(b *testing.B, addr string) int64 {
	if loopCPU() < 0 {
		return -1
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET "+cpuPath+" HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"); err != nil {
		b.Fatal(err)
	}
	res, err := io.ReadAll(c)
	_, digits, ok := bytes.Cut(res, []byte("\r\n\r\n"))
	if err != nil || !ok {
		b.Fatalf("loop CPU: %q, %v", res, err)
	}
	n, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil {
		b.Fatalf("loop CPU: %q", res)
	}
	return n
}

// TestKeepAliveAllocs pins the api's allocation budget: one object per
// keep-alive request answered with res.End (the message), none with
// Options.ReuseMessages, counted over a loopback socket whose client
// allocates nothing.
func TestKeepAliveAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("counts allocations over a socket")
	}
	for _, tc := range []struct {
		reuse bool
		max   float64
	}{{false, 1}, {true, 0}} {
		opts := quiet()
		opts.ReuseMessages = tc.reuse
		if n := keepAliveAllocs(t, opts); n > tc.max {
			t.Errorf("ReuseMessages %v: %v allocations per request; want at most %v", tc.reuse, n, tc.max)
		}
	}
}

// TestDefaultRequestCost pins what the README's server costs per request
// with default options, measured precisely (testing.AllocsPerRun rounds
// down): one object of 320 bytes for the TechEmpower plaintext request
// (3 fields) plus its share of the loop's 4 KiB head arena, about 1/27 of
// an allocation and 150 bytes; with Options.ReuseMessages nothing (the
// bounds leave 0.1 allocation and a few bytes per request to the rest of
// the process: the runtime and the loops' timers, 0.015 to 0.03 measured).
func TestDefaultRequestCost(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("counts allocations over a socket (the race detector adds its own)")
	}
	for _, tc := range []struct {
		reuse           bool
		allocs, bytesAt float64
	}{{false, 1.1, 320 + 200}, {true, 0.1, 32}} {
		opts := quiet()
		opts.ReuseMessages = tc.reuse
		srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
			res.SetHeader("Content-Type", "text/plain")
			res.End([]byte("Hello, World!"), nil)
		}, opts)
		allocs, bytes := wirealloc.Precise(t, listen(t, srv), techEmpowerRequest, "Hello, World!")
		t.Logf("ReuseMessages %v: %.3f allocations, %.0f bytes per request", tc.reuse, allocs, bytes)
		if allocs > tc.allocs || bytes > tc.bytesAt {
			t.Errorf("ReuseMessages %v: %.3f allocations, %.0f bytes per request; want at most %v and %v",
				tc.reuse, allocs, bytes, tc.allocs, tc.bytesAt)
		}
	}
}

// plainServer starts a server with opts that answers every request with
// body as text/plain, closed when b ends, and returns its address.
func plainServer(b *testing.B, body []byte, opts *Options) string {
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		if req.URL == cpuPath {
			res.End([]byte(itoa(int(loopCPU()))), nil)
			return
		}
		res.SetHeader("Content-Type", "text/plain")
		res.End(body, nil)
	}, opts)
	if err := srv.Listen(0, "127.0.0.1", 0, nil); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		done := make(chan error)
		srv.Close(func(err error) { done <- err })
		<-done
	})
	a := srv.Address()
	return net.JoinHostPort(a.Address, itoa(a.Port))
}

// keepAliveAllocs returns the allocations per keep-alive request of a
// server made with opts.
func keepAliveAllocs(t *testing.T, opts *Options) float64 {
	body := []byte("Hello, World!")
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		res.SetHeader("Content-Type", "text/plain")
		res.End(body, nil)
	}, opts)
	return wirealloc.PerRequest(t, listen(t, srv), "GET / HTTP/1.1\r\nHost: localhost:8080\r\n\r\n", string(body))
}

// TestLargeWritesCopyIntoPooledBuffers: the body copies a response makes
// of Writes too large for its inline space come from bytebufferpool and go
// back once the engine has taken them, so a handler that writes 8 chunks
// of 2 KiB (ReuseMessages: nothing else allocates) costs no allocation per
// request; a fresh copy per Write cost 8.
func TestLargeWritesCopyIntoPooledBuffers(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("counts allocations over a socket (the race detector adds its own)")
	}
	chunk := bytes.Repeat([]byte("x"), 2048)
	opts := quiet()
	opts.ReuseMessages = true
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		res.SetHeader("Content-Length", "16384")
		for range 8 {
			res.Write(chunk, nil)
		}
		res.End(nil, nil)
	}, opts)
	allocs, bytes := wirealloc.Precise(t, listen(t, srv), techEmpowerRequest, string(chunk[:64]))
	t.Logf("%.3f allocations, %.0f bytes per request", allocs, bytes)
	if allocs > 0.5 {
		t.Errorf("%.3f allocations (%.0f bytes) per request of 8 large Writes; want none", allocs, bytes)
	}
}
