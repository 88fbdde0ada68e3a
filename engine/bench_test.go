package engine

import (
	"bytes"
	"strings"
	"testing"

	"github.com/loophttp/loophttp/codec"
)

// techEmpowerRequest is the TechEmpower plaintext request as
// benchmarks/wrk/pipeline.lua sends it.
const techEmpowerRequest = "GET /plaintext HTTP/1.1\r\n" +
	"Host: server\r\n" +
	"Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\n" +
	"Connection: keep-alive\r\n" +
	"\r\n"

// BenchmarkServerConnPipelined measures the engine's CPU per request on the
// pipelined keep-alive path, without sockets: batches of 16 TechEmpower
// requests reach one ServerConn in one OnData, and the handler answers as
// benchmarks/cmd/plaintext does. One op is one request.
func BenchmarkServerConnPipelined(b *testing.B) {
	const depth = 16
	body := []byte("Hello, World!")
	fields := []codec.Header{{Name: []byte("Content-Type"), Value: []byte("text/plain")}}
	h := newHarness(b, Config{})
	h.sc.h = minimalHandler{body, fields}
	batch := []byte(strings.Repeat(techEmpowerRequest, depth))
	in := make([]byte, len(batch)) // Discard reslices conn.In: keep the buffer here
	h.conn.Out = make([]byte, 0, 64<<10)
	run := func(n int) {
		h.conn.In = in[:copy(in, batch[:n*len(techEmpowerRequest)])]
		h.conn.Out = h.conn.Out[:0]
		h.sc.OnData(h.clock.now)
	}
	run(depth)
	if got := bytes.Count(h.conn.Out, body); got != depth || len(h.conn.In) != 0 || h.conn.Closed {
		b.Fatalf("%d responses, %d bytes left, closed %v; want %d, 0, open:\n%s", got, len(h.conn.In), h.conn.Closed, depth, h.conn.Out)
	}
	b.SetBytes(int64(len(techEmpowerRequest)))
	b.ReportAllocs()
	b.ResetTimer()
	for n := b.N; n > 0; n -= depth {
		run(min(n, depth))
	}
}
