package conformance

import (
	"bytes"
	"fmt"
	"strconv"
)

// Run feeds raw to a fresh stream in the pieces given by cuts (offsets into
// raw, ascending) and returns the outcome at EOF.
func (v *Vector) Run(cuts ...int) *Outcome {
	raw := v.Input()
	var w interface {
		Write([]byte)
		Close() *Outcome
	}
	if v.Side == "request" {
		rs := NewRequestStream(nil)
		rs.StopAtUpgrade = v.Tail != nil
		w = rs
	} else {
		w = NewResponseStream(v.Methods(), nil)
	}
	prev := 0
	for _, c := range cuts {
		w.Write(bytes.Clone(raw[prev:c]))
		prev = c
	}
	w.Write(bytes.Clone(raw[prev:]))
	return w.Close()
}

// Cuts lists the ways to deliver n bytes that the corpus tests use: whole
// (no cut), split once at every offset, and byte by byte.
func Cuts(n int) [][]int {
	ways := [][]int{nil}
	for k := 1; k < n; k++ {
		ways = append(ways, []int{k})
	}
	every := make([]int, 0, n)
	for k := 1; k < n; k++ {
		every = append(every, k)
	}
	return append(ways, every)
}

// Input is everything the peer sends: raw, then then_send.
func (v *Vector) Input() []byte {
	return append(bytes.Clone(v.Raw), v.ThenSend...)
}

// Judge returns what is wrong with an outcome for this case, or "".
func (v *Vector) Judge(o *Outcome) string {
	want := v.Expected()
	if v.Expect == "reject" {
		return v.judgeReject(o)
	}
	if o.Err != nil {
		return fmt.Sprintf("rejected with %v (status %d); want accept", o.Err, o.Status())
	}
	if o.Incomplete {
		return "incomplete at EOF; want accept"
	}
	if n := v.Messages; n != 0 && len(want) != n {
		return fmt.Sprintf("case lists %d parsed messages for %d", len(want), n)
	}
	if msg := compareMessages(o.Messages, want); msg != "" {
		return msg
	}
	if v.IgnoredTail && !o.Stopped {
		return "the tail was parsed; want it ignored"
	}
	if v.Tail != nil && !bytes.Equal(o.Tail, *v.Tail) {
		return fmt.Sprintf("tail %q; want %q", o.Tail, *v.Tail)
	}
	return ""
}

func (v *Vector) judgeReject(o *Outcome) string {
	before := v.MessagesBeforeError
	if len(o.Messages) > before {
		return fmt.Sprintf("%d messages completed; want at most %d before the error", len(o.Messages), before)
	}
	if before > 0 {
		if msg := compareMessages(o.Messages, v.Parsed[:before]); msg != "" {
			return "before the error: " + msg
		}
	}
	switch {
	case v.Incomplete:
		if o.Err == nil && !o.Incomplete {
			return "accepted; want incomplete or an error"
		}
	case o.Err == nil && o.Incomplete && v.Side == "response":
		// A client reports EOF inside a response as an error too.
	case o.Err == nil:
		return fmt.Sprintf("no error (incomplete=%v stopped=%v); want status %d", o.Incomplete, o.Stopped, v.ErrorStatus)
	case v.ErrorStatus != 0 && o.Status() != v.ErrorStatus:
		return fmt.Sprintf("status %d (%v); want %d", o.Status(), o.Err, v.ErrorStatus)
	}
	return ""
}

func compareMessages(got, want []Message) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d messages; want %d: got %s", len(got), len(want), show(got))
	}
	for i := range want {
		if msg := compareMessage(&got[i], &want[i]); msg != "" {
			return fmt.Sprintf("message %d: %s", i+1, msg)
		}
	}
	return ""
}

// CompareMessage returns how got differs from want in the fields want
// states, or "".
func CompareMessage(got, want *Message) string {
	return compareMessage(got, want)
}

func compareMessage(g, w *Message) string {
	octets := []struct {
		name string
		g, w *Octets
	}{
		{"method", g.Method, w.Method}, {"target", g.Target, w.Target},
		{"version", g.Version, w.Version}, {"reason", g.Reason, w.Reason},
		{"body", g.Body, w.Body},
	}
	for _, f := range octets {
		if f.w == nil {
			continue
		}
		if f.g == nil || !bytes.Equal(*f.g, *f.w) {
			return fmt.Sprintf("%s %s; want %q", f.name, showOctets(f.g), *f.w)
		}
	}
	if w.Status != 0 && g.Status != w.Status {
		return fmt.Sprintf("status %d; want %d", g.Status, w.Status)
	}
	if g.Interim != w.Interim {
		return fmt.Sprintf("interim %v; want %v", g.Interim, w.Interim)
	}
	if w.KeepAlive != nil && (g.KeepAlive == nil || *g.KeepAlive != *w.KeepAlive) {
		return fmt.Sprintf("keep_alive %v; want %v", showBool(g.KeepAlive), *w.KeepAlive)
	}
	if w.Headers != nil && !equalFields(g.Headers, w.Headers) {
		return fmt.Sprintf("headers %q; want %q", g.Headers, w.Headers)
	}
	if (w.Trailers != nil || len(g.Trailers) > 0) && !equalFields(g.Trailers, w.Trailers) {
		return fmt.Sprintf("trailers %q; want %q", g.Trailers, w.Trailers)
	}
	return ""
}

func equalFields(a, b []Field) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i][0], b[i][0]) || !bytes.Equal(a[i][1], b[i][1]) {
			return false
		}
	}
	return true
}

func show(ms []Message) string {
	var b bytes.Buffer
	for _, m := range ms {
		fmt.Fprintf(&b, "[%s %s %s %d body=%s] ", showOctets(m.Method), showOctets(m.Target), showOctets(m.Version), m.Status, showOctets(m.Body))
	}
	return b.String()
}

func showOctets(o *Octets) string {
	if o == nil {
		return "<none>"
	}
	s := strconv.Quote(string(*o))
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return s
}

func showBool(b *bool) string {
	if b == nil {
		return "<none>"
	}
	return strconv.FormatBool(*b)
}
