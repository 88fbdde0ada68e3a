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

// TestMessageSizes pins the sizes of the messages a request allocates to
// the allocation size classes they are meant to fill (smaller would waste
// the rest of the class; larger would take the next one).
func TestMessageSizes(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"smallMessage", unsafe.Sizeof(smallMessage{}), 320},
		{"mediumMessage", unsafe.Sizeof(mediumMessage{}), 512},
		{"largeMessage", unsafe.Sizeof(largeMessage{}), 768},
	} {
		if c.got != c.want {
			t.Errorf("unsafe.Sizeof(%s{}) = %d; want %d", c.name, c.got, c.want)
		}
	}
}
