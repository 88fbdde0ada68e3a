package conformance

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/loophttp/loophttp/codec"
)

// Reply is one response a server wrote, as far as judging needs it.
type Reply struct {
	Status int
	Close  bool // it carried Connection: close
	Body   []byte
}

// ParseReplies parses what a server wrote as responses to requests with
// methods, in order (GET for any beyond them). A 100 Continue is skipped.
// Bodies are framed as the codec frames them; a tunnel's bytes end it.
func ParseReplies(out []byte, methods []string) ([]Reply, error) {
	var rs []Reply
	var r codec.Response
	for len(out) > 0 {
		method := "GET"
		if len(rs) < len(methods) {
			method = methods[len(rs)]
		}
		n, err := codec.ParseResponse(out, &r, []byte(method), nil)
		if err != nil || n == 0 {
			return rs, fmt.Errorf("server output does not parse as responses (%v): %q", err, out)
		}
		out = out[n:]
		if r.Interim() {
			continue
		}
		rep := Reply{Status: r.Status, Close: !r.KeepAlive}
		switch r.Framing {
		case codec.FramingLength:
			if int64(len(out)) < r.ContentLength {
				return rs, fmt.Errorf("response body cut short: %q", out)
			}
			rep.Body, out = out[:r.ContentLength], out[r.ContentLength:]
		case codec.FramingChunked:
			var d codec.ChunkedDecoder
			for {
				k, data, done, err := d.Decode(out, nil)
				if err != nil || k == 0 && !done {
					return rs, fmt.Errorf("bad chunked response body (%v): %q", err, out)
				}
				rep.Body = append(rep.Body, data...)
				out = out[k:]
				if done {
					break
				}
			}
		case codec.FramingClose, codec.FramingTunnel, codec.FramingUpgrade:
			rep.Body, out = out, nil
		}
		rs = append(rs, rep)
	}
	return rs, nil
}

// JudgeServer judges a request case as a server handled it: msgs are the
// messages that reached the handler complete, out is everything the server
// wrote before closing. It returns what is wrong, or "". The handler is
// assumed to answer every message with status 200.
func (v *Vector) JudgeServer(msgs []Message, out []byte) string {
	var methods []string
	for _, m := range msgs {
		methods = append(methods, string(*m.Method))
	}
	replies, err := ParseReplies(out, methods)
	if err != nil {
		return err.Error()
	}
	if v.Expect == "accept" {
		want := v.Expected()
		if len(msgs) != len(want) {
			return fmt.Sprintf("%d messages reached the handler; want %d", len(msgs), len(want))
		}
		for i := range want {
			if msg := compareMessage(&msgs[i], &want[i]); msg != "" {
				return fmt.Sprintf("message %d: %s", i+1, msg)
			}
		}
		if len(replies) != len(want) {
			return fmt.Sprintf("%d responses; want one per message (%d)", len(replies), len(want))
		}
		for i, r := range replies {
			if r.Status != 200 {
				return fmt.Sprintf("response %d: status %d", i+1, r.Status)
			}
		}
		return ""
	}
	before := v.MessagesBeforeError
	if len(msgs) != before {
		return fmt.Sprintf("%d complete messages reached the handler; want %d", len(msgs), before)
	}
	if v.Incomplete {
		if len(replies) > before && replies[len(replies)-1].Status < 400 {
			return "an incomplete message was answered with a success"
		}
		return ""
	}
	if len(replies) != before+1 {
		return fmt.Sprintf("%d responses; want %d answers and one error", len(replies), before)
	}
	last := replies[len(replies)-1]
	if last.Status != v.ErrorStatus {
		return fmt.Sprintf("error status %d; want %d", last.Status, v.ErrorStatus)
	}
	if !last.Close {
		return "the error response lacks Connection: close"
	}
	return ""
}

// ContinueSent reports whether out starts with a 100 Continue.
func ContinueSent(out []byte) bool {
	return bytes.HasPrefix(out, []byte("HTTP/1.1 100 Continue\r\n\r\n"))
}

// JudgeContinue judges the 100 Continue of a case that states
// interim_expected, given the output after raw was sent; "" when right or
// when the case says nothing.
func (v *Vector) JudgeContinue(out []byte) string {
	want, stated := v.WantsInterim()
	if !stated {
		return ""
	}
	if got := ContinueSent(out); got != want {
		return fmt.Sprintf("100 Continue sent = %v; want %v (output %q)", got, want, truncate(out))
	}
	return ""
}

func truncate(b []byte) string {
	s := string(b)
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}
