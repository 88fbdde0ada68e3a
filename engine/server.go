package engine

import (
	"bytes"
	"errors"
	"runtime/debug"
	"time"

	"github.com/loophttp/loophttp/codec"
)

// Loop holds what the connections of one event loop share: scratch space
// for parsing and serialising, and pools of the state only an exchange in
// progress needs (streams, chunked decoders, field buffers), so that an
// idle connection holds none of it. It is owned by its loop; nothing in it
// is safe for concurrent use.
type Loop struct {
	cfg      *Config
	date     *codec.DateCache
	req      codec.Request // the head being parsed; valid during Handler.Request
	scratch  []byte        // response heads are built here, then copied to the Conn
	streams  []*Stream     // streams between exchanges
	decoders []*codec.ChunkedDecoder
	bufs     [][]byte // field buffers of streams between exchanges
	inUse    int      // streams, decoders and field buffers handed out, not given back

	// dateLine is the Date field line of the second dateSec of the
	// loop's clock (Unix seconds; valid when dateSet), so a response
	// head takes it with one copy.
	dateLine [len("Date: ") + len(codec.TimeFormat) + len("\r\n")]byte
	dateSec  int64
	dateSet  bool
	draining bool // the server stops: every request taken from now on is its connection's last (Drain)

	// Data belongs to the handler: per-loop state it keeps across
	// connections (package api keeps the arena its request copies come
	// from). Loop only.
	Data any

	stats Stats // the counters of the loop's connections (stats.go); last, off the hot fields' cache lines
}

// Drain makes every request the loop's connections take from now on the
// last of its connection: its response carries Connection: close (a
// server shutting down). It cannot be undone.
func (l *Loop) Drain() { l.draining = true }

// appendDate appends the Date field line for now (Unix nanoseconds),
// asking the shared DateCache at most once per second of the clock.
func (l *Loop) appendDate(b []byte, now int64) []byte {
	if sec := now / int64(time.Second); !l.dateSet || sec != l.dateSec {
		line := append(l.dateLine[:0], "Date: "...)
		line = l.date.Append(line, time.Unix(0, now))
		_ = append(line, '\r', '\n')
		l.dateSec, l.dateSet = sec, true
	}
	return append(b, l.dateLine[:]...)
}

// InUse reports the pooled objects (streams, chunked decoders and field
// buffers) that connections have taken and not given back. With no
// exchange in progress it is zero; tests use it to find leaks.
func (l *Loop) InUse() int { return l.inUse }

// stream returns a Stream for a new exchange of c: reset, except for its
// field buffer, which is nil.
func (l *Loop) stream(c *ServerConn) *Stream {
	l.inUse++
	var s *Stream
	if n := len(l.streams); n > 0 {
		s = l.streams[n-1]
		l.streams[n-1] = nil
		l.streams = l.streams[:n-1]
	} else {
		s = new(Stream)
	}
	s.c = c
	return s
}

// releaseStream takes back the Stream of an exchange that is over. It
// keeps its connection (Conn stays answerable) but nothing else, so a
// stale reference finds it inactive: every method refuses or does nothing.
// A tunnel's Stream (Detach, Tunnel) is not reused: its handler holds it
// for the connection's life and may still call it from work queued before
// the close, which must not reach another connection's exchange.
func (l *Loop) releaseStream(s *Stream) {
	l.inUse--
	s.releaseFields()
	if s.dec != nil {
		l.releaseDecoder(s.dec)
	}
	tunnel := s.tunnel
	*s = Stream{c: s.c}
	if !tunnel {
		l.streams = append(l.streams, s)
	}
}

// buffer returns an empty field buffer for a stream.
func (l *Loop) buffer() []byte {
	l.inUse++
	if n := len(l.bufs); n > 0 {
		b := l.bufs[n-1]
		l.bufs = l.bufs[:n-1]
		return b
	}
	return make([]byte, 0, 256)
}

// release takes back a stream's field buffer, so that an idle connection
// holds none; oversized ones are left to the garbage collector.
func (l *Loop) release(b []byte) {
	l.inUse--
	if cap(b) > 0 && cap(b) <= 16<<10 {
		l.bufs = append(l.bufs, b[:0])
	}
}

// NewLoop returns the shared state for the connections of one loop. cfg
// must be resolved (Config.Resolve); date may be shared by all loops.
func NewLoop(cfg *Config, date *codec.DateCache) *Loop {
	if date == nil {
		date = new(codec.DateCache)
	}
	return &Loop{cfg: cfg, date: date, scratch: make([]byte, 0, 512)}
}

func (l *Loop) decoder() *codec.ChunkedDecoder {
	l.inUse++
	if n := len(l.decoders); n > 0 {
		d := l.decoders[n-1]
		l.decoders = l.decoders[:n-1]
		d.Reset()
		return d
	}
	return new(codec.ChunkedDecoder)
}

func (l *Loop) releaseDecoder(d *codec.ChunkedDecoder) {
	l.inUse--
	l.decoders = append(l.decoders, d)
}

// phase is where a connection is in reading its input.
type phase uint8

const (
	phaseHead     phase = iota // between requests, or inside a request head
	phaseIgnored               // an Upgrade was ignored: bytes already here close the connection
	phaseBody                  // delivering a request body to the handler
	phaseWait                  // body read; waiting for the response to end
	phaseDiscard               // response ended; dropping the rest of the body
	phaseTunnel                // after CONNECT 2xx or 101: input is raw bytes for the handler
	phaseClosing               // lingering close: output drains, write side shut, input dropped
	phaseFlushing              // the peer has finished: output drains, then close
	phaseClosed
)

// ServerConn is the state machine of one server connection: it parses
// requests from the Conn's input, hands them to the Handler one at a time,
// frames the responses and keeps the timeouts. Its methods are called only
// on the connection's loop. It does not allocate in steady state.
//
// Every idle keep-alive connection holds one, so it holds only what
// outlives an exchange (96 bytes, pinned by a test): the Stream of an
// exchange comes from the loop's pool and goes back when it is over.
type ServerConn struct {
	loop *Loop
	conn Conn
	h    Handler

	stream *Stream // the exchange in progress, or nil

	// Times are Unix nanoseconds (8 bytes, not time.Time's 24: every
	// idle connection holds them).
	now        int64
	idle       time.Duration // this connection's IdleTimeout (SetIdleTimeout)
	headStart  int64         // when the current request head started to be awaited
	lastActive int64         // last read or write, for IdleTimeout
	parsedLen  int32         // input length at the last incomplete head parse
	gen        uint32        // exchanges begun, across the connections of this ServerConn (Stream.Gen)

	// Small fields last, together, so the struct packs tight.
	phase      phase
	served     bool // a request has been taken on this connection
	inProcess  bool // process is on the stack: nested calls only mark work
	overWater  bool // output is above HighWater; waiting for OnDrain
	closeAfter bool // close once the current response has ended
	lastOne    bool // the next request taken is the connection's last (LastRequest)
	idleKeep   bool // the handler kept the connection on an idle timeout
	panicked   bool
}

// NewServerConn returns the state machine for a new connection. Call Open
// next, on the connection's loop.
func (l *Loop) NewServerConn(conn Conn, h Handler) *ServerConn {
	return &ServerConn{loop: l, conn: conn, h: h, idle: l.cfg.IdleTimeout}
}

// Reset prepares a ServerConn taken from a pool for a new connection.
func (c *ServerConn) Reset(conn Conn, h Handler) {
	*c = ServerConn{loop: c.loop, conn: conn, h: h, idle: c.loop.cfg.IdleTimeout, gen: c.gen}
}

// Open starts the connection: the headers timeout runs from now.
func (c *ServerConn) Open(now time.Time) {
	n := now.UnixNano()
	c.now, c.headStart, c.lastActive = n, n, n
	c.armTimer()
}

// OnData is called when new input is available.
func (c *ServerConn) OnData(now time.Time) {
	c.now = now.UnixNano()
	c.lastActive = c.now
	c.idleKeep = false
	c.process()
	if c.phase < phaseClosing && len(c.conn.Input()) > c.loop.cfg.MaxUnread {
		c.loop.stats.TooMuchUnread++
		c.giveUp(ErrTooMuchUnread)
		return
	}
	c.armTimer()
}

// OnEOF is called when the peer has finished sending (a read returned
// end of file). Complete requests already buffered are answered; a
// request cut short is dropped (RFC 9112 §8: an incomplete message is
// never handed on as complete), and the connection closes once the
// response in progress, if any, has ended.
func (c *ServerConn) OnEOF(now time.Time) {
	c.now = now.UnixNano()
	c.parsedLen = 0 // no more bytes will come: parse what is there
	c.process()
	switch {
	case c.phase >= phaseClosing:
		if c.phase == phaseClosing {
			c.peerDone(nil) // the lingering is over
		}
	case c.phase == phaseBody || c.phase == phaseDiscard:
		c.peerDone(ErrBodyIncomplete)
	case c.phase == phaseTunnel:
		s := c.stream
		c.callEnd(s, nil) // the peer's half of the tunnel is done
		if s.ended {
			c.peerDone(nil)
		}
	case c.stream != nil && !c.stream.ended:
		c.closeAfter = true // answer what is in progress, then close
		c.conn.Discard(len(c.conn.Input()))
	default:
		c.peerDone(nil)
	}
}

// OnDrain is called when output that had waited for the socket has been
// written (some or all of it): progress on the wire. It counts as activity
// for the idle timeout; once the output is below HighWater after having
// been over, the handler hears Drain and pipelined requests are taken
// again; once all of it is out, the keep-alive timeout (or the lingering
// close) starts counting.
func (c *ServerConn) OnDrain(now time.Time) {
	c.now = now.UnixNano()
	c.lastActive = c.now
	if c.phase == phaseClosed {
		return
	}
	if c.conn.Buffered() == 0 {
		switch {
		case c.phase == phaseFlushing:
			c.closeNow()
			return
		case c.phase == phaseClosing || c.phase == phaseHead && c.stream == nil:
			c.headStart = c.now // the keep-alive wait, or the lingering, starts now
		}
	}
	if c.overWater && c.conn.Buffered() < c.loop.cfg.HighWater {
		c.overWater = false
		if s := c.stream; s != nil && !s.ended {
			c.callDrain(s)
		}
		c.process()
	}
	c.armTimer()
}

// SetNow tells the connection the time, for a call that did not come with
// one (work handed to the loop from another goroutine), so that writes it
// makes count as activity at the right time.
func (c *ServerConn) SetNow(now time.Time) { c.now = now.UnixNano() }

// WantsInput reports whether the transport should read more input. It does
// not while output waits for the socket (a FIN read then could close the
// connection before that output is out), while the body is paused, while
// the output is over HighWater, or while an exchange is in progress past
// its body (the next pipelined request waits in the kernel, and the peer's
// FIN with it, so a half-closed peer still gets every answer). The
// transport stops reading the socket meanwhile, so TCP flow control holds
// the peer.
func (c *ServerConn) WantsInput() bool {
	if c.conn.Buffered() > 0 {
		return false
	}
	switch c.phase {
	case phaseHead:
		return c.stream == nil && !c.overWater && !c.closeAfter
	case phaseBody, phaseTunnel:
		return !c.stream.paused && !c.overWater
	case phaseDiscard, phaseClosing:
		return true
	}
	return false
}

// Shutdown asks the connection to close gracefully: at once when it is
// between requests with nothing of the next one received, else once the
// response in progress has ended (with Connection: close if its head has
// not gone out). A request that has begun arriving is left to come: with
// Loop.Drain it is answered, then the connection closes.
func (c *ServerConn) Shutdown() {
	if c.phase >= phaseClosing {
		return
	}
	if c.phase == phaseHead && c.stream == nil && len(c.conn.Input()) > 0 {
		return
	}
	c.closeAfter = true
	if c.stream == nil {
		c.close(nil)
	}
}

// LastRequest makes the next request the connection takes its last: its
// response carries Connection: close, then the connection closes. It is
// Loop.Drain for one connection (one accepted while its server stops).
// It cannot be undone.
func (c *ServerConn) LastRequest() { c.lastOne = true }

// Idle reports whether the connection is between requests with nothing of
// the next one received and no output waiting, since when (Unix
// nanoseconds: the end of the last response, or the open), and whether
// it has served a request.
func (c *ServerConn) Idle() (since int64, served, ok bool) {
	if c.phase != phaseHead || c.stream != nil || len(c.conn.Input()) > 0 || c.conn.Buffered() > 0 {
		return 0, false, false
	}
	return c.headStart, c.served, true
}

// SetIdleTimeout changes this connection's idle timeout (0 or Disabled
// turns it off) and restarts it.
func (c *ServerConn) SetIdleTimeout(d time.Duration) {
	if d == 0 {
		d = Disabled
	}
	c.idle, c.lastActive = d, c.now
	if c.phase < phaseClosing {
		c.armTimer()
	}
}

// WantsDrain reports whether the engine waits for OnDrain: its output went
// over HighWater.
func (c *ServerConn) WantsDrain() bool { return c.overWater }

// Closed reports whether the connection has closed.
func (c *ServerConn) Closed() bool { return c.phase == phaseClosed }

// process works through the buffered input as far as it can: request
// heads, bodies, pipelined requests. It never runs twice on the stack: a
// nested call (a response ended from inside a handler) only lets the outer
// loop go on.
func (c *ServerConn) process() {
	if c.inProcess {
		return
	}
	c.inProcess = true
	defer func() { c.inProcess = false }()
	for c.step() {
	}
}

// step takes one step of process and reports whether another may follow.
func (c *ServerConn) step() bool {
	switch c.phase {
	case phaseHead:
		return c.readHead()
	case phaseIgnored:
		return c.afterIgnoredUpgrade()
	case phaseBody:
		return c.readBody(true)
	case phaseDiscard:
		return c.readBody(false)
	case phaseTunnel:
		return c.readTunnel()
	case phaseClosing:
		c.conn.Discard(len(c.conn.Input()))
	}
	return false
}

// readHead parses the next request head, if the previous exchange is over
// and the output has room.
func (c *ServerConn) readHead() bool {
	if c.stream != nil || c.overWater || c.closeAfter {
		return false
	}
	in := c.conn.Input()
	if len(in) == 0 || !c.worthParsing(in) {
		return false
	}
	if c.conn.Buffered() >= c.loop.cfg.HighWater {
		// Responses ended with End never ask Write's question: check
		// here, so a peer that does not read cannot grow the output.
		c.overWater = true
		return false
	}
	req := &c.loop.req
	n, err := codec.ParseRequest(in, req, &c.loop.cfg.Limits)
	if err != nil {
		c.protocolError(err, nil)
		// The lingering close drops the bad input in the next step, in
		// this event: left buffered, it could pass MaxUnread.
		return c.phase == phaseClosing
	}
	if n == 0 {
		c.parsedLen = int32(len(in))
		return false
	}
	c.parsedLen = 0
	c.startRequest(req, n)
	return c.phase < phaseClosing
}

// worthParsing decides whether an incomplete head is worth parsing again:
// only once a new line has arrived, or the input has doubled. A peer that
// trickles a head byte by byte then costs linear, not quadratic, work; the
// outcome is the same, since errors show within a line or at the limits.
func (c *ServerConn) worthParsing(in []byte) bool {
	p := int(c.parsedLen)
	if p == 0 || p >= len(in) || len(in) >= 2*p {
		return true
	}
	return bytes.IndexByte(in[p:], '\n') >= 0
}

// startRequest begins the exchange for a parsed head of n bytes.
func (c *ServerConn) startRequest(req *codec.Request, n int) {
	c.loop.stats.Requests++
	c.served = true
	c.gen++
	s := c.loop.stream(c)
	s.begin(req, c.gen)
	c.stream = s
	// A CONNECT the handler does not turn into a tunnel ends the
	// connection: the client may have sent tunnel data after the head,
	// which must never be read as requests (RFC 9110 §9.3.6).
	c.closeAfter = c.lastOne || c.loop.draining || !req.KeepAlive || s.isConnect || s.upgrade && c.bytesAfter(req, n)
	s.framing, s.remaining = req.Framing, req.ContentLength
	if req.ExpectOther {
		// RFC 9110 §10.1.1: an expectation we cannot meet gets 417.
		c.conn.Discard(n)
		c.closeAfter = true
		s.bodyDone = true
		c.callRequestFailed(s, 417)
		return
	}
	body := s.framing != codec.FramingNone
	if req.ExpectContinue && body && !c.loop.cfg.ManualContinue && len(c.conn.Input()) == n {
		// RFC 9110 §10.1.1: answer 100 only while the body has not started.
		s.WriteContinue()
	}
	c.phase = phaseBody
	if s.framing == codec.FramingChunked {
		s.dec = c.loop.decoder()
	}
	c.callRequest(s, req)
	c.conn.Discard(n) // req's views die here, after the handler has returned
	if !body && c.phase == phaseBody {
		c.bodyEnd(nil)
	}
}

// bytesAfter reports whether input beyond the request whose head is n
// bytes long has arrived already. With an Upgrade request such bytes are
// data for the new protocol: the answer then says the connection closes.
// A chunked body's end is not known here; afterIgnoredUpgrade covers it.
func (c *ServerConn) bytesAfter(req *codec.Request, n int) bool {
	extra := int64(len(c.conn.Input()) - n)
	switch req.Framing {
	case codec.FramingNone:
		return extra > 0
	case codec.FramingLength:
		return extra > req.ContentLength
	}
	return false
}

// readBody moves request body bytes from the input to the handler (or,
// when deliver is false, drops them). It reports whether it made progress.
func (c *ServerConn) readBody(deliver bool) bool {
	s := c.stream
	in := c.conn.Input()
	if len(in) == 0 || deliver && s.paused {
		return false
	}
	if s.framing == codec.FramingLength {
		n := int(min(s.remaining, int64(len(in))))
		s.remaining -= int64(n)
		done := s.remaining == 0
		if deliver {
			s.bodySeen = true
			c.callBody(s, in[:n])
		}
		c.conn.Discard(n)
		if done && c.stream == s { // else the handler's callback closed the connection
			c.bodyEnd(nil)
		}
		return c.phase < phaseClosing
	}
	n, data, done, err := s.dec.Decode(in, &c.loop.cfg.Limits)
	if err != nil {
		c.protocolError(err, s)
		return c.phase == phaseClosing // as in readHead
	}
	if deliver && len(data) > 0 {
		s.bodySeen = true
		c.callBody(s, data)
		if c.stream != s { // the handler's callback closed the connection
			return false
		}
	}
	if !deliver && c.discardedTooMuch(int64(len(data))) {
		return false
	}
	if done {
		c.bodyEnd(s.dec.Trailers) // trailers are views into in: end before Discard
	}
	c.conn.Discard(n)
	return n > 0 && c.phase < phaseClosing
}

// readTunnel hands every input byte to the handler as tunnel data.
func (c *ServerConn) readTunnel() bool {
	in := c.conn.Input()
	if len(in) == 0 || c.stream.paused {
		return false
	}
	c.callBody(c.stream, in)
	if c.phase == phaseTunnel {
		c.conn.Discard(len(in))
	}
	return false
}

// discardedTooMuch counts dropped body bytes and closes the connection
// once they pass MaxDiscard (RFC 9112 §9.3: discard a bounded remainder or
// close).
func (c *ServerConn) discardedTooMuch(n int64) bool {
	s := c.stream
	s.remaining += n
	if s.remaining > c.loop.cfg.MaxDiscard {
		c.close(ErrConnClosed)
		return true
	}
	return false
}

// bodyEnd is reached when the request body is complete. trailers are
// views into the input and the decoder, so both live until End returns.
func (c *ServerConn) bodyEnd(trailers []codec.Header) {
	s := c.stream
	deliver := c.phase == phaseBody
	s.bodyDone = true
	c.phase = phaseWait
	dec := s.dec
	s.dec = nil
	if deliver {
		c.callEnd(s, trailers) // may end the response, and so the exchange
	}
	if dec != nil {
		c.loop.releaseDecoder(dec)
	}
	// When the handler ended the response in End, the exchange is over
	// and the phase has moved on (s may then serve another).
	if c.phase == phaseWait && s.ended {
		c.finish()
	}
}

// responseEnded is called by the stream when its response is complete.
func (c *ServerConn) responseEnded() {
	s := c.stream
	if s.closeConn {
		c.closeAfter = true
	}
	switch {
	case c.phase >= phaseClosing:
		return
	case s.bodyDone:
		c.finish()
	case c.phase == phaseBody && s.framing == codec.FramingNone:
		// Answered inside Request: startRequest goes on to bodyEnd,
		// which delivers End and finishes the exchange.
	case c.phase == phaseBody:
		// The handler answered without reading the whole body: drop the
		// rest, up to MaxDiscard (RFC 9112 §9.3).
		if s.framing == codec.FramingLength && s.remaining > c.loop.cfg.MaxDiscard || c.closeAfter {
			c.finishStream(nil)
			c.close(nil)
			return
		}
		c.phase = phaseDiscard
		if s.framing == codec.FramingChunked {
			s.remaining = 0
		}
		c.finishStream(nil)
	}
	if !c.inProcess && c.phase < phaseClosing {
		c.process()
		c.conn.Flush()
		c.armTimer()
	}
}

// finish ends the exchange and readies the connection for the next
// request, or closes it.
func (c *ServerConn) finish() {
	ignored := c.stream.upgrade && !c.stream.tunnel
	c.finishStream(nil)
	c.dropStream()
	if c.phase >= phaseClosing {
		return // Handler.Close panicked, and the connection closes for it
	}
	if c.closeAfter {
		c.close(nil)
		return
	}
	c.phase = phaseHead
	if ignored {
		c.phase = phaseIgnored
	}
	c.headStart = c.now
}

// afterIgnoredUpgrade follows an exchange whose request asked to switch
// protocols and got an ordinary answer (RFC 9110 §7.8 lets a server ignore
// Upgrade). Bytes that came after that request before its answer ended
// were sent for the new protocol, optimistically: they are never parsed as
// HTTP, and the connection closes. With none, the connection goes on as
// usual; what comes later is a new request, sent after the answer was
// seen. process always takes this step right after finish, once the
// request's own bytes are consumed.
func (c *ServerConn) afterIgnoredUpgrade() bool {
	if len(c.conn.Input()) > 0 {
		c.close(nil)
		return false
	}
	c.phase = phaseHead
	return true
}

// finishStream reports the end of the exchange to the handler, once. The
// stream stays active (blocking the next request) until finish.
func (c *ServerConn) finishStream(err error) {
	s := c.stream
	if s == nil || s.finished {
		return
	}
	s.finished = true
	c.callClose(s, err)
}

// protocolError answers a codec error with its status and a staged close
// (RFC 9112 §9.6). s is the stream whose body broke, or nil for a head.
func (c *ServerConn) protocolError(err error, s *Stream) {
	c.loop.countProtocolError(err)
	status := 400
	var ce codec.Error
	if errors.As(err, &ce) {
		status = ce.Status()
	}
	if s != nil {
		if !s.headSent {
			s.writeError(status)
		}
		c.abortStream(err)
	} else {
		c.writeErrorFor(status)
	}
	if eh, ok := c.h.(ProtocolErrorHandler); ok {
		c.callProtocolError(eh, err)
	}
	c.stageClose()
}

// ProtocolErrorHandler is implemented by handlers that want to hear of
// malformed input (Node's 'clientError'). It is called after the error
// response has been written, before the staged close.
type ProtocolErrorHandler interface {
	ProtocolError(conn Conn, err error)
}

func (c *ServerConn) callProtocolError(eh ProtocolErrorHandler, err error) {
	defer c.recoverHandler(c.stream, genOf(c.stream))
	eh.ProtocolError(c.conn, err)
}

// stageClose closes the connection in stages (RFC 9112 §9.6): the write
// side is shut once every byte of output has reached the kernel, then
// input is read and dropped until the peer closes, so a peer still sending
// (a body the server chose not to read, pipelined requests) reads the
// answer instead of a reset. See closingDeadline for how long.
func (c *ServerConn) stageClose() {
	if c.phase >= phaseClosing {
		return
	}
	c.phase = phaseClosing
	c.headStart, c.lastActive = c.now, c.now
	c.conn.CloseWrite() // input is dropped by step, once the current parse is done with it
	c.armTimer()
}

// close ends the connection: err, if not nil, cuts short a stream in
// progress; then the staged close.
func (c *ServerConn) close(err error) {
	if c.phase >= phaseClosing {
		return
	}
	if err == nil {
		err = ErrConnClosed
	}
	c.abortStream(err)
	if c.phase == phaseHead && len(c.conn.Input()) == 0 && c.conn.Buffered() == 0 {
		// Between requests with nothing unread and nothing to send (a
		// keep-alive or idle timeout, a shutdown): a plain close sends
		// a FIN, and there is nothing to linger for.
		c.closeNow()
		return
	}
	c.stageClose()
}

// giveUp closes the connection at once, output still pending included: a
// peer that neither reads nor sends for IdleTimeout, or sends more than
// MaxUnread without reading. err cuts short a stream in progress.
func (c *ServerConn) giveUp(err error) {
	c.abortStream(err)
	c.closeNow()
}

// peerDone closes the connection once its output has drained, after the
// peer has finished sending (end of file): there is nothing to linger
// for. err, if not nil, cuts short a stream in progress.
func (c *ServerConn) peerDone(err error) {
	if err == nil {
		err = ErrConnClosed
	}
	c.abortStream(err)
	if c.conn.Buffered() == 0 {
		c.closeNow()
		return
	}
	c.phase = phaseFlushing
	c.conn.Flush()
	c.armTimer()
}

// closeNow closes the connection at once: the staged close is over, or
// was given up on.
func (c *ServerConn) closeNow() {
	if c.phase == phaseClosed {
		return
	}
	c.abortStream(ErrConnClosed)
	c.phase = phaseClosed
	c.conn.SetDeadline(time.Time{})
	c.conn.Close()
}

// closingDeadline is when (Unix nanoseconds) a staged close gives up, or 0
// for never. While output still waits for the socket, a peer that reads
// keeps the connection: only the idle timeout, counted from the last
// progress, ends it. Once the write side is shut, the lingering lasts
// until CloseDrainTimeout passes with no input, and LingerTime at most.
func (c *ServerConn) closingDeadline() int64 {
	if c.phase == phaseFlushing || c.conn.Buffered() > 0 {
		return c.idleDeadline()
	}
	cfg := c.loop.cfg
	var d int64
	if cfg.CloseDrainTimeout != Disabled {
		d = c.lastActive + int64(cfg.CloseDrainTimeout)
	}
	if cfg.LingerTime != Disabled {
		if cap := c.headStart + int64(cfg.LingerTime); d == 0 || cap < d {
			d = cap
		}
	}
	return d
}

// OnClose is called by the transport when the connection has closed, for
// whatever reason. It is safe to call more than once.
func (c *ServerConn) OnClose(now time.Time) {
	c.now = now.UnixNano()
	err := ErrConnClosed
	if c.phase == phaseBody {
		err = ErrBodyIncomplete
	}
	c.abortStream(err)
	c.phase = phaseClosed
}

func (c *ServerConn) abortStream(err error) {
	c.finishStream(err)
	c.dropStream()
}

// dropStream gives the Stream of the exchange back to the loop.
func (c *ServerConn) dropStream() {
	if s := c.stream; s != nil {
		c.stream = nil
		c.loop.releaseStream(s)
	}
}

// writeErrorFor sends an error response when no exchange is in progress
// (a head that failed to parse or arrive), on a Stream of its own.
func (c *ServerConn) writeErrorFor(status int) {
	s := c.loop.stream(c)
	s.active, s.minor = true, 1
	s.writeError(status)
	c.loop.releaseStream(s)
}

// OnTimer is called when the deadline set with Conn.SetDeadline passes.
func (c *ServerConn) OnTimer(now time.Time) {
	c.now = now.UnixNano()
	switch c.phase {
	case phaseClosed:
		return
	case phaseClosing, phaseFlushing:
		if d := c.closingDeadline(); d != 0 && c.now >= d {
			c.closeNow()
			return
		}
		c.armTimer()
		return
	}
	if d := c.headDeadline(); d != 0 && c.now >= d {
		c.loop.stats.Timeouts[c.headTimeoutKind()]++
		if len(c.conn.Input()) > 0 {
			// A head that did not complete in time: 408 (RFC 9110
			// §15.5.9), then close.
			c.writeErrorFor(408)
		}
		c.close(ErrHeadersTimeout)
		return
	}
	if d := c.idleDeadline(); d != 0 && c.now >= d {
		if th, ok := c.h.(TimeoutHandler); ok && c.callTimeout(th, c.stream) {
			c.lastActive, c.idleKeep = c.now, true
		} else {
			c.loop.stats.Timeouts[TimeoutIdle]++
			c.giveUp(ErrIdleTimeout)
			return
		}
	}
	c.armTimer()
}

// TimeoutHandler is implemented by handlers that want to decide what an
// idle timeout does (Node's 'timeout' event). s is the exchange in
// progress, or nil between requests. Returning true keeps the connection
// and restarts the timer.
type TimeoutHandler interface {
	Timeout(conn Conn, s *Stream) bool
}

// headDeadline is when (Unix nanoseconds) the awaited request head must be
// complete, or 0.
func (c *ServerConn) headDeadline() int64 {
	if c.phase != phaseHead || c.stream != nil || c.closeAfter || c.conn.Buffered() > 0 {
		return 0 // while output still waits for the socket, only the idle timeout runs
	}
	waiting := len(c.conn.Input()) == 0 && c.served
	if waiting && c.loop.cfg.KeepAliveTimeout != Disabled {
		return c.headStart + int64(c.loop.cfg.KeepAliveTimeout)
	}
	if c.loop.cfg.HeadersTimeout == Disabled {
		return 0
	}
	return c.headStart + int64(c.loop.cfg.HeadersTimeout)
}

// idleDeadline is when (Unix nanoseconds) the idle timeout fires, or 0.
func (c *ServerConn) idleDeadline() int64 {
	if c.idle == Disabled {
		return 0
	}
	return c.lastActive + int64(c.idle)
}

// armTimer sets the connection's one timer to the nearest deadline.
func (c *ServerConn) armTimer() {
	var d int64
	switch c.phase {
	case phaseClosed:
		return
	case phaseClosing, phaseFlushing:
		d = c.closingDeadline()
	default:
		d = c.headDeadline()
		if i := c.idleDeadline(); i != 0 && (d == 0 || i < d) {
			d = i
		}
	}
	if d == 0 {
		c.conn.SetDeadline(time.Time{})
		return
	}
	c.conn.SetDeadline(time.Unix(0, d))
}

// The call* methods run handler callbacks, recovering a panic: it is
// logged with its stack, answered with 500 if the head is not out, and the
// connection is closed; the server carries on.

func (c *ServerConn) callRequest(s *Stream, req *codec.Request) {
	defer c.recoverHandler(s, genOf(s))
	c.h.Request(s, req)
}

func (c *ServerConn) callBody(s *Stream, chunk []byte) {
	defer c.recoverHandler(s, genOf(s))
	c.h.Body(s, chunk)
}

func (c *ServerConn) callEnd(s *Stream, trailers []codec.Header) {
	defer c.recoverHandler(s, genOf(s))
	c.h.End(s, trailers)
}

func (c *ServerConn) callDrain(s *Stream) {
	defer c.recoverHandler(s, genOf(s))
	c.h.Drain(s)
}

func (c *ServerConn) callTimeout(th TimeoutHandler, s *Stream) bool {
	defer c.recoverHandler(s, genOf(s))
	return th.Timeout(c.conn, s)
}

func (c *ServerConn) callClose(s *Stream, err error) {
	defer c.recoverHandler(s, genOf(s))
	c.h.Close(s, err)
}

// genOf returns the exchange number of s, 0 for nil.
func genOf(s *Stream) uint32 {
	if s == nil {
		return 0
	}
	return s.gen
}

// callRequestFailed answers a request the engine refuses before the
// handler sees it; the handler hears nothing of it, not even Close.
func (c *ServerConn) callRequestFailed(s *Stream, status int) {
	s.writeError(status)
	s.finished = true
	c.abortStream(nil)
	c.close(nil)
}

// recoverHandler recovers a panic of a handler callback about s (nil for
// one about the connection) in its exchange gen. The 500 goes only to that
// exchange: when the callback ended it and the pooled Stream already
// serves the next pipelined request, that request is not blamed.
func (c *ServerConn) recoverHandler(s *Stream, gen uint32) {
	v := recover()
	if v == nil {
		return
	}
	c.loop.cfg.Logger.Error("loophttp: handler panicked", "panic", v, "stack", string(debug.Stack()))
	if c.panicked {
		return // a panic in Close while closing after a panic
	}
	c.panicked = true
	if s != nil && s.active && s.gen == gen && !s.headSent && !s.ended {
		s.writeError(500)
	}
	c.close(ErrHandlerPanic) // Close still reaches the handler, with ErrHandlerPanic
}
