package codec

import (
	"sync/atomic"
	"time"
)

// TimeFormat is the IMF-fixdate layout of the Date field (RFC 9110 §5.6.7).
const TimeFormat = "Mon, 02 Jan 2006 15:04:05 GMT"

// DateCache keeps the formatted HTTP-date of the current second, so that
// every response can carry a Date field without formatting a time. Its zero
// value is ready. It is safe for concurrent use: readers never block, and
// the value is refreshed at most once per second of the clock passed in.
type DateCache struct {
	cur atomic.Pointer[dateValue]
}

type dateValue struct {
	sec int64
	b   [len(TimeFormat)]byte
}

// Append appends the HTTP-date of now, as cached for now's second. A clock
// that steps back keeps the later value until it catches up.
func (c *DateCache) Append(dst []byte, now time.Time) []byte {
	sec := now.Unix()
	d := c.cur.Load()
	if d == nil || sec > d.sec {
		d = &dateValue{sec: sec}
		now.UTC().AppendFormat(d.b[:0], TimeFormat)
		c.cur.Store(d) // racing refreshers store equal values
	}
	return append(dst, d.b[:]...)
}
