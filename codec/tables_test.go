package codec

import (
	"net/netip"
	"net/textproto"
	"strings"
	"testing"
)

// TestTcharMatchesTextproto checks tchar against net/textproto, which
// leaves a key unchanged when it holds a byte that is not a token byte.
func TestTcharMatchesTextproto(t *testing.T) {
	for c := 0; c < 256; c++ {
		key := "a" + string([]byte{byte(c)})
		textprotoOK := textproto.CanonicalMIMEHeaderKey(key)[0] == 'A'
		if tchar[c] != textprotoOK {
			t.Errorf("tchar[%#x] = %v; net/textproto says %v", c, tchar[c], textprotoOK)
		}
	}
}

// TestByteClasses checks each table against the RFC ranges written out
// independently of the tables' own strings.
func TestByteClasses(t *testing.T) {
	isAlnum := func(c int) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	unreserved := func(c int) bool { return isAlnum(c) || strings.IndexByte("-._~", byte(c)) >= 0 }
	subDelim := func(c int) bool { return strings.IndexByte("!$&'()*+,;=", byte(c)) >= 0 }
	want := map[string]struct {
		table *[256]bool
		def   func(c int) bool
	}{
		"targetChar":       {&targetChar, func(c int) bool { return c > ' ' && c < 0x7f && c != '#' }},
		"plainPathChar":    {&plainPathChar, func(c int) bool { return c > ' ' && c < 0x7f && c != '#' && c != '%' && c != '?' }},
		"regNameChar":      {&regNameChar, func(c int) bool { return (unreserved(c) || subDelim(c) || c == '%') && c != ',' }},
		"plainRegNameChar": {&plainRegNameChar, func(c int) bool { return (unreserved(c) || subDelim(c)) && c != ',' }},
		"digit":            {&digit, func(c int) bool { return c >= '0' && c <= '9' }},
		"ipLiteralChar":    {&ipLiteralChar, func(c int) bool { return unreserved(c) || subDelim(c) || c == ':' }},
		"fieldVChar":       {&fieldVChar, func(c int) bool { return c == '\t' || c >= 0x20 && c != 0x7f }},
		"qdtext": {&qdtext, func(c int) bool {
			return c == '\t' || c == ' ' || c == 0x21 || c >= 0x23 && c <= 0x5b || c >= 0x5d && c <= 0x7e || c >= 0x80
		}},
		"quotedPair": {&quotedPair, func(c int) bool { return c == '\t' || c == ' ' || c >= 0x21 && c <= 0x7e || c >= 0x80 }},
	}
	for name, w := range want {
		for c := 0; c < 256; c++ {
			if w.table[c] != w.def(c) {
				t.Errorf("%s[%#x] = %v; want %v", name, c, w.table[c], w.def(c))
			}
		}
	}
	for c := 0; c < 256; c++ {
		v, ok := hexValue[c], strings.IndexByte("0123456789abcdefABCDEF", byte(c)) >= 0
		if ok != (v != 0xff) {
			t.Errorf("hexValue[%#x] = %#x", c, v)
		}
	}
}

// TestInvalidValueByte checks the SWAR scan against the byte table at every
// position and alignment.
func TestInvalidValueByte(t *testing.T) {
	for n := 0; n <= 20; n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				b := []byte(strings.Repeat("a", n))
				b[pos] = byte(c)
				want := -1
				if !fieldVChar[c] {
					want = pos
				}
				if got := invalidValueByte(b); got != want {
					t.Fatalf("invalidValueByte(%q) = %d; want %d", b, got, want)
				}
				if got := invalidValueByte(string(b)); got != want {
					t.Fatalf("invalidValueByte(string %q) = %d; want %d", b, got, want)
				}
			}
		}
	}
}

// TestValidIPv6MatchesNetip compares validIPv6 with net/netip on strings
// built from IPv6-like pieces, and on a fixed list of edge cases.
func TestValidIPv6MatchesNetip(t *testing.T) {
	cases := []string{
		"::", "::1", "1::", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8",
		"1:2:3:4:5:6:7:8:9", "1::2::3", ":1::", "1:", ":1", "12345::", "::ffff:1.2.3.4",
		"::ffff:01.2.3.4", "::ffff:256.1.1.1", "1.2.3.4", "::1.2.3", "1:2:3:4:5:6:1.2.3.4",
		"1:2:3:4:5:6:7:1.2.3.4", "fe80::1%eth0", "", "g::", "1:::2", "0:0:0:0:0:0:0:0",
	}
	pieces := []string{"1", "ab", "ffff", "12345", ":", "::", ".", "1.2.3.4", "0", "00", "255", "g"}
	var build func(prefix string, depth int)
	build = func(prefix string, depth int) {
		cases = append(cases, prefix)
		if depth == 0 {
			return
		}
		for _, p := range pieces {
			build(prefix+p, depth-1)
		}
	}
	build("", 4)
	for _, s := range cases {
		a, err := netip.ParseAddr(s)
		want := err == nil && a.Is6() && a.Zone() == ""
		if got := validIPv6([]byte(s)); got != want {
			t.Errorf("validIPv6(%q) = %v; net/netip says %v", s, got, want)
		}
	}
}

// TestEqualFoldWord checks equalFoldWord against equalFold for every word
// the codec looks for, with each byte replaced in turn by every byte that
// may appear in a scanned name or value.
func TestEqualFoldWord(t *testing.T) {
	words := []string{"host", "expect", "upgrade", "connection", "content-length",
		"transfer-encoding", "chunked", "close", "keep-alive", "100-continue"}
	for _, w := range words {
		for i := 0; i < len(w); i++ {
			for c := 0; c < 256; c++ {
				if !fieldVChar[c] {
					continue
				}
				b := []byte(w)
				b[i] = byte(c)
				if got, want := equalFoldWord(b, w), equalFold(b, w); got != want {
					t.Errorf("equalFoldWord(%q, %q) = %v; want %v", b, w, got, want)
				}
			}
		}
		if equalFoldWord([]byte(strings.ToUpper(w)), w) != true || equalFoldWord([]byte(w+"x"), w) {
			t.Errorf("equalFoldWord on %q: case or length not handled", w)
		}
	}
}
