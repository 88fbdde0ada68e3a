package engine

import (
	"testing"
	"unsafe"
)

// TestServerConnSize pins the size of the ServerConn every connection
// holds, idle keep-alive ones included: a field added to it costs each of
// them (state of an exchange belongs in Stream, which is pooled).
func TestServerConnSize(t *testing.T) {
	if got, want := unsafe.Sizeof(ServerConn{}), uintptr(96); got > want {
		t.Errorf("unsafe.Sizeof(ServerConn{}) = %d; want at most %d", got, want)
	}
}
