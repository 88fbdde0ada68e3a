package codec

// Response is the parsed head of a response. The caller owns it and reuses
// it: ParseResponse resets it first. Proto, Reason and the headers are views
// into the parsed buffer (an unfolded value lives in the Response's own
// scratch space, until the next parse), valid until the caller reuses or
// discards those bytes.
//
// A Response must not be copied after first use (Headers may point into it).
type Response struct {
	Proto   []byte   // "HTTP/1.x" as received
	Minor   uint8    // the minor version
	Status  int      // 100..599
	Reason  []byte   // the reason phrase; empty when absent
	Headers []Header // field lines in received order, duplicates kept

	// Decisions taken from the status, the header section and the method of
	// the request this response answers (RFC 9112 §6.3, §9.3).
	Framing       Framing
	ContentLength int64 // the declared Content-Length; -1 when absent
	KeepAlive     bool  // the connection may carry another response after this one

	fields framingFields
	unfold []byte
	inline [16]Header
}

// Interim reports whether the response is a 1xx other than 101: another
// response to the same request follows it (RFC 9110 §15.2).
func (r *Response) Interim() bool {
	return r.Status < 200 && r.Status != 101
}

// Header returns the value of the first field named name (compared without
// regard to ASCII case; name must be lower case), or nil.
func (r *Response) Header(name string) []byte {
	return lookup(r.Headers, name)
}

// ParseResponse parses the response head at the start of buf into r. method
// is the method of the request it answers; it decides the framing of HEAD
// and CONNECT responses. Results are as for ParseRequest: the head's length,
// or 0 with a nil error for "need more bytes", or an Error.
//
// The user-agent rules apply: obs-fold is replaced by one SP (RFC 9112 §5.2),
// the status-line may omit the reason's SP (policy status-line-lenient), and
// any Transfer-Encoding other than chunked alone is an error (policy
// resp-te-unsupported).
func ParseResponse(buf []byte, r *Response, method []byte, lim *Limits) (int, error) {
	lim = resolve(lim)
	r.reset()
	n, err := r.parseStatusLine(buf, lim)
	if n == 0 || err != nil {
		return 0, err
	}
	s := fieldSection{buf: buf, start: n, pos: n, lim: lim, response: true, unfold: &r.unfold}
	end, err := s.scanHeaders(&r.Headers, &r.fields)
	if end == 0 || err != nil {
		return 0, err
	}
	return end, r.decide(method, lim)
}

// reset clears the results of the last parse, leaving the inline field
// storage as it is (see Request.reset).
func (r *Response) reset() {
	h := r.Headers[:0]
	if cap(h) == 0 {
		h = r.inline[:0]
	}
	r.Proto, r.Minor, r.Status, r.Reason, r.Headers = nil, 0, 0, nil, h
	r.Framing, r.ContentLength, r.KeepAlive = FramingNone, -1, false
	r.unfold = r.unfold[:0]
	r.fields.reset()
}

// parseStatusLine parses
//
//	status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF
//	status-code = 3DIGIT
//
// also accepting a status-code directly followed by CRLF.
func (r *Response) parseStatusLine(buf []byte, lim *Limits) (int, error) {
	max := lim.MaxStartLine
	if len(buf) > max {
		buf = buf[:max+1]
	}
	p, err := skipEmptyLines(buf)
	if err != nil || p < 0 {
		return 0, lineLimit(buf, max, err)
	}
	// The version shares the request's template up to its eighth byte.
	if _, err := parseVersion(buf[p:min(len(buf), p+8)]); err != nil {
		return 0, err
	}
	if len(buf) < p+13 { // "HTTP/1.1 200" and one more byte
		return 0, lineLimit(buf, max, nil)
	}
	if buf[p+8] != ' ' {
		return 0, ErrStartLineSpace
	}
	code := 0
	for _, c := range buf[p+9 : p+12] {
		if c < '0' || c > '9' {
			if c == ' ' || c == '\t' {
				return 0, ErrStartLineSpace
			}
			return 0, ErrStatus
		}
		code = code*10 + int(c-'0')
	}
	reason, end, err := parseReason(buf, p+12)
	if err != nil || end == 0 {
		return 0, lineLimit(buf, max, err)
	}
	if buf[p+5] != '1' {
		return 0, ErrVersionUnsupported // policy resp-strict-grammar
	}
	if code < 100 || code > 599 {
		return 0, ErrStatus
	}
	r.Proto, r.Minor, r.Status, r.Reason = buf[p:p+8], buf[p+7]-'0', code, reason
	return end, nil
}

// parseReason parses "" CRLF or SP reason-phrase CRLF starting at p and
// returns the phrase and the index past the CRLF (0 when buf ends first).
//
//	reason-phrase = 1*( HTAB / SP / VCHAR / obs-text )
func parseReason(buf []byte, p int) ([]byte, int, error) {
	switch buf[p] {
	case ' ':
		p++
	case '\r':
	default:
		return nil, 0, ErrStatus // a fourth digit or junk after the code
	}
	i := p
	for i < len(buf) && fieldVChar[buf[i]] {
		i++
	}
	switch {
	case i == len(buf) || buf[i] == '\r' && i+1 == len(buf):
		return nil, 0, nil
	case buf[i] == '\n':
		return nil, 0, ErrLineEnding
	case buf[i] != '\r':
		return nil, 0, ErrReason
	case buf[i+1] != '\n':
		return nil, 0, ErrLineEnding
	}
	return buf[p:i], i + 2, nil
}

// decide applies RFC 9112 §6.3 to a response to a request with method,
// and §9.3 for persistence.
func (r *Response) decide(method []byte, lim *Limits) error {
	f := &r.fields
	r.ContentLength = f.contentLength
	r.KeepAlive = f.keepAlive(r.Minor)
	switch {
	case r.Status == 101:
		r.Framing = FramingUpgrade
		return nil
	case r.Status < 200, r.Status == 204, r.Status == 304, string(method) == "HEAD":
		// §6.3 item 1: these end at the empty line whatever the
		// framing fields say; the fields are not used.
		return nil
	case r.Status < 300 && string(method) == "CONNECT":
		// §6.3 item 2: a 2xx to CONNECT starts a tunnel.
		r.Framing, r.KeepAlive = FramingTunnel, false
		return nil
	case f.te:
		if err := f.transferCoding(r.Minor); err != nil {
			return err
		}
		r.Framing = FramingChunked
	case f.contentLength > lim.MaxBodySize:
		return ErrBodyTooLarge
	case f.contentLength > 0:
		r.Framing = FramingLength
	case f.contentLength < 0:
		r.Framing, r.KeepAlive = FramingClose, false // §6.3 item 8
	}
	return nil
}
