package conformance

import (
	"bytes"
	"errors"

	"github.com/loophttp/loophttp/codec"
)

// Outcome is what a byte stream produced: the messages completed in order,
// then at most one of an error, an incomplete message at EOF, or a stop
// (after a non-persistent message, an upgrade or a tunnel, with the bytes
// left over in Tail).
type Outcome struct {
	Messages   []Message
	Err        error // a codec.Error
	Incomplete bool  // EOF arrived inside a message
	Stopped    bool  // the stream ended its HTTP use before EOF
	Tail       []byte
}

// Status returns the status a server answers the outcome's error with, or 0.
func (o *Outcome) Status() int {
	var e codec.Error
	if errors.As(o.Err, &e) {
		return e.Status()
	}
	return 0
}

// phase is where a stream is between messages.
type phase uint8

const (
	phaseHead phase = iota
	phaseLength
	phaseChunked
	phaseClose // response body delimited by EOF
	phaseEnd   // error or stop: nothing more is parsed
)

// stream holds what request and response streams share: the pending bytes
// and the body of the message in progress.
type stream struct {
	out       Outcome
	pending   []byte
	phase     phase
	remaining int64
	dec       codec.ChunkedDecoder
	cur       Message
	keepAlive bool
	lim       *codec.Limits
}

// exact returns the pending bytes with no spare capacity, so that a parser
// reading past the end panics instead of reading stale bytes.
func (s *stream) exact() []byte {
	return s.pending[:len(s.pending):len(s.pending)]
}

func (s *stream) consume(n int) {
	s.pending = s.pending[n:]
}

func (s *stream) fail(err error) {
	s.out.Err = err
	s.phase = phaseEnd
}

// write appends b and parses as far as it can: heads with head (false when
// it needs more bytes or stopped), bodies, and finish after each message.
func (s *stream) write(b []byte, head func() bool, finish func()) {
	if s.ended(b) {
		return
	}
	s.pending = append(s.pending, b...)
	for s.phase != phaseEnd {
		if s.phase == phaseHead {
			if !head() {
				return
			}
			continue
		}
		done, more := s.body()
		if done {
			finish()
		} else if !more {
			return
		}
	}
}

// body advances the message body; it reports whether the message is done.
// more is false when it needs more bytes.
func (s *stream) body() (done, more bool) {
	switch s.phase {
	case phaseLength:
		n := min(s.remaining, int64(len(s.pending)))
		*s.cur.Body = append(*s.cur.Body, s.pending[:n]...)
		s.consume(int(n))
		s.remaining -= n
		return s.remaining == 0, n > 0
	case phaseChunked:
		n, data, done, err := s.dec.Decode(s.exact(), s.lim)
		if err != nil {
			s.fail(err)
			return false, false
		}
		*s.cur.Body = append(*s.cur.Body, data...)
		if done {
			s.cur.Trailers = fields(s.dec.Trailers)
		}
		s.consume(n)
		return done, n > 0
	case phaseClose:
		*s.cur.Body = append(*s.cur.Body, s.pending...)
		s.consume(len(s.pending))
		return false, false
	}
	return false, false
}

// startBody enters the phase for framing; it reports whether there is a body.
func (s *stream) startBody(f codec.Framing, length int64) bool {
	body := Octets{}
	s.cur.Body = &body
	switch f {
	case codec.FramingLength:
		s.phase, s.remaining = phaseLength, length
	case codec.FramingChunked:
		s.phase = phaseChunked
		s.dec.Reset()
	case codec.FramingClose:
		s.phase = phaseClose
	default:
		return false
	}
	return true
}

// RequestStream runs bytes through the request parser the way a server
// connection does: heads, bodies and pipelined requests in order, stopping
// after a request that does not keep the connection alive.
type RequestStream struct {
	stream
	req codec.Request
	// StopAtUpgrade stops after a CONNECT or Upgrade request, leaving what
	// follows in Tail, as a server that switches protocols would.
	StopAtUpgrade bool
	// ExpectContinue records, per completed request, whether a server
	// should answer 100 Continue.
	ExpectContinue []bool
}

// NewRequestStream returns a stream parsing with lim (nil for defaults).
func NewRequestStream(lim *codec.Limits) *RequestStream {
	return &RequestStream{stream: stream{lim: lim}}
}

// Write appends b to the stream and parses as far as it can.
func (s *RequestStream) Write(b []byte) { s.write(b, s.head, s.finish) }

func (s *RequestStream) head() bool {
	n, err := codec.ParseRequest(s.exact(), &s.req, s.lim)
	if err != nil {
		s.fail(err)
		return false
	}
	if n == 0 {
		return false
	}
	r := &s.req
	s.cur = Message{
		Method:  clone(r.Method),
		Target:  clone(r.Target),
		Version: clone(r.Proto),
		Headers: fields(r.Headers),
	}
	s.keepAlive = r.KeepAlive
	s.ExpectContinue = append(s.ExpectContinue, r.ExpectContinue)
	s.consume(n)
	if !s.startBody(r.Framing, r.ContentLength) {
		s.finish()
	}
	return true
}

func (s *RequestStream) finish() {
	ka := s.keepAlive
	s.cur.KeepAlive = &ka
	s.out.Messages = append(s.out.Messages, s.cur)
	s.cur = Message{}
	s.phase = phaseHead
	upgrade := s.req.Upgrade != nil || string(s.req.Method) == "CONNECT"
	if !ka || s.StopAtUpgrade && upgrade {
		s.stop()
	}
}

// Close reports EOF and returns the outcome.
func (s *RequestStream) Close() *Outcome {
	if s.phase != phaseEnd && (s.phase != phaseHead || len(s.pending) > 0) {
		s.out.Incomplete = true
	}
	return &s.out
}

// ended reports whether the stream parses no more; bytes arriving after a
// stop join the tail.
func (s *stream) ended(b []byte) bool {
	if s.out.Stopped {
		s.out.Tail = append(s.out.Tail, b...)
	}
	return s.phase == phaseEnd
}

func (s *stream) stop() {
	s.out.Stopped = true
	s.out.Tail = bytes.Clone(s.pending)
	s.phase = phaseEnd
}

// ResponseStream runs bytes through the response parser the way a client
// connection does: each response answers the next outstanding method, 1xx
// responses are interim, and bytes nobody asked for are never parsed.
type ResponseStream struct {
	stream
	resp    codec.Response
	methods []string
}

// NewResponseStream returns a stream for responses to methods, in order.
func NewResponseStream(methods []string, lim *codec.Limits) *ResponseStream {
	s := &ResponseStream{stream: stream{lim: lim}, methods: methods}
	s.dec.Response = true
	return s
}

// Write appends b to the stream and parses as far as it can.
func (s *ResponseStream) Write(b []byte) { s.write(b, s.head, s.finish) }

func (s *ResponseStream) head() bool {
	if len(s.methods) == 0 {
		s.stop() // RFC 9112 §9.2: unsolicited data is not a response
		return false
	}
	n, err := codec.ParseResponse(s.exact(), &s.resp, []byte(s.methods[0]), s.lim)
	if err != nil {
		s.fail(err)
		return false
	}
	if n == 0 {
		return false
	}
	r := &s.resp
	s.cur = Message{
		Version: clone(r.Proto),
		Status:  r.Status,
		Reason:  clone(r.Reason),
		Headers: fields(r.Headers),
		Interim: r.Interim(),
	}
	s.keepAlive = r.KeepAlive
	s.consume(n)
	switch {
	case r.Interim():
		body := Octets{}
		s.cur.Body = &body
		s.out.Messages = append(s.out.Messages, s.cur)
	case r.Framing == codec.FramingUpgrade || r.Framing == codec.FramingTunnel:
		s.finish()
		s.stop()
	case !s.startBody(r.Framing, r.ContentLength):
		s.finish()
	}
	return true
}

func (s *ResponseStream) finish() {
	ka := s.keepAlive
	s.cur.KeepAlive = &ka
	if s.cur.Body == nil {
		s.cur.Body = &Octets{}
	}
	s.out.Messages = append(s.out.Messages, s.cur)
	s.cur = Message{}
	s.methods = s.methods[1:]
	s.phase = phaseHead
	if !ka {
		s.stop()
	}
}

// Close reports EOF and returns the outcome: EOF ends a close-delimited
// body and cuts short anything else in progress.
func (s *ResponseStream) Close() *Outcome {
	switch {
	case s.phase == phaseClose:
		s.finish()
	case s.phase == phaseEnd:
	case s.phase != phaseHead || len(s.pending) > 0 && len(s.methods) > 0:
		s.out.Incomplete = true
	}
	return &s.out
}

func clone(b []byte) *Octets {
	o := Octets(bytes.Clone(b))
	if o == nil {
		o = Octets{}
	}
	return &o
}

func fields(hs []codec.Header) []Field {
	out := make([]Field, 0, len(hs))
	for _, h := range hs {
		out = append(out, Field{bytes.Clone(h.Name), bytes.Clone(h.Value)})
	}
	return out
}
