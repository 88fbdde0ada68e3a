package codec

import "strings"

// SplitURL splits an http:// URL (the scheme compared without regard to
// case) into its authority and its request-target in origin-form, the
// target kept byte for byte as a client such as curl sends it: never
// re-encoded or decoded. The #fragment is dropped (it is never sent, RFC
// 9110 §4.2.5); a URL without a path gets "/" (RFC 9112 §3.2.1), and a
// bare query gets "/" before it. ok is false when raw is not an http://
// URL. Neither part is validated here: ValidRequestLine judges the target,
// and the caller its own reading of the authority.
func SplitURL(raw string) (authority, target string, ok bool) {
	scheme, rest, found := strings.Cut(raw, "://")
	if !found || !strings.EqualFold(scheme, "http") {
		return "", "", false
	}
	rest, _, _ = strings.Cut(rest, "#")
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	authority, target = rest[:end], rest[end:]
	switch {
	case target == "":
		target = "/"
	case target[0] == '?':
		target = "/" + target
	}
	return authority, target, true
}
