package api

import "unsafe"

// view returns b as a string without copying. Precondition: nothing ever
// writes to b's bytes again (they belong to a request's own copy of its
// head, which is never reused), so the string cannot change.
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
