package codec

// validChars reports whether every byte of b is in class and every "%" starts
// a pct-encoded octet (RFC 3986 §2.1: pct-encoded = "%" HEXDIG HEXDIG).
func validChars(b []byte, class *[256]bool) bool {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !class[c] {
			return false
		}
		if c == '%' {
			if i+2 >= len(b) || hexValue[b[i+1]] == 0xff || hexValue[b[i+2]] == 0xff {
				return false
			}
			i += 2
		}
	}
	return true
}

// validHost checks
//
//	Host      = uri-host [ ":" port ]            (RFC 9110 §7.2)
//	authority = uri-host ":" port                (RFC 9112 §3.2.3, requirePort)
//	uri-host  = IP-literal / IPv4address / reg-name
//	port      = *DIGIT
//
// An empty Host is valid (RFC 9112 §3.2); userinfo and lists are not.
func validHost(b []byte, requirePort bool) bool {
	if len(b) == 0 {
		return !requirePort
	}
	host, port, hasPort := b, []byte(nil), false
	if b[0] == '[' {
		end := indexByte(b, ']')
		if end < 2 || !validChars(b[1:end], &ipLiteralChar) {
			return false
		}
		rest := b[end+1:]
		if len(rest) > 0 {
			if rest[0] != ':' {
				return false
			}
			port, hasPort = rest[1:], true
		}
		host = nil
	} else if i := indexByte(b, ':'); i >= 0 {
		host, port, hasPort = b[:i], b[i+1:], true
	}
	if host != nil && (len(host) == 0 || !validRegName(host)) {
		return false
	}
	if requirePort && (!hasPort || len(port) == 0) {
		return false
	}
	return skipClass(port, 0, &digit) == len(port)
}

// validRegName checks a reg-name, taking the common case (no
// pct-encoding) four bytes at a time.
func validRegName(b []byte) bool {
	if skipClass(b, 0, &plainRegNameChar) == len(b) {
		return true
	}
	return validChars(b, &regNameChar)
}

// validAbsolute checks an absolute-form target (RFC 9112 §3.2.2):
//
//	absolute-URI = scheme ":" hier-part [ "?" query ]
//
// For http and https the authority must be a valid host without userinfo
// (RFC 9110 §4.2.4: a recipient treats userinfo as an error).
func validAbsolute(b []byte) bool {
	colon := indexByte(b, ':')
	if colon < 1 || !isAlpha(b[0]) {
		return false
	}
	for _, c := range b[1:colon] {
		if !schemeChar[c] {
			return false
		}
	}
	rest := b[colon+1:]
	if len(rest) < 2 || rest[0] != '/' || rest[1] != '/' {
		return validChars(rest, &pathChar)
	}
	rest = rest[2:]
	end := 0
	for end < len(rest) && rest[end] != '/' && rest[end] != '?' {
		end++
	}
	scheme := b[:colon]
	if equalFold(scheme, "http") || equalFold(scheme, "https") {
		if end == 0 || !validHost(rest[:end], false) {
			return false
		}
	} else if !validChars(rest[:end], &targetChar) {
		return false
	}
	return validChars(rest[end:], &pathChar)
}

func isAlpha(c byte) bool {
	return 'a' <= lower(c) && lower(c) <= 'z'
}

func indexByte(b []byte, c byte) int {
	for i := range b {
		if b[i] == c {
			return i
		}
	}
	return -1
}
