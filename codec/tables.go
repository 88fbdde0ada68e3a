package codec

// Byte classes. Each table is built from the ABNF quoted above it, and
// tables_test.go checks every table against an independent definition.

// tchar marks token characters (RFC 9110 §5.6.2):
//
//	token = 1*tchar
//	tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
//	        "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
var tchar = makeTable(alnum + "!#$%&'*+-.^_`|~")

// targetChar marks the bytes allowed anywhere in a request-target: the
// characters of an RFC 3986 URI reference without "#" (a fragment is never
// sent, RFC 9112 §3.2; policy target-strict):
//
//	pchar      = unreserved / pct-encoded / sub-delims / ":" / "@"
//	unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"
//	sub-delims = "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "="
//	query      = *( pchar / "/" / "?" )
//
// "[" and "]" appear only in an IP-literal host; form checks enforce that.
var targetChar = makeTable(alnum + "-._~" + "!$&'()*+,;=" + ":@" + "/?" + "%" + "[]")

// pathChar is targetChar without "[" and "]": what origin-form may hold
// (RFC 9112 §3.2.1: absolute-path [ "?" query ]).
var pathChar = makeTable(alnum + "-._~" + "!$&'()*+,;=" + ":@" + "/?" + "%")

// plainTargetChar is pathChar without "%": the bytes scanTarget passes
// over without looking further.
var plainTargetChar = makeTable(alnum + "-._~" + "!$&'()*+,;=" + ":@" + "/?")

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

// userinfoChar marks the bytes of a URI userinfo
// (RFC 3986 §3.2.1: userinfo = *( unreserved / pct-encoded / sub-delims / ":" )).
var userinfoChar = makeTable(alnum + "-._~" + "!$&'()*+,;=" + ":" + "%")

// schemeChar marks the bytes after the first of a URI scheme
// (RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )).
var schemeChar = makeTable(alnum + "+-.")

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
// in class, or len(b). It checks four bytes per step.
func skipClass(b []byte, i int, class *[256]bool) int {
	for ; i+4 <= len(b); i += 4 {
		if !class[b[i]] || !class[b[i+1]] || !class[b[i+2]] || !class[b[i+3]] {
			break
		}
	}
	for i < len(b) && class[b[i]] {
		i++
	}
	return i
}

// lower folds an ASCII upper-case letter to lower case.
func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
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
