package codec_test

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loophttp/loophttp/codec"
)

func TestAppendStatusLine(t *testing.T) {
	tests := []struct {
		code int
		want string
		err  error
	}{
		{200, "HTTP/1.1 200 OK\r\n", nil},
		{404, "HTTP/1.1 404 Not Found\r\n", nil},
		{299, "HTTP/1.1 299 unknown\r\n", nil},
		{599, "HTTP/1.1 599 unknown\r\n", nil},
		{99, "", codec.ErrStatus},
		{600, "", codec.ErrStatus},
	}
	for _, tt := range tests {
		got, err := codec.AppendStatusLine(nil, tt.code)
		if string(got) != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("AppendStatusLine(%d) = %q, %v; want %q, %v", tt.code, got, err, tt.want, tt.err)
		}
	}
}

// TestStatusText checks the reason table against net/http's for every
// code, except where RFC 9110 §15 renamed a phrase that net/http keeps in
// its RFC 7231 wording.
func TestStatusText(t *testing.T) {
	rfc9110 := map[int]string{
		413: "Content Too Large",     // RFC 9110 §15.5.14
		414: "URI Too Long",          // RFC 9110 §15.5.15
		416: "Range Not Satisfiable", // RFC 9110 §15.5.17
		422: "Unprocessable Content", // RFC 9110 §15.5.21
	}
	for code := 100; code < 600; code++ {
		want := http.StatusText(code)
		if want == "" {
			want = "unknown"
		}
		if phrase, ok := rfc9110[code]; ok {
			want = phrase
		}
		if got := codec.StatusText(code); got != want {
			t.Errorf("StatusText(%d) = %q; net/http says %q", code, got, want)
		}
	}
}

func TestAppendStatusLineReason(t *testing.T) {
	got, err := codec.AppendStatusLineReason([]byte("x"), 200, "Very \tOK\x80")
	if err != nil || string(got) != "xHTTP/1.1 200 Very \tOK\x80\r\n" {
		t.Errorf("got %q, %v", got, err)
	}
	for _, bad := range []string{"a\rb", "a\nb", "a\x00b", "a\x7fb"} {
		got, err := codec.AppendStatusLineReason([]byte("x"), 200, bad)
		if !errors.Is(err, codec.ErrReason) || string(got) != "x" {
			t.Errorf("reason %q: got %q, %v; want dst unchanged and ErrReason", bad, got, err)
		}
	}
}

func TestAppendRequestLine(t *testing.T) {
	got, err := codec.AppendRequestLine(nil, "PROPFIND", "/a?b=c%20d")
	if err != nil || string(got) != "PROPFIND /a?b=c%20d HTTP/1.1\r\n" {
		t.Errorf("got %q, %v", got, err)
	}
	bad := []struct{ method, target string }{
		{"", "/"}, {"G T", "/"}, {"GET", ""}, {"GET", "/a b"}, {"GET", "/a\r\nX: y"},
		{"GET", "/\x00"}, {"GET", "/caf\xc3\xa9"}, {"GET", "/#frag"},
	}
	for _, b := range bad {
		got, err := codec.AppendRequestLine([]byte("x"), b.method, b.target)
		if err == nil || string(got) != "x" {
			t.Errorf("AppendRequestLine(%q, %q) = %q, %v; want an error and dst unchanged", b.method, b.target, got, err)
		}
	}
}

func TestAppendHeader(t *testing.T) {
	got, err := codec.AppendHeader(nil, "X-Obs", []byte("caf\xc3\xa9\there"))
	if err != nil || string(got) != "X-Obs: caf\xc3\xa9\there\r\n" {
		t.Errorf("got %q, %v", got, err)
	}
	for _, name := range []string{"", "X Y", "X:Y", "X\rY", "X\nY", "X\x00", "\xe9"} {
		if got, err := codec.AppendHeader([]byte("x"), name, "v"); !errors.Is(err, codec.ErrFieldName) || string(got) != "x" {
			t.Errorf("name %q: got %q, %v; want ErrFieldName", name, got, err)
		}
	}
	long := strings.Repeat("v", 20) // past one SWAR word
	for _, value := range []string{"a\rb", "a\nb", "a\x00b", "a\x01b", "a\x7fb", long + "\r\nX: y", long + "\x00"} {
		if got, err := codec.AppendHeader([]byte("x"), "X", value); !errors.Is(err, codec.ErrFieldValue) || string(got) != "x" {
			t.Errorf("value %q: got %q, %v; want ErrFieldValue", value, got, err)
		}
	}
}

func TestChunkEncoder(t *testing.T) {
	b := codec.AppendChunk(nil, []byte("hello world, this is sixteen+"))
	b = codec.AppendChunk(b, nil) // nothing: a zero chunk would end the body
	b, err := codec.AppendLastChunk(b, []codec.Header{{Name: []byte("X-Sum"), Value: []byte("7")}})
	want := "1d\r\nhello world, this is sixteen+\r\n0\r\nX-Sum: 7\r\n\r\n"
	if err != nil || string(b) != want {
		t.Fatalf("got %q, %v; want %q", b, err, want)
	}
	// What the encoder writes, the decoder reads back.
	var d codec.ChunkedDecoder
	var body []byte
	for rest := b; ; {
		n, data, done, err := d.Decode(rest, nil)
		if err != nil {
			t.Fatal(err)
		}
		body = append(body, data...)
		rest = rest[n:]
		if done {
			break
		}
	}
	if string(body) != "hello world, this is sixteen+" || len(d.Trailers) != 1 {
		t.Errorf("decoded %q with %d trailers", body, len(d.Trailers))
	}
	for _, name := range []string{"Content-Length", "transfer-encoding", "Host", "Trailer"} {
		if _, err := codec.AppendLastChunk(nil, []codec.Header{{Name: []byte(name), Value: []byte("1")}}); !errors.Is(err, codec.ErrTrailer) {
			t.Errorf("trailer %s: err %v; want ErrTrailer", name, err)
		}
	}
}

func TestDateCache(t *testing.T) {
	var c codec.DateCache
	t0 := time.Date(2026, 11, 24, 8, 49, 37, 0, time.UTC)
	if got := string(c.Append(nil, t0)); got != "Tue, 24 Nov 2026 08:49:37 GMT" {
		t.Errorf("got %q", got)
	}
	if got := string(c.Append(nil, t0.Add(900*time.Millisecond))); got != "Tue, 24 Nov 2026 08:49:37 GMT" {
		t.Errorf("same second: got %q", got)
	}
	if got := string(c.Append(nil, t0.Add(time.Second).In(time.FixedZone("X", 3600)))); got != "Tue, 24 Nov 2026 08:49:38 GMT" {
		t.Errorf("next second in another zone: got %q", got)
	}
	if got := string(c.Append(nil, t0)); got != "Tue, 24 Nov 2026 08:49:38 GMT" {
		t.Errorf("clock stepped back: got %q; want the later value kept", got)
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 100 {
				b := c.Append(nil, t0.Add(time.Duration(i*100+j)*time.Second))
				if len(b) != len(codec.TimeFormat) {
					t.Errorf("concurrent Append gave %q", b)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestErrorStatus(t *testing.T) {
	for e := codec.Error(1); e.Error() != "http: unknown protocol error"; e++ {
		switch s := e.Status(); s {
		case 400, 413, 414, 431, 501, 505:
		default:
			t.Errorf("%v: status %d", e, s)
		}
		if !errors.Is(error(e), e) {
			t.Errorf("%v: errors.Is fails", e)
		}
	}
}
