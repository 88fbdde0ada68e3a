package poller

import "time"

// wheelSlots is the number of slots of a timing wheel; with the default
// 50 ms tick one lap is 25.6 s, and later deadlines wait in their slot for
// as many laps as they need.
const wheelSlots = 512

// timer is one entry of a wheel: intrusive, so arming and stopping are
// O(1) pointer updates with no allocation. It is owned by its loop. It
// keeps the tick it is due at rather than its deadline and callback: the
// slot follows from the tick, and the wheel's one callback finds the
// connection through conn, so an idle connection pays 32 bytes for it.
type timer struct {
	due        int64 // the tick it fires at; 0 when not armed, firing while advance holds it
	prev, next *timer
	conn       *Conn // the connection it belongs to, for the wheel's callback
}

// wheel is a hashed timing wheel (Varghese and Lauck): deadlines hash into
// slots by tick; each tick looks at one slot and fires the entries that
// are due. It is owned by one loop and never locked.
type wheel struct {
	tick  int64 // nanoseconds per slot
	last  int64 // the last tick advanced to
	slots [wheelSlots]*timer
	armed int
	due   []*timer // scratch for advance
	fire  func(t *timer, now time.Time)
}

// newWheel returns a wheel that calls fire for each timer that comes due.
func newWheel(tick time.Duration, now time.Time, fire func(t *timer, now time.Time)) *wheel {
	return &wheel{tick: int64(tick), last: now.UnixNano() / int64(tick), fire: fire}
}

// arm sets t to fire at deadline (the zero time stops it): on the first
// tick at or after it, or on the next tick when it has passed.
func (w *wheel) arm(t *timer, deadline time.Time) {
	w.stop(t)
	if deadline.IsZero() {
		return
	}
	d := deadline.UnixNano()
	due := (d + w.tick - 1) / w.tick
	if due <= w.last {
		due = w.last + 1
	}
	t.due = due
	slot := &w.slots[due%wheelSlots]
	t.next = *slot
	if t.next != nil {
		t.next.prev = t
	}
	*slot = t
	w.armed++
}

// firing marks a due timer that advance has unlinked but not yet fired.
const firing = -1

// stop disarms t if it is armed, or cancels its pending fire.
func (w *wheel) stop(t *timer) {
	switch t.due {
	case 0:
		return
	case firing:
		t.due = 0
		return
	}
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		w.slots[t.due%wheelSlots] = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	}
	t.prev, t.next, t.due = nil, nil, 0
	w.armed--
}

// advance fires every timer due at or before now's tick, walking the slots
// of the ticks since the last advance (at most one lap). Due timers are
// unlinked before any fires, so a callback may arm or stop any timer.
func (w *wheel) advance(now time.Time) {
	cur := now.UnixNano() / w.tick
	from := w.last + 1
	if cur-from >= wheelSlots {
		from = cur - wheelSlots + 1
	}
	w.last = cur
	due := w.due[:0]
	for tk := from; tk <= cur; tk++ {
		for t := w.slots[tk%wheelSlots]; t != nil; t = t.next {
			if t.due <= cur {
				due = append(due, t)
			}
		}
	}
	for _, t := range due {
		w.stop(t)
		t.due = firing
	}
	for i, t := range due {
		if t.due == firing { // not stopped or re-armed by an earlier callback
			t.due = 0
			w.fire(t, now)
		}
		due[i] = nil
	}
	w.due = due[:0]
}
