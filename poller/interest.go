package poller

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Read interest: how the poller stops and resumes reading a socket.
//
// gnet v2 has no API to pause reading: its loop reads a socket whenever
// epoll reports it readable, and closes it when a read returns end of file.
// So the poller changes the socket's registration in the loop's own epoll
// set, mirroring the event words gnet itself registers in its default
// level-triggered mode (EPOLLIN|EPOLLPRI, data.fd = the socket):
//
//   - reading: EPOLLIN|EPOLLPRI, as gnet registered it;
//   - paused: no event at all. gnet then never reads the socket, so input
//     stays in the kernel and TCP flow control holds the peer, and a FIN
//     from the peer is not read (gnet would close the connection on it)
//     until reading resumes. Errors and hang-ups are still reported.
//
// gnet changes a registration itself only when its own output buffer fills
// (and again when it drains). The poller never lets that happen: it writes
// to the socket itself and keeps what the kernel does not take (output.go),
// so the registration the poller sets is the one that holds. Tests in
// interest_test.go pin each gnet behaviour this relies on.

// readEvents is what gnet registers a connection for in level-triggered
// mode (netpoll.ReadEvents).
const readEvents = unix.EPOLLIN | unix.EPOLLPRI

// setReading registers fd in the epoll set epfd for reading or for nothing.
func setReading(epfd, fd int, on bool) error {
	ev := unix.EpollEvent{Fd: int32(fd)}
	if on {
		ev.Events = readEvents
	}
	return unix.EpollCtl(epfd, unix.EPOLL_CTL_MOD, fd, &ev)
}

// errNoEpoll reports that no epoll set of the process holds the socket.
var errNoEpoll = errors.New("poller: no epoll set holds the socket")

// findEpoll returns the epoll set in which gnet registered the socket fd:
// the one whose /proc fdinfo lists fd as a target with read events. gnet
// does not expose its loops' epoll descriptors; a loop looks its own up
// once, on the first connection it pauses. The candidates (the epoll sets
// that existed when the Server or Client had started, see epollSets) are
// tried first, so a process with many descriptors is not scanned whole.
func findEpoll(fd int, candidates []int) (int, error) {
	for _, epfd := range candidates {
		if holds, err := epollHolds(epfd, fd); err == nil && holds {
			return epfd, nil
		}
	}
	all, err := epollSets()
	if err != nil {
		return -1, err
	}
	for _, epfd := range all {
		if holds, err := epollHolds(epfd, fd); err == nil && holds {
			return epfd, nil
		}
	}
	return -1, fmt.Errorf("%w (fd %d)", errNoEpoll, fd)
}

// epollSets lists the process's epoll descriptors.
func epollSets() ([]int, error) {
	dir, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	var sets []int
	for _, e := range dir {
		epfd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if link, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && link == "anon_inode:[eventpoll]" {
			sets = append(sets, epfd)
		}
	}
	return sets, nil
}

// epollHolds reports whether the epoll set epfd has fd registered for read
// events, from its fdinfo lines "tfd: <fd> events: <hex> data: <hex> ...".
func epollHolds(epfd, fd int) (bool, error) {
	f, err := os.Open("/proc/self/fdinfo/" + strconv.Itoa(epfd))
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := bytes.Fields(sc.Bytes())
		if len(fields) < 4 || string(fields[0]) != "tfd:" || string(fields[2]) != "events:" {
			continue
		}
		tfd, err1 := strconv.Atoi(string(fields[1]))
		events, err2 := strconv.ParseUint(string(fields[3]), 16, 32)
		if err1 == nil && err2 == nil && tfd == fd && events&unix.EPOLLIN != 0 {
			return true, nil
		}
	}
	return false, sc.Err()
}
