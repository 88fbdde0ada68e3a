package api

import (
	"testing"
	"unsafe"
)

// TestSocketSize pins the size of the Socket every connection holds, idle
// keep-alive ones included: a field added here costs each of them (rarely
// used state goes to socketExtra).
func TestSocketSize(t *testing.T) {
	if got, want := unsafe.Sizeof(Socket{}), uintptr(64); got > want {
		t.Errorf("unsafe.Sizeof(Socket{}) = %d; want at most %d", got, want)
	}
}
