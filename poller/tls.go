package poller

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// TLS. A server with Config.TLS, and a client connection dialed with
// DialTLS, put a layer (tlsLayer) between the socket and the state machine,
// which never knows: it reads plaintext through Conn.Input and writes
// plaintext through Conn.Write exactly as over plain TCP.
//
//   - Input: the ciphertext gnet has read is handed to crypto/tls, whose
//     records are decrypted on the loop into the layer's plaintext buffer,
//     which is what Conn.Input returns (taken from bytebufferpool, given
//     back once the engine has consumed it all: an idle connection holds
//     none).
//   - Output: what the engine wrote in an event is encrypted when the
//     event flushes (Conn.Flush) and the ciphertext takes the plain output
//     path (output.go): one write, the pending buffer, the watcher. So
//     pause, backpressure, the drain before a close and the lingering
//     close hold as for plain TCP, and "drained" means the ciphertext is
//     in the kernel. A close, or the shut of the write side, sends a
//     close_notify alert first (as Go's net/http does).
//
// crypto/tls runs over the layer itself, an in-memory net.Conn: its Write
// appends ciphertext to the loop's output, its Read takes ciphertext the
// loop has fed. Once the handshake is done the record layer runs on the
// loop: when no ciphertext is left, Read returns errWouldBlock, a net.Error
// whose Temporary() is true, which crypto/tls does not make sticky while
// reading records (readRecordOrCCS; tls_test.go pins it), so tls.Conn.Read
// simply returns it and is called again when more bytes come.
//
// The handshake cannot be resumed after a read error, so it runs on a
// goroutine of its own (tls_handshake.go), whose Read blocks until the
// loop feeds bytes, and whose output is posted to the loop (Conn.Submit).
// A server starts it only once the client's first record (the
// ClientHello) is complete, and runs MaxHandshakes of them at most: a
// client that connects and sends nothing, or part of a hello, costs no
// goroutine, only its timer on the loop.
//
// A client connection does its handshake on the goroutine that dialed it,
// over the socket itself (the layer passes Read and Write through), before
// the connection reaches a loop (tls_client.go).

// tlsState is where a TLS connection is. Owned by the loop.
type tlsState uint8

const (
	tlsHello    tlsState = iota // waiting for the client's first record
	tlsQueued                   // the hello is in; waiting for a handshake slot
	tlsShaking                  // the handshake runs on its goroutine
	tlsRejected                 // plain HTTP was answered; lingering before the close
	tlsOpen                     // established: records are read and written on the loop
	tlsEnded                    // the peer sent close_notify: later input is ignored
)

// maxHelloInput bounds the ciphertext a server buffers before its
// handshake is done: a ClientHello is one record of 16 KiB at most, and a
// client sends nothing else before the server's answer but its second
// flight.
const maxHelloInput = 64 << 10

// minPlainRoom is the free room the plaintext buffer has for each
// tls.Conn.Read: a record's payload is 16 KiB at most, and Read goes on
// with what does not fit.
const minPlainRoom = 4 << 10

// tlsLayer is one connection's TLS: the tls.Conn, the in-memory transport
// it runs over (the layer's own Read and Write), and the plaintext read
// and not yet consumed by the engine.
//
// Ownership: everything is the loop's, but for the handshake. While the
// handshake goroutine runs (shaking), tc is its own, the fields under mu
// are shared with it, and direct (a client's dial) belongs to the dialing
// goroutine. A tlsLayer is never reused: a handshake goroutine that
// outlives its connection holds a layer nobody else does.
type tlsLayer struct {
	tc    *tls.Conn
	c     *Conn  // the connection; set once it is on a loop
	gen   uint32 // c's generation
	hs    *handshakes
	state tlsState

	// shaking is set by the loop before the handshake goroutine starts and
	// cleared after it has ended (their hand-offs order it): while set,
	// Read waits on in, and Write posts to the loop.
	shaking bool
	eofDue  bool // the peer sent close_notify: the engine hears OnEOF once it wants input
	eof     bool // the engine heard OnEOF for a close_notify
	sentEnd bool // close_notify is out

	deadline    time.Time // the handshake's or the rejection's end (the layer holds the timer)
	engDeadline time.Time // the engine's deadline, armed once the layer gives the timer back
	lingerEnd   time.Time // a rejected connection's lingering ends by then at the latest

	plain []byte // decrypted input, from the loop's pool (tlsPlainPool); nil when none
	poff  int    // plaintext consumed by the engine
	src   []byte // gnet's input while records are read (readRecords)
	took  int    // bytes of src read
	carry []byte // ciphertext fed during the handshake and not read by it

	mu       sync.Mutex // guards in, out, gone and starving
	in       []byte     // ciphertext fed by the loop before the handshake is done
	out      []byte     // ciphertext the handshake wrote, posted to the loop when it waits or ends
	gone     bool       // the connection has closed: Read fails
	starving bool       // the handshake waits in Read with nothing fed: the loop reads the socket

	starvedAt atomic.Int64  // UnixNano since when the handshake waits for its peer; 0 when it does not
	evicted   atomic.Bool   // closed to make room for a connection waiting for a slot
	wake      chan struct{} // a signal to the handshake's Read: in or gone changed

	direct net.Conn // a client's socket during its dial's handshake; nil after
}

// errWouldBlock is the transport's answer when no ciphertext is buffered:
// crypto/tls treats a Temporary net.Error as "try again later" when
// reading records.
var errWouldBlock error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "poller: no TLS input buffered" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

// The net.Conn that crypto/tls runs over.

// Read gives crypto/tls ciphertext: during the handshake what the loop
// fed (blocking until some comes), after it what was left over from the
// handshake, then gnet's input of the current event. It runs on the
// handshake goroutine, the dialing goroutine (direct), or the loop.
func (t *tlsLayer) Read(p []byte) (int, error) {
	if t.direct != nil {
		return t.direct.Read(p)
	}
	if t.shaking {
		return t.readShaking(p)
	}
	if len(t.carry) > 0 {
		n := copy(p, t.carry)
		t.carry = t.carry[n:]
		if len(t.carry) == 0 {
			t.carry = nil
		}
		return n, nil
	}
	if t.took < len(t.src) {
		n := copy(p, t.src[t.took:])
		t.took += n
		return n, nil
	}
	return 0, errWouldBlock
}

// readShaking is Read on the handshake goroutine. The loop reads the
// socket only while the handshake starves (see wantsInput): when it runs
// out of bytes it says so in one event posted to the loop, which writes
// what the handshake wrote meanwhile and, at its end, turns reading on.
func (t *tlsLayer) readShaking(p []byte) (int, error) {
	for {
		t.mu.Lock()
		if len(t.in) > 0 {
			n := copy(p, t.in)
			t.in = t.in[:copy(t.in, t.in[n:])]
			t.mu.Unlock()
			return n, nil
		}
		if t.gone {
			t.mu.Unlock()
			return 0, net.ErrClosed
		}
		ask := !t.starving
		t.starving = true
		if ask {
			t.starvedAt.Store(time.Now().UnixNano())
		}
		out := t.out
		t.out = nil
		t.mu.Unlock()
		if ask || len(out) > 0 {
			if err := t.c.Submit(t.gen, func() { t.c.loop.cout = append(t.c.loop.cout, out...) }); err != nil {
				return 0, err
			}
		}
		<-t.wake
	}
}

// takeOut returns what the handshake wrote and has not been posted yet.
// Handshake goroutine only, once the handshake has returned.
func (t *tlsLayer) takeOut() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.out
	t.out = nil
	return out
}

// Write takes ciphertext from crypto/tls: on the loop it joins the
// event's output; from the handshake goroutine it waits in out until the
// handshake waits for the peer or ends (one event of the loop writes it
// then, in order); on a dial it goes to the socket.
func (t *tlsLayer) Write(p []byte) (int, error) {
	if t.direct != nil {
		return t.direct.Write(p)
	}
	if t.shaking {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.gone {
			return 0, net.ErrClosed
		}
		t.out = append(t.out, p...)
		return len(p), nil
	}
	t.c.loop.cout = append(t.c.loop.cout, p...)
	return len(p), nil
}

// Close marks the transport closed. crypto/tls calls it only when a
// handshake's context ends (a client's dial).
func (t *tlsLayer) Close() error {
	if d := t.direct; d != nil {
		return d.Close()
	}
	return nil
}

// The rest of net.Conn: addresses are the Conn's, deadlines are the
// loop's timers.
func (t *tlsLayer) LocalAddr() net.Addr {
	if t.direct != nil {
		return t.direct.LocalAddr()
	}
	return noAddr{}
}
func (t *tlsLayer) RemoteAddr() net.Addr {
	if t.direct != nil {
		return t.direct.RemoteAddr()
	}
	return noAddr{}
}
func (t *tlsLayer) SetDeadline(d time.Time) error {
	if t.direct != nil {
		return t.direct.SetDeadline(d)
	}
	return nil
}
func (t *tlsLayer) SetReadDeadline(d time.Time) error {
	if t.direct != nil {
		return t.direct.SetReadDeadline(d)
	}
	return nil
}
func (t *tlsLayer) SetWriteDeadline(d time.Time) error {
	if t.direct != nil {
		return t.direct.SetWriteDeadline(d)
	}
	return nil
}

// noAddr is the transport's address: crypto/tls does not use it.
type noAddr struct{}

func (noAddr) Network() string { return "tcp" }
func (noAddr) String() string  { return "" }

// The loop's side.

// feed hands ciphertext to the handshake (before it is done) and wakes
// its Read. It reports false when more than maxHelloInput waits. Loop
// only.
func (t *tlsLayer) feed(b []byte) bool {
	t.mu.Lock()
	t.in = append(t.in, b...)
	n := len(t.in)
	t.starving = false
	t.starvedAt.Store(0)
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
	return n <= maxHelloInput
}

// end marks the transport gone and wakes a handshake waiting on it. Loop
// only, when the connection closes.
func (t *tlsLayer) end() {
	t.mu.Lock()
	t.gone = true
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// input returns the plaintext the engine has not consumed. Loop only.
func (t *tlsLayer) input() []byte {
	if t.plain == nil {
		return nil
	}
	return t.plain[t.poff:]
}

// discard drops n bytes of plaintext; the buffer goes back to the pool
// once all is consumed. Loop only.
func (t *tlsLayer) discard(n int) {
	if t.plain == nil {
		return
	}
	t.poff += n
	if t.poff >= len(t.plain) {
		t.dropPlain()
	}
}

// dropPlain gives the plaintext buffer back to the loop.
func (t *tlsLayer) dropPlain() {
	if t.plain != nil {
		t.c.loop.givePlain(t.plain)
		t.plain, t.poff = nil, 0
	}
}

// The loop's pool of plaintext buffers: a connection holds one only while
// the engine has not consumed what was decrypted, so a few serve the
// loop. (bytebufferpool, which the output path uses, calibrates its sizes
// on the bytes used and would drop these, sized for a record.)
const (
	plainBufSize  = 16 << 10 // a record's payload at most
	maxPlainKept  = 256 << 10
	maxPlainFrees = 64
)

// takePlain returns an empty plaintext buffer. Loop only.
func (l *loop) takePlain() []byte {
	if n := len(l.plainFree); n > 0 {
		b := l.plainFree[n-1]
		l.plainFree[n-1] = nil
		l.plainFree = l.plainFree[:n-1]
		return b
	}
	return make([]byte, 0, plainBufSize)
}

// givePlain takes a plaintext buffer back. Loop only.
func (l *loop) givePlain(b []byte) {
	if cap(b) <= maxPlainKept && len(l.plainFree) < maxPlainFrees {
		l.plainFree = append(l.plainFree, b[:0])
	}
}

// readRecords decrypts every complete record of the ciphertext buffered
// (gnet's input, and what crypto/tls holds already) into the plaintext
// buffer, and consumes gnet's input. It reports whether plaintext came,
// and the error that ended the reading: nil when it waits for more,
// io.EOF for a close_notify, else a TLS error (an alert is queued for the
// peer). Loop only, once the handshake is done.
func (t *tlsLayer) readRecords() (got bool, err error) {
	c := t.c
	t.src, _ = c.gc.Peek(-1)
	t.took = 0
	for {
		room := t.room()
		n, rerr := t.tc.Read(room)
		if n > 0 {
			t.plain = t.plain[:len(t.plain)+n]
			got = true
		}
		if rerr != nil {
			if !errors.Is(rerr, errWouldBlock) {
				err = rerr
			}
			break
		}
	}
	if len(t.plain) == t.poff {
		t.dropPlain()
	}
	if t.took > 0 {
		_, _ = c.gc.Discard(t.took)
		c.loop.stats.bytesIn += uint64(t.took)
	}
	t.src, t.took = nil, 0
	return got, err
}

// room returns the free part of the plaintext buffer, compacted (the
// engine holds no view into it between events) and grown to minPlainRoom.
func (t *tlsLayer) room() []byte {
	if t.plain == nil {
		t.plain = t.c.loop.takePlain()
	}
	b := t.plain
	if t.poff > 0 {
		b = b[:copy(b, b[t.poff:])]
		t.poff = 0
	}
	if cap(b)-len(b) < minPlainRoom {
		b = slices.Grow(b, minPlainRoom+len(b)) // doubling: O(1) amortised
	}
	t.plain = b
	return b[len(b):cap(b)]
}

// seal encrypts the plaintext of the event (l.out) into its ciphertext
// (l.cout). Before the handshake is done there is no key to encrypt with:
// the engine has no input then and writes nothing; what it would is
// dropped. Loop only.
func (t *tlsLayer) seal(l *loop) {
	if len(l.out) == 0 {
		return
	}
	if t.state == tlsOpen || t.state == tlsEnded {
		_, _ = t.tc.Write(l.out) // the transport appends to l.cout; it never fails
	}
	l.out = l.out[:0]
}

// closeNotify seals the event's output and sends a close_notify alert
// after it, once. Loop only.
func (t *tlsLayer) closeNotify(l *loop) {
	t.seal(l)
	if t.sentEnd || (t.state != tlsOpen && t.state != tlsEnded) {
		return
	}
	t.sentEnd = true
	_ = t.tc.CloseWrite()
}

// wantsInput reports whether the socket should be read, the handshake
// not done: while the hello is incomplete, and while the handshake
// goroutine waits for bytes. Otherwise reading is off, so that a FIN that
// follows the client's last handshake flight (with its first requests) is
// not read, and the connection closed by gnet, before the handshake is
// done and those requests are answered.
func (t *tlsLayer) wantsInput() bool {
	switch t.state {
	case tlsHello, tlsRejected:
		return true
	case tlsShaking:
		t.mu.Lock()
		defer t.mu.Unlock()
		return t.starving
	}
	return false // queued
}

// holdsTimer reports whether the layer, not the engine, owns the
// connection's timer: until the handshake is done, and while a plain
// request is being turned away.
func (t *tlsLayer) holdsTimer() bool { return t.state < tlsOpen }

// ConnectionState returns the connection's TLS state, or false before
// the handshake is done. Loop only.
func (t *tlsLayer) connectionState() (tls.ConnectionState, bool) {
	if t.state != tlsOpen && t.state != tlsEnded {
		return tls.ConnectionState{}, false
	}
	return t.tc.ConnectionState(), true
}

// The hooks Conn calls.

// onTraffic takes the input of an event of a TLS connection. It reports
// whether the state machine has new plaintext to hear of (OnData). Loop
// only.
func (t *tlsLayer) onTraffic(now time.Time) (data bool) {
	c := t.c
	switch t.state {
	case tlsOpen:
		got, err := t.readRecords()
		if err != nil {
			t.readFailed(err, got, now)
			return false
		}
		return got
	case tlsHello, tlsQueued, tlsShaking:
		in, _ := c.gc.Peek(-1)
		_, _ = c.gc.Discard(len(in))
		c.loop.stats.bytesIn += uint64(len(in))
		if !t.feed(in) {
			t.abort(now)
			return false
		}
		if t.state == tlsHello {
			t.hello(now)
		}
	default: // rejected or ended: the input is read and dropped
		n := c.gc.InboundBuffered()
		_, _ = c.gc.Discard(n)
		c.loop.stats.bytesIn += uint64(n)
		if t.state == tlsRejected {
			t.lingerMore(now)
		}
	}
	return false
}

// readFailed handles the end of the records: a close_notify is the peer's
// end of input (the engine answers what is complete, then closes); a bad
// record closes the connection, after the alert crypto/tls queued.
func (t *tlsLayer) readFailed(err error, got bool, now time.Time) {
	m := t.c.m()
	if got {
		m.OnData(now)
	}
	if !t.c.isOpen() || m.Closed() {
		return
	}
	if errors.Is(err, io.EOF) {
		// As a FIN is not read while the engine does not want input
		// (pipelined requests wait behind a response), the end of input
		// reaches the engine once it wants more (Conn.afterEvent).
		t.state = tlsEnded
		t.eofDue = true
		return
	}
	t.c.loop.logger().Debug("loophttp: TLS record error", "err", err)
	t.abortWith(err, now)
}

// deliverEOF tells the engine of a close_notify once it wants input. It
// reports whether it did. Loop only, at the end of an event.
func (t *tlsLayer) deliverEOF() bool {
	m := t.c.m()
	if !t.eofDue || !m.WantsInput() {
		return false
	}
	t.eofDue, t.eof = false, true
	m.OnEOF(time.Now())
	return true
}

// abort ends the connection at once: the state machine hears a close, and
// the socket is closed after what the kernel takes at once (an alert).
func (t *tlsLayer) abort(now time.Time) { t.abortWith(nil, now) }

// abortWith is abort for a reason the peer gave (a TLS alert, a bad
// record): Conn.CloseErr reports it while the engine hears of the close.
func (t *tlsLayer) abortWith(cause error, now time.Time) {
	c := t.c
	if !c.isOpen() {
		return
	}
	prev := c.loop.closeErr
	c.loop.closeErr = cause
	c.m().OnClose(now)
	c.loop.closeErr = prev
	c.Close()
}

// onTimer runs when the layer's deadline comes: the handshake took too
// long, or a rejected connection has lingered enough.
func (t *tlsLayer) onTimer(now time.Time) {
	if now.Before(t.deadline) {
		t.c.loop.wheel.arm(&t.c.timer, t.deadline)
		return
	}
	if t.state != tlsRejected {
		t.c.loop.stats.tlsTimeouts++
		t.failed(ErrHandshakeTimeout)
	}
	t.abort(now)
}

// opened hands the timer back to the engine once the handshake is done.
func (t *tlsLayer) opened() {
	t.state = tlsOpen
	t.c.loop.wheel.arm(&t.c.timer, t.engDeadline)
	t.engDeadline = time.Time{}
}

// closed runs when the connection closes: a handshake still waiting for
// bytes ends, a queued one leaves the queue, and the plaintext goes back.
// Loop only.
func (t *tlsLayer) closed() {
	if t.state == tlsQueued {
		t.hs.waiting.Add(-1)
	}
	if t.state < tlsOpen {
		t.state = tlsEnded
	}
	t.end()
	t.dropPlain()
	t.carry = nil
}
