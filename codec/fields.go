package codec

// Header is one field line. Name and Value are views into the buffer that was
// parsed (or, for an unfolded response value, into the message's own scratch
// space). They are valid until the caller reuses or discards that buffer.
// Name keeps its case; Value has leading and trailing SP/HTAB removed.
type Header struct {
	Name  []byte
	Value []byte
}

// fieldSection scans one field section: the headers after a start-line, or
// the trailers after a last chunk (RFC 9112 §5, §7.1.2).
//
//	field-line = field-name ":" OWS field-value OWS
type fieldSection struct {
	buf   []byte
	start int // index of the section's first byte
	pos   int // index of the next line
	lim   *Limits
	count int // field lines so far

	// response selects the user-agent rules: obs-fold is replaced by one SP
	// (RFC 9112 §5.2 MUST) instead of being rejected.
	response bool
	// unfold receives unfolded values; only used when response is set.
	unfold *[]byte
}

// Results of fieldSection.next besides a field line.
type scan uint8

const (
	scanField scan = iota // a field line was returned
	scanEnd               // the empty line ending the section was consumed
	scanMore              // the section is not complete in buf
)

// next scans one line. On scanEnd, s.pos is just past the section.
func (s *fieldSection) next() (name, value []byte, st scan, err error) {
	buf, p := s.buf, s.pos
	if p >= len(buf) {
		return nil, nil, scanMore, nil
	}
	switch buf[p] {
	case '\r':
		if p+1 >= len(buf) {
			return nil, nil, scanMore, nil
		}
		if buf[p+1] != '\n' {
			return nil, nil, 0, ErrLineEnding
		}
		s.pos = p + 2
		if s.pos-s.start > s.lim.MaxHeaderBytes {
			return nil, nil, 0, ErrHeaderTooLarge
		}
		return nil, nil, scanEnd, nil
	case '\n':
		return nil, nil, 0, ErrLineEnding
	case ' ', '\t':
		// RFC 9112 §2.2, §5.2: a whitespace-led line right after the
		// start-line, or an obs-fold in a request, is rejected. Folds
		// in a response were consumed with the line they continue.
		return nil, nil, 0, ErrObsFold
	}
	if s.count == s.lim.MaxFields {
		return nil, nil, 0, ErrTooManyFields
	}

	nameEnd, err := scanName(buf, p)
	if err != nil || nameEnd < 0 {
		return nil, nil, scanMore, s.partial(err)
	}
	// The value is scanned here rather than in a helper: this loop runs
	// once per field of every message.
	q := skipOWS(buf, nameEnd+1)
	cr, err := valueEnd(buf, q)
	if err != nil || cr < 0 || cr+1 >= len(buf) {
		return nil, nil, scanMore, s.partial(err)
	}
	if buf[cr+1] != '\n' {
		return nil, nil, 0, ErrLineEnding // RFC 9112 §2.2: a bare CR is invalid
	}
	value, lineEnd := trimOWSRight(buf[q:cr]), cr+2
	if s.response {
		if value, lineEnd, err = s.continuation(value, lineEnd); err != nil || lineEnd < 0 {
			return nil, nil, scanMore, s.partial(err)
		}
	}
	if lineEnd-p > s.lim.MaxFieldLine {
		return nil, nil, 0, ErrFieldLineTooLong
	}
	if lineEnd-s.start > s.lim.MaxHeaderBytes {
		return nil, nil, 0, ErrHeaderTooLarge
	}
	s.pos = lineEnd
	s.count++
	return buf[p:nameEnd], value, scanField, nil
}

// scanHeaders runs s over a header section, appending each field to *hs and
// noting the framing fields in f. It returns the index just past the
// section, or 0 when the section is not complete in s.buf.
func (s *fieldSection) scanHeaders(hs *[]Header, f *framingFields) (int, error) {
	h := *hs
	for {
		name, value, st, err := s.next()
		switch {
		case err != nil:
			*hs = h
			return 0, err
		case st == scanMore:
			*hs = h
			return 0, nil
		case st == scanEnd:
			*hs = h
			return s.pos, nil
		}
		// Grow, then store the two views one by one: copying a Header
		// built on the stack stalls on store forwarding.
		if len(h) == cap(h) {
			h = append(h, Header{})
		} else {
			h = h[:len(h)+1]
		}
		last := &h[len(h)-1]
		last.Name, last.Value = name, value
		if err := f.note(name, value); err != nil {
			*hs = h
			return 0, err
		}
	}
}

// partial turns an incomplete line into a limit error when the bytes seen
// so far already break a limit, so a peer cannot make us buffer without
// bound; grammar errors pass through.
func (s *fieldSection) partial(err error) error {
	if err != nil {
		return err
	}
	if len(s.buf)-s.start > s.lim.MaxHeaderBytes {
		return ErrHeaderTooLarge
	}
	if len(s.buf)-s.pos > s.lim.MaxFieldLine {
		return ErrFieldLineTooLong
	}
	return nil
}

// scanName returns the index of the colon ending the field name that starts
// at p, or -1 when buf ends first.
//
//	field-name = token
func scanName(buf []byte, p int) (int, error) {
	i := skipClass(buf, p, &tchar)
	if i == len(buf) {
		return -1, nil
	}
	if buf[i] != ':' || i == p {
		// RFC 9112 §5.1: no whitespace is allowed between the field
		// name and the colon; a CR or LF here is a broken line.
		return 0, ErrFieldName
	}
	return i, nil
}

// continuation extends a response field value that ends at lineEnd over
// any obs-fold lines that follow. lineEnd is -1 when buf ends before it is
// known whether the value continues.
func (s *fieldSection) continuation(value []byte, lineEnd int) ([]byte, int, error) {
	if lineEnd >= len(s.buf) {
		return nil, -1, nil
	}
	if c := s.buf[lineEnd]; c != ' ' && c != '\t' {
		return value, lineEnd, nil
	}
	return s.unfoldValue(value, lineEnd)
}

// unfoldValue joins a response field value with its obs-fold continuation
// lines, replacing each obs-fold (OWS CRLF RWS) by one SP (RFC 9112 §5.2).
// The result lives in the message's scratch space.
func (s *fieldSection) unfoldValue(first []byte, p int) (value []byte, lineEnd int, err error) {
	buf := s.buf
	start := len(*s.unfold)
	out := append(*s.unfold, first...)
	for p < len(buf) && (buf[p] == ' ' || buf[p] == '\t') {
		q := skipOWS(buf, p)
		cr, err := findCRLF(buf, q)
		if err != nil || cr < 0 {
			return nil, -1, err
		}
		out = append(out, ' ')
		out = append(out, trimOWSRight(buf[q:cr])...)
		p = cr + 2
	}
	if p >= len(buf) {
		return nil, -1, nil
	}
	*s.unfold = out
	return trimOWS(out[start:]), p, nil
}

// findCRLF returns the index of the CR that ends the field value starting at
// p, checking in the same pass that every byte before it may appear in a
// field value. It returns -1 when buf ends first (having checked what is
// there).
//
//	field-value = *field-content
//	field-vchar = VCHAR / obs-text
func findCRLF(buf []byte, p int) (int, error) {
	cr, err := valueEnd(buf, p)
	if err != nil || cr < 0 || cr+1 >= len(buf) {
		return -1, err
	}
	if buf[cr+1] != '\n' {
		return 0, ErrLineEnding // RFC 9112 §2.2: a bare CR is invalid
	}
	return cr, nil
}

// valueEnd returns the index of the first CR at or after p, or -1 when
// there is none in buf. Every byte before it must be a field-vchar, SP or
// HTAB: a bare LF is ErrLineEnding and any other control byte ErrFieldValue.
// Eight bytes are checked at a time, jumping straight to the first control
// byte (the CR, or a rare HTAB) of a word that has one.
func valueEnd(buf []byte, p int) (int, error) {
	i := p
	for i+8 <= len(buf) {
		m := controlMask(load64(buf, i))
		if m == 0 {
			i += 8
			continue
		}
		i += firstControl(m)
		if c := buf[i]; c != '\t' {
			return controlEnd(c, i)
		}
		i++
	}
	for ; i < len(buf); i++ {
		if c := buf[i]; !fieldVChar[c] {
			return controlEnd(c, i)
		}
	}
	return -1, nil
}

// controlEnd judges the control byte c found at i in a field value.
func controlEnd(c byte, i int) (int, error) {
	switch c {
	case '\r':
		return i, nil
	case '\n':
		return 0, ErrLineEnding
	}
	return 0, ErrFieldValue
}

func skipOWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return i
}

func trimOWSRight(b []byte) []byte {
	n := len(b)
	for n > 0 && (b[n-1] == ' ' || b[n-1] == '\t') {
		n--
	}
	return b[:n]
}

func trimOWS(b []byte) []byte {
	return trimOWSRight(b[skipOWS(b, 0):])
}
