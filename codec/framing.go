package codec

import "math"

// Framing says how the body of a message is delimited (RFC 9112 §6.3).
type Framing uint8

const (
	// FramingNone: the message has no body; the next octets are the next message.
	FramingNone Framing = iota
	// FramingLength: the body is ContentLength octets (more than zero).
	FramingLength
	// FramingChunked: the body is chunked (decode it with ChunkedDecoder).
	FramingChunked
	// FramingClose: responses only; the body runs until the connection closes.
	FramingClose
	// FramingTunnel: responses only; a 2xx to CONNECT: every later octet
	// belongs to the tunnel.
	FramingTunnel
	// FramingUpgrade: responses only; 101 Switching Protocols: every later
	// octet belongs to the new protocol.
	FramingUpgrade
)

var framingNames = [...]string{"none", "length", "chunked", "close", "tunnel", "upgrade"}

func (f Framing) String() string {
	if int(f) < len(framingNames) {
		return framingNames[f]
	}
	return "invalid"
}

// framingFields collects, during the one pass over a header section, what the
// framing and persistence decisions need.
type framingFields struct {
	contentLength int64 // -1 when absent
	host          []byte
	hostCount     int
	upgrade       []byte // the Upgrade field value; nil when absent

	te             bool // a Transfer-Encoding field was seen
	teChunked      bool // chunked is among the codings (then it is last so far)
	teOther        bool // a coding other than chunked precedes chunked, or stands alone
	connClose      bool // Connection: close
	connKeepAlive  bool // Connection: keep-alive
	connUpgrade    bool // Connection: upgrade
	expectContinue bool // Expect: 100-continue
	expectOther    bool // an expectation other than 100-continue
}

func (f *framingFields) reset() {
	*f = framingFields{contentLength: -1}
}

// note records one field line if it is one of the fields framing depends on.
// It reports grammar errors in those fields at once; decisions that need the
// whole section wait for decide.
func (f *framingFields) note(name, value []byte) error {
	switch len(name) {
	case 4:
		if equalFoldWord(name, "host") {
			f.host = value
			f.hostCount++
		}
	case 6:
		if equalFoldWord(name, "expect") {
			f.noteExpect(value)
		}
	case 7:
		if equalFoldWord(name, "upgrade") {
			f.upgrade = value
		}
	case 10:
		if equalFoldWord(name, "connection") {
			f.noteConnection(value)
		}
	case 14:
		if equalFoldWord(name, "content-length") {
			return f.noteContentLength(value)
		}
	case 17:
		if equalFoldWord(name, "transfer-encoding") {
			return f.noteTransferEncoding(value)
		}
	}
	return nil
}

// noteContentLength parses one Content-Length field (RFC 9110 §8.6):
//
//	Content-Length = 1*DIGIT
//
// A second Content-Length field, a list ("5, 5") and a value of 2^63 or more
// are errors (policy cl-duplicates): collapsing them is how smuggling starts.
func (f *framingFields) noteContentLength(v []byte) error {
	if f.contentLength >= 0 || len(v) == 0 {
		return ErrContentLength
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return ErrContentLength
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			return ErrContentLength
		}
		n = n*10 + d
	}
	f.contentLength = n
	return nil
}

// noteTransferEncoding parses one Transfer-Encoding field, adding its members
// to those of earlier lines (RFC 9112 §6.1, RFC 9110 §5.3; policy te-strict):
//
//	Transfer-Encoding = #transfer-coding
//
// Every member must be a bare token: an empty member, a parameter or a quoted
// string is an error, and so is chunked appearing twice or before another
// coding. Other codings are not errors yet: decide answers them with 501.
func (f *framingFields) noteTransferEncoding(v []byte) error {
	f.te = true
	for {
		member, rest, more := cutComma(v)
		member = trimOWS(member)
		if len(member) == 0 || !isToken(member) {
			return ErrTransferEncoding
		}
		if equalFoldWord(member, "chunked") {
			if f.teChunked {
				return ErrTransferEncoding
			}
			f.teChunked = true
		} else {
			if f.teChunked {
				return ErrTransferEncoding // RFC 9112 §6.1: chunked must be last
			}
			f.teOther = true
		}
		if !more {
			return nil
		}
		v = rest
	}
}

// noteConnection records the connection options that matter to framing
// and persistence (RFC 9110 §7.6.1). Unknown options are ignored.
func (f *framingFields) noteConnection(v []byte) {
	// The common values first: one option, so no list to split.
	switch {
	case equalFoldWord(v, "keep-alive"):
		f.connKeepAlive = true
		return
	case equalFoldWord(v, "close"):
		f.connClose = true
		return
	}
	for {
		member, rest, more := cutComma(v)
		member = trimOWS(member)
		switch {
		case equalFoldWord(member, "close"):
			f.connClose = true
		case equalFoldWord(member, "keep-alive"):
			f.connKeepAlive = true
		case equalFoldWord(member, "upgrade"):
			f.connUpgrade = true
		}
		if !more {
			return
		}
		v = rest
	}
}

// noteExpect records the expectation (RFC 9110 §10.1.1).
func (f *framingFields) noteExpect(v []byte) {
	if equalFoldWord(v, "100-continue") {
		f.expectContinue = true
	} else if len(v) > 0 {
		f.expectOther = true
	}
}

// keepAlive applies RFC 9112 §9.3: HTTP/1.1 persists unless "close" is sent;
// HTTP/1.0 persists only with "keep-alive" (policy keepalive-http10).
func (f *framingFields) keepAlive(minor uint8) bool {
	if f.connClose {
		return false
	}
	return minor >= 1 || f.connKeepAlive
}

// transferCoding applies the Transfer-Encoding rules common to requests and
// responses once the section is complete (RFC 9112 §6.1, §6.3 items 3-4).
// It is called only when a Transfer-Encoding field was present.
func (f *framingFields) transferCoding(minor uint8) error {
	switch {
	case minor == 0:
		return ErrTransferEncoding // policy te-http10: faulty framing
	case f.contentLength >= 0:
		return ErrFramingConflict // policy cl-te-conflict
	case f.teOther || !f.teChunked:
		return ErrTransferCoding
	}
	return nil
}

func cutComma(v []byte) (before, after []byte, found bool) {
	for i, c := range v {
		if c == ',' {
			return v[:i], v[i+1:], true
		}
	}
	return v, nil, false
}

func isToken(b []byte) bool {
	for _, c := range b {
		if !tchar[c] {
			return false
		}
	}
	return len(b) > 0
}
