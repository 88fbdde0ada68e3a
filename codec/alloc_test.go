package codec_test

import (
	"testing"
	"time"

	"github.com/loophttp/loophttp/codec"
)

// browserRequest is picohttpparser's benchmark request shape: a browser GET
// with a long cookie.
const browserRequest = "GET /wp-content/uploads/2010/03/hello-kitty-darth-vader-pink.jpg HTTP/1.1\r\n" +
	"Host: www.kittyhell.com\r\n" +
	"User-Agent: Mozilla/5.0 (Macintosh; U; Intel Mac OS X 10.6; ja-JP-mac; rv:1.9.2.3) Gecko/20100401 Firefox/3.6.3 Pathtraq/0.9\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
	"Accept-Language: ja,en-us;q=0.7,en;q=0.3\r\n" +
	"Accept-Encoding: gzip,deflate\r\n" +
	"Accept-Charset: Shift_JIS,utf-8;q=0.7,*;q=0.7\r\n" +
	"Keep-Alive: 115\r\n" +
	"Connection: keep-alive\r\n" +
	"Cookie: wp_ozh_wsa_visits=2; wp_ozh_wsa_visit_lasttime=xxxxxxxxxx; __utma=xxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.x; __utmz=xxxxxxxxx.xxxxxxxxxx.x.x.utmccn=(referral)|utmcsr=reader.livedoor.com|utmcct=/reader/|utmcmd=referral\r\n" +
	"\r\n"

const chunkedResponse = "HTTP/1.1 200 OK\r\nServer: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
	"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n"

func exact(s string) []byte {
	b := []byte(s)
	return b[:len(b):len(b)]
}

func assertNoAllocs(t *testing.T, name string, f func()) {
	t.Helper()
	if n := testing.AllocsPerRun(200, f); n != 0 {
		t.Errorf("%s: %v allocations per run; want 0", name, n)
	}
}

func TestParseAllocatesNothing(t *testing.T) {
	req := exact(browserRequest)
	var r codec.Request
	lim := (*codec.Limits)(nil).Resolved()
	assertNoAllocs(t, "ParseRequest", func() {
		if n, err := codec.ParseRequest(req, &r, &lim); n != len(req) || err != nil {
			t.Fatalf("ParseRequest = %d, %v", n, err)
		}
		if r.Header("cookie") == nil {
			t.Fatal("no cookie")
		}
	})
	// Partial heads are parsed again as bytes arrive; that must not allocate either.
	assertNoAllocs(t, "ParseRequest partial", func() {
		if n, err := codec.ParseRequest(req[:400], &r, nil); n != 0 || err != nil {
			t.Fatalf("ParseRequest = %d, %v", n, err)
		}
	})

	resp := exact(chunkedResponse)
	var p codec.Response
	var d codec.ChunkedDecoder
	d.Response = true
	assertNoAllocs(t, "ParseResponse+ChunkedDecoder", func() {
		n, err := codec.ParseResponse(resp, &p, []byte("GET"), &lim)
		if err != nil || p.Framing != codec.FramingChunked {
			t.Fatalf("ParseResponse = %d, %v, %v", n, err, p.Framing)
		}
		d.Reset()
		body := 0
		for rest := resp[n:]; ; {
			used, data, done, err := d.Decode(rest, &lim)
			if err != nil {
				t.Fatal(err)
			}
			body += len(data)
			rest = rest[used:]
			if done {
				break
			}
		}
		if body != 11 || len(d.Trailers) != 1 {
			t.Fatalf("body %d, trailers %d", body, len(d.Trailers))
		}
	})
}

func TestAppendAllocatesNothing(t *testing.T) {
	dst := make([]byte, 0, 4096)
	name, value := []byte("Content-Type"), []byte("text/plain")
	trailers := []codec.Header{{Name: []byte("X-Sum"), Value: []byte("1")}}
	var dc codec.DateCache
	now := time.Unix(1700000000, 0)
	assertNoAllocs(t, "serialisers", func() {
		b, _ := codec.AppendStatusLine(dst[:0], 200)
		b, _ = codec.AppendStatusLineReason(b, 299, "Fine")
		b, _ = codec.AppendRequestLine(b, "GET", "/index.html")
		b, _ = codec.AppendHeader(b, name, value)
		b, _ = codec.AppendHeader(b, "Server", "loophttp")
		b = dc.Append(b, now)
		b = codec.AppendChunk(b, value)
		b, _ = codec.AppendLastChunk(b, trailers)
		if len(b) == 0 {
			t.Fatal("nothing appended")
		}
	})
}
