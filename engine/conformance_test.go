package engine

import (
	"fmt"
	"testing"

	"github.com/loophttp/loophttp/internal/conformance"
)

// TestConformanceEngine runs every request case of the corpus through
// a ServerConn on a fake conn, whole, split at every offset and byte by
// byte: write raw, half-close, then judge what reached the handler and what
// was written back, as README §2 of the corpus describes.
func TestConformanceEngine(t *testing.T) {
	vs := conformance.MustLoad(t)
	for i := range vs {
		v := &vs[i]
		if v.Side != "request" {
			continue
		}
		t.Run(v.ID, func(t *testing.T) {
			t.Parallel()
			in := v.Input()
			for _, cuts := range conformance.Cuts(len(in)) {
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
			if msg := checkContinue(v, h.conn.Out); msg != "" {
				return msg
			}
			prev = len(raw)
		}
		h.send(string(in[prev:c]))
		prev = c
	}
	if len(then) == 0 {
		if msg := checkContinue(v, h.conn.Out); msg != "" {
			return msg
		}
	}
	h.eof()
	if !h.conn.Closed {
		return "connection not closed after EOF"
	}
	return v.JudgeServer(h.rec.msgs, h.conn.Out)
}

func checkContinue(v *conformance.Vector, out []byte) string { return v.JudgeContinue(out) }
