package codec_test

import (
	"testing"

	"github.com/loophttp/loophttp/internal/conformance"
)

// TestConformance runs every case of the corpus (every vectors*.json in
// internal/conformance/testdata) through the codec three ways: whole, split
// at every offset, and byte by byte. Each way must give the outcome the
// case expects.
//
// What the codec alone cannot decide is checked at the level that can:
//   - the 100-continue exchange (interim_expected, then_send): here only the
//     ExpectContinue decision is checked, on raw followed by then_send; the
//     engine tests check that 100 Continue is sent before the body.
//   - connection behaviour (staged close, answering messages_before_error
//     before the error): here only the order and count of parsed messages;
//     the engine and socket tests check the bytes on the wire.
//   - upgrade and tunnel tails on the request side: the stream stops after
//     such a request as a switching server would.
func TestConformance(t *testing.T) {
	vs := conformance.MustLoad(t)
	t.Logf("%d cases", len(vs))
	for i := range vs {
		v := &vs[i]
		t.Run(v.ID, func(t *testing.T) {
			t.Parallel()
			if msg := v.Judge(v.Run()); msg != "" {
				t.Fatalf("whole: %s\n  raw %q\n  why: %s", msg, v.Raw, v.Why)
			}
			checkInterim(t, v)
			in := v.Input()
			for k := 1; k < len(in); k++ {
				if msg := v.Judge(v.Run(k)); msg != "" {
					t.Fatalf("split at %d: %s\n  raw %q", k, msg, v.Raw)
				}
			}
			cuts := make([]int, 0, len(in))
			for k := 1; k < len(in); k++ {
				cuts = append(cuts, k)
			}
			if msg := v.Judge(v.Run(cuts...)); msg != "" {
				t.Fatalf("byte by byte: %s\n  raw %q", msg, v.Raw)
			}
		})
	}
}

// checkInterim checks the codec's 100-continue decision for the first
// request of a case that states interim_expected.
func checkInterim(t *testing.T, v *conformance.Vector) {
	want, stated := v.WantsInterim()
	if !stated {
		return
	}
	s := conformance.NewRequestStream(nil)
	s.Write(v.Raw)
	s.Close()
	if len(s.ExpectContinue) == 0 {
		t.Fatalf("no request head parsed to decide 100-continue")
	}
	if got := s.ExpectContinue[0]; got != want {
		t.Fatalf("ExpectContinue = %v; want %v", got, want)
	}
}
