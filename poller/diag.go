package poller

import (
	"encoding/binary"
	"os"

	"golang.org/x/sys/unix"
)

// handshaking reports whether a TCP handshake with the local port is in
// progress (a request socket in SYN_RECV): the kernel would reset it if
// the listening socket closed now. It asks sock_diag(7) for the host's
// SYN_RECV sockets, which the kernel keeps few (a listener holds them only
// for a round trip); an error reports false.
func handshaking(port int) bool {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_INET_DIAG)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		if found, err := dumpHas(fd, family, 1<<tcpSynRecv, port); err == nil && found {
			return true
		}
	}
	return false
}

// dumpHas dumps the family's TCP sockets in the states (a bit set of
// kernel TCP states) through the sock_diag socket fd and reports whether
// one has local port port.
func dumpHas(fd int, family uint8, states uint32, port int) (bool, error) {
	// struct nlmsghdr, then struct inet_diag_req_v2 (linux/inet_diag.h):
	// family, protocol, ext, pad, states, then a 48-byte socket id left
	// zero (a dump ignores it).
	const hdrLen, reqLen = unix.SizeofNlMsghdr, 56
	req := make([]byte, hdrLen+reqLen)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(req[8:], 1)
	req[hdrLen] = family
	req[hdrLen+1] = unix.IPPROTO_TCP
	ne.PutUint32(req[hdrLen+4:], states) // SYN_RECV: the kernel adds its request sockets
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return false, err
	}
	buf := make([]byte, os.Getpagesize()*8)
	found := false
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return false, err
		}
		for b := buf[:n]; len(b) >= hdrLen; {
			l := int(ne.Uint32(b[0:4]))
			if l < hdrLen || l > len(b) {
				return false, unix.EINVAL
			}
			switch ne.Uint16(b[4:6]) {
			case unix.NLMSG_DONE:
				return found, nil
			case unix.NLMSG_ERROR:
				return false, unix.EINVAL
			}
			// struct inet_diag_msg: family, state, timer, retrans,
			// then the id, whose first field is the source port in
			// network order.
			if data := b[hdrLen:l]; len(data) >= 6 && int(binary.BigEndian.Uint16(data[4:6])) == port {
				found = true
			}
			b = b[min((l+3)&^3, len(b)):] // messages are 4-byte aligned
		}
	}
}

// Kernel TCP states (net/tcp_states.h).
const (
	tcpEstablished = 1
	tcpSynRecv     = 3
)
