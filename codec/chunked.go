package codec

import "strconv"

// ChunkedDecoder decodes a chunked body incrementally (RFC 9112 §7.1):
//
//	chunked-body = *chunk last-chunk trailer-section CRLF
//	chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//	last-chunk   = 1*("0") [ chunk-ext ] CRLF
//
// Its zero value is ready to decode a request body. It is owned by one
// goroutine at a time. Call Reset before reusing it for the next message.
type ChunkedDecoder struct {
	// Response selects the user-agent rules for trailers: obs-fold is
	// replaced by one SP instead of being rejected. Set it before Decode.
	Response bool

	// Trailers holds the trailer fields once Decode reports done. They are
	// views into the src of that call (or the decoder's scratch space),
	// valid until those bytes are discarded or the decoder is reset.
	Trailers []Header

	state     chunkState
	remaining int64 // data bytes left in the current chunk
	total     int64 // data bytes so far in this message
	extBytes  int   // chunk-extension bytes so far in this message
	unfold    []byte
	inline    [4]Header
}

type chunkState uint8

const (
	chunkSize     chunkState = iota // expecting a chunk-size line
	chunkData                       // inside chunk data
	chunkDataCRLF                   // expecting the CRLF after chunk data
	chunkTrailers                   // expecting the trailer section
	chunkDone                       // the body is complete
)

// Reset prepares d for the next message, keeping Response and the trailer
// storage.
func (d *ChunkedDecoder) Reset() {
	t := d.Trailers[:0]
	*d = ChunkedDecoder{Response: d.Response, Trailers: t, unfold: d.unfold[:0]}
}

// Decode decodes from src, the bytes of the body not yet consumed. It
// returns how many bytes of src it consumed, and data, a view into
// src[:n] of body bytes (one contiguous piece; it may be empty). done is
// true once the last chunk and the trailer section have been consumed.
//
// The caller discards n bytes and calls again; n == 0 with done false means
// Decode needs more bytes. Errors are of type Error; after one, nothing more
// can be decoded. lim bounds the chunk lines, the extensions, the body size
// (413) and the trailers (431); nil means the defaults.
func (d *ChunkedDecoder) Decode(src []byte, lim *Limits) (n int, data []byte, done bool, err error) {
	lim = resolve(lim)
	for {
		switch d.state {
		case chunkSize:
			used, err := d.sizeLine(src[n:], lim)
			if err != nil || used == 0 {
				return n, nil, false, err
			}
			n += used
		case chunkData:
			if n == len(src) {
				return n, nil, false, nil
			}
			take := min(d.remaining, int64(len(src)-n))
			data = src[n : n+int(take)]
			n += int(take)
			if d.remaining -= take; d.remaining == 0 {
				d.state = chunkDataCRLF
			}
			return n, data, false, nil
		case chunkDataCRLF:
			rest := src[n:]
			if len(rest) > 0 && rest[0] != '\r' || len(rest) > 1 && rest[1] != '\n' {
				return n, nil, false, ErrChunkData
			}
			if len(rest) < 2 {
				return n, nil, false, nil
			}
			n += 2
			d.state = chunkSize
		case chunkTrailers:
			used, err := d.trailerSection(src[n:], lim)
			if err != nil || used == 0 {
				return n, nil, false, err
			}
			d.state = chunkDone
			return n + used, nil, true, nil
		default:
			return n, nil, true, nil
		}
	}
}

// sizeLine parses one chunk-size line at the start of b. It returns the
// bytes used, or 0 when b ends first.
func (d *ChunkedDecoder) sizeLine(b []byte, lim *Limits) (int, error) {
	size, used, ext, err := parseChunkLine(b)
	if err == nil && used == 0 && len(b) > lim.MaxChunkLine {
		err = ErrChunkLineTooLong
	}
	if err != nil || used == 0 {
		return 0, err
	}
	if used > lim.MaxChunkLine {
		return 0, ErrChunkLineTooLong
	}
	// Bound the extension bytes of one message, so a peer cannot send
	// endless tiny chunks loaded with extensions (RFC 9112 §7.1.1).
	if d.extBytes += ext; d.extBytes > lim.MaxChunkExt {
		return 0, ErrChunkLineTooLong
	}
	if size == 0 {
		d.state = chunkTrailers
		return used, nil
	}
	if size > lim.MaxBodySize-d.total {
		return 0, ErrBodyTooLarge
	}
	d.total += size
	d.remaining = size
	d.state = chunkData
	return used, nil
}

// parseChunkLine parses
//
//	chunk-size CRLF / chunk-size chunk-ext CRLF
//	chunk-size     = 1*HEXDIG
//	chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//	chunk-ext-name = token
//	chunk-ext-val  = token / quoted-string
//
// BWS is accepted as RFC 9110 §5.6.3 requires (policy chunk-ext-bws); any
// other whitespace is an error, and so are sizes of 2^63 or more. It returns
// the size, the bytes used and the extension bytes, or used == 0 when b ends
// before the line does.
func parseChunkLine(b []byte) (size int64, used, ext int, err error) {
	i := 0
	for ; i < len(b); i++ {
		v := hexValue[b[i]]
		if v == 0xff {
			break
		}
		if size >= 1<<59 {
			return 0, 0, 0, ErrChunkSize // size<<4 would reach 2^63
		}
		size = size<<4 | int64(v)
	}
	digits := i
	if i < len(b) && digits == 0 {
		return 0, 0, 0, ErrChunkSize
	}
	for i < len(b) {
		j := skipOWS(b, i)
		if j == len(b) {
			break
		}
		switch c := b[j]; {
		case c == '\r' && j == i:
			if j+1 == len(b) {
				return 0, 0, 0, nil
			}
			if b[j+1] != '\n' {
				return 0, 0, 0, ErrLineEnding
			}
			return size, j + 2, j - digits, nil
		case c == ';':
			if i, err = parseChunkExt(b, j+1); err != nil {
				return 0, 0, 0, err
			}
		case i == digits:
			return 0, 0, 0, ErrChunkSize // "0x5", "1_0", "2 junk"
		default:
			return 0, 0, 0, ErrChunkExtension // trailing whitespace, a second bare word
		}
	}
	return 0, 0, 0, nil
}

// parseChunkExt parses one extension after its ";" at i and returns the
// index after it. Running out of bytes is not an error: the index returned
// is then len(b).
func parseChunkExt(b []byte, i int) (int, error) {
	i = skipOWS(b, i)
	name := i
	for i < len(b) && tchar[b[i]] {
		i++
	}
	if i == len(b) {
		return i, nil
	}
	if i == name {
		return 0, ErrChunkExtension // empty name: "2;"
	}
	j := skipOWS(b, i)
	if j == len(b) {
		return j, nil
	}
	if b[j] != '=' {
		return i, nil // the caller checks what follows
	}
	j = skipOWS(b, j+1)
	if j == len(b) {
		return j, nil
	}
	if b[j] == '"' {
		return parseQuoted(b, j+1)
	}
	v := j
	for j < len(b) && tchar[b[j]] {
		j++
	}
	if j == v && j < len(b) {
		return 0, ErrChunkExtension
	}
	return j, nil
}

// parseQuoted parses the rest of a quoted-string after its opening quote
// (RFC 9110 §5.6.4) and returns the index after the closing quote.
func parseQuoted(b []byte, i int) (int, error) {
	for i < len(b) {
		switch c := b[i]; {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			if i+1 < len(b) && !quotedPair[b[i+1]] {
				return 0, ErrChunkExtension
			}
			i += 2
		case qdtext[c]:
			i++
		default:
			return 0, ErrChunkExtension // a CTL, or CR/LF inside the quotes
		}
	}
	return len(b), nil
}

// trailerSection parses the trailer section at the start of b into
// d.Trailers (RFC 9112 §7.1.2). It returns the bytes used, or 0 when b ends
// before the section does.
func (d *ChunkedDecoder) trailerSection(b []byte, lim *Limits) (int, error) {
	d.Trailers = d.Trailers[:0]
	if cap(d.Trailers) == 0 {
		d.Trailers = d.inline[:0]
	}
	d.unfold = d.unfold[:0]
	s := fieldSection{buf: b, lim: lim, response: d.Response, unfold: &d.unfold}
	for {
		name, value, st, err := s.next()
		switch {
		case err != nil:
			return 0, err
		case st == scanMore:
			d.Trailers = d.Trailers[:0]
			return 0, nil
		case st == scanEnd:
			return s.pos, nil
		}
		if forbiddenTrailer(name) {
			return 0, ErrTrailer
		}
		d.Trailers = append(d.Trailers, Header{name, value})
	}
}

// forbiddenTrailer reports the fields that frame or route a message and so
// must never arrive as trailers (RFC 9110 §6.5.1; policy
// trailer-framing-fields).
func forbiddenTrailer(name []byte) bool {
	return equalFold(name, "content-length") || equalFold(name, "transfer-encoding") ||
		equalFold(name, "host") || equalFold(name, "trailer")
}

// AppendChunk appends data as one chunk. Empty data appends nothing: a
// zero-size chunk would end the body.
func AppendChunk(dst, data []byte) []byte {
	if len(data) == 0 {
		return dst
	}
	dst = AppendChunkHeader(dst, len(data))
	dst = append(dst, data...)
	return append(dst, '\r', '\n')
}

// AppendChunkHeader appends the chunk-size line for size bytes of data that
// the caller appends next, followed by CRLF.
func AppendChunkHeader(dst []byte, size int) []byte {
	dst = strconv.AppendUint(dst, uint64(size), 16)
	return append(dst, '\r', '\n')
}

// AppendLastChunk appends the last chunk, the trailer fields and the final
// CRLF. It refuses trailers that AppendHeader refuses and those that are
// forbidden as trailers, returning dst unchanged.
func AppendLastChunk(dst []byte, trailers []Header) ([]byte, error) {
	out := append(dst, '0', '\r', '\n')
	for _, t := range trailers {
		if forbiddenTrailer(t.Name) {
			return dst, ErrTrailer
		}
		var err error
		if out, err = AppendHeader(out, t.Name, t.Value); err != nil {
			return dst, err
		}
	}
	return append(out, '\r', '\n'), nil
}
