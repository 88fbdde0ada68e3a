package benchmarks

import (
	"bufio"
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/loophttp/loophttp/codec"
	"github.com/valyala/fasthttp"
)

// input is one request head that every parser is given whole.
type input struct {
	name string
	data []byte
}

var (
	// small is the request wrk sends by default.
	small = []byte("GET / HTTP/1.1\r\nHost: localhost:8080\r\n\r\n")

	// techempower is the TechEmpower plaintext test's request.
	techempower = []byte("GET /plaintext HTTP/1.1\r\n" +
		"Host: server\r\n" +
		"Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\n" +
		"Connection: keep-alive\r\n" +
		"\r\n")

	// browser is the 703-byte request of picohttpparser's bench.c.
	browser = []byte("GET /wp-content/uploads/2010/03/hello-kitty-darth-vader-pink.jpg HTTP/1.1\r\n" +
		"Host: www.kittyhell.com\r\n" +
		"User-Agent: Mozilla/5.0 (Macintosh; U; Intel Mac OS X 10.6; ja-JP-mac; rv:1.9.2.3) Gecko/20100401 Firefox/3.6.3 Pathtraq/0.9\r\n" +
		"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
		"Accept-Language: ja,en-us;q=0.7,en;q=0.3\r\n" +
		"Accept-Encoding: gzip,deflate\r\n" +
		"Accept-Charset: Shift_JIS,utf-8;q=0.7,*;q=0.7\r\n" +
		"Keep-Alive: 115\r\n" +
		"Connection: keep-alive\r\n" +
		"Cookie: wp_ozh_wsa_visits=2; wp_ozh_wsa_visit_lasttime=xxxxxxxxxx; __utma=xxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.x; __utmz=xxxxxxxxx.xxxxxxxxxx.x.x.utmccn=(referral)|utmcsr=reader.livedoor.com|utmcct=/reader/|utmcmd=referral\r\n" +
		"\r\n")

	inputs = []input{
		{"small", small},
		{"techempower", techempower},
		{"browser", browser},
	}
)

// Package-level sinks keep the benchmarked lookups from being optimised away.
var (
	sink    []byte
	sinkStr string
)

func TestInputs(t *testing.T) {
	if len(browser) != 703 {
		t.Errorf("len(browser) = %d, want 703 (picohttpparser bench.c)", len(browser))
	}
	for _, in := range inputs {
		if !bytes.HasSuffix(in.data, []byte("\r\n\r\n")) {
			t.Errorf("%s does not end with CRLF CRLF", in.name)
		}
		if i := bytes.Index(in.data, []byte("\r\n\r\n")); i != len(in.data)-4 {
			t.Errorf("%s: the head ends at %d, before the end of the input (%d)", in.name, i+4, len(in.data))
		}
	}
}

// parsed is what each parser reports for one input.
type parsed struct {
	method, target, cookie string
}

func parseLoophttp(data []byte) (parsed, error) {
	var req codec.Request
	n, err := codec.ParseRequest(data, &req, nil)
	if err != nil {
		return parsed{}, err
	}
	if n != len(data) {
		return parsed{}, errLength{n, len(data)}
	}
	return parsed{string(req.Method), string(req.Target), string(req.Header("cookie"))}, nil
}

func parseFasthttp(data []byte) (parsed, error) {
	var h fasthttp.RequestHeader
	if err := h.Read(bufio.NewReader(bytes.NewReader(data))); err != nil {
		return parsed{}, err
	}
	return parsed{string(h.Method()), string(h.RequestURI()), string(h.Peek("Cookie"))}, nil
}

func parseNethttp(data []byte) (parsed, error) {
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		return parsed{}, err
	}
	return parsed{req.Method, req.RequestURI, req.Header.Get("Cookie")}, nil
}

type errLength struct{ got, want int }

func (e errLength) Error() string {
	return "parsed " + strconv.Itoa(e.got) + " bytes of " + strconv.Itoa(e.want)
}

func TestParsersAgree(t *testing.T) {
	parsers := []struct {
		name  string
		parse func([]byte) (parsed, error)
	}{
		{"loophttp", parseLoophttp},
		{"fasthttp", parseFasthttp},
		{"nethttp", parseNethttp},
	}
	for _, in := range inputs {
		t.Run(in.name, func(t *testing.T) {
			// The Cookie value as written in the input, or "" without one.
			var want string
			for _, line := range strings.Split(string(in.data), "\r\n") {
				if v, ok := strings.CutPrefix(line, "Cookie: "); ok {
					want = v
				}
			}
			if in.name == "browser" && want == "" {
				t.Fatal("browser has no Cookie field")
			}
			var first parsed
			for i, p := range parsers {
				got, err := p.parse(in.data)
				if err != nil {
					t.Errorf("%s: %v", p.name, err)
					continue
				}
				if got.cookie != want {
					t.Errorf("%s: Cookie = %q, want %q", p.name, got.cookie, want)
				}
				if i == 0 {
					first = got
				} else if got.method != first.method || got.target != first.target {
					t.Errorf("%s: %s %s, %s: %s %s", p.name, got.method, got.target,
						parsers[0].name, first.method, first.target)
				}
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	for _, in := range inputs {
		b.Run(in.name, func(b *testing.B) {
			b.Run("loophttp", func(b *testing.B) { benchLoophttp(b, in.data) })
			b.Run("fasthttp", func(b *testing.B) { benchFasthttp(b, in.data) })
			b.Run("nethttp", func(b *testing.B) { benchNethttp(b, in.data) })
		})
	}
}

func benchLoophttp(b *testing.B, data []byte) {
	var req codec.Request
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n, err := codec.ParseRequest(data, &req, nil)
		if n != len(data) || err != nil {
			b.Fatalf("ParseRequest = %d, %v; want %d, nil", n, err, len(data))
		}
		sink = req.Header("cookie")
	}
}

func benchFasthttp(b *testing.B, data []byte) {
	var h fasthttp.RequestHeader
	rd := bytes.NewReader(data)
	br := bufio.NewReader(rd)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rd.Reset(data)
		br.Reset(rd)
		h.Reset()
		if err := h.Read(br); err != nil {
			b.Fatal(err)
		}
		sink = h.Peek("Cookie")
	}
}

func benchNethttp(b *testing.B, data []byte) {
	rd := bytes.NewReader(data)
	br := bufio.NewReader(rd)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rd.Reset(data)
		br.Reset(rd)
		req, err := http.ReadRequest(br)
		if err != nil {
			b.Fatal(err)
		}
		sinkStr = req.Header.Get("Cookie")
	}
}
