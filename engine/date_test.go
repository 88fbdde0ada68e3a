package engine

import (
	"strings"
	"testing"

	"github.com/loophttp/loophttp/codec"
)

// TestHandlerDateReplacesTheEngines: a Date among the handler's fields
// (SetHead or AddField, any case) is the response's only Date; a head
// set again without one gets the engine's.
func TestHandlerDateReplacesTheEngines(t *testing.T) {
	const date = "Mon, 01 Jan 2024 00:00:00 GMT"
	for _, tt := range []struct {
		name    string
		respond func(s *Stream)
		want    string
	}{
		{"SetHead", func(s *Stream) {
			s.SetHead(200, "", []codec.Header{{Name: []byte("date"), Value: []byte(date)}})
			s.End(nil)
		}, "date: " + date},
		{"AddField", func(s *Stream) {
			s.ResetHead(200, "")
			s.AddField("Date", date)
			s.End(nil)
		}, "Date: " + date},
		{"set, then reset", func(s *Stream) {
			s.SetHead(200, "", []codec.Header{{Name: []byte("Date"), Value: []byte(date)}})
			s.ResetHead(200, "")
			s.End(nil)
		}, "Date: Tue, 14 Nov 2023 22:13:20 GMT"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			h.rec.onEnd = tt.respond
			h.send(get)
			out := string(h.conn.Out)
			if n := strings.Count(strings.ToLower(out), "\r\ndate: "); n != 1 || !strings.Contains(out, tt.want+"\r\n") {
				t.Errorf("got %d Date fields in %q; want one, %q", n, out, tt.want)
			}
		})
	}
}
