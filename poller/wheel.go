package poller

import "time"

// wheelSlots is the number of slots of a timing wheel; with the default
// 50 ms tick one lap is 25.6 s, and later deadlines wait in their slot for
// as many laps as they need.
const wheelSlots = 512

// timer is one entry of a wheel: intrusive, so arming and stopping are
// O(1) pointer updates with no allocation. It is owned by its loop.
type timer struct {
	deadline   int64 // UnixNano; 0 when not armed, firing while advance holds it
	slot       int
	prev, next *timer
	fire       func(now time.Time)
}

// wheel is a hashed timing wheel (Varghese and Lauck): deadlines hash into
// slots by tick; each tick looks at one slot and fires the entries whose
// deadline has passed. It is owned by one loop and never locked.
type wheel struct {
	tick  int64 // nanoseconds per slot
	last  int64 // the last tick advanced to
	slots [wheelSlots]*timer
	armed int
	due   []*timer // scratch for advance
}

func newWheel(tick time.Duration, now time.Time) *wheel {
	return &wheel{tick: int64(tick), last: now.UnixNano() / int64(tick)}
}

// arm sets t to fire at deadline (the zero time stops it).
func (w *wheel) arm(t *timer, deadline time.Time) {
	w.stop(t)
	if deadline.IsZero() {
		return
	}
	d := deadline.UnixNano()
	idx := (d + w.tick - 1) / w.tick // the first tick at or after the deadline
	if idx <= w.last {
		idx = w.last + 1 // due: fire on the next tick
	}
	t.deadline, t.slot = d, int(idx%wheelSlots)
	t.next = w.slots[t.slot]
	if t.next != nil {
		t.next.prev = t
	}
	w.slots[t.slot] = t
	w.armed++
}

// firing marks a due timer that advance has unlinked but not yet fired.
const firing = -1

// stop disarms t if it is armed, or cancels its pending fire.
func (w *wheel) stop(t *timer) {
	switch t.deadline {
	case 0:
		return
	case firing:
		t.deadline = 0
		return
	}
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		w.slots[t.slot] = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	}
	t.prev, t.next, t.deadline = nil, nil, 0
	w.armed--
}

// advance fires every timer whose deadline is at or before now, walking the
// slots of the ticks since the last advance (at most one lap). Due timers
// are unlinked before any fires, so a callback may arm or stop any timer.
func (w *wheel) advance(now time.Time) {
	n := now.UnixNano()
	cur := n / w.tick
	from := w.last + 1
	if cur-from >= wheelSlots {
		from = cur - wheelSlots + 1
	}
	w.last = cur
	due := w.due[:0]
	for tk := from; tk <= cur; tk++ {
		for t := w.slots[tk%wheelSlots]; t != nil; t = t.next {
			if t.deadline <= n {
				due = append(due, t)
			}
		}
	}
	for _, t := range due {
		w.stop(t)
		t.deadline = firing
	}
	for i, t := range due {
		if t.deadline == firing { // not stopped or re-armed by an earlier callback
			t.deadline = 0
			t.fire(now)
		}
		due[i] = nil
	}
	w.due = due[:0]
}
