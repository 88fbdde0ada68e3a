package engine

import (
	"github.com/loophttp/loophttp/codec"
)

// Stream is one request/response exchange on a server connection. Streams
// are pooled per loop: once Handler.Close has been called for it, a Stream
// goes back to the pool and may serve a later exchange, of this connection
// or another of the loop, so a handler must not use it after that (a
// tunnel's Stream is never reused: see Detach); Gen tells the exchanges of
// a connection apart. Every method must be called on the connection's loop.
type Stream struct {
	c *ServerConn

	// Data belongs to the handler: it may keep its per-request state here.
	// The engine clears it when a new exchange begins.
	Data any

	// Request body state.
	remaining int64 // body bytes left (FramingLength) or to discard
	dec       *codec.ChunkedDecoder

	// Response state.
	reason  []byte // the handler's reason phrase; nil for the table's
	fields  []byte // serialised field lines set by the handler
	userLen int64  // Content-Length the handler set; -1 when none
	written int64  // body bytes written
	status  int32
	gen     uint32

	// Small fields last, together, so the struct packs tight.
	framing   codec.Framing // of the request body
	isHead    bool          // responses to HEAD carry no body
	isConnect bool          // a 2xx answer opens a tunnel
	upgrade   bool          // the request asked to switch protocols
	minor     uint8         // HTTP/1.minor of the request
	reqKeep   bool          // the request allows the connection to persist
	userTE    bool          // the handler set Transfer-Encoding: chunked
	userClose bool          // the handler set Connection: close
	userDate  bool          // the handler set Date: the engine adds none
	chunked   bool          // the body is sent chunked
	noBody    bool          // the response must not carry a body
	active    bool          // an exchange is in progress
	headSent  bool
	ended     bool
	finished  bool // Handler.Close was called
	bodyDone  bool // the request body has been read (or dropped) in full
	closeConn bool // the connection closes after this response
	paused    bool
	tunnel    bool // the connection carries raw bytes after the head
	bodySeen  bool // a request body chunk has reached Handler.Body
}

// begin starts exchange number gen of its connection for req.
func (s *Stream) begin(req *codec.Request, gen uint32) {
	*s = Stream{c: s.c, gen: gen, userLen: -1}
	s.active = true
	s.isHead = string(req.Method) == "HEAD"
	s.isConnect = string(req.Method) == "CONNECT"
	s.upgrade = req.Upgrade != nil
	s.minor = req.Minor
	s.reqKeep = req.KeepAlive
	s.status = 200
}

// Conn returns the transport of the stream's connection (for package
// poller, its *poller.Conn).
func (s *Stream) Conn() Conn { return s.c.conn }

// Loop returns the loop the stream's connection runs on (for its Data).
func (s *Stream) Loop() *Loop { return s.c.loop }

// Gen returns the number of this exchange on its connection; a stale
// reference to a reused Stream can be told by a changed Gen.
func (s *Stream) Gen() uint32 { return s.gen }

// HeadSent reports whether the response head has been written.
func (s *Stream) HeadSent() bool { return s.headSent }

// Ended reports whether the response has been ended.
func (s *Stream) Ended() bool { return s.ended }

// Pause stops delivering the request body until Resume. Input then stays
// buffered in the transport.
func (s *Stream) Pause() { s.paused = true }

// Resume delivers the request body again.
func (s *Stream) Resume() {
	if !s.paused {
		return
	}
	s.paused = false
	if c := s.c; !c.inProcess && c.phase < phaseClosing {
		c.process()
		c.conn.Flush()
		c.armTimer()
	}
}

// SetHead sets the status, the reason phrase (empty for the status table's)
// and replaces the header fields of the response, before the head is sent.
// Fields are validated (no CR, LF, NUL or other CTL; token names) and copied.
// Content-Length, Transfer-Encoding and Connection set here are honoured
// when framing the response; Date is added by the engine unless set here.
func (s *Stream) SetHead(status int, reason string, fields []codec.Header) error {
	if s.ended || !s.active {
		return ErrStreamDone
	}
	if s.headSent {
		return ErrHeadSent
	}
	if status < 200 || status > 599 {
		return codec.ErrStatus // 1xx go through WriteInformation
	}
	s.fields, s.userLen, s.userTE, s.userClose, s.userDate = s.fields[:0], -1, false, false, false
	for _, f := range fields {
		if err := appendField(s, f.Name, f.Value); err != nil {
			// Refused as a whole: no field, and no framing from the
			// fields before the bad one.
			s.fields, s.userLen, s.userTE, s.userClose, s.userDate = s.fields[:0], -1, false, false, false
			return err
		}
	}
	s.status, s.reason = int32(status), nil
	if reason != "" {
		if _, err := codec.AppendStatusLineReason(nil, status, reason); err != nil {
			return err
		}
		s.reason = append(s.reason[:0], reason...)
	}
	return nil
}

// releaseFields returns the field buffer to the loop.
func (s *Stream) releaseFields() {
	if s.fields != nil {
		s.c.loop.release(s.fields)
		s.fields = nil
	}
}

// ResetHead starts the head again, before it is sent: status, reason (""
// for the table's) and no fields. AddField then adds them one by one, with
// no copy of the caller's strings into a header slice.
func (s *Stream) ResetHead(status int, reason string) error {
	return s.SetHead(status, reason, nil)
}

// AddField adds one header field to the head set by SetHead or ResetHead,
// validated like SetHead's fields.
func (s *Stream) AddField(name, value string) error {
	if err := s.headOpen(); err != nil {
		return err
	}
	return appendField(s, name, value)
}

// AddCheckedField is AddField for a field the caller has already checked
// with codec.ValidHeader (the api does when the field is set): it is not
// validated again. The framing fields are still interpreted and refused
// as by AddField. A field that would fail ValidHeader corrupts the head.
func (s *Stream) AddCheckedField(name, value string) error {
	if err := s.headOpen(); err != nil {
		return err
	}
	return addLine(s, name, value)
}

// headOpen reports why fields can no longer be added, or nil.
func (s *Stream) headOpen() error {
	if s.ended || !s.active {
		return ErrStreamDone
	}
	if s.headSent {
		return ErrHeadSent
	}
	return nil
}

// appendField validates one field and appends it to the head, from either
// kind of string, noting the framing fields.
func appendField[T string | []byte](s *Stream, name, value T) error {
	if err := codec.ValidHeader(name, value); err != nil {
		return err
	}
	return addLine(s, name, value)
}

// addLine appends the line of one valid field to the head, unless its
// framing is refused, noting the framing fields.
func addLine[T string | []byte](s *Stream, name, value T) error {
	if err := noteFraming(s, name, value); err != nil {
		return err // refused: not in the head
	}
	if s.fields == nil {
		s.fields = s.c.loop.buffer()
	}
	s.fields = append(s.fields, name...)
	s.fields = append(s.fields, ':', ' ')
	s.fields = append(s.fields, value...)
	s.fields = append(s.fields, '\r', '\n')
	return nil
}

// noteFraming records the framing fields among the handler's fields (and
// Date, which replaces the engine's), or refuses one the engine cannot
// honour (before it joins the head).
func noteFraming[T string | []byte](s *Stream, name, value T) error {
	switch {
	case asciiEqualFold(name, "content-length"):
		n, ok := parseLength(value)
		if !ok || s.userTE || s.userLen >= 0 {
			// RFC 9110 §8.6, RFC 9112 §6.2: one length, never beside
			// Transfer-Encoding, or the peer cannot tell where the
			// body ends.
			return codec.ErrContentLength
		}
		s.userLen = n
	case asciiEqualFold(name, "transfer-encoding"):
		if !asciiEqualFold(value, "chunked") || s.userTE || s.userLen >= 0 {
			return codec.ErrTransferCoding // the engine encodes only chunked, once, without a length
		}
		s.userTE = true
	case asciiEqualFold(name, "connection"):
		s.userClose = s.userClose || containsToken(value, "close")
	case asciiEqualFold(name, "date"):
		s.userDate = true
	}
	return nil
}

// Write sends body bytes, sending the head first if it has not gone out. It
// reports false when the output is over HighWater: the handler should wait
// for Handler.Drain before writing more (the bytes were still taken).
func (s *Stream) Write(p []byte) (bool, error) {
	if s.ended || !s.active {
		return false, ErrStreamDone
	}
	if !s.headSent {
		s.sendHead(-1, nil)
	}
	if len(p) > 0 {
		if err := s.writeBody(p); err != nil {
			return false, err
		}
	}
	return s.below(), nil
}

// Tunnel answers a CONNECT with a 2xx status, or an Upgrade request with
// 101, and turns the connection into a byte pipe (RFC 9110 §9.3.6, §7.8):
// the head carries no framing fields, every later input byte (including
// any already buffered) reaches Handler.Body, Write sends raw bytes, End
// sends its bytes and closes the connection. Nothing after it is parsed as
// HTTP.
//
// Like Detach, it is refused with ErrBodyStarted once a request body chunk
// has reached Handler.Body: the rest of the body cannot become tunnel bytes.
func (s *Stream) Tunnel(status int, fields []codec.Header) error {
	if s.headSent || s.ended || !s.active {
		return ErrHeadSent
	}
	if s.bodySeen {
		return ErrBodyStarted
	}
	switch {
	case status == 101 && s.upgrade:
	case status >= 200 && status < 300 && s.isConnect:
	default:
		return codec.ErrStatus
	}
	if err := s.writeBareHead(status, fields); err != nil {
		return err
	}
	s.status = int32(status)
	s.c.loop.countResponse(s.status)
	s.detach()
	return nil
}

// Detach turns the connection into a byte pipe without writing anything:
// the handler writes the switch of protocols itself (Node's 'upgrade'
// event hands over the socket). Every later input byte reaches
// Handler.Body; Write sends raw bytes; End sends its bytes and closes.
//
// Call it from Handler.Request (or before the first body chunk): once a
// request body chunk has reached Handler.Body it is refused with
// ErrBodyStarted, as the body's framing still governs the input.
func (s *Stream) Detach() error {
	if s.headSent || s.ended || !s.active {
		return ErrHeadSent
	}
	if s.bodySeen {
		return ErrBodyStarted
	}
	s.detach()
	return nil
}

func (s *Stream) detach() {
	c := s.c
	s.headSent, s.tunnel = true, true
	s.bodyDone = true
	c.closeAfter = true
	c.phase = phaseTunnel
	if s.dec != nil {
		c.loop.releaseDecoder(s.dec)
		s.dec = nil
	}
}

// End sends p as the last body bytes and ends the response. When the head
// has not gone out yet, the body is framed with Content-Length.
func (s *Stream) End(p []byte) error {
	return s.EndTrailers(p, nil)
}

// EndTrailers is End with trailer fields, sent when the body is chunked
// (and dropped otherwise, as HTTP/1.1 has nowhere else to put them).
func (s *Stream) EndTrailers(p []byte, trailers []codec.Header) error {
	if s.ended || !s.active {
		return ErrStreamDone
	}
	if !s.headSent {
		n := int64(len(p))
		if s.userTE || len(trailers) > 0 && s.minor >= 1 && s.userLen < 0 {
			n = -1 // chunked, so the trailers can go out
		}
		if s.sendHead(n, p) {
			p = nil // it went out with the head
		}
	}
	if len(p) > 0 {
		if err := s.writeBody(p); err != nil {
			return err
		}
	}
	c := s.c
	switch {
	case s.tunnel:
		s.ended = true
		c.finishStream(nil)
		c.close(nil)
		return nil
	case s.chunked:
		out, err := codec.AppendLastChunk(c.loop.scratch[:0], trailers)
		if err != nil {
			return err
		}
		c.conn.Write(out)
	case s.userLen >= 0 && s.written < s.userLen && !s.noBody:
		// The declared length was not met: the framing is broken, so
		// the connection cannot carry another response.
		s.closeConn = true
	}
	s.ended = true
	c.lastActive = c.now
	if s.closeConn {
		c.closeAfter = true
	}
	c.responseEnded()
	return nil
}

func (s *Stream) writeBody(p []byte) error {
	c := s.c
	if s.noBody {
		// HEAD, 204 and 304 never carry a body (RFC 9112 §6.3): the
		// bytes are dropped, as Node does.
		s.written += int64(len(p))
		return nil
	}
	if s.userLen >= 0 && s.written+int64(len(p)) > s.userLen {
		return ErrLengthMismatch
	}
	s.written += int64(len(p))
	if s.chunked {
		c.conn.Write(codec.AppendChunkHeader(c.loop.scratch[:0], len(p)))
		c.conn.Write(p)
		c.conn.Write(crlf)
	} else {
		c.conn.Write(p)
	}
	c.lastActive = c.now
	return nil
}

var (
	crlf         = []byte("\r\n")
	continueLine = []byte("HTTP/1.1 100 Continue\r\n\r\n")
)

// below reports whether the output is under HighWater, noting when it is
// not so OnDrain can resume the connection.
func (s *Stream) below() bool {
	c := s.c
	if c.conn.Buffered() < c.loop.cfg.HighWater {
		return true
	}
	c.overWater = true
	return false
}

// sendHead writes the response head. length is the whole body's length
// when End knows it, or -1 when the body streams. It chooses the framing
// (RFC 9112 §6): no body for HEAD, 204 and 304; Content-Length when known;
// chunked on HTTP/1.1; else the body ends at close (HTTP/1.0).
//
// body, when not nil, is the whole body End is about to write: if it
// goes out as it is (no chunk framing, nothing dropped) and fits in the
// scratch space left after the head, it is written with the head in one
// Write, and sendHead reports true.
func (s *Stream) sendHead(length int64, body []byte) (bodySent bool) {
	c := s.c
	s.headSent = true
	// RFC 9110 §9.3.6: a 2xx to CONNECT carries no framing fields; answered
	// through End rather than Tunnel, the tunnel closes at once.
	connectOK := s.isConnect && s.status < 300
	s.noBody = s.status == 204 || s.status == 304 || connectOK
	if connectOK {
		c.closeAfter = true
	}
	s.closeConn = !s.reqKeep || s.userClose || c.closeAfter
	if !s.bodyDone && s.framing == codec.FramingLength && s.remaining > c.loop.cfg.MaxDiscard {
		// The unread body is more than the engine will drop: say now
		// that the connection closes (RFC 9112 §9.6).
		s.closeConn = true
	}
	b := c.loop.scratch[:0]
	if s.reason != nil {
		b, _ = codec.AppendStatusLineReason(b, int(s.status), s.reason)
	} else {
		b, _ = codec.AppendStatusLine(b, int(s.status))
	}
	b = append(b, s.fields...)
	switch {
	case s.noBody:
	case s.userLen >= 0:
		// The handler's Content-Length is already among the fields.
	case s.userTE && s.minor >= 1:
		s.chunked = true
	case length >= 0:
		b = append(b, "Content-Length: "...)
		b = appendLength(b, length)
		b = append(b, '\r', '\n')
	case s.isHead:
	case s.minor >= 1:
		s.chunked = true
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	default:
		s.closeConn = true // HTTP/1.0 without a length: close-delimited
	}
	if s.isHead {
		s.noBody = true
	}
	if !s.userDate {
		b = c.loop.appendDate(b, c.now) // RFC 9110 §6.6.1
	}
	if s.closeConn && !s.userClose {
		b = append(b, "Connection: close\r\n"...)
	} else if !s.closeConn && s.minor == 0 {
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	b = append(b, '\r', '\n')
	if len(body) > 0 && len(body) <= cap(b)-len(b) && !s.noBody && !s.chunked &&
		(s.userLen < 0 || int64(len(body)) <= s.userLen) {
		b = append(b, body...)
		s.written += int64(len(body))
		bodySent = true
	}
	c.loop.scratch = b[:0]
	c.conn.Write(b)
	c.lastActive = c.now
	c.loop.countResponse(s.status)
	return bodySent
}

// WriteContinue sends "100 Continue" (RFC 9110 §15.2.1) if the head has
// not gone out. With Config.ManualContinue the handler calls it to accept
// the body of an "Expect: 100-continue" request.
func (s *Stream) WriteContinue() {
	if !s.headSent && s.active && !s.ended {
		s.c.conn.Write(continueLine)
	}
}

// WriteInformation sends an interim 1xx response other than 101 (for
// example 103 Early Hints) before the final response.
func (s *Stream) WriteInformation(status int, fields []codec.Header) error {
	if s.headSent || s.ended || !s.active {
		return ErrHeadSent
	}
	if status < 100 || status > 199 || status == 101 {
		return codec.ErrStatus
	}
	return s.writeBareHead(status, fields)
}

// writeBareHead writes a head of exactly the status line and fields: no
// Date, no framing fields (interim responses and tunnel answers).
func (s *Stream) writeBareHead(status int, fields []codec.Header) error {
	c := s.c
	b, _ := codec.AppendStatusLine(c.loop.scratch[:0], status)
	for _, f := range fields {
		var err error
		if b, err = codec.AppendHeader(b, f.Name, f.Value); err != nil {
			return err
		}
	}
	b = append(b, '\r', '\n')
	c.loop.scratch = b[:0]
	c.conn.Write(b)
	return nil
}

// writeError sends a small error response for this exchange with
// Connection: close.
func (s *Stream) writeError(status int) {
	s.fields, s.userLen, s.userTE, s.userClose, s.userDate = s.fields[:0], -1, false, false, false
	s.status, s.reason = int32(status), nil
	s.c.closeAfter = true
	s.sendHead(0, nil)
	s.ended = true
}

// appendLength appends the decimal digits of n, which is not negative.
func appendLength(b []byte, n int64) []byte {
	var digits [20]byte
	i := len(digits) - 1
	for ; n >= 10; i-- {
		digits[i] = byte('0' + n%10)
		n /= 10
	}
	digits[i] = byte('0' + n)
	return append(b, digits[i:]...)
}

// parseLength parses a Content-Length value: 1*DIGIT below 2^63.
func parseLength[T string | []byte](v T) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' || n > (1<<63-1-int64(c-'0'))/10 {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func asciiEqualFold[T string | []byte](b T, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// containsToken reports whether the comma-separated list v holds token.
func containsToken[T string | []byte](v T, token string) bool {
	for len(v) > 0 {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		m := v[:i]
		for len(m) > 0 && (m[0] == ' ' || m[0] == '\t') {
			m = m[1:]
		}
		for len(m) > 0 && (m[len(m)-1] == ' ' || m[len(m)-1] == '\t') {
			m = m[:len(m)-1]
		}
		if asciiEqualFold(m, token) {
			return true
		}
		if i == len(v) {
			break
		}
		v = v[i+1:]
	}
	return false
}
