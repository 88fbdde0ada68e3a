package codec_test

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/internal/conformance"
)

// The fuzz targets check three properties of the codec:
//   - no input makes it panic (an over-read panics too: inputs have no
//     spare capacity);
//   - the outcome does not depend on how the input is split;
//   - an accepted message, serialised again with the Append functions,
//     parses to the same message.

func FuzzParseRequest(f *testing.F) {
	seed(f, "request")
	f.Fuzz(func(t *testing.T, data []byte, cut1, cut2 uint16) {
		run := func(cuts ...int) *conformance.Outcome {
			s := conformance.NewRequestStream(nil)
			return feed(s, data, cuts)
		}
		whole := checkSplits(t, data, cut1, cut2, run)
		if len(whole.Messages) > 0 {
			roundTripRequest(t, &whole.Messages[0])
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	seed(f, "response")
	methods := []string{"GET", "HEAD", "CONNECT", "POST"}
	f.Fuzz(func(t *testing.T, data []byte, cut1, cut2 uint16) {
		m := methods[int(cut1+cut2)%len(methods)]
		run := func(cuts ...int) *conformance.Outcome {
			s := conformance.NewResponseStream([]string{m, "GET"}, nil)
			return feed(s, data, cuts)
		}
		whole := checkSplits(t, data, cut1, cut2, run)
		for i := range whole.Messages {
			if !whole.Messages[i].Interim && m == "GET" {
				roundTripResponse(t, &whole.Messages[i])
				break
			}
		}
	})
}

func FuzzChunked(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"5;a=b;c=\"d\\\"e\"\r\nhello\r\n6 ; x = y\r\n world\r\n0\r\nX-T: v\r\n\r\n",
		"0000000000000005\r\nhello\r\n000\r\n\r\n",
		"1\r\nZ\r\n0\r\nA: 1\r\nB:2 \r\n\r\nGET / HTTP/1.1\r\n",
		"ffffffffffffffff\r\n", "5\nhello\r\n0\r\n\r\n", "5\r\nhelloXX0\r\n\r\n",
	} {
		f.Add([]byte(s), uint16(3), uint16(9), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, cut1, cut2 uint16, response bool) {
		whole := decodeChunked(data, response, nil)
		for _, cuts := range [][]int{cutsFrom(len(data), cut1, cut2), everyByte(len(data))} {
			if got := decodeChunked(data, response, cuts); !reflect.DeepEqual(got, whole) {
				t.Fatalf("split %v: %+v; whole: %+v", cuts, got, whole)
			}
		}
		if whole.err != nil || !whole.done {
			return
		}
		enc := codec.AppendChunk(nil, whole.body)
		enc, err := codec.AppendLastChunk(enc, whole.trailers)
		if err != nil {
			t.Fatalf("re-encoding decoded trailers %q: %v", whole.trailers, err)
		}
		again := decodeChunked(enc, response, nil)
		if !bytes.Equal(again.body, whole.body) || !reflect.DeepEqual(again.trailers, whole.trailers) || !again.done {
			t.Fatalf("round trip of %q: %+v; first decode %+v", enc, again, whole)
		}
	})
}

type chunkedResult struct {
	body     []byte
	trailers []codec.Header
	used     int
	done     bool
	err      error
}

// decodeChunked feeds data to a decoder in the pieces given by cuts, the
// way a connection delivers bytes, and collects the result.
func decodeChunked(data []byte, response bool, cuts []int) chunkedResult {
	var d codec.ChunkedDecoder
	d.Response = response
	var r chunkedResult
	var pending []byte
	prev := 0
	for _, end := range append(cuts, len(data)) {
		pending = append(pending, data[prev:end]...)
		prev = end
		for !r.done && r.err == nil {
			n, part, done, err := d.Decode(pending[:len(pending):len(pending)], nil)
			r.body = append(r.body, part...)
			r.used += n
			r.done, r.err = done, err
			if done {
				for _, h := range d.Trailers {
					r.trailers = append(r.trailers, codec.Header{Name: bytes.Clone(h.Name), Value: bytes.Clone(h.Value)})
				}
			}
			pending = pending[n:]
			if n == 0 {
				break
			}
		}
	}
	if r.body == nil {
		r.body = []byte{}
	}
	return r
}

func seed(f *testing.F, side string) {
	vs, err := conformance.Load()
	if err == nil {
		for _, v := range vs {
			if v.Side == side {
				f.Add([]byte(v.Input()), uint16(len(v.Raw)/2), uint16(len(v.Raw)/3))
			}
		}
	}
	if side == "request" {
		f.Add([]byte(browserRequest), uint16(100), uint16(600))
		f.Add([]byte("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n"), uint16(40), uint16(70))
	} else {
		f.Add([]byte(chunkedResponse), uint16(20), uint16(70))
		f.Add([]byte("HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 2\r\n\r\nok"), uint16(20), uint16(30))
	}
}

func feed(s interface {
	Write([]byte)
	Close() *conformance.Outcome
}, data []byte, cuts []int) *conformance.Outcome {
	prev := 0
	for _, c := range cuts {
		s.Write(data[prev:c])
		prev = c
	}
	s.Write(data[prev:])
	return s.Close()
}

// checkSplits runs data whole, at two fuzzer-chosen cuts, and (when short)
// byte by byte; every way must give the same outcome.
func checkSplits(t *testing.T, data []byte, cut1, cut2 uint16, run func(...int) *conformance.Outcome) *conformance.Outcome {
	whole := run()
	ways := [][]int{cutsFrom(len(data), cut1, cut2)}
	if len(data) <= 256 { // byte by byte is quadratic; the random cuts cover longer inputs
		ways = append(ways, everyByte(len(data)))
	}
	for _, cuts := range ways {
		if got := run(cuts...); !reflect.DeepEqual(got, whole) {
			t.Fatalf("input %q\nsplit %v: %s\nwhole: %s", data, cuts, describe(got), describe(whole))
		}
	}
	return whole
}

func cutsFrom(n int, a, b uint16) []int {
	if n < 2 {
		return nil
	}
	x, y := 1+int(a)%(n-1), 1+int(b)%(n-1)
	if x > y {
		x, y = y, x
	}
	if x == y {
		return []int{x}
	}
	return []int{x, y}
}

func everyByte(n int) []int {
	cuts := make([]int, 0, n)
	for k := 1; k < n; k++ {
		cuts = append(cuts, k)
	}
	return cuts
}

// appendFields appends the field lines of m; they were accepted by the
// parser, so the serialiser must accept them too.
func appendFields(t *testing.T, b []byte, fs []conformance.Field) []byte {
	for _, h := range fs {
		var err error
		if b, err = codec.AppendHeader(b, []byte(h[0]), []byte(h[1])); err != nil {
			t.Fatalf("AppendHeader(%q, %q) refused a parsed field: %v", h[0], h[1], err)
		}
	}
	return append(b, '\r', '\n')
}

// appendBody appends the body in the framing the headers declare.
func appendBody(t *testing.T, b []byte, m *conformance.Message, chunked bool) []byte {
	if !chunked {
		return append(b, *m.Body...)
	}
	b = codec.AppendChunk(b, *m.Body)
	trailers := make([]codec.Header, len(m.Trailers))
	for i, h := range m.Trailers {
		trailers[i] = codec.Header{Name: h[0], Value: h[1]}
	}
	b, err := codec.AppendLastChunk(b, trailers)
	if err != nil {
		t.Fatalf("AppendLastChunk refused parsed trailers %q: %v", m.Trailers, err)
	}
	return b
}

func roundTripRequest(t *testing.T, m *conformance.Message) {
	b, err := codec.AppendRequestLine(nil, []byte(*m.Method), []byte(*m.Target))
	if err != nil {
		t.Fatalf("AppendRequestLine refused a parsed request-line %q %q: %v", *m.Method, *m.Target, err)
	}
	b = append(b[:len(b)-len("HTTP/1.1\r\n")], *m.Version...) // keep the version: it decides framing and Host rules
	b = append(b, '\r', '\n')
	b = appendFields(t, b, m.Headers)
	b = appendBody(t, b, m, chunkedFields(m.Headers))
	s := conformance.NewRequestStream(nil)
	s.Write(b)
	o := s.Close()
	if o.Err != nil || len(o.Messages) == 0 {
		t.Fatalf("re-serialised request %q: %s", b, describe(o))
	}
	if !reflect.DeepEqual(o.Messages[0], *m) {
		t.Fatalf("re-serialised request %q parsed as %+v; first parse %+v", b, o.Messages[0], *m)
	}
}

func roundTripResponse(t *testing.T, m *conformance.Message) {
	b, err := codec.AppendStatusLineReason(nil, m.Status, []byte(*m.Reason))
	if err != nil {
		t.Fatalf("AppendStatusLineReason refused a parsed status-line %d %q: %v", m.Status, *m.Reason, err)
	}
	b = append(bytes.Clone(*m.Version), b[len("HTTP/1.1"):]...) // keep the version
	b = appendFields(t, b, m.Headers)
	b = appendBody(t, b, m, chunkedFields(m.Headers))
	s := conformance.NewResponseStream([]string{"GET"}, nil)
	s.Write(b)
	o := s.Close()
	if o.Err != nil || len(o.Messages) == 0 {
		t.Fatalf("re-serialised response %q: %s", b, describe(o))
	}
	if !reflect.DeepEqual(o.Messages[0], *m) {
		t.Fatalf("re-serialised response %q parsed as %+v; first parse %+v", b, o.Messages[0], *m)
	}
}

func chunkedFields(fs []conformance.Field) bool {
	for _, h := range fs {
		if bytes.EqualFold(h[0], []byte("transfer-encoding")) {
			return true
		}
	}
	return false
}
