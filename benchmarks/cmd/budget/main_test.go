package main

import (
	"bytes"
	"strings"
	"testing"
)

// traces is a made-up `go tool pprof -traces` output: a write system call,
// an allocation under the api, the codec, and a GC worker.
const traces = `File: plaintext
Type: cpu
-----------+-------------------------------------------------------
      30ms   internal/runtime/syscall/linux.Syscall6
             syscall.RawSyscall6
             golang.org/x/sys/unix.write
             github.com/loophttp/loophttp/poller.(*Conn).writeOut
-----------+-------------------------------------------------------
      20ms   runtime.mallocgc
             runtime.newobject
             github.com/loophttp/loophttp/api.newMessage (inline)
             github.com/loophttp/loophttp/engine.(*ServerConn).callRequest
-----------+-------------------------------------------------------
      40ms   github.com/loophttp/loophttp/codec.(*fieldSection).scanHeaders
             github.com/loophttp/loophttp/codec.ParseRequest
             github.com/loophttp/loophttp/engine.(*ServerConn).readHead
-----------+-------------------------------------------------------
      10ms   runtime.scanobject
             runtime.gcBgMarkWorker
-----------+-------------------------------------------------------
`

func TestBudget(t *testing.T) {
	samples, err := parse(strings.NewReader(traces))
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 4 || samples[0].secs != 0.03 || len(samples[1].frames) != 4 {
		t.Fatalf("parsed %+v", samples)
	}
	var out bytes.Buffer
	write(&out, split(samples), 1000)
	for _, want := range []string{
		"| codec: parse | 40.0% | 400 |",
		"| system call: write | 30.0% | 300 |",
		"| allocation, GC assist, write barriers, under api | 20.0% | 200 |",
		"| GC background marking | 10.0% | 100 |",
		"| total (0.10 s of samples) | 100% | 1000 |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in:\n%s", want, out.String())
		}
	}
	// largest first
	if i, j := strings.Index(out.String(), "codec"), strings.Index(out.String(), "system call"); i > j {
		t.Errorf("not sorted:\n%s", out.String())
	}
}
