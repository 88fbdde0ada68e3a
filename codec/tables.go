package codec

// Byte classes. Each table is built from the ABNF quoted above it, and
// tables_test.go checks every table against an independent definition.

// tchar marks token characters (RFC 9110 §5.6.2):
//
//	token = 1*tchar
//	tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
//	        "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
var tchar = makeTable(alnum + "!#$%&'*+-.^_`|~")

// targetChar marks the bytes a request-target may hold: every visible
// ASCII octet but "#" (policy target-visible). RFC 3986 allows fewer
//
//	pchar      = unreserved / pct-encoded / sub-delims / ":" / "@"
//	query      = *( pchar / "/" / "?" )
//
// but browsers, curl and scripts send " < > [ \ ] ^ ` { | } raw (WHATWG URL
// leaves them unencoded), and Node, Go and nginx accept them; a fragment
// is never sent (RFC 9112 §3.2), so "#" is refused (policy target-strict).
var targetChar = func() (t [256]bool) {
	for c := 0x21; c <= 0x7e; c++ {
		t[c] = c != '#'
	}
	return t
}()

// plainPathChar is targetChar without "%" and "?": the bytes scanTarget
// passes over in the path without looking further.
var plainPathChar = func() (t [256]bool) {
	t = targetChar
	t['%'], t['?'] = false, false
	return t
}()

// regNameChar marks the bytes of a reg-name host plus the port digits
// (RFC 3986 §3.2.2: reg-name = *( unreserved / pct-encoded / sub-delims )).
// The comma is left out: in Host it would make a list (RFC 9110 §5.3).
var regNameChar = makeTable(alnum + "-._~" + "!$&'()*+;=" + "%")

// plainRegNameChar is regNameChar without "%".
var plainRegNameChar = makeTable(alnum + "-._~" + "!$&'()*+;=")

// digit marks DIGIT (RFC 5234 B.1).
var digit = makeTable("0123456789")

// ipLiteralChar marks the bytes inside "[" "]" of an IP-literal
// (RFC 3986 §3.2.2: IPv6address / IPvFuture).
var ipLiteralChar = makeTable(alnum + ":." + "-._~" + "!$&'()*+,;=")

// hexValue maps HEXDIG to its value and every other byte to 0xff
// (RFC 5234 B.1: HEXDIG = DIGIT / "A" / "B" / "C" / "D" / "E" / "F",
// case-insensitive).
var hexValue = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c-'a') + 10
		t[c-'a'+'A'] = byte(c-'a') + 10
	}
	return t
}()

// qdtext marks the bytes allowed unescaped inside a quoted-string, and
// quotedPair the bytes allowed after a backslash (RFC 9110 §5.6.4):
//
//	qdtext      = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
//	quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
var qdtext = func() (t [256]bool) {
	for c := 0x80; c <= 0xff; c++ {
		t[c] = true
	}
	for c := 0x20; c <= 0x7e; c++ {
		t[c] = c != '"' && c != '\\'
	}
	t['\t'] = true
	return t
}()

var quotedPair = func() (t [256]bool) {
	for c := 0x20; c <= 0xff; c++ {
		t[c] = c != 0x7f
	}
	t['\t'] = true
	return t
}()

// fieldVChar marks the bytes allowed in a field value and a reason phrase
// (RFC 9110 §5.5, RFC 9112 §4):
//
//	field-vchar  = VCHAR / obs-text
//	reason-phrase = 1*( HTAB / SP / VCHAR / obs-text )
//
// SP and HTAB are included; every other control character and DEL are not
// (policy ctl-in-value).
var fieldVChar = func() (t [256]bool) {
	for c := 0x20; c <= 0xff; c++ {
		t[c] = c != 0x7f
	}
	t['\t'] = true
	return t
}()

const alnum = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

func makeTable(chars string) (t [256]bool) {
	for i := 0; i < len(chars); i++ {
		t[chars[i]] = true
	}
	return t
}

// skipClass returns the index of the first byte at or after i that is not
// in class, or len(b). It checks eight bytes per step (w has a constant
// length, so the reads need no bounds checks) and stops at the exact byte.
func skipClass(b []byte, i int, class *[256]bool) int {
	for ; i+8 <= len(b); i += 8 {
		w := b[i : i+8 : i+8]
		switch {
		case !class[w[0]]:
			return i
		case !class[w[1]]:
			return i + 1
		case !class[w[2]]:
			return i + 2
		case !class[w[3]]:
			return i + 3
		case !class[w[4]]:
			return i + 4
		case !class[w[5]]:
			return i + 5
		case !class[w[6]]:
			return i + 6
		case !class[w[7]]:
			return i + 7
		}
	}
	for j, c := range b[i:] {
		if !class[c] {
			return i + j
		}
	}
	return len(b)
}

// lower folds an ASCII upper-case letter to lower case.
func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// equalFoldWord is equalFold for the words the codec looks for in scanned
// field names and values. word holds lower-case letters, digits and "-"
// only, and b holds no control byte (as scanned names and values do): then
// setting bit 0x20 of each byte of b folds it exactly, eight bytes at a
// time, since only "A"-"Z" and the control bytes CR and 0x10-0x19 map onto
// such characters.
func equalFoldWord(b []byte, word string) bool {
	n := len(b)
	if n != len(word) {
		return false
	}
	switch {
	case n >= 8:
		// Whole words, the last one overlapping the one before.
		for i := 0; i < n-8; i += 8 {
			if load64(b, i)|ones*0x20 != load64(word, i) {
				return false
			}
		}
		return load64(b, n-8)|ones*0x20 == load64(word, n-8)
	case n >= 4:
		return load32(b, 0)|0x20202020 == load32(word, 0) &&
			load32(b, n-4)|0x20202020 == load32(word, n-4)
	}
	for i := 0; i < n; i++ {
		if b[i]|0x20 != word[i] {
			return false
		}
	}
	return true
}

// equalFold reports whether b equals the lower-case ASCII string s, ignoring
// the case of b.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lower(b[i]) != s[i] {
			return false
		}
	}
	return true
}
