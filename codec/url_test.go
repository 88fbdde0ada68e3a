package codec

import "testing"

func TestSplitURL(t *testing.T) {
	for _, tc := range []struct {
		raw, authority, target string
		ok                     bool
	}{
		{"http://h/a|b?q={1}&ids[]=1", "h", "/a|b?q={1}&ids[]=1", true},
		{"HTTP://h:8080/p[1]/100%", "h:8080", "/p[1]/100%", true},
		{"http://u@[::1]:80/x#frag", "u@[::1]:80", "/x", true},
		{"http://h?q=1", "h", "/?q=1", true},
		{"http://h", "h", "/", true},
		{"http://h#f", "h", "/", true},
		{"https://h/", "", "", false},
		{"h/x", "", "", false},
	} {
		a, target, ok := SplitURL(tc.raw)
		if a != tc.authority || target != tc.target || ok != tc.ok {
			t.Errorf("SplitURL(%q) = %q, %q, %v; want %q, %q, %v", tc.raw, a, target, ok, tc.authority, tc.target, tc.ok)
		}
	}
}
