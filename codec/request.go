package codec

// Request is the parsed head of a request. The caller owns it and reuses it
// for every request on a connection: ParseRequest resets it first. Method,
// Target, Proto, Host, Upgrade and the headers are views into the parsed
// buffer, valid until the caller reuses or discards those bytes; copy what
// must live longer.
//
// A Request must not be copied after first use (Headers may point into it).
type Request struct {
	Method  []byte     // a token, case preserved (policy unknown-method)
	Target  []byte     // the request-target as received, never decoded
	Form    TargetForm // which of the four forms Target has
	Proto   []byte     // "HTTP/1.x" as received ("HTTP/1.2" stays "HTTP/1.2")
	Minor   uint8      // the minor version; 2..9 are processed as 1 (policy http-version)
	Headers []Header   // field lines in received order, duplicates kept

	// Decisions taken from the header section (RFC 9112 §6.3, §9.3).
	Framing        Framing // FramingNone, FramingLength or FramingChunked
	ContentLength  int64   // the declared Content-Length; -1 when absent
	KeepAlive      bool    // the connection may carry another request after this one
	Host           []byte  // the Host field value; nil when absent
	Upgrade        []byte  // the Upgrade field value when Connection lists "upgrade"
	ExpectContinue bool    // HTTP/1.1 with "Expect: 100-continue" (RFC 9110 §10.1.1)
	ExpectOther    bool    // an expectation the codec does not know (a server may send 417)

	fields framingFields
	inline [16]Header
}

// TargetForm is the form of a request-target (RFC 9112 §3.2).
type TargetForm uint8

const (
	FormOrigin    TargetForm = iota // "/path?query"
	FormAbsolute                    // "http://host/path", http and https only
	FormAuthority                   // "host:port", CONNECT only
	FormAsterisk                    // "*", OPTIONS only
)

// ParseRequest parses the request head (the request-line and the header
// section) at the start of buf into r, enforcing lim (nil means the
// defaults; pass a resolved Limits to avoid copying it on each call).
//
// It returns the length of the head when it is complete. It returns 0 and a
// nil error when buf holds a valid but incomplete head: call again with more
// bytes. Errors are of type Error; once one is returned the connection's
// framing is lost and nothing after it may be parsed.
//
// Leading empty lines (CRLF) are skipped (policy leading-empty-lines).
// ParseRequest does not allocate unless a request has more than 16 fields
// and r has never held that many.
func ParseRequest(buf []byte, r *Request, lim *Limits) (int, error) {
	lim = resolve(lim)
	r.reset()
	n, err := r.parseRequestLine(buf, lim)
	if n == 0 || err != nil {
		return 0, err
	}
	s := fieldSection{buf: buf, start: n, pos: n, lim: lim}
	end, err := s.scanHeaders(&r.Headers, &r.fields)
	if end == 0 || err != nil {
		return 0, err
	}
	return end, r.decide(lim)
}

// reset clears the results of the last parse. It leaves the inline field
// storage as it is (clearing 16 entries on every request would cost more
// than parsing a small request): only r.Headers[:len] is ever read.
func (r *Request) reset() {
	h := r.Headers[:0]
	if cap(h) == 0 {
		h = r.inline[:0]
	}
	r.Method, r.Target, r.Form, r.Proto, r.Minor, r.Headers = nil, nil, 0, nil, 0, h
	r.Framing, r.ContentLength, r.KeepAlive = FramingNone, -1, false
	r.Host, r.Upgrade, r.ExpectContinue, r.ExpectOther = nil, nil, false, false
	r.fields.reset()
}

// Header returns the value of the first field named name (compared without
// regard to ASCII case; name must be lower case), or nil.
func (r *Request) Header(name string) []byte {
	return lookup(r.Headers, name)
}

func lookup(hs []Header, name string) []byte {
	for i := range hs {
		if equalFold(hs[i].Name, name) {
			return hs[i].Value
		}
	}
	return nil
}

// parseRequestLine parses
//
//	request-line = method SP request-target SP HTTP-version CRLF
//
// with exactly one SP between the elements (policy start-line-whitespace).
// It returns the index just past the CRLF, or 0 when buf ends first.
func (r *Request) parseRequestLine(buf []byte, lim *Limits) (int, error) {
	max := lim.MaxStartLine
	if len(buf) > max {
		buf = buf[:max+1] // anything the line needs lies within the limit
	}
	p, err := skipEmptyLines(buf)
	if err != nil || p < 0 {
		return 0, lineLimit(buf, max, err)
	}

	m := p
	for m < len(buf) && tchar[buf[m]] {
		m++
	}
	switch {
	case m == len(buf):
		return 0, lineLimit(buf, max, nil)
	case m == p && (buf[m] == ' ' || buf[m] == '\t'):
		return 0, ErrStartLineSpace
	case m == p:
		return 0, ErrMethod
	case buf[m] != ' ':
		if buf[m] == '\t' {
			return 0, ErrStartLineSpace
		}
		return 0, ErrMethod
	}

	t := m + 1
	e, err := scanTarget(buf, t)
	switch {
	case err != nil:
		return 0, err
	case e == len(buf):
		return 0, lineLimit(buf, max, nil)
	case buf[e] != ' ':
		return 0, ErrTarget // also HTTP/0.9 "GET /" CRLF, policy http-version
	case e == t:
		return 0, ErrStartLineSpace
	}

	v := e + 1
	minor, err := uint8(1), error(nil)
	if len(buf) < v+10 || string(buf[v:v+10]) != "HTTP/1.1\r\n" {
		if minor, err = parseVersion(buf[v:]); err != nil {
			return 0, err
		}
	}
	end := v + len("HTTP/1.1\r\n")
	if end > len(buf) {
		return 0, lineLimit(buf, max, nil)
	}
	if end > max {
		return 0, ErrStartLineTooLong
	}
	if buf[v+5] != '1' {
		return 0, ErrVersionUnsupported // HTTP/0.x and HTTP/2+: 505 (policy http-version)
	}
	r.Method, r.Target, r.Proto, r.Minor = buf[p:m], buf[t:e], buf[v:v+8], minor
	r.Form, err = checkTarget(r.Method, r.Target)
	return end, err
}

// skipEmptyLines returns the index of the first byte after any CRLF lines
// at the start of buf, or -1 when buf ends first.
func skipEmptyLines(buf []byte) (int, error) {
	p := 0
	for p < len(buf) {
		switch buf[p] {
		case '\r':
			if p+1 == len(buf) {
				return -1, nil
			}
			if buf[p+1] != '\n' {
				return 0, ErrLineEnding
			}
			p += 2
		case '\n':
			return 0, ErrLineEnding // policy bare-lf
		default:
			return p, nil
		}
	}
	return -1, nil
}

// lineLimit is the outcome of a start-line that buf ends in the middle of:
// err if there is one, 414 once the line is longer than the limit, else
// "need more bytes".
func lineLimit(buf []byte, max int, err error) error {
	if err == nil && len(buf) > max {
		return ErrStartLineTooLong
	}
	return err
}

// parseVersion checks as much of
//
//	HTTP-version = "HTTP/" DIGIT "." DIGIT CRLF
//
// as b holds, and returns the minor digit once the whole of it is there.
// A partial match is not an error; the caller checks the length.
func parseVersion(b []byte) (uint8, error) {
	const tmpl = "HTTP/d.d\r\n"
	for i := 0; i < len(b) && i < len(tmpl); i++ {
		c := b[i]
		switch tmpl[i] {
		case 'd':
			if c < '0' || c > '9' {
				return 0, ErrVersion
			}
		case '\r':
			if c != '\r' {
				if c == ' ' || c == '\t' {
					return 0, ErrStartLineSpace
				}
				return 0, ErrVersion
			}
		case '\n':
			if c != '\n' {
				return 0, ErrLineEnding
			}
		default:
			if c != tmpl[i] {
				return 0, ErrVersion
			}
		}
	}
	if len(b) < len(tmpl) {
		return 0, nil
	}
	return b[7] - '0', nil
}

// decide applies the rules that need the whole header section: Host
// (RFC 9112 §3.2), body framing (§6.3) and persistence (§9.3).
func (r *Request) decide(lim *Limits) error {
	f := &r.fields
	if f.hostCount > 1 || f.hostCount == 0 && r.Minor >= 1 {
		return ErrHost
	}
	if f.hostCount == 1 && !validHost(f.host, false) {
		return ErrHost
	}
	r.Host = f.host
	r.ContentLength = f.contentLength
	r.KeepAlive = f.keepAlive(r.Minor)
	r.ExpectContinue = f.expectContinue && r.Minor >= 1 // RFC 9110 §10.1.1: ignore on HTTP/1.0
	r.ExpectOther = f.expectOther
	if f.upgrade != nil && f.connUpgrade {
		r.Upgrade = f.upgrade
	}
	switch {
	case f.te:
		// RFC 9112 §6.3 item 4: chunked must be final, else 400 (done
		// in note) or, for codings we do not implement, 501.
		if err := f.transferCoding(r.Minor); err != nil {
			return err
		}
		r.Framing = FramingChunked
	case f.contentLength > lim.MaxBodySize:
		return ErrBodyTooLarge // decided before any body byte is read
	case f.contentLength > 0:
		r.Framing = FramingLength
	}
	return nil
}

// scanTarget returns the index of the first byte at or after t that cannot
// be part of a request-target (or len(buf) when buf ends first). A target
// holds visible ASCII but "#" (policy target-visible). Before the first "?"
// every "%" must start a pct-encoding (RFC 3986 §2.1: pct-encoded = "%"
// HEXDIG HEXDIG); the query is opaque to a server, so a "%" there is kept
// as it is, as Go and nginx do.
func scanTarget(buf []byte, t int) (int, error) {
	i := t
	for {
		i = skipClass(buf, i, &plainPathChar)
		if i == len(buf) {
			return i, nil
		}
		switch buf[i] {
		case '%':
			for k := i + 1; k < i+3; k++ {
				if k == len(buf) {
					return k, nil
				}
				if hexValue[buf[k]] == 0xff {
					return 0, ErrTarget
				}
			}
			i += 3
		case '?':
			return skipClass(buf, i+1, &targetChar), nil
		default:
			return i, nil
		}
	}
}

// checkTarget checks the request-target against the form its method allows
// (RFC 9112 §3.2; policies target-strict and absolute-http). The caller has
// checked its bytes with scanTarget.
func checkTarget(method, target []byte) (TargetForm, error) {
	if string(method) == "CONNECT" {
		// RFC 9112 §3.2.3: authority-form = uri-host ":" port
		if !validHost(target, true) {
			return 0, ErrTarget
		}
		return FormAuthority, nil
	}
	switch {
	case target[0] == '/':
		return FormOrigin, nil
	case len(target) == 1 && target[0] == '*':
		if string(method) != "OPTIONS" {
			return 0, ErrTarget
		}
		return FormAsterisk, nil
	}
	// Authority-form outside CONNECT ("example.com:80") reads as an
	// absolute-URI with scheme "example.com", and so fails here too.
	if !validAbsolute(target) {
		return 0, ErrTarget
	}
	return FormAbsolute, nil
}
