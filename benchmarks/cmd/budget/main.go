// Command budget splits a server's CPU profile into the pieces of a
// request's cost (system calls by kind, the codec's parse, the engine, the
// api, allocation and the garbage collector, gnet, the poller) and prints
// each piece's share and, given the server's CPU time per request, its
// nanoseconds per request, as a Markdown table.
//
//	go tool pprof -traces BINARY PROFILE | budget -ns 1740
//
// It reads the output of `go tool pprof -traces` on standard input. Each
// sample's stack is given to exactly one piece, by the first rule that
// matches: the garbage collector's background workers; then, walking the
// stack from the innermost frame out, the first frame that is a system call
// (its kind from the frames that called it), allocation or a write barrier
// (named with the loophttp package whose code was running), or code of one
// of the packages above.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func main() {
	ns := flag.Float64("ns", 0, "server CPU time per request in ns (0: print shares only)")
	flag.Parse()
	samples, err := parse(os.Stdin)
	if err != nil {
		log.Fatal(err)
	}
	write(os.Stdout, split(samples), *ns)
}

// sample is one stack of the profile, innermost frame first, and its CPU
// time in seconds.
type sample struct {
	frames []string
	secs   float64
}

var valueRE = regexp.MustCompile(`^\s*([0-9.]+)(s|ms|us|µs|ns)\s+(.*)$`)

// parse reads `go tool pprof -traces` output.
func parse(r io.Reader) ([]sample, error) {
	var out []sample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var cur *sample
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "-----------+") {
			cur = nil
			continue
		}
		if m := valueRE.FindStringSubmatch(line); m != nil && cur == nil {
			v, err := strconv.ParseFloat(m[1], 64)
			if err != nil {
				return nil, err
			}
			switch m[2] {
			case "ms":
				v /= 1e3
			case "us", "µs":
				v /= 1e6
			case "ns":
				v /= 1e9
			}
			out = append(out, sample{frames: []string{strings.TrimSpace(m[3])}, secs: v})
			cur = &out[len(out)-1]
			continue
		}
		if cur != nil && strings.TrimSpace(line) != "" {
			cur.frames = append(cur.frames, strings.TrimSpace(line))
		}
	}
	return out, sc.Err()
}

var (
	syscallRE = regexp.MustCompile(`Syscall6|RawSyscall|epollwait|EpollWait|futex|nanosleep|usleep`)
	allocRE   = regexp.MustCompile(`mallocgc|gcAssistAlloc|wbBufFlush|gcWriteBarrier|bulkBarrierPreWrite|wbMove|newobject|growslice|makeslice|memclrNoHeapPointers|gcDrain`)
	ownPkgRE  = regexp.MustCompile(`loophttp/loophttp/(\w+)\.`)
	readRE    = regexp.MustCompile(`unix\.[Rr]ead\b|syscall\.[Rr]ead\b`)
	writeRE   = regexp.MustCompile(`unix\.([Ww]rite|[Ww]ritev)\b|syscall\.[Ww]rite\b`)
	pollRE    = regexp.MustCompile(`EpollWait|epollwait|netpoll`)
	// the engine's response side: the head, its fields and the body
	responseRE = regexp.MustCompile(`loophttp/engine\.(\(\*Stream\)|addLine|appendStatus)`)
)

// piece names the part of the request's cost that a stack belongs to.
func piece(frames []string) string {
	all := strings.Join(frames, "\n")
	if strings.Contains(all, "gcBgMarkWorker") {
		return "GC background marking"
	}
	for _, f := range frames {
		switch {
		case syscallRE.MatchString(f):
			switch {
			case readRE.MatchString(all):
				return "system call: read"
			case writeRE.MatchString(all):
				return "system call: write"
			case pollRE.MatchString(all):
				return "system call: epoll_wait"
			}
			return "system call: other (futex, timers)"
		case allocRE.MatchString(f):
			owner := "runtime"
			for _, g := range frames {
				if m := ownPkgRE.FindStringSubmatch(g); m != nil {
					owner = m[1]
					break
				}
			}
			return "allocation, GC assist, write barriers, under " + owner
		case strings.Contains(f, "loophttp/loophttp/codec."):
			return "codec: parse"
		case responseRE.MatchString(f):
			return "engine: response head and body"
		case strings.Contains(f, "loophttp/loophttp/engine."):
			return "engine: dispatch"
		case strings.Contains(f, "loophttp/loophttp/api."):
			return "api"
		case strings.Contains(f, "loophttp/loophttp/poller."):
			return "poller"
		case strings.Contains(f, "panjf2000/gnet"):
			return "gnet"
		case strings.HasPrefix(f, "main.") || strings.Contains(f, "loophttp/loophttp/cmd/"):
			return "handler (package main)"
		}
	}
	return "runtime, other (scheduler, …)"
}

type share struct {
	name string
	secs float64
}

// split adds up the samples by piece, largest first.
func split(samples []sample) []share {
	by := map[string]float64{}
	for _, s := range samples {
		by[piece(s.frames)] += s.secs
	}
	var out []share
	for k, v := range by {
		out = append(out, share{k, v})
	}
	slices.SortFunc(out, func(a, b share) int {
		if a.secs != b.secs {
			if a.secs > b.secs {
				return -1
			}
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	return out
}

func write(w io.Writer, shares []share, ns float64) {
	var total float64
	for _, s := range shares {
		total += s.secs
	}
	if total == 0 {
		fmt.Fprintln(w, "no samples")
		return
	}
	fmt.Fprintln(w, "| piece | share | ns per request |")
	fmt.Fprintln(w, "| --- | ---: | ---: |")
	for _, s := range shares {
		per := "–"
		if ns > 0 {
			per = fmt.Sprintf("%.0f", ns*s.secs/total)
		}
		fmt.Fprintf(w, "| %s | %.1f%% | %s |\n", s.name, 100*s.secs/total, per)
	}
	per := "–"
	if ns > 0 {
		per = fmt.Sprintf("%.0f", ns)
	}
	fmt.Fprintf(w, "| total (%.2f s of samples) | 100%% | %s |\n", total, per)
}
