// Package fuzz holds cross-package fuzz targets for loophttp: targets that
// check the codec against an independent implementation rather than against
// itself. The package has no exported API; everything lives in its tests.
//
// # Running
//
// Without -fuzz, "go test ./fuzz" runs every target once over its seeds and
// over the inputs pinned under testdata/fuzz, as part of the ordinary test
// suite. To fuzz one target, name it and give a time budget:
//
//	go test -run '^$' -fuzz '^FuzzDiffNetHTTP$' -fuzztime 5m ./fuzz
//
// On a machine shared with other work, add -parallel 1 to use one worker.
// When the fuzzer finds a failing input it writes it to
// testdata/fuzz/<target>/; such inputs are kept in the repository, where
// they become permanent regression cases for the plain "go test" run.
//
// # FuzzDiffNetHTTP
//
// FuzzEngine drives a server connection of package engine over an
// in-memory transport and a fake clock with arbitrary input split at
// arbitrary points, a handler whose behaviour the input picks, a peer that
// reads its output now and then or never, and a transport that may drop
// the connection part way: no panic escapes, input left buffered stays
// within MaxUnread and pending output within HighWater plus one response,
// nothing is written after a close, the output parses as responses, every
// exchange is closed exactly once and hears nothing after its Close, and
// the connection always ends closed with its pooled decoders and field
// buffers given back.
//
// FuzzClientEngine is its client counterpart, a hostile server: arbitrary
// response bytes split at a fuzzer-chosen point through a client
// connection carrying a few requests (one at a time or pipelined, bodies
// paused once or after every piece and resumed, a handler that may panic
// or abort from End), read only while the engine wants input, and ended by
// the server's close or its half-close: no panic escapes, the handler
// hears only of open exchanges, every exchange begun closes exactly once,
// input stays within its bounds (the limits for a head, MaxUnread for a
// paused body), the engine refuses input only while a body is paused or
// after the EOF, a half-closed connection is closed by the engine once
// its bodies are resumed, and the connection ends closed.
//
// FuzzDiffNetHTTP feeds one input to loophttp's request parser (through the
// stream harness of the conformance test) and to net/http.ReadRequest
// followed by reading the whole body, and judges only the first request.
// Both must accept it or both must reject it; a body that net/http fails to
// read counts as a rejection, and so does a request that loophttp finds
// incomplete at EOF. When both accept, they must agree on the method, the
// target as received, the version, whether the connection persists, the
// header fields (as a multiset of canonical name and value), Host, the body
// and the received trailer fields. The comparison allows for what net/http
// moves or adds: Host goes to req.Host (compared only when the target has
// no authority), Transfer-Encoding goes to req.TransferEncoding, the Trailer
// field of a chunked request becomes the keys of req.Trailer, and "Pragma:
// no-cache" gains "Cache-Control: no-cache". Inputs over 4 KiB are skipped,
// so that of loophttp's default limits only the 100-field limit can be
// reached.
//
// Any other disagreement fails, unless the input shows one of the intended
// differences below, checked on its bytes, and the disagreement goes the
// way the table says. Where loophttp is the stricter one, the error it
// reports must also be one that the feature causes. Where net/http is the
// stricter one, the target undoes the feature in the input and runs
// net/http again, which must then accept the request and agree in full;
// the last two rows, which cannot be undone, are judged by net/http's
// error instead. The differences are listed in nethttp_test.go as the
// slice differences, and this table must match it. "README §n" is a
// section of the corpus README, internal/conformance/testdata/README.md.
//
//	reason                                     stricter  the input shows
//	-----------------------------------------  --------  ----------------------------------------------
//	bare-lf (README §4)                        loophttp  a head or trailer line ending in a bare LF
//	start-line-whitespace (README §4)          loophttp  a request-line with a doubled SP, an HTAB, or
//	                                                     whitespace at either end (or an empty target)
//	obs-fold-request (README §4)               loophttp  a header or trailer line starting with SP or HTAB
//	http-version (README §4)                   loophttp  a major version other than 1 (HTTP/0.x, HTTP/2+)
//	target-strict, target-visible (README §4;  loophttp  a target with a fragment, a non-ASCII octet or
//	  RFC 9112 §3.2, RFC 9110 §4.2.1, §4.2.4)            DEL, a malformed %-escape in the path of an
//	                                                     absolute-form target, "*" without OPTIONS,
//	                                                     CONNECT not authority-form, userinfo or a host
//	                                                     outside RFC 3986 in an http(s) URI (an IPv6
//	                                                     zone identifier included: RFC 6874 is not part
//	                                                     of the URI grammar RFC 9110 cites)
//	absolute-http (README §4)                  loophttp  an absolute-form target that is not an http or
//	                                                     https URI with a non-empty authority
//	                                                     ("mailto:a@b", "urn:x", "example.com:80")
//	README §8 Go accepts CONNECT without       loophttp  a CONNECT target with no port or an empty one
//	  a port (RFC 9110 §9.3.6)
//	RFC 9112 §3.2 Host missing                 loophttp  HTTP/1.1 (or 1.2-1.9) without a Host field;
//	                                                     net/http leaves this check to its Server
//	README §8 Host: example.com:8o             loophttp  a Host value that is not uri-host [":" port]
//	  (RFC 9112 §3.2, RFC 9110 §7.2, §4.2.1)             (an empty host before a port included)
//	host-comma (RFC 9110 §5.3, §7.2)           loophttp  a comma in Host or in the host of an
//	                                                     absolute-form or CONNECT target: a list in a
//	                                                     singleton field
//	te-http10 (README §4)                      loophttp  Transfer-Encoding in an HTTP/1.0 request
//	cl-te-conflict (README §4)                 loophttp  both Content-Length and Transfer-Encoding
//	cl-duplicates (README §4)                  loophttp  two or more Content-Length lines
//	limit: 100 fields (README §3)              loophttp  more than 100 header or trailer lines
//	README §8 trailer names with a space       loophttp  a header or trailer name containing SP
//	  (RFC 9112 §5.1, RFC 9110 §5.1)
//	README §8 chunk sizes with trailing        loophttp  a chunk line ending in SP or HTAB
//	  spaces (RFC 9112 §7.1)
//	README §8 any chunk-extension text         loophttp  a chunk extension outside the grammar of
//	  (RFC 9112 §7.1.1)                                  RFC 9112 §7.1.1 with BWS
//	trailer-framing-fields (README §4)         loophttp  a Content-Length, Transfer-Encoding, Host or
//	                                                     Trailer trailer field
//	leading-empty-lines (README §4)            net/http  CRLF lines before the request-line
//	chunk-ext-bws (README §4; RFC 9110 §5.6.3) net/http  SP or HTAB between a chunk size and ";"
//	RFC 9112 §7.1 chunk-size leading zeros     net/http  a chunk size of more than 16 hex digits
//	trailer-framing-fields, Trailer field      net/http  a Trailer field of a chunked request naming
//	  (README §4; RFC 9110 §6.6.2)                       Content-Length, Transfer-Encoding or Trailer
//	RFC 3986 §3.2.2 pct-encoded reg-name       net/http  a %-escape in the host of an absolute-form
//	                                                     or CONNECT target (net/url refuses ASCII ones)
//	RFC 3986 §3.2.2 IPvFuture                  net/http  an IPvFuture literal ("[v7.x]") as the host of
//	                                                     an absolute-form or CONNECT target
package fuzz
