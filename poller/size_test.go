package poller

import (
	"testing"
	"unsafe"
)

// TestConnSize pins the size of what every connection holds in poller,
// idle keep-alive ones included: a field added here costs each of them.
func TestConnSize(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"Conn", unsafe.Sizeof(Conn{}), 112},
		{"timer", unsafe.Sizeof(timer{}), 32},
		{"connBlock", unsafe.Sizeof(connBlock{}), 4096}, // a size class: 64 bytes of it wasted
	} {
		if c.got > c.want {
			t.Errorf("unsafe.Sizeof(%s{}) = %d; want at most %d", c.name, c.got, c.want)
		}
	}
}
