// Package codec is loophttp's HTTP/1.1 wire format: strict parsers for
// request and response heads, body framing, an incremental chunked decoder,
// and serialisers, as pure functions over []byte.
//
// # Shape
//
// ParseRequest and ParseResponse have picohttpparser's shape: they parse
// the head at the start of a buffer into a message struct the caller owns
// and reuses, and return the head's length. "Need more bytes" is a status
// (0 and a nil error), not an error. The only stateful type is
// ChunkedDecoder, whose zero value is ready. Serialisers append to a slice,
// like strconv.AppendInt, and refuse anything that could split a message.
//
// # Policy
//
// The parsers follow RFC 9112 and RFC 9110 and, where the RFCs allow a
// choice, take the strict one listed in the conformance corpus README
// (internal/conformance/testdata/README.md): no bare CR or LF anywhere, no
// obs-fold in requests (one SP in responses), exactly one SP between
// start-line elements, request-targets of visible ASCII without "#" and
// with well-formed escapes in the path (reported verbatim, never decoded),
// absolute-form for http and https only, authority-form for CONNECT only,
// a strict Host, one Content-Length
// and no lists, Transfer-Encoding exactly "chunked" (other codings 501),
// no Transfer-Encoding on HTTP/1.0, no Content-Length with
// Transfer-Encoding, and chunk sizes below 2^63. Every violation is an Error
// whose Status is the answer a server sends: 400, 413, 414, 431, 501 or
// 505. Limits bounds every size, and is checked as bytes arrive, so an
// incomplete head can never grow past it.
//
// # Threading and lifetimes
//
// Functions hold no state between calls, so any number of goroutines may
// parse at once, each with its own Request, Response or ChunkedDecoder.
// Parsed fields are views into the buffer that was parsed: they are valid
// until the caller reuses or discards those bytes. Nothing in this package
// copies or pools; the layers above decide what to copy and when.
//
// # Allocation
//
// Parsing and serialising allocate nothing (alloc_test.go proves it),
// except when a message has more fields than a Request or Response has ever
// held (16 are inline), and for unfolding obs-fold in a response.
package codec
