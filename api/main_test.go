package api

import (
	"testing"

	"github.com/loophttp/loophttp/internal/leakcheck"
)

// TestMain fails the package if server, loop or worker goroutines are left
// behind.
func TestMain(m *testing.M) {
	leakcheck.Main(m, "loophttp/api.", "loophttp/poller.(*Server)", "gnet/v2.(*eventloop)")
}
