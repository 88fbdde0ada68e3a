package poller

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDiagDump: the sock_diag dump finds a socket by state and local port
// (an established loopback connection's two ends), and not on a port no
// socket has.
func TestDiagDump(t *testing.T) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_INET_DIAG)
	if err != nil {
		t.Skipf("no sock_diag: %v", err)
	}
	defer unix.Close(fd)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	server := ln.Addr().(*net.TCPAddr).Port
	client := c.LocalAddr().(*net.TCPAddr).Port
	for _, port := range []int{server, client} {
		if found, err := dumpHas(fd, unix.AF_INET, 1<<tcpEstablished, port); err != nil || !found {
			t.Errorf("established socket on port %d: found %v, %v", port, found, err)
		}
	}
	if found, err := dumpHas(fd, unix.AF_INET, 1<<tcpSynRecv, server); err != nil || found {
		t.Errorf("SYN_RECV on port %d with no handshake in progress: found %v, %v", server, found, err)
	}
	if _, err := dumpHas(fd, unix.AF_INET6, 1<<tcpSynRecv, server); err != nil {
		t.Errorf("IPv6 dump: %v", err)
	}
}
