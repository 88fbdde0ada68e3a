package codec

import "strconv"

// The serialisers append to dst and return the extended slice, like
// strconv.AppendInt. Those that take caller data validate it, so nothing a
// caller passes can split a message (response splitting, RFC 9112 §2.2),
// and return dst unchanged with an Error when it is invalid.

// AppendStatusLine appends "HTTP/1.1 code reason CRLF" with the reason from
// the status table ("unknown" for codes outside it). Codes outside 100..599
// give ErrStatus.
func AppendStatusLine(dst []byte, code int) ([]byte, error) {
	if code >= 0 && code < len(statusLines) && statusLines[code] != "" {
		return append(dst, statusLines[code]...), nil
	}
	return appendStatusLine(dst, code, StatusText(code))
}

// statusLines holds the status-line of every code in the status table,
// built once, so that a response head starts with one copy.
var statusLines = func() (t [len(statusText)]string) {
	for code, text := range statusText {
		if text != "" {
			line, _ := appendStatusLine(nil, code, text)
			t[code] = string(line)
		}
	}
	return t
}()

// AppendStatusLineReason appends a status-line with a caller's reason
// phrase, which may hold HTAB, SP, VCHAR and obs-text only (RFC 9112 §4).
func AppendStatusLineReason[T string | []byte](dst []byte, code int, reason T) ([]byte, error) {
	for i := 0; i < len(reason); i++ {
		if !fieldVChar[reason[i]] {
			return dst, ErrReason
		}
	}
	return appendStatusLine(dst, code, reason)
}

func appendStatusLine[T string | []byte](dst []byte, code int, reason T) ([]byte, error) {
	if code < 100 || code > 599 {
		return dst, ErrStatus
	}
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendUint(dst, uint64(code), 10)
	dst = append(dst, ' ')
	dst = append(dst, reason...)
	return append(dst, '\r', '\n'), nil
}

// AppendRequestLine appends "method SP target SP HTTP/1.1 CRLF". The method
// must be a token and the target a non-empty run of request-target bytes
// (RFC 9112 §3): a space, a control character, a "#" or a non-ASCII byte
// gives ErrTarget, never bytes on the wire.
func AppendRequestLine[M, T string | []byte](dst []byte, method M, target T) ([]byte, error) {
	if err := ValidRequestLine(method, target); err != nil {
		return dst, err
	}
	dst = append(dst, method...)
	dst = append(dst, ' ')
	dst = append(dst, target...)
	return append(dst, " HTTP/1.1\r\n"...), nil
}

// ValidRequestLine reports whether AppendRequestLine would accept method
// and target: ErrMethod, ErrTarget or nil.
func ValidRequestLine[M, T string | []byte](method M, target T) error {
	if len(method) == 0 {
		return ErrMethod
	}
	for i := 0; i < len(method); i++ {
		if !tchar[method[i]] {
			return ErrMethod
		}
	}
	if len(target) == 0 {
		return ErrTarget
	}
	for i := 0; i < len(target); i++ {
		if !targetChar[target[i]] {
			return ErrTarget
		}
	}
	return nil
}

// AppendHeader appends "name: value CRLF". The name must be a token
// (ErrFieldName) and the value may hold HTAB, SP, VCHAR and obs-text only
// (ErrFieldValue): CR, LF, NUL and the other control characters are refused
// (RFC 9110 §5.5). Leading and trailing whitespace is sent as given.
func AppendHeader[N, V string | []byte](dst []byte, name N, value V) ([]byte, error) {
	if err := ValidHeader(name, value); err != nil {
		return dst, err
	}
	dst = append(dst, name...)
	dst = append(dst, ':', ' ')
	dst = append(dst, value...)
	return append(dst, '\r', '\n'), nil
}

// ValidHeader reports whether AppendHeader would accept name and value:
// ErrFieldName or ErrFieldValue when it would not.
func ValidHeader[N, V string | []byte](name N, value V) error {
	if len(name) == 0 {
		return ErrFieldName
	}
	for i := 0; i < len(name); i++ {
		if !tchar[name[i]] {
			return ErrFieldName
		}
	}
	if invalidValueByte(value) >= 0 {
		return ErrFieldValue
	}
	return nil
}
