package engine

import (
	"fmt"
	"strings"
	"testing"

	"github.com/loophttp/loophttp/internal/conformance"
)

// TestConformanceEngine runs every request case of the shared corpus through
// a ServerConn on a fake conn, whole, split at every offset and byte by
// byte: write raw, half-close, then judge what reached the handler and what
// was written back, as README §2 of the corpus describes.
func TestConformanceEngine(t *testing.T) {
	vs := conformance.LoadOrSkip(t)
	for i := range vs {
		v := &vs[i]
		if v.Side != "request" {
			continue
		}
		t.Run(v.ID, func(t *testing.T) {
			t.Parallel()
			in := v.Input()
			ways := [][]int{nil}
			for k := 1; k < len(in); k++ {
				ways = append(ways, []int{k})
			}
			every := make([]int, 0, len(in))
			for k := 1; k < len(in); k++ {
				every = append(every, k)
			}
			ways = append(ways, every)
			for _, cuts := range ways {
				if msg := runEngineCase(t, v, cuts); msg != "" {
					t.Fatalf("cuts %v: %s\n  raw %q", shortCuts(cuts), msg, v.Raw)
				}
			}
		})
	}
}

func shortCuts(c []int) string {
	if len(c) > 3 {
		return "every byte"
	}
	return fmt.Sprint(c)
}

// runEngineCase feeds one case and returns what is wrong, or "".
func runEngineCase(t *testing.T, v *conformance.Vector, cuts []int) string {
	h := newHarness(t, Config{})
	raw, then := v.Raw, v.ThenSend
	in := v.Input()
	prev := 0
	for _, c := range append(cuts, len(in)) {
		if prev < len(raw) && c >= len(raw) && len(then) > 0 {
			// The 100-continue flow: raw is all sent; judge the interim
			// response before then_send goes out.
			h.send(string(in[prev:len(raw)]))
			if msg := checkContinue(v, h.conn.out); msg != "" {
				return msg
			}
			prev = len(raw)
		}
		h.send(string(in[prev:c]))
		prev = c
	}
	if len(then) == 0 {
		if msg := checkContinue(v, h.conn.out); msg != "" {
			return msg
		}
	}
	h.eof()
	out := strings.TrimPrefix(string(h.conn.out), "HTTP/1.1 100 Continue\r\n\r\n")
	resps := parseResponses(t, []byte(out), h.methods())
	if !h.conn.closed {
		return "connection not closed after EOF"
	}
	if v.Expect == "accept" {
		want := v.Expected()
		if len(h.rec.msgs) != len(want) {
			return fmt.Sprintf("%d messages reached the handler; want %d", len(h.rec.msgs), len(want))
		}
		for i := range want {
			if msg := conformance.CompareMessage(&h.rec.msgs[i], &want[i]); msg != "" {
				return fmt.Sprintf("message %d: %s", i+1, msg)
			}
		}
		if len(resps) != len(want) {
			return fmt.Sprintf("%d responses; want one per message (%d)", len(resps), len(want))
		}
		for i, r := range resps {
			if r.status != 200 {
				return fmt.Sprintf("response %d: status %d", i+1, r.status)
			}
		}
		return ""
	}
	before := v.MessagesBeforeError
	if len(h.rec.msgs) != before {
		return fmt.Sprintf("%d complete messages reached the handler; want %d", len(h.rec.msgs), before)
	}
	if v.Incomplete {
		if len(resps) > before && resps[len(resps)-1].status < 400 {
			return "an incomplete message was answered with a success"
		}
		return ""
	}
	if len(resps) != before+1 {
		return fmt.Sprintf("%d responses; want %d answers and one error", len(resps), before)
	}
	last := resps[len(resps)-1]
	if last.status != v.ErrorStatus {
		return fmt.Sprintf("error status %d; want %d", last.status, v.ErrorStatus)
	}
	if last.headers["connection"] != "close" {
		return fmt.Sprintf("error response without Connection: close: %v", last.headers)
	}
	return ""
}

// checkContinue judges the 100 Continue of a case that states
// interim_expected, given the output so far.
func checkContinue(v *conformance.Vector, out []byte) string {
	want, stated := v.WantsInterim()
	if !stated {
		return ""
	}
	got := strings.HasPrefix(string(out), "HTTP/1.1 100 Continue\r\n\r\n")
	if got != want {
		return fmt.Sprintf("100 Continue sent = %v; want %v (output %q)", got, want, out)
	}
	return ""
}
