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
		{"message1", unsafe.Sizeof(message1{}), 240},
		{"message3", unsafe.Sizeof(message3{}), 304},           // in the 320-byte class
		{"message8", unsafe.Sizeof(message8{}), 464},           // in the 480-byte class
		{"message16", unsafe.Sizeof(message16{}), 720},         // 768 with the malloc header of objects over 512 bytes
		{"reusedMessage", unsafe.Sizeof(reusedMessage{}), 768}, // 896 with the header; one per pooled exchange
	} {
		if c.got != c.want {
			t.Errorf("unsafe.Sizeof(%s{}) = %d; want %d", c.name, c.got, c.want)
		}
	}
}
