package codec

import (
	"errors"
	"math"
)

// Default limits. They are the limits assumed by the conformance corpus.
const (
	DefaultMaxStartLine   = 8 << 10  // request-line or status-line, with leading empty lines: 414
	DefaultMaxFieldLine   = 8 << 10  // one field line: 431
	DefaultMaxFields      = 100      // field lines per section: 431
	DefaultMaxHeaderBytes = 64 << 10 // one field section (headers or trailers): 431
	DefaultMaxChunkLine   = 4 << 10  // one chunk-size line with extensions: 400
	DefaultMaxChunkExt    = 64 << 10 // chunk-extension bytes in one message: 400
	DefaultMaxBodySize    = 64 << 20 // declared body length or chunked total: 413
)

// Limits bounds what a parser accepts. The zero value of each field means
// its default; a negative value is invalid. Limits is plain data: share one
// value between any number of goroutines as long as nobody writes to it.
type Limits struct {
	MaxStartLine   int   // bytes in the request-line or status-line, leading empty lines included
	MaxFieldLine   int   // bytes in one field line, CRLF included
	MaxFields      int   // field lines in one section
	MaxHeaderBytes int   // bytes in one field section, its final CRLF included
	MaxChunkLine   int   // bytes in one chunk-size line, CRLF included
	MaxChunkExt    int   // chunk-extension bytes summed over one message
	MaxBodySize    int64 // body bytes in one message; math.MaxInt64 for no limit
}

// ErrInvalidLimits reports a negative limit.
var ErrInvalidLimits = errors.New("codec: limits must not be negative")

// Validate reports whether every limit is zero or positive.
func (l *Limits) Validate() error {
	if l.MaxStartLine < 0 || l.MaxFieldLine < 0 || l.MaxFields < 0 || l.MaxHeaderBytes < 0 ||
		l.MaxChunkLine < 0 || l.MaxChunkExt < 0 || l.MaxBodySize < 0 {
		return ErrInvalidLimits
	}
	return nil
}

// Resolved returns a copy with every zero field replaced by its default.
// Callers that parse often resolve once and pass the result.
func (l *Limits) Resolved() Limits {
	var r Limits
	if l != nil {
		r = *l
	}
	r.MaxStartLine = orDefault(r.MaxStartLine, DefaultMaxStartLine)
	r.MaxFieldLine = orDefault(r.MaxFieldLine, DefaultMaxFieldLine)
	r.MaxFields = orDefault(r.MaxFields, DefaultMaxFields)
	r.MaxHeaderBytes = orDefault(r.MaxHeaderBytes, DefaultMaxHeaderBytes)
	r.MaxChunkLine = orDefault(r.MaxChunkLine, DefaultMaxChunkLine)
	r.MaxChunkExt = orDefault(r.MaxChunkExt, DefaultMaxChunkExt)
	if r.MaxBodySize == 0 {
		r.MaxBodySize = DefaultMaxBodySize
	}
	return r
}

func orDefault(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

// defaultLimits is what a nil *Limits means.
var defaultLimits = (*Limits)(nil).Resolved()

// NoBodyLimit can be used as MaxBodySize to accept any representable length.
const NoBodyLimit = math.MaxInt64

// resolve returns l itself when it is already resolved (the hot path), else
// the defaults for nil, else a resolved copy.
func resolve(l *Limits) *Limits {
	if l == nil {
		return &defaultLimits
	}
	if l.MaxStartLine != 0 && l.MaxFieldLine != 0 && l.MaxFields != 0 && l.MaxHeaderBytes != 0 &&
		l.MaxChunkLine != 0 && l.MaxChunkExt != 0 && l.MaxBodySize != 0 {
		return l
	}
	r := l.Resolved()
	return &r
}
