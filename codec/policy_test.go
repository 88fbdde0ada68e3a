package codec_test

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/internal/conformance"
)

// policyCase is a case written to the corpus policy (conformance README §4,
// §5) that the corpus files do not hold. status 0 means accept.
type policyCase struct {
	name    string
	policy  string
	raw     string
	status  int      // expected error status; -1: incomplete at EOF
	methods []string // response side when set
	check   func(m []conformance.Message) string
	lim     *codec.Limits
}

const host = "Host: example.com\r\n"

var requestPolicyCases = []policyCase{
	{name: "two leading empty lines", policy: "leading-empty-lines",
		raw: "\r\n\r\nGET / HTTP/1.1\r\n" + host + "\r\n", check: messages(1)},
	{name: "crlf between pipelined", policy: "leading-empty-lines",
		raw: "POST / HTTP/1.1\r\n" + host + "Content-Length: 1\r\n\r\nx\r\nGET /2 HTTP/1.1\r\n" + host + "\r\n", check: messages(2)},
	{name: "ws line after request-line", policy: "ws-after-start-line",
		raw: "GET / HTTP/1.1\r\n\tHost: example.com\r\n\r\n", status: 400},
	{name: "obs-fold in trailer htab", policy: "obs-fold-request",
		raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n\tb\r\n\r\n", status: 400},
	{name: "te gzip then chunked", policy: "te-strict",
		raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", status: 501},
	{name: "te xchunked", policy: "te-strict",
		raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", status: 501},
	{name: "te two lines gzip then chunked", policy: "te-strict",
		raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 501},
	{name: "te mixed case with ows", policy: "te-strict",
		raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding:  ChUnKeD\t\r\n\r\n1\r\nz\r\n0\r\n\r\n", check: body("z")},
	{name: "te trailing comma with space", policy: "te-strict",
		raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked , \r\n\r\n0\r\n\r\n", status: 400},
	{name: "te empty member in middle", policy: "te-strict",
		raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip,,chunked\r\n\r\n0\r\n\r\n", status: 400},
	{name: "te parameter with ows", policy: "te-strict",
		raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked ; q=1\r\n\r\n0\r\n\r\n", status: 400},
	{name: "te empty then chunked", policy: "te-strict",
		raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding:\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400},
	{name: "te http10 without cl", policy: "te-http10",
		raw: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400},
	{name: "cl then te", policy: "cl-te-conflict",
		raw: "POST / HTTP/1.1\r\n" + host + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400},
	{name: "cl three same lines", policy: "cl-duplicates",
		raw: "POST / HTTP/1.1\r\n" + host + "Content-Length: 1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", status: 400},
	{name: "cl plus sign",
		raw: "POST / HTTP/1.1\r\n" + host + "Content-Length: +1\r\n\r\nx", status: 400},
	{name: "cl max int64 over limit",
		raw: "POST / HTTP/1.1\r\n" + host + "Content-Length: 9223372036854775807\r\n\r\n", status: 413},
	{name: "cl 2^63 overflows",
		raw: "POST / HTTP/1.1\r\n" + host + "Content-Length: 9223372036854775808\r\n\r\n", status: 400},
	{name: "cl over a configured limit",
		raw: "POST / HTTP/1.1\r\n" + host + "Content-Length: 11\r\n\r\nhello world", status: 413,
		lim: &codec.Limits{MaxBodySize: 10}},
	{name: "chunked total over a configured limit",
		raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n", status: 413,
		lim: &codec.Limits{MaxBodySize: 10}},
	{name: "chunked at a configured limit",
		raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n",
		lim: &codec.Limits{MaxBodySize: 10}, check: body("helloworld")},
	{name: "chunk ext bws around semicolon and equals", policy: "chunk-ext-bws",
		raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n5 ; a = b\t;c\r\nhello\r\n0 ;x=\"y\"\r\n\r\n", check: body("hello")},
	{name: "chunk size trailing space", policy: "chunk-ext-bws",
		raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n", status: 400},
	{name: "chunk ext trailing space", policy: "chunk-ext-bws",
		raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n5;a=b \r\nhello\r\n0\r\n\r\n", status: 400},
	{name: "chunk ext unbalanced quote", policy: "chunk-ext-bws",
		raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n5;a=\"b\r\nhello\r\n0\r\n\r\n", status: 400},
	{name: "chunk ext ctl", policy: "chunk-ext-bws",
		raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n5;a\x01\r\nhello\r\n0\r\n\r\n", status: 400},
	{name: "chunk ext empty value",
		raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n5;a=\r\nhello\r\n0\r\n\r\n", status: 400},
	{name: "chunk line over limit",
		raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n5;a=" + strings.Repeat("b", 4100) + "\r\nhello\r\n0\r\n\r\n", status: 400},
	{name: "chunk size 2^63", raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n8000000000000000\r\n", status: 400},
	{name: "chunk size 2^63-1 over body limit", raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n7fffffffffffffff\r\n", status: 413},
	{name: "trailer name with space", policy: "trailer-framing-fields",
		raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n0\r\nX Y: z\r\n\r\n", status: 400},
	{name: "trailer content-length", policy: "trailer-framing-fields",
		raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n0\r\ncontent-length: 5\r\n\r\n", status: 400},
	{name: "trailer host", policy: "trailer-framing-fields",
		raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n0\r\nHost: a\r\n\r\n", status: 400},
	{name: "trailer trailer", policy: "trailer-framing-fields",
		raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n0\r\nTrailer: x\r\n\r\n", status: 400},
	{name: "trailer looks like request line",
		raw:   "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n0\r\nX:POST / HTTP/1.1\r\n\r\n",
		check: trailers([][2]string{{"X", "POST / HTTP/1.1"}})},
	{name: "host port not digits", raw: "GET / HTTP/1.1\r\nHost: example.com:8o\r\n\r\n", status: 400},
	{name: "host empty", raw: "GET / HTTP/1.1\r\nHost:\r\n\r\n", check: messages(1)},
	{name: "host empty port", raw: "GET / HTTP/1.1\r\nHost: example.com:\r\n\r\n", check: messages(1)},
	{name: "host unclosed ip literal", raw: "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", status: 400},
	{name: "host missing on 1.1", raw: "GET / HTTP/1.1\r\n\r\n", status: 400},
	{name: "host duplicate on 1.0", raw: "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", status: 400},
	{name: "http 1.9 as 1.1", policy: "http-version", raw: "GET / HTTP/1.9\r\n" + host + "\r\n", check: keepAlive(true)},
	{name: "http 0.9 line with version", policy: "http-version", raw: "GET / HTTP/0.9\r\n" + host + "\r\n", status: 505},
	{name: "http 3.0", policy: "http-version", raw: "GET / HTTP/3.0\r\n" + host + "\r\n", status: 505},
	{name: "options asterisk", raw: "OPTIONS * HTTP/1.1\r\n" + host + "\r\n", check: messages(1)},
	{name: "connect ipv6 without port", policy: "target-strict", raw: "CONNECT [::1] HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "connect empty port", policy: "target-strict", raw: "CONNECT example.com: HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "absolute form userinfo", policy: "target-strict", raw: "GET http://user@example.com/ HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "absolute form fragment", policy: "target-strict", raw: "GET http://example.com/#x HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "absolute form no path", raw: "GET https://example.com HTTP/1.1\r\n" + host + "\r\n", check: messages(1)},
	{name: "pct at end", policy: "target-strict", raw: "GET /a% HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "pct one digit", policy: "target-strict", raw: "GET /a%2 HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "target backslash", policy: "target-visible", raw: "GET /a\\b HTTP/1.1\r\n" + host + "\r\n", check: target("/a\\b")},
	{name: "target bracket in path", policy: "target-visible", raw: "GET /a[1] HTTP/1.1\r\n" + host + "\r\n", check: target("/a[1]")},
	{name: "target quote and angle brackets", policy: "target-visible", raw: "GET /\"<x>\"?q=<\"`>` HTTP/1.1\r\n" + host + "\r\n", check: target("/\"<x>\"?q=<\"`>`")},
	{name: "query bad pct kept", policy: "target-visible", raw: "GET /a?q=%zz%&r=%4 HTTP/1.1\r\n" + host + "\r\n", check: target("/a?q=%zz%&r=%4")},
	{name: "query pct escapes kept encoded", policy: "target-visible", raw: "GET /a%20b?q=%20 HTTP/1.1\r\n" + host + "\r\n", check: target("/a%20b?q=%20")},
	{name: "path bad pct before query", policy: "target-strict", raw: "GET /a%zz?q=1 HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "fragment after query", policy: "target-strict", raw: "GET /a?q=1#f HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "del in query", policy: "target-strict", raw: "GET /a?q=\x7f HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "non-ascii in query", policy: "target-strict", raw: "GET /a?q=\xc3\xa9 HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "absolute form query with brackets", policy: "target-visible", raw: "GET http://example.com/p[1]?ids[]=1&q=100% HTTP/1.1\r\n" + host + "\r\n", check: target("http://example.com/p[1]?ids[]=1&q=100%")},
	{name: "absolute form scheme in upper case", policy: "absolute-http", raw: "GET HTTPS://EXAMPLE.COM/ HTTP/1.1\r\n" + host + "\r\n", check: target("HTTPS://EXAMPLE.COM/")},
	{name: "absolute form empty authority", policy: "absolute-http", raw: "GET http:///x HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "absolute form empty authority before query", policy: "absolute-http", raw: "GET https://?x HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "absolute form port only", policy: "absolute-http", raw: "GET http://:80/ HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "absolute form bad pct in path", policy: "target-strict", raw: "GET http://example.com/%g0 HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "authority form on get", policy: "absolute-http", raw: "GET localhost:8080 HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "javascript scheme", policy: "absolute-http", raw: "GET javascript:alert(1) HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "one letter scheme", policy: "absolute-http", raw: "GET a:b HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "http 1.2 reported as received", policy: "http-version", raw: "GET / HTTP/1.2\r\n" + host + "\r\n", check: version("HTTP/1.2")},
	{name: "ip literal not an address", policy: "target-strict", raw: "GET http://[z]/ HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "ip literal ipv4 in brackets", policy: "target-strict", raw: "GET http://[1.2.3.4]/ HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "ip literal two double colons", policy: "target-strict", raw: "GET http://[1::2::3]/ HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "ip literal five hex digits", policy: "target-strict", raw: "GET http://[12345::1]/ HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "ip literal nine groups", policy: "target-strict", raw: "GET http://[1:2:3:4:5:6:7:8:9]/ HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "ip literal zone id", policy: "target-strict", raw: "GET http://[fe80::1%25eth0]/ HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "ip literal full", raw: "GET http://[2001:db8:0:0:0:0:2:1]:8080/ HTTP/1.1\r\n" + host + "\r\n", check: messages(1)},
	{name: "ip literal embedded ipv4", raw: "GET http://[::ffff:192.0.2.1]/ HTTP/1.1\r\n" + host + "\r\n", check: messages(1)},
	{name: "ip literal ipvfuture", raw: "GET http://[v1.a:b]/ HTTP/1.1\r\n" + host + "\r\n", check: messages(1)},
	{name: "host header ip literal not an address", raw: "GET / HTTP/1.1\r\nHost: [z]\r\n\r\n", status: 400},
	{name: "connect ip literal not an address", policy: "target-strict", raw: "CONNECT [z]:80 HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "other scheme bad port", policy: "absolute-http", raw: "GET foo://a:b/ HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "other scheme bracket in host", policy: "absolute-http", raw: "GET foo://a[b/ HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "other scheme bracket in userinfo", policy: "absolute-http", raw: "GET foo://a[b@c/ HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "other scheme two at signs", policy: "absolute-http", raw: "GET foo://a@b@c/ HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "other scheme userinfo", policy: "absolute-http", raw: "GET foo://user:pw@a:1/x HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "other scheme no authority", policy: "absolute-http", raw: "GET urn:isbn:0451450523 HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "http without authority", policy: "absolute-http", raw: "GET http:/x HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "http scheme only", policy: "target-strict", raw: "GET http: HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "host with comma", raw: "GET / HTTP/1.1\r\nHost: a,b\r\n\r\n", status: 400},
	{name: "method lower case kept", policy: "unknown-method", raw: "get / HTTP/1.1\r\n" + host + "\r\n", check: method("get")},
	{name: "request line 8000 passes", raw: "GET /" + strings.Repeat("a", 8000-len("GET / HTTP/1.1")) + " HTTP/1.1\r\n" + host + "\r\n", check: messages(1)},
	{name: "request line over 8192", raw: "GET /" + strings.Repeat("a", 8200) + " HTTP/1.1\r\n" + host + "\r\n", status: 414},
	{name: "request line over 8192 unterminated", raw: "GET /" + strings.Repeat("a", 9000), status: 414},
	{name: "100 fields pass", raw: "GET / HTTP/1.1\r\n" + host + fieldLines(99, 10) + "\r\n", check: messages(1)},
	{name: "101 fields fail", raw: "GET / HTTP/1.1\r\n" + host + fieldLines(100, 10) + "\r\n", status: 431},
	{name: "header section over 64k", raw: "GET / HTTP/1.1\r\n" + host + fieldLines(70, 1000) + "\r\n", status: 431},
	{name: "field line 8k passes", raw: "GET / HTTP/1.1\r\n" + host + "X: " + strings.Repeat("v", 8180) + "\r\n\r\n", check: messages(1)},
	{name: "field line unterminated over limit", raw: "GET / HTTP/1.1\r\n" + host + "X: " + strings.Repeat("v", 9000), status: 431},
	{name: "obs-text value", policy: "ctl-in-value", raw: "GET / HTTP/1.1\r\n" + host + "X: \x80\xff\r\n\r\n", check: messages(1)},
	{name: "htab inside value", policy: "ctl-in-value", raw: "GET / HTTP/1.1\r\n" + host + "X: a\tb\r\n\r\n",
		check: header("X", "a\tb")},
	{name: "value with escape char", policy: "ctl-in-value", raw: "GET / HTTP/1.1\r\n" + host + "X: a\x1bb\r\n\r\n", status: 400},
	{name: "name with non-ascii", raw: "GET / HTTP/1.1\r\n" + host + "X\xa0Y: a\r\n\r\n", status: 400},
	{name: "cut inside final crlf", raw: "GET / HTTP/1.1\r\n" + host + "\r", status: -1},
	{name: "cr after empty line start", policy: "bare-cr", raw: "GET / HTTP/1.1\r\n" + host + "\rX", status: 400},
	{name: "keep-alive on 1.0 then close token", policy: "keepalive-http10", raw: "GET / HTTP/1.0\r\nConnection: close, keep-alive\r\n\r\n", check: keepAlive(false)},
}

var responsePolicyCases = []policyCase{
	{name: "obs-fold replaced by one sp", policy: "obs-fold-response",
		raw: "HTTP/1.1 200 OK\r\nX-Fold: a  \r\n   b\r\n\tc\r\nContent-Length: 0\r\n\r\n", check: header("X-Fold", "a b c")},
	{name: "obs-fold on empty first line", policy: "obs-fold-response",
		raw: "HTTP/1.1 200 OK\r\nX:\r\n b\r\nContent-Length: 0\r\n\r\n", check: header("X", "b")},
	{name: "obs-fold in trailer", policy: "obs-fold-response",
		raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n", check: trailers([][2]string{{"X", "a b"}})},
	{name: "obs-fold then nul", policy: "obs-fold-response",
		raw: "HTTP/1.1 200 OK\r\nX: a\r\n b\x00\r\nContent-Length: 0\r\n\r\n", status: 400},
	{name: "ws line after status line", policy: "ws-after-start-line",
		raw: "HTTP/1.1 200 OK\r\n\tX: a\r\nContent-Length: 0\r\n\r\n", status: 400},
	{name: "te http10 response", policy: "te-http10",
		raw: "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400},
	{name: "te identity response", policy: "resp-te-unsupported",
		raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nabc", status: 501},
	{name: "head response with length", methods: []string{"HEAD", "GET"},
		raw: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", check: messages(2)},
	{name: "304 with length", raw: "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", check: body("")},
	{name: "http10 keep-alive with length", policy: "keepalive-http10",
		raw: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", check: keepAlive(true)},
	{name: "ice protocol", policy: "resp-strict-grammar", raw: "ICE/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", status: 400},
	{name: "rtsp protocol", policy: "resp-strict-grammar", raw: "RTSP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", status: 400},
	{name: "connect 407 keeps framing", methods: []string{"CONNECT"},
		raw: "HTTP/1.1 407 No\r\nContent-Length: 2\r\n\r\nno", check: body("no")},
	{name: "cl over body limit", raw: "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world", status: 413,
		lim: &codec.Limits{MaxBodySize: 10}},
	{name: "header over field count", raw: "HTTP/1.1 200 OK\r\n" + fieldLines(101, 5) + "\r\n", status: 431},
	{name: "two leading crlf", policy: "leading-empty-lines", raw: "\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", check: messages(1)},
	{name: "bare lf in trailer", policy: "bare-lf", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\n\r\n", status: 400},
}

func TestRequestPolicy(t *testing.T)  { runPolicyCases(t, requestPolicyCases) }
func TestResponsePolicy(t *testing.T) { runPolicyCases(t, responsePolicyCases) }

func runPolicyCases(t *testing.T, cases []policyCase) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			run := func(cuts ...int) *conformance.Outcome { return c.run(cuts...) }
			o := sameEveryWay(t, []byte(c.raw), run)
			switch {
			case c.status == -1:
				if !o.Incomplete || o.Err != nil {
					t.Fatalf("incomplete=%v err=%v; want incomplete", o.Incomplete, o.Err)
				}
			case c.status != 0:
				if o.Status() != c.status {
					t.Fatalf("status %d (%v); want %d", o.Status(), o.Err, c.status)
				}
			case o.Err != nil || o.Incomplete:
				t.Fatalf("err=%v incomplete=%v; want accept", o.Err, o.Incomplete)
			case c.check != nil:
				if msg := c.check(o.Messages); msg != "" {
					t.Fatal(msg)
				}
			}
		})
	}
}

func (c *policyCase) run(cuts ...int) *conformance.Outcome {
	var w interface {
		Write([]byte)
		Close() *conformance.Outcome
	}
	if c.methods != nil || strings.HasPrefix(c.raw, "HTTP/") || strings.HasPrefix(c.raw, "ICE") ||
		strings.HasPrefix(c.raw, "RTSP") || strings.HasPrefix(c.raw, "\r\n\r\nHTTP") {
		m := c.methods
		if m == nil {
			m = []string{"GET"}
		}
		w = conformance.NewResponseStream(m, c.lim)
	} else {
		w = conformance.NewRequestStream(c.lim)
	}
	prev := 0
	for _, k := range cuts {
		w.Write([]byte(c.raw[prev:k]))
		prev = k
	}
	w.Write([]byte(c.raw[prev:]))
	return w.Close()
}

// sameEveryWay runs input whole, split at every offset and byte by byte,
// fails unless every way gives the same outcome, and returns it.
func sameEveryWay(t *testing.T, in []byte, run func(cuts ...int) *conformance.Outcome) *conformance.Outcome {
	t.Helper()
	whole := run()
	for k := 1; k < len(in); k++ {
		if o := run(k); !reflect.DeepEqual(o, whole) {
			t.Fatalf("split at %d: %s; whole: %s", k, describe(o), describe(whole))
		}
	}
	cuts := make([]int, 0, len(in))
	for k := 1; k < len(in); k++ {
		cuts = append(cuts, k)
	}
	if o := run(cuts...); !reflect.DeepEqual(o, whole) {
		t.Fatalf("byte by byte: %s; whole: %s", describe(o), describe(whole))
	}
	return whole
}

func describe(o *conformance.Outcome) string {
	return fmt.Sprintf("%d messages, err=%v, incomplete=%v, stopped=%v, tail=%q", len(o.Messages), o.Err, o.Incomplete, o.Stopped, o.Tail)
}

func fieldLines(n, size int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "F-%04d: %s\r\n", i, strings.Repeat("v", size))
	}
	return b.String()
}

func messages(n int) func([]conformance.Message) string {
	return func(m []conformance.Message) string {
		if len(m) != n {
			return fmt.Sprintf("%d messages; want %d", len(m), n)
		}
		return ""
	}
}

func body(want string) func([]conformance.Message) string {
	return func(m []conformance.Message) string {
		if len(m) != 1 || m[0].Body == nil || string(*m[0].Body) != want {
			return fmt.Sprintf("messages %d; want one with body %q", len(m), want)
		}
		return ""
	}
}

func keepAlive(want bool) func([]conformance.Message) string {
	return func(m []conformance.Message) string {
		if len(m) != 1 || *m[0].KeepAlive != want {
			return fmt.Sprintf("want one message with keep-alive %v", want)
		}
		return ""
	}
}

func target(want string) func([]conformance.Message) string {
	return func(m []conformance.Message) string {
		if len(m) != 1 || string(*m[0].Target) != want {
			return fmt.Sprintf("want one message with target %q; got %d: %s", want, len(m), showTargets(m))
		}
		return ""
	}
}

func version(want string) func([]conformance.Message) string {
	return func(m []conformance.Message) string {
		if len(m) != 1 || string(*m[0].Version) != want {
			return fmt.Sprintf("want one message with version %q", want)
		}
		return ""
	}
}

func showTargets(m []conformance.Message) string {
	var b strings.Builder
	for _, x := range m {
		fmt.Fprintf(&b, "%q ", *x.Target)
	}
	return b.String()
}

func method(want string) func([]conformance.Message) string {
	return func(m []conformance.Message) string {
		if len(m) != 1 || string(*m[0].Method) != want {
			return fmt.Sprintf("want one message with method %q", want)
		}
		return ""
	}
}

func header(name, value string) func([]conformance.Message) string {
	return func(m []conformance.Message) string {
		if len(m) != 1 {
			return fmt.Sprintf("%d messages; want 1", len(m))
		}
		for _, h := range m[0].Headers {
			if string(h[0]) == name {
				if !bytes.Equal(h[1], []byte(value)) {
					return fmt.Sprintf("%s = %q; want %q", name, h[1], value)
				}
				return ""
			}
		}
		return fmt.Sprintf("no %s field in %q", name, m[0].Headers)
	}
}

func trailers(want [][2]string) func([]conformance.Message) string {
	return func(m []conformance.Message) string {
		if len(m) != 1 {
			return fmt.Sprintf("%d messages; want 1", len(m))
		}
		got := m[0].Trailers
		if len(got) != len(want) {
			return fmt.Sprintf("trailers %q; want %q", got, want)
		}
		for i := range want {
			if string(got[i][0]) != want[i][0] || string(got[i][1]) != want[i][1] {
				return fmt.Sprintf("trailers %q; want %q", got, want)
			}
		}
		return ""
	}
}

// TestTargetEveryOctet puts each of the 256 octets into a path and into a
// query. Every visible ASCII octet but "#" is accepted and reported
// verbatim (policy target-visible), except a "%" starting no escape in the
// path; every other octet gets 400.
func TestTargetEveryOctet(t *testing.T) {
	for c := 0; c < 256; c++ {
		visible := c > ' ' && c < 0x7f && c != '#'
		for _, tc := range []struct {
			where, target string
			accept        bool
		}{
			{"path", "/a" + string([]byte{byte(c)}) + "b", visible && c != '%'},
			{"query", "/a?q=" + string([]byte{byte(c)}) + "b", visible},
		} {
			raw := "GET " + tc.target + " HTTP/1.1\r\n" + host + "\r\n"
			o := sameEveryWay(t, []byte(raw), func(cuts ...int) *conformance.Outcome {
				return (&policyCase{raw: raw}).run(cuts...)
			})
			switch {
			case tc.accept && (o.Err != nil || len(o.Messages) != 1):
				t.Errorf("%s octet %#02x: err=%v, %d messages; want accept", tc.where, c, o.Err, len(o.Messages))
			case tc.accept && string(*o.Messages[0].Target) != tc.target:
				t.Errorf("%s octet %#02x: target %q; want %q", tc.where, c, *o.Messages[0].Target, tc.target)
			case !tc.accept && o.Status() != 400:
				t.Errorf("%s octet %#02x: status %d (%v); want 400", tc.where, c, o.Status(), o.Err)
			}
		}
	}
}
