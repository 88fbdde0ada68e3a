package api

import "unsafe"

// view returns b as a string without copying. Precondition: nothing
// writes to b's bytes again while the string is in use (they belong to a
// request's own copy of its head, reused only under
// Options.ReuseMessages' contract).
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// span returns the bytes from the start of first to the end of last, two
// non-empty views of one buffer with last not before first.
func span(first, last []byte) []byte {
	n := offset(first, last) + len(last)
	return unsafe.Slice(unsafe.SliceData(first), n)
}

// offset returns where the non-empty view b starts in the buffer that
// base, a view of the same buffer starting no later, starts.
func offset(base, b []byte) int {
	return int(uintptr(unsafe.Pointer(unsafe.SliceData(b))) - uintptr(unsafe.Pointer(unsafe.SliceData(base))))
}
