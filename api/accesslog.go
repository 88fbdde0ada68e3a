package api

import (
	"context"
	"log/slog"
	"time"

	"github.com/loophttp/loophttp/engine"
)

// The access log (Options.AccessLog) lives here rather than in the
// binary: the end of an exchange, the status that went out (WriteHead's
// or StatusCode) and the body bytes written are known exactly here, once,
// for every program built on the api; a handler wrapper would see only
// the Node objects and would have to wrap every write. Off, it costs a
// nil check per request.

// logAccess writes the access log line of the exchange ex, which ends
// with err (nil when the response went out whole). Loop only, from
// Handler.Close, while ex's message is still the request's.
func logAccess(l *slog.Logger, ex *exchange, st *engine.Stream, err error) {
	status := 0 // no response head went out
	if st.HeadSent() {
		status = st.Status()
	}
	attrs := [6]slog.Attr{
		slog.String("method", ex.msg.req.Method),
		slog.String("target", ex.msg.req.URL),
		slog.Int("status", status),
		slog.Int64("bytes", st.BodyBytes()),
		slog.Duration("duration", time.Duration(time.Now().UnixNano()-ex.start)),
	}
	n := 5
	if err != nil {
		attrs[5] = slog.String("err", err.Error())
		n = 6
	}
	l.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs[:n]...)
}
