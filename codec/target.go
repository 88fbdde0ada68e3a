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
	// The common case in one pass: a reg-name without pct-encoding,
	// then nothing or ":" port.
	if i := skipClass(b, 0, &plainRegNameChar); i == len(b) {
		return !requirePort
	} else if i > 0 && b[i] == ':' {
		port := b[i+1:]
		return (len(port) > 0 || !requirePort) && skipClass(port, 0, &digit) == len(port)
	}
	host, port, hasPort := b, []byte(nil), false
	if b[0] == '[' {
		end := indexByte(b, ']')
		if end < 0 || !validIPLiteral(b[1:end]) {
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

// validAbsolute checks an absolute-form target (RFC 9112 §3.2.2) as an
// origin server takes it (policy absolute-http): an http or https URI with
// a non-empty authority (RFC 9110 §4.2.1, §4.2.2),
//
//	http-URI  = "http" "://" authority path-abempty [ "?" query ]
//	https-URI = "https" "://" authority path-abempty [ "?" query ]
//	authority = host [ ":" port ]
//
// with no userinfo (RFC 9110 §4.2.4: a recipient treats it as an error).
// The scheme is compared without regard to case (RFC 3986 §3.1). Other
// schemes ("mailto:a@b", "urn:x", "example.com:80") mean nothing to an
// origin server and are refused. scanTarget has checked the bytes of the
// path and query.
func validAbsolute(b []byte) bool {
	var rest []byte
	switch {
	case len(b) > 7 && equalFold(b[:7], "http://"):
		rest = b[7:]
	case len(b) > 8 && equalFold(b[:8], "https://"):
		rest = b[8:]
	default:
		return false
	}
	end := 0
	for end < len(rest) && rest[end] != '/' && rest[end] != '?' {
		end++
	}
	return end > 0 && validHost(rest[:end], false)
}

// validIPLiteral checks the text between "[" and "]" (RFC 3986 §3.2.2):
//
//	IP-literal = "[" ( IPv6address / IPvFuture ) "]"
//	IPvFuture  = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
//
// A zone identifier (RFC 6874) is not part of the grammar RFC 9110 cites
// and is rejected.
func validIPLiteral(b []byte) bool {
	if len(b) > 0 && lower(b[0]) == 'v' {
		i := 1
		for i < len(b) && hexValue[b[i]] != 0xff {
			i++
		}
		return i > 1 && i+1 < len(b) && b[i] == '.' && validChars(b[i+1:], &ipLiteralChar)
	}
	return validIPv6(b)
}

// validIPv6 checks the textual IPv6 address of RFC 4291 §2.2 (RFC 3986
// IPv6address): eight h16 groups of 1 to 4 hex digits, or fewer with one
// "::", the last 32 bits optionally as a dotted IPv4 address.
func validIPv6(b []byte) bool {
	groups, double, i := 0, false, 0
	if len(b) >= 2 && b[0] == ':' && b[1] == ':' {
		double, i = true, 2
		if i == len(b) {
			return true // "::"
		}
	}
	for {
		j := i
		for j < len(b) && j-i < 5 && hexValue[b[j]] != 0xff {
			j++
		}
		if j < len(b) && b[j] == '.' {
			if !validIPv4(b[i:]) {
				return false
			}
			groups += 2
			break
		}
		if j == i || j-i > 4 {
			return false
		}
		groups++
		if j == len(b) {
			break
		}
		if b[j] != ':' || j+1 == len(b) {
			return false
		}
		j++
		if b[j] == ':' {
			if double {
				return false
			}
			double = true
			j++
			if j == len(b) {
				break
			}
		}
		i = j
	}
	if double {
		return groups <= 7
	}
	return groups == 8
}

// validIPv4 checks dec-octet "." dec-octet "." dec-octet "." dec-octet,
// where a dec-octet is 0..255 without leading zeros (RFC 3986 §3.2.2).
func validIPv4(b []byte) bool {
	for part := 0; part < 4; part++ {
		n, v := 0, 0
		for n < len(b) && n < 4 && b[n] >= '0' && b[n] <= '9' {
			v = v*10 + int(b[n]-'0')
			n++
		}
		if n == 0 || n > 3 || v > 255 || n > 1 && b[0] == '0' {
			return false
		}
		b = b[n:]
		if part < 3 {
			if len(b) == 0 || b[0] != '.' {
				return false
			}
			b = b[1:]
		}
	}
	return len(b) == 0
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
