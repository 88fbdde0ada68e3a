package fuzz

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/textproto"
	"slices"
	"strings"
	"testing"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/internal/conformance"
)

// maxInput bounds the inputs FuzzDiffNetHTTP judges. Below it, of loophttp's
// default limits (README §3) only the 100-field limit can be reached: the
// request-line and field-line limits are 8 KiB, the chunk-line limit 4 KiB
// (a chunked request needs a head in front of its first chunk line), the
// header section 64 KiB and the body 64 MiB. net/http's ReadRequest has no
// limits of its own beyond its 4 KiB bufio buffer, which this bound also
// keeps every trailer section inside.
const maxInput = 4096

// FuzzDiffNetHTTP parses the first request of the input with loophttp (the
// codec, through the stream harness of the conformance test) and with
// net/http.ReadRequest followed by reading the whole body, and checks that
// both accept it or both reject it, and that when both accept they agree on
// the method, target, version, persistence, header fields, Host, body and
// trailers. A disagreement is allowed only where the input shows one of the
// features listed in differences, in the direction listed there.
func FuzzDiffNetHTTP(f *testing.F) {
	for _, seed := range seeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxInput {
			return
		}
		ours := parseOurs(data)
		theirs := parseGo(data)
		verdict, ok := judge(data, ours, theirs)
		if !ok {
			t.Fatalf("loophttp and net/http disagree: %s\ninput: %q\nloophttp: %s\nnet/http: %s",
				verdict, data, ours, theirs)
		}
	})
}

// seeds returns every request-side raw of the conformance corpus and a few
// hand-written requests. Without the corpus the hand-written requests and a
// fixed handful of valid requests remain, so the target still runs.
func seeds(tb testing.TB) [][]byte {
	out := [][]byte{
		[]byte("GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: seed\r\nAccept: */*\r\nAccept: text/html\r\n\r\n"),
		[]byte("POST /form HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world"),
		[]byte("POST /upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n"),
		[]byte("GET / HTTP/1.0\r\n\r\n"),
		[]byte("GET / HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc"),
		[]byte("GET http://example.com:8080/a?b HTTP/1.1\r\nHost: example.com:8080\r\nConnection: close\r\n\r\n"),
		[]byte("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
		[]byte("OPTIONS * HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"),
		// Valid requests that net/http refuses (see differences).
		[]byte("\r\n\r\nGET / HTTP/1.1\r\nHost: example.com\r\n\r\n"),
		[]byte("POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n3 ; a = \"b\"\r\nabc\r\n00000000000000000\r\n\r\n"),
		[]byte("POST / HTTP/1.1\r\nHost: example.com\r\nTrailer: Content-Length, X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-Sum: 1\r\n\r\n"),
		[]byte("GET http://ex%41mple.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n"),
		[]byte("CONNECT [v7.a:b]:443 HTTP/1.1\r\nHost: [v7.a:b]:443\r\n\r\n"),
		// Absolute-form targets with other schemes and IP literals.
		[]byte("GET https://[2001:db8::7]:8443/p?q HTTP/1.1\r\nHost: [2001:db8::7]:8443\r\n\r\n"),
		[]byte("GET urn:example:a HTTP/1.1\r\nHost: example.com\r\n\r\n"),
		// Targets as browsers and curl send them (policy target-visible).
		[]byte("GET /p[1]/a|b\\c?ids[]=1&q={\"x\"}^`<>&p=100% HTTP/1.1\r\nHost: example.com\r\n\r\n"),
		[]byte("GET http://example.com/a%20b?q=%zz HTTP/1.1\r\nHost: example.com\r\n\r\n"),
		[]byte("GET ftp://user@ftp.example.com:21/pub HTTP/1.1\r\nHost: example.com\r\n\r\n"),
	}
	vs, err := conformance.Load()
	if err != nil {
		tb.Logf("conformance corpus not loaded (%v); using the built-in seeds only", err)
		return out
	}
	for _, v := range vs {
		if v.Side == "request" {
			out = append(out, []byte(v.Raw))
		}
	}
	return out
}

// ourOutcome is loophttp's verdict on the first request.
type ourOutcome struct {
	msg        *conformance.Message // nil when rejected
	err        error
	incomplete bool
}

func parseOurs(data []byte) ourOutcome {
	s := conformance.NewRequestStream(nil)
	s.Write(bytes.Clone(data))
	out := s.Close()
	if len(out.Messages) > 0 {
		return ourOutcome{msg: &out.Messages[0]}
	}
	return ourOutcome{err: out.Err, incomplete: out.Incomplete}
}

func (o ourOutcome) accepted() bool { return o.msg != nil }

// kind is the codec error of a rejection (0 for an incomplete message).
func (o ourOutcome) kind() codec.Error {
	var e codec.Error
	errors.As(o.err, &e)
	return e
}

func (o ourOutcome) String() string {
	switch {
	case o.msg == nil && o.err != nil:
		return fmt.Sprintf("rejected: %v (%d)", o.err, o.kind())
	case o.msg == nil && o.incomplete:
		return "rejected: incomplete at EOF"
	case o.msg == nil:
		return "rejected: no request"
	}
	m := o.msg
	var b strings.Builder
	fmt.Fprintf(&b, "accepted: %q %q %q keep-alive=%v\n", oct(m.Method), oct(m.Target), oct(m.Version), m.KeepAlive != nil && *m.KeepAlive)
	for _, h := range m.Headers {
		fmt.Fprintf(&b, "  header %q: %q\n", h[0], h[1])
	}
	fmt.Fprintf(&b, "  body %q\n", oct(m.Body))
	for _, h := range m.Trailers {
		fmt.Fprintf(&b, "  trailer %q: %q\n", h[0], h[1])
	}
	return b.String()
}

func oct(o *conformance.Octets) []byte {
	if o == nil {
		return nil
	}
	return *o
}

// goOutcome is net/http's verdict on the first request: ReadRequest, then
// reading the whole body. A body read error is a rejection too.
type goOutcome struct {
	req  *http.Request
	body []byte
	err  error
}

func parseGo(data []byte) goOutcome {
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		return goOutcome{err: err}
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return goOutcome{err: fmt.Errorf("reading body: %w", err)}
	}
	return goOutcome{req: req, body: body}
}

func (g goOutcome) accepted() bool { return g.err == nil }

func (g goOutcome) String() string {
	if g.err != nil {
		return fmt.Sprintf("rejected: %v", g.err)
	}
	r := g.req
	var b strings.Builder
	fmt.Fprintf(&b, "accepted: %q %q %q close=%v host=%q transfer-encoding=%q\n", r.Method, r.RequestURI, r.Proto, r.Close, r.Host, r.TransferEncoding)
	for _, p := range pairsOf(r.Header) {
		fmt.Fprintf(&b, "  header %q: %q\n", p[0], p[1])
	}
	fmt.Fprintf(&b, "  body %q\n", g.body)
	for _, p := range pairsOf(r.Trailer) {
		fmt.Fprintf(&b, "  trailer %q: %q\n", p[0], p[1])
	}
	return b.String()
}

// judge returns whether the two outcomes agree, or differ only as an
// intended difference allows, with a note saying which.
func judge(data []byte, ours ourOutcome, theirs goOutcome) (string, bool) {
	switch {
	case !ours.accepted() && !theirs.accepted():
		return "both reject", true
	case ours.accepted() && theirs.accepted():
		if d := compare(ours.msg, theirs); d != "" {
			return d, false
		}
		return "both accept alike", true
	case !ours.accepted():
		return excuseOurReject(data, ours)
	default:
		return excuseGoReject(data, ours, theirs)
	}
}

// excuseOurReject looks for a feature of the input for which loophttp's
// policy is stricter than net/http, with loophttp reporting an error that
// feature causes.
func excuseOurReject(data []byte, ours ourOutcome) (string, bool) {
	v := parseView(data)
	for _, d := range differences {
		if d.Dir == oursStricter && slices.Contains(d.Errs, ours.kind()) && d.Present(v) {
			return "intended difference: " + d.Key, true
		}
	}
	return "loophttp rejects what net/http accepts", false
}

// excuseGoReject undoes, one by one, the features of the input for which
// net/http is stricter than loophttp's policy, then runs net/http again on
// the result: it must now accept the request and agree with loophttp in
// every respect. A difference without an undo step is excused when
// net/http's error names it instead.
func excuseGoReject(data []byte, ours ourOutcome, theirs goOutcome) (string, bool) {
	var used []string
	cur := data
	for _, d := range differences {
		if d.Dir != goStricter {
			continue
		}
		v := parseView(cur)
		if !d.Present(v) {
			continue
		}
		if d.Rewrite == nil {
			if len(used) == 0 && strings.Contains(theirs.err.Error(), d.GoErr) {
				return "intended difference: " + d.Key, true
			}
			continue
		}
		cur = d.Rewrite(v)
		used = append(used, d.Key)
	}
	if len(used) == 0 {
		return "net/http rejects what loophttp accepts", false
	}
	again := parseGo(cur)
	if !again.accepted() {
		return fmt.Sprintf("net/http rejects what loophttp accepts, even after undoing %s: %q: %v", strings.Join(used, ", "), cur, again.err), false
	}
	if d := compare(ours.msg, again); d != "" {
		return fmt.Sprintf("after undoing %s for net/http (%q): %s", strings.Join(used, ", "), cur, d), false
	}
	return "intended difference: " + strings.Join(used, ", "), true
}

// compare returns how an accepted request differs between the two parsers,
// or "". It accounts for what net/http moves or changes:
//   - Host leaves req.Header for req.Host (ReadRequest deletes it); req.Host
//     is compared only when the target has no authority, since otherwise it
//     is the authority's (RFC 9112 §3.2.2).
//   - Transfer-Encoding leaves req.Header for req.TransferEncoding, and with
//     chunked framing Trailer leaves req.Header for the keys of req.Trailer.
//     (net/http also deletes Content-Length under chunked framing and merges
//     identical repeated Content-Length lines; loophttp rejects both inputs,
//     policies cl-te-conflict and cl-duplicates.)
//   - "Pragma: no-cache" without Cache-Control gains "Cache-Control:
//     no-cache" (fixPragmaCacheControl).
//   - field names are compared in canonical form
//     (textproto.CanonicalMIMEHeaderKey); loophttp keeps the case received.
//   - req.Trailer keeps declared but unsent trailers with no value; only
//     received trailers are compared.
func compare(m *conformance.Message, g goOutcome) string {
	r := g.req
	var diffs []string
	differ := func(what string, ours, theirs any) {
		diffs = append(diffs, fmt.Sprintf("%s: loophttp %q, net/http %q", what, ours, theirs))
	}
	if string(oct(m.Method)) != r.Method {
		differ("method", oct(m.Method), r.Method)
	}
	if string(oct(m.Target)) != r.RequestURI {
		differ("target", oct(m.Target), r.RequestURI)
	}
	if string(oct(m.Version)) != r.Proto {
		differ("version", oct(m.Version), r.Proto)
	}
	if ka := m.KeepAlive != nil && *m.KeepAlive; ka == r.Close {
		diffs = append(diffs, fmt.Sprintf("persistence: loophttp keep-alive=%v, net/http Close=%v", ka, r.Close))
	}

	var ours [][2]string
	var host []byte
	chunked, cacheControl := false, false
	for _, h := range m.Headers {
		name := textproto.CanonicalMIMEHeaderKey(string(h[0]))
		switch name {
		case "Host":
			host = h[1]
			continue
		case "Transfer-Encoding":
			chunked = true
		case "Cache-Control":
			cacheControl = true
		}
		ours = append(ours, [2]string{name, string(h[1])})
	}
	goChunked := slices.Equal(r.TransferEncoding, []string{"chunked"})
	if chunked != goChunked {
		diffs = append(diffs, fmt.Sprintf("chunked: loophttp %v, net/http Transfer-Encoding %q", chunked, r.TransferEncoding))
	}
	if chunked {
		ours = slices.DeleteFunc(ours, func(p [2]string) bool {
			return p[0] == "Transfer-Encoding" || p[0] == "Trailer"
		})
	}
	theirs := pairsOf(r.Header)
	if !cacheControl && len(r.Header["Pragma"]) > 0 && r.Header["Pragma"][0] == "no-cache" {
		theirs = slices.DeleteFunc(theirs, func(p [2]string) bool {
			return p == [2]string{"Cache-Control", "no-cache"}
		})
	}
	slices.SortFunc(ours, comparePair)
	if !slices.Equal(ours, theirs) {
		differ("header fields", ours, theirs)
	}
	if r.URL.Host == "" && string(host) != r.Host {
		differ("host", host, r.Host)
	}
	if !bytes.Equal(oct(m.Body), g.body) {
		differ("body", oct(m.Body), g.body)
	}
	var ourTrailers [][2]string
	for _, h := range m.Trailers {
		ourTrailers = append(ourTrailers, [2]string{textproto.CanonicalMIMEHeaderKey(string(h[0])), string(h[1])})
	}
	slices.SortFunc(ourTrailers, comparePair)
	if theirTrailers := pairsOf(r.Trailer); !slices.Equal(ourTrailers, theirTrailers) {
		differ("trailer fields", ourTrailers, theirTrailers)
	}
	return strings.Join(diffs, "; ")
}

// pairsOf flattens h into sorted (name, value) pairs.
func pairsOf(h http.Header) [][2]string {
	var out [][2]string
	for k, vs := range h {
		for _, v := range vs {
			out = append(out, [2]string{k, v})
		}
	}
	slices.SortFunc(out, comparePair)
	return out
}

func comparePair(a, b [2]string) int {
	if c := strings.Compare(a[0], b[0]); c != 0 {
		return c
	}
	return strings.Compare(a[1], b[1])
}

// direction says which parser is the stricter one for a difference.
type direction uint8

const (
	oursStricter direction = iota // loophttp rejects what net/http accepts
	goStricter                    // net/http rejects what loophttp accepts
)

// difference is one intended difference between loophttp and net/http.
type difference struct {
	// Key names the reason: a policy key of README §4, an item of README
	// §8, a limit of README §3, or the RFC section loophttp follows where
	// net/http does not.
	Key string
	Dir direction
	// Errs lists the codec errors the feature makes loophttp report
	// (oursStricter only): the difference excuses no other rejection.
	Errs []codec.Error
	// Present reports whether the input shows the feature, judged from
	// its bytes as net/http splits them (see view).
	Present func(v *view) bool
	// Rewrite (goStricter only) returns the input with the feature undone,
	// so that net/http can be run again and must then agree in full.
	Rewrite func(v *view) []byte
	// GoErr (goStricter without Rewrite) is text net/http's error must
	// contain.
	GoErr string
}

// differences is the complete list of intended differences. doc.go has the
// same list as a table; keep them in step.
var differences = []difference{
	// README §4 bare-lf: a bare LF never ends a line. net/http ends head
	// and trailer lines at any LF (bufio.Reader.ReadLine). A bare LF
	// ending the request-line shows up in loophttp as a broken version
	// ("HTTP/1.1" must be followed by CRLF).
	{Key: "bare-lf", Dir: oursStricter,
		Errs:    []codec.Error{codec.ErrLineEnding, codec.ErrVersion},
		Present: func(v *view) bool { return v.bareLF }},
	// README §4 start-line-whitespace: exactly one SP between the
	// elements of the request-line. net/http cuts at the first two SPs, so
	// it accepts doubled, leading or trailing whitespace and an empty
	// target.
	{Key: "start-line-whitespace", Dir: oursStricter,
		Errs:    []codec.Error{codec.ErrStartLineSpace},
		Present: func(v *view) bool { return badStartLineSpace(v.requestLine) }},
	// README §4 obs-fold-request: obs-fold in a request (headers or
	// trailers) gets 400. net/http unfolds it.
	{Key: "obs-fold-request", Dir: oursStricter,
		Errs:    []codec.Error{codec.ErrObsFold},
		Present: func(v *view) bool { return v.folded }},
	// README §4 http-version: HTTP/0.x and HTTP/2+ get 505. ReadRequest
	// accepts any "HTTP/d.d" (its Server answers 505 later).
	{Key: "http-version", Dir: oursStricter,
		Errs:    []codec.Error{codec.ErrVersionUnsupported},
		Present: func(v *view) bool { return len(v.version) == 8 && v.version[5] != '1' }},
	// README §4 target-strict and target-visible, with RFC 9112 §3.2 (and
	// RFC 9110 §4.2.1, §4.2.4 for http and https URIs): a fragment, a
	// non-ASCII octet or DEL, a malformed %-escape in the path of an
	// absolute-form target (net/http checks only an origin-form path), "*"
	// with a method other than OPTIONS, a CONNECT target that is not
	// authority-form, userinfo in an http(s) URI, a host outside RFC 3986.
	// url.ParseRequestURI allows these.
	{Key: "target-strict", Dir: oursStricter,
		Errs: []codec.Error{codec.ErrTarget},
		Present: func(v *view) bool {
			p := targetProblem(v.method, v.target)
			return p != "" && p != connectNoPort && p != notHTTPURI
		}},
	// README §4 absolute-http: an absolute-form target must be an http or
	// https URI with a non-empty authority, and authority-form is for
	// CONNECT only. net/http takes any scheme ("mailto:a@b", "urn:x",
	// "example.com:80" read as scheme "example.com").
	{Key: "absolute-http", Dir: oursStricter,
		Errs:    []codec.Error{codec.ErrTarget},
		Present: func(v *view) bool { return targetProblem(v.method, v.target) == notHTTPURI }},
	// README §8 "Go accepts CONNECT without a port" (RFC 9110 §9.3.6: no
	// default port; an empty port is no port either).
	{Key: connectNoPort, Dir: oursStricter,
		Errs:    []codec.Error{codec.ErrTarget},
		Present: func(v *view) bool { return targetProblem(v.method, v.target) == connectNoPort }},
	// RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request
	// without Host. net/http's Server enforces this; ReadRequest does not.
	{Key: "RFC 9112 §3.2 Host missing", Dir: oursStricter,
		Errs: []codec.Error{codec.ErrHost},
		Present: func(v *view) bool {
			return len(v.version) == 8 && v.version[5] == '1' && v.version[7] != '0' && len(v.fieldsNamed(v.fields, "Host")) == 0
		}},
	// README §8 "Host: example.com:8o", RFC 9112 §3.2: a Host that is not
	// uri-host [ ":" port ] gets 400. ReadRequest checks only that the
	// value is a valid field value (its Server checks more, later).
	{Key: "README §8 Host: example.com:8o", Dir: oursStricter,
		Errs: []codec.Error{codec.ErrHost},
		Present: func(v *view) bool {
			for _, f := range v.fieldsNamed(v.fields, "Host") {
				if !validHostHeader(f.value) {
					return true
				}
			}
			return false
		}},
	// host-comma (RFC 9110 §5.3, §7.2): Host is a singleton field and a
	// comma in it reads as a list, so loophttp rejects a comma in Host
	// and, because the target's authority overrides Host (RFC 9112
	// §3.2.2), in the host of an absolute-form or CONNECT target too.
	// RFC 3986 would allow one in a reg-name; no DNS name holds one.
	{Key: "host-comma", Dir: oursStricter,
		Errs: []codec.Error{codec.ErrHost, codec.ErrTarget},
		Present: func(v *view) bool {
			for _, f := range v.fieldsNamed(v.fields, "Host") {
				if bytes.IndexByte(f.value, ',') >= 0 {
					return true
				}
			}
			return bytes.IndexByte(targetHost(v.method, v.target), ',') >= 0
		}},
	// README §4 te-http10: Transfer-Encoding in HTTP/1.0 is rejected.
	// net/http deletes it and frames the body as if it were absent.
	{Key: "te-http10", Dir: oursStricter,
		Errs: []codec.Error{codec.ErrTransferEncoding},
		Present: func(v *view) bool {
			return string(v.version) == "HTTP/1.0" && len(v.fieldsNamed(v.fields, "Transfer-Encoding")) > 0
		}},
	// README §4 cl-te-conflict: Content-Length with Transfer-Encoding is
	// rejected. net/http lets chunked win and deletes Content-Length.
	{Key: "cl-te-conflict", Dir: oursStricter,
		Errs: []codec.Error{codec.ErrFramingConflict},
		Present: func(v *view) bool {
			return len(v.fieldsNamed(v.fields, "Content-Length")) > 0 && len(v.fieldsNamed(v.fields, "Transfer-Encoding")) > 0
		}},
	// README §4 cl-duplicates: repeated Content-Length lines are rejected
	// even when identical. net/http merges identical ones into one.
	{Key: "cl-duplicates", Dir: oursStricter,
		Errs:    []codec.Error{codec.ErrContentLength},
		Present: func(v *view) bool { return len(v.fieldsNamed(v.fields, "Content-Length")) > 1 }},
	// README §3 limit: 100 field lines per section (headers or
	// trailers), 431. ReadRequest has no such limit.
	{Key: "limit: 100 fields", Dir: oursStricter,
		Errs:    []codec.Error{codec.ErrTooManyFields},
		Present: func(v *view) bool { return len(v.fields) > 100 || len(v.trailers) > 100 }},
	// README §8 "trailer names with a space", and the same in headers:
	// net/http keeps a field name containing SP (uncanonicalised, issue
	// 34540). RFC 9112 §5.1 requires a 400 for whitespace before the
	// colon, and a field-name is a token (RFC 9110 §5.1).
	{Key: "README §8 trailer names with a space", Dir: oursStricter,
		Errs: []codec.Error{codec.ErrFieldName},
		Present: func(v *view) bool {
			return slices.ContainsFunc(v.fields, nameHasSpace) || slices.ContainsFunc(v.trailers, nameHasSpace)
		}},
	// README §8 "chunk sizes with trailing spaces": net/http trims SP and
	// HTAB at the end of a chunk line; RFC 9112 §7.1 allows none.
	{Key: "README §8 chunk sizes with trailing spaces", Dir: oursStricter,
		Errs: []codec.Error{codec.ErrChunkSize, codec.ErrChunkExtension},
		Present: func(v *view) bool {
			return slices.ContainsFunc(v.chunks, func(c chunkLine) bool {
				t := c.line.text
				return len(c.digits) > 0 && len(t) > 0 && (t[len(t)-1] == ' ' || t[len(t)-1] == '\t')
			})
		}},
	// README §8 "any chunk-extension text": net/http ignores everything
	// after the first ";" of a chunk line; loophttp checks the grammar of
	// RFC 9112 §7.1.1 (with BWS, policy chunk-ext-bws).
	{Key: "README §8 any chunk-extension text", Dir: oursStricter,
		Errs: []codec.Error{codec.ErrChunkExtension},
		Present: func(v *view) bool {
			return slices.ContainsFunc(v.chunks, func(c chunkLine) bool {
				return len(c.digits) > 0 && bytes.IndexByte(c.rest, ';') >= 0 && !validChunkExt(c.rest)
			})
		}},
	// README §4 trailer-framing-fields: Content-Length,
	// Transfer-Encoding, Host and Trailer as trailers get 400. net/http
	// accepts any trailer.
	{Key: "trailer-framing-fields", Dir: oursStricter,
		Errs: []codec.Error{codec.ErrTrailer},
		Present: func(v *view) bool {
			for _, name := range []string{"Content-Length", "Transfer-Encoding", "Host", "Trailer"} {
				if len(v.fieldsNamed(v.trailers, name)) > 0 {
					return true
				}
			}
			return false
		}},

	// README §4 leading-empty-lines: CRLF lines before the request-line
	// are skipped. ReadRequest reads an empty request-line instead (only
	// its Server skips one CRLF, after a POST).
	{Key: "leading-empty-lines", Dir: goStricter,
		Present: func(v *view) bool { return bytes.HasPrefix(v.data, []byte("\r\n")) },
		Rewrite: func(v *view) []byte {
			b := v.data
			for bytes.HasPrefix(b, []byte("\r\n")) {
				b = b[2:]
			}
			return b
		}},
	// README §4 chunk-ext-bws: BWS before ";" in a chunk line is accepted
	// (RFC 9110 §5.6.3). net/http reads "5 " as the chunk size and fails.
	{Key: "chunk-ext-bws", Dir: goStricter,
		Present: func(v *view) bool { return slices.ContainsFunc(v.chunks, chunkBWS) },
		Rewrite: func(v *view) []byte {
			return v.rewriteChunks(func(c chunkLine) []byte {
				if !chunkBWS(c) {
					return nil
				}
				return slices.Concat(c.digits, bytes.TrimLeft(c.rest, " \t"))
			})
		}},
	// RFC 9112 §7.1: chunk-size = 1*HEXDIG, so leading zeros are valid in
	// any number. net/http refuses a chunk size of more than 16 digits.
	{Key: "RFC 9112 §7.1 chunk-size leading zeros", Dir: goStricter,
		Present: func(v *view) bool { return slices.ContainsFunc(v.chunks, longChunkSize) },
		Rewrite: func(v *view) []byte {
			return v.rewriteChunks(func(c chunkLine) []byte {
				if !longChunkSize(c) {
					return nil
				}
				d := bytes.TrimLeft(c.digits, "0")
				if len(d) == 0 {
					d = []byte("0")
				}
				return slices.Concat(d, c.rest)
			})
		}},
	// README §4 trailer-framing-fields ("Go forbids these names in
	// Trailer:"): net/http rejects a chunked request whose Trailer field
	// announces Content-Length, Transfer-Encoding or Trailer. loophttp
	// judges the trailers that arrive, not the announcement (RFC 9110
	// §6.6.2 puts no requirement on the recipient of Trailer).
	{Key: "trailer-framing-fields, Trailer field", Dir: goStricter,
		Present: func(v *view) bool { return v.chunked && slices.ContainsFunc(v.fields, announcesFraming) },
		Rewrite: func(v *view) []byte {
			var drop [][2]int
			for _, f := range v.fields {
				if announcesFraming(f) {
					drop = append(drop, [2]int{f.start, f.end})
				}
			}
			return cut(v.data, drop)
		}},
	// RFC 3986 §3.2.2: a reg-name may hold any pct-encoded octet.
	// net/url refuses %-escapes of ASCII octets (other than %25) in the
	// host of an absolute-form or authority-form target.
	{Key: "RFC 3986 §3.2.2 pct-encoded reg-name", Dir: goStricter,
		Present: func(v *view) bool {
			h := targetHost(v.method, v.target)
			return bytes.IndexByte(h, '%') >= 0 && h[0] != '[' && targetProblem(v.method, v.target) == ""
		},
		GoErr: "invalid URL escape"},
	// RFC 3986 §3.2.2: IP-literal = "[" ( IPv6address / IPvFuture ) "]".
	// net/url accepts only IPv6 addresses between brackets.
	{Key: "RFC 3986 §3.2.2 IPvFuture", Dir: goStricter,
		Present: func(v *view) bool {
			h := targetHost(v.method, v.target)
			return len(h) > 1 && h[0] == '[' && (h[1] == 'v' || h[1] == 'V') && targetProblem(v.method, v.target) == ""
		},
		GoErr: "invalid host"},
}

const connectNoPort = "README §8 Go accepts CONNECT without a port"

// view is the input split into lines the way net/http reads it: lines end
// at LF, with one CR before it removed (bufio.Reader.ReadLine); the head
// ends at the first empty line; a line starting with SP or HTAB continues
// the field before it. For a chunked request (net/http's rule: HTTP/1.1 or
// later, one Transfer-Encoding line, "chunked") the chunk lines and the
// trailer section are split too. Inputs loophttp accepted are strict CRLF
// text, for which this is also loophttp's split.
type view struct {
	data                    []byte
	method, target, version []byte
	fields                  []field
	chunked                 bool
	chunks                  []chunkLine
	trailers                []field
	requestLine             []byte // the first line, without its line ending
	bareLF                  bool   // a head or trailer line ends in a bare LF
	folded                  bool   // a head or trailer field has a continuation line
}

// field is one field line with its continuation lines.
type field struct {
	name       []byte // as received, up to the first colon
	value      []byte // the first line's value, OWS trimmed
	start, end int    // the bytes of all its lines
}

// chunkLine is one chunk-size line: its leading hex digits and the rest.
type chunkLine struct {
	line   line
	digits []byte
	rest   []byte
}

type line struct {
	text       []byte // without its line ending
	start, end int    // end is past the line ending
	bareLF     bool
}

// readLine returns the line starting at p; ok is false when no LF follows.
func readLine(b []byte, p int) (l line, ok bool) {
	i := bytes.IndexByte(b[p:], '\n')
	if i < 0 {
		return line{}, false
	}
	e := p + i
	l = line{text: b[p:e], start: p, end: e + 1, bareLF: true}
	if e > p && b[e-1] == '\r' {
		l.text, l.bareLF = b[p:e-1], false
	}
	return l, true
}

func parseView(data []byte) *view {
	v := &view{data: data}
	first, ok := readLine(data, 0)
	if !ok {
		return v
	}
	v.bareLF = first.bareLF
	v.requestLine = first.text
	var rest []byte
	v.method, rest, _ = bytes.Cut(first.text, []byte(" "))
	v.target, v.version, _ = bytes.Cut(rest, []byte(" "))
	var p int
	v.fields, p, ok = v.readFields(first.end)
	if !ok {
		return v
	}
	te := v.fieldsNamed(v.fields, "Transfer-Encoding")
	atLeast11 := len(v.version) == 8 && (v.version[5] > '1' || v.version[5] == '1' && v.version[7] != '0')
	v.chunked = atLeast11 && len(te) == 1 && strings.EqualFold(string(te[0].value), "chunked")
	if !v.chunked {
		return v
	}
	for {
		l, ok := readLine(data, p)
		if !ok {
			return v
		}
		n := 0
		for n < len(l.text) && isHex(l.text[n]) {
			n++
		}
		c := chunkLine{line: l, digits: l.text[:n], rest: l.text[n:]}
		v.chunks = append(v.chunks, c)
		size := uint64(0)
		for _, d := range c.digits {
			if size > uint64(len(data)) {
				return v // cannot be complete
			}
			size = size<<4 | uint64(unhex(d))
		}
		if n == 0 {
			return v
		}
		if size == 0 {
			v.trailers, _, _ = v.readFields(l.end)
			return v
		}
		if size > uint64(len(data)-l.end) {
			return v
		}
		p = l.end + int(size) + 2
		if p > len(data) {
			return v
		}
	}
}

// readFields reads field lines from p up to and including the empty line.
func (v *view) readFields(p int) (fs []field, end int, ok bool) {
	for {
		l, ok := readLine(v.data, p)
		if !ok {
			return fs, p, false
		}
		v.bareLF = v.bareLF || l.bareLF
		p = l.end
		if len(l.text) == 0 {
			return fs, p, true
		}
		if c := l.text[0]; c == ' ' || c == '\t' {
			v.folded = true
			if len(fs) > 0 {
				fs[len(fs)-1].end = l.end
			}
			continue
		}
		name, value, _ := bytes.Cut(l.text, []byte(":"))
		fs = append(fs, field{name: name, value: bytes.Trim(value, " \t"), start: l.start, end: l.end})
	}
}

// fieldsNamed returns the fields of fs whose name is name in canonical form.
func (v *view) fieldsNamed(fs []field, name string) []field {
	var out []field
	for _, f := range fs {
		if textproto.CanonicalMIMEHeaderKey(string(f.name)) == name {
			out = append(out, f)
		}
	}
	return out
}

// rewriteChunks replaces the text of each chunk line for which repl returns
// non-nil, keeping its line ending.
func (v *view) rewriteChunks(repl func(chunkLine) []byte) []byte {
	var out []byte
	p := 0
	for _, c := range v.chunks {
		if r := repl(c); r != nil {
			out = append(out, v.data[p:c.line.start]...)
			out = append(out, r...)
			p = c.line.start + len(c.line.text)
		}
	}
	return append(out, v.data[p:]...)
}

// cut returns b without the given ascending, disjoint ranges.
func cut(b []byte, drop [][2]int) []byte {
	var out []byte
	p := 0
	for _, d := range drop {
		out = append(out, b[p:d[0]]...)
		p = d[1]
	}
	return append(out, b[p:]...)
}

func nameHasSpace(f field) bool { return bytes.IndexByte(f.name, ' ') >= 0 }

// chunkBWS reports whitespace between a chunk size and its first ";".
func chunkBWS(c chunkLine) bool {
	t := bytes.TrimLeft(c.rest, " \t")
	return len(c.digits) > 0 && len(t) < len(c.rest) && len(t) > 0 && t[0] == ';'
}

func longChunkSize(c chunkLine) bool { return len(c.digits) > 16 }

// announcesFraming reports a Trailer field naming a field net/http refuses
// to announce.
func announcesFraming(f field) bool {
	if textproto.CanonicalMIMEHeaderKey(string(f.name)) != "Trailer" {
		return false
	}
	for m := range strings.SplitSeq(string(f.value), ",") {
		switch textproto.CanonicalMIMEHeaderKey(strings.Trim(m, " \t")) {
		case "Content-Length", "Transfer-Encoding", "Trailer":
			return true
		}
	}
	return false
}

// validChunkExt reports whether s (what follows the chunk size on its line)
// matches RFC 9112 §7.1.1 with RFC 9110 §5.6.3 BWS:
//
//	chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//	chunk-ext-val = token / quoted-string
func validChunkExt(s []byte) bool {
	i := 0
	for i < len(s) {
		i = skipWS(s, i)
		if i == len(s) || s[i] != ';' {
			return false
		}
		i = skipWS(s, i+1)
		n := tokenEnd(s, i)
		if n == i {
			return false
		}
		i = n
		j := skipWS(s, i)
		if j == len(s) || s[j] != '=' {
			continue
		}
		j = skipWS(s, j+1)
		if j < len(s) && s[j] == '"' {
			end, ok := quotedEnd(s, j+1)
			if !ok {
				return false
			}
			i = end
			continue
		}
		n = tokenEnd(s, j)
		if n == j {
			return false
		}
		i = n
	}
	return true
}

func skipWS(s []byte, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

func tokenEnd(s []byte, i int) int {
	for i < len(s) && isTchar(s[i]) {
		i++
	}
	return i
}

// quotedEnd returns the index after the closing quote of a quoted-string
// whose opening quote is before i (RFC 9110 §5.6.4).
func quotedEnd(s []byte, i int) (int, bool) {
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			return i + 1, true
		case c == '\\':
			if i+1 == len(s) || !(s[i+1] == '\t' || s[i+1] >= 0x20 && s[i+1] != 0x7f) {
				return 0, false
			}
			i += 2
		case c == '\t' || c == ' ' || c >= 0x21 && c != 0x7f:
			i++
		default:
			return 0, false
		}
	}
	return 0, false
}

const (
	alpha      = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	digit      = "0123456789"
	unreserved = alpha + digit + "-._~"            // RFC 3986 §2.3
	subDelims  = "!$&'()*+,;="                     // RFC 3986 §2.2
	tchars     = alpha + digit + "!#$%&'*+-.^_`|~" // RFC 9110 §5.6.2
)

func isTchar(c byte) bool { return strings.IndexByte(tchars, c) >= 0 }
func isHex(c byte) bool   { return unhex(c) < 16 }

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 0xff
}

// uriChars reports whether s holds only unreserved, sub-delims, the bytes
// of extra and well-formed pct-encoded octets (RFC 3986 §2.1).
func uriChars(s []byte, extra string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			i += 2
			continue
		}
		if strings.IndexByte(unreserved+subDelims+extra, c) < 0 {
			return false
		}
	}
	return true
}

// pathQuery checks a path and query as policy target-visible takes them:
// visible ASCII but "#" throughout, and in the path every "%" starting a
// pct-encoded octet (RFC 3986 §2.1); the query is opaque.
func pathQuery(s []byte) bool {
	path, _, _ := bytes.Cut(s, []byte("?"))
	for _, c := range s {
		if c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	for i := 0; i < len(path); i++ {
		if path[i] == '%' {
			if i+2 >= len(path) || !isHex(path[i+1]) || !isHex(path[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

// targetProblem returns why target does not fit RFC 9112 §3.2 for method
// (with policies target-strict, target-visible and absolute-http), or ""
// when it fits:
//
//	request-target = origin-form / absolute-form / authority-form / asterisk-form
func targetProblem(method, target []byte) string {
	switch {
	case string(method) == "CONNECT":
		// RFC 9112 §3.2.3: authority-form = uri-host ":" port
		userinfo, host, port, ok := splitAuthority(target)
		switch {
		case !ok || userinfo || !validURIHost(host):
			return "CONNECT target is not authority-form"
		case len(port) == 0:
			return connectNoPort
		}
		return ""
	case len(target) == 0:
		return "empty target"
	case string(target) == "*":
		if string(method) != "OPTIONS" {
			return "* with a method other than OPTIONS"
		}
		return ""
	case target[0] == '/':
		if !pathQuery(target) {
			return "origin-form with a fragment, a non-visible octet or a bad escape in the path"
		}
		return ""
	}
	auth, rest, ok := splitAbsolute(target)
	if !ok {
		return notHTTPURI
	}
	if !pathQuery(rest) {
		return "absolute-form with a fragment, a non-visible octet or a bad escape in the path"
	}
	userinfo, host, _, ok := splitAuthority(auth)
	switch {
	case !ok:
		return "authority does not match RFC 3986"
	case userinfo:
		return "userinfo in an http(s) URI (RFC 9110 §4.2.4)"
	case !validURIHost(host):
		return "host does not match RFC 3986"
	}
	return ""
}

// notHTTPURI is targetProblem's answer for an absolute-form target that is
// not "http://" or "https://" (any case) followed by a non-empty authority.
const notHTTPURI = "absolute-http: not an http(s) URI with an authority"

// splitAbsolute splits an http or https URI, the only absolute-form an
// origin server takes (policy absolute-http; RFC 9110 §4.2.1, §4.2.2):
// "http" / "https", "://", a non-empty authority, then the path and query.
// ok is false for any other target.
func splitAbsolute(t []byte) (authority, rest []byte, ok bool) {
	scheme, after, found := bytes.Cut(t, []byte("://"))
	if !found || !strings.EqualFold(string(scheme), "http") && !strings.EqualFold(string(scheme), "https") {
		return nil, nil, false
	}
	end := bytes.IndexAny(after, "/?")
	if end < 0 {
		end = len(after)
	}
	if end == 0 {
		return nil, nil, false
	}
	return after[:end], after[end:], true
}

// splitAuthority checks authority = [ userinfo "@" ] host [ ":" port ]
// (RFC 3986 §3.2) except for the host's grammar.
func splitAuthority(a []byte) (userinfo bool, host, port []byte, ok bool) {
	if at := bytes.IndexByte(a, '@'); at >= 0 {
		if !uriChars(a[:at], ":") {
			return false, nil, nil, false
		}
		userinfo, a = true, a[at+1:]
	}
	var rest []byte
	if len(a) > 0 && a[0] == '[' {
		end := bytes.IndexByte(a, ']')
		if end < 0 {
			return false, nil, nil, false
		}
		host, rest = a[:end+1], a[end+1:]
	} else if colon := bytes.IndexByte(a, ':'); colon >= 0 {
		host, rest = a[:colon], a[colon:]
	} else {
		host = a
	}
	if len(rest) > 0 {
		if rest[0] != ':' {
			return false, nil, nil, false
		}
		port = rest[1:]
		for _, c := range port {
			if c < '0' || c > '9' {
				return false, nil, nil, false
			}
		}
	}
	return userinfo, host, port, true
}

// validURIHost checks host = IP-literal / IPv4address / reg-name, not empty
// (RFC 3986 §3.2.2; RFC 9110 §4.2.1 rejects an empty host).
func validURIHost(h []byte) bool {
	if len(h) == 0 {
		return false
	}
	if h[0] != '[' {
		return uriChars(h, "")
	}
	lit := h[1 : len(h)-1]
	if len(lit) > 0 && (lit[0] == 'v' || lit[0] == 'V') {
		// IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
		n := 1
		for n < len(lit) && isHex(lit[n]) {
			n++
		}
		return n > 1 && n < len(lit)-1 && lit[n] == '.' && uriChars(lit[n+1:], ":") && !bytes.Contains(lit[n+1:], []byte("%"))
	}
	addr, err := netip.ParseAddr(string(lit))
	return err == nil && addr.Is6() && addr.Zone() == ""
}

// validHostHeader checks Host = uri-host [ ":" port ] (RFC 9110 §7.2); an
// empty value is allowed (RFC 9112 §3.2), an empty host before a port is
// not (RFC 9110 §4.2.1).
func validHostHeader(v []byte) bool {
	if len(v) == 0 {
		return true
	}
	userinfo, host, _, ok := splitAuthority(v)
	return ok && !userinfo && validURIHost(host)
}

// targetHost returns the host of the authority of an authority-form or
// absolute-form target, or nil.
func targetHost(method, target []byte) []byte {
	auth := target
	if string(method) != "CONNECT" {
		if auth, _, _ = splitAbsolute(target); auth == nil {
			return nil
		}
	}
	_, host, _, ok := splitAuthority(auth)
	if !ok || len(host) == 0 {
		return nil
	}
	return host
}

// badStartLineSpace reports a request-line whose elements are not separated
// by exactly one SP: a doubled SP, an HTAB, or whitespace at either end.
func badStartLineSpace(l []byte) bool {
	if len(l) == 0 {
		return false
	}
	first, last := l[0], l[len(l)-1]
	return bytes.Contains(l, []byte("  ")) || bytes.IndexByte(l, '\t') >= 0 ||
		first == ' ' || last == ' '
}
