package engine

import (
	"errors"

	"github.com/loophttp/loophttp/codec"
)

// ProtocolKinds is the length of Stats.ProtocolErrors: one counter per
// codec.Error kind, indexed by the kind; index 0 counts kinds this table
// does not know (a test checks that it knows them all).
const ProtocolKinds = int(codec.ErrBodyTooLarge) + 1

// TimeoutKind is why a timeout closed a server connection.
type TimeoutKind uint8

// The timeout kinds.
const (
	// TimeoutHeaders: a request head did not complete within
	// HeadersTimeout (answered 408 when part of it had come), or a new
	// connection sent nothing for that long.
	TimeoutHeaders TimeoutKind = iota
	// TimeoutKeepAlive: a keep-alive connection sent no next request
	// within KeepAliveTimeout.
	TimeoutKeepAlive
	// TimeoutIdle: nothing was read or written for the idle timeout while
	// a request was in progress (or the handler did not keep it).
	TimeoutIdle
	// TimeoutKinds is the number of kinds.
	TimeoutKinds
)

var timeoutNames = [TimeoutKinds]string{
	TimeoutHeaders:   "headers",
	TimeoutKeepAlive: "keepalive",
	TimeoutIdle:      "idle",
}

// String returns the kind's short name ("headers", "keepalive", "idle").
func (k TimeoutKind) String() string {
	if k < TimeoutKinds {
		return timeoutNames[k]
	}
	return "unknown"
}

// protocolNames are the short names of the codec.Error kinds, for
// metrics labels.
var protocolNames = [ProtocolKinds]string{
	0:                           "other",
	codec.ErrLineEnding:         "line_ending",
	codec.ErrMethod:             "method",
	codec.ErrStartLineSpace:     "start_line_space",
	codec.ErrTarget:             "target",
	codec.ErrVersion:            "version",
	codec.ErrVersionUnsupported: "version_unsupported",
	codec.ErrStatus:             "status",
	codec.ErrReason:             "reason",
	codec.ErrFieldName:          "field_name",
	codec.ErrFieldValue:         "field_value",
	codec.ErrObsFold:            "obs_fold",
	codec.ErrHost:               "host",
	codec.ErrContentLength:      "content_length",
	codec.ErrTransferEncoding:   "transfer_encoding",
	codec.ErrFramingConflict:    "framing_conflict",
	codec.ErrTransferCoding:     "transfer_coding",
	codec.ErrChunkSize:          "chunk_size",
	codec.ErrChunkExtension:     "chunk_extension",
	codec.ErrChunkData:          "chunk_data",
	codec.ErrTrailer:            "trailer",
	codec.ErrChunkLineTooLong:   "chunk_line_too_long",
	codec.ErrStartLineTooLong:   "start_line_too_long",
	codec.ErrFieldLineTooLong:   "field_line_too_long",
	codec.ErrTooManyFields:      "too_many_fields",
	codec.ErrHeaderTooLarge:     "header_too_large",
	codec.ErrBodyTooLarge:       "body_too_large",
}

// ProtocolKindName returns the short name of protocol error kind i (an
// index of Stats.ProtocolErrors), e.g. "content_length"; "other" for 0.
func ProtocolKindName(i int) string {
	if i < 0 || i >= ProtocolKinds {
		return "other"
	}
	return protocolNames[i]
}

// Stats are the counters of the server connections of one Loop, or the
// sum of several (Add). A Loop's own are owned by the loop: it updates
// them with plain increments as it works, and they are read only on the
// loop (a transport posts a task to each loop and sums the copies).
type Stats struct {
	// Requests counts request heads taken (handed to the handler, or
	// refused by the engine after parsing, as with 417).
	Requests uint64
	// Responses counts final response heads sent, by status class:
	// Responses[1] counts 1xx (101 Switching Protocols), ..., Responses[5]
	// counts 5xx. Interim responses (100 Continue, 103) are not counted;
	// nor is a tunnel the handler answers itself (Detach).
	Responses [6]uint64
	// ProtocolErrors counts malformed requests by codec.Error kind (the
	// index; ProtocolKindName names it), each answered 400, 413, 414,
	// 431, 501 or 505 and closed.
	ProtocolErrors [ProtocolKinds]uint64
	// TooMuchUnread counts connections closed for sending more than
	// MaxUnread bytes the engine was not reading.
	TooMuchUnread uint64
	// Timeouts counts connections closed by a timeout, by TimeoutKind.
	Timeouts [TimeoutKinds]uint64
}

// Add adds o's counters to s.
func (s *Stats) Add(o *Stats) {
	s.Requests += o.Requests
	for i := range s.Responses {
		s.Responses[i] += o.Responses[i]
	}
	for i := range s.ProtocolErrors {
		s.ProtocolErrors[i] += o.ProtocolErrors[i]
	}
	s.TooMuchUnread += o.TooMuchUnread
	for i := range s.Timeouts {
		s.Timeouts[i] += o.Timeouts[i]
	}
}

// Stats returns the loop's counters. Loop only: the pointer is the loop's
// own, updated as it works; copy it there.
func (l *Loop) Stats() *Stats { return &l.stats }

// countResponse counts a final response head of status.
func (l *Loop) countResponse(status int32) {
	class := status / 100
	if class < 1 || class > 5 {
		class = 0
	}
	l.stats.Responses[class]++
}

// countProtocolError counts a malformed request that failed with err.
func (l *Loop) countProtocolError(err error) {
	kind := 0
	var ce codec.Error
	if errors.As(err, &ce) && int(ce) < ProtocolKinds {
		kind = int(ce)
	}
	l.stats.ProtocolErrors[kind]++
}

// headTimeoutKind tells which of the timeouts headDeadline keeps has
// passed: the keep-alive wait for a next request, or the headers timeout.
func (c *ServerConn) headTimeoutKind() TimeoutKind {
	if len(c.conn.Input()) == 0 && c.served && c.loop.cfg.KeepAliveTimeout != Disabled {
		return TimeoutKeepAlive
	}
	return TimeoutHeaders
}

// Status returns the status of the response (200 until set; the one sent
// once the head is out).
func (s *Stream) Status() int { return int(s.status) }

// BodyBytes returns the response body bytes written so far (before
// chunked framing).
func (s *Stream) BodyBytes() int64 { return s.written }
