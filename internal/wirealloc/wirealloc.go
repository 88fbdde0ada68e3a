// Package wirealloc counts the allocations of a server per keep-alive
// request, over a real loopback connection. It is for tests only: the
// count covers the whole process, and the client side allocates nothing,
// so what it reports is the server's.
package wirealloc

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// PerRequest sends req on one keep-alive connection to addr, checks that
// the first response ends with wantSuffix, then returns the allocations
// per request over 500 more (after 100 to warm the server's pools). Every
// response must be as long as the first.
func PerRequest(t testing.TB, addr, req, wantSuffix string) float64 {
	t.Helper()
	roundTrip := dial(t, addr, req, wantSuffix, 100)
	return testing.AllocsPerRun(500, roundTrip)
}

// dial opens a keep-alive connection to addr, checks that the response to
// the first req ends with wantSuffix, makes warm more round trips, and
// returns a function making one more (every response as long as the
// first). The connection closes when the test ends.
func dial(t testing.TB, addr, req, wantSuffix string, warm int) (roundTrip func()) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(time.Minute)) // a hung server fails the test, not the run
	raw := []byte(req)
	buf := make([]byte, 4096)
	c.Write(raw)
	size, err := c.Read(buf)
	if err != nil || !strings.HasSuffix(string(buf[:size]), wantSuffix) {
		t.Fatalf("first response %q, %v; want it to end with %q", buf[:size], err, wantSuffix)
	}
	roundTrip = func() {
		c.Write(raw)
		if _, err := io.ReadFull(c, buf[:size]); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < warm; i++ {
		roundTrip()
	}
	return roundTrip
}
