package poller

import (
	"testing"
	"time"
)

func TestWheelFiresAtDeadline(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	w, on := testWheel(10*time.Millisecond, t0)
	var fired []string
	mk := func(name string) *timer {
		t := new(timer)
		on[t] = func(time.Time) { fired = append(fired, name) }
		return t
	}
	a, b, c, far := mk("a"), mk("b"), mk("c"), mk("far")
	w.arm(a, t0.Add(25*time.Millisecond))
	w.arm(b, t0.Add(25*time.Millisecond))
	w.arm(c, t0.Add(40*time.Millisecond))
	w.arm(far, t0.Add(30*time.Second)) // more than one lap ahead
	w.stop(b)
	w.advance(t0.Add(20 * time.Millisecond))
	if len(fired) != 0 {
		t.Fatalf("fired %v before any deadline", fired)
	}
	w.advance(t0.Add(30 * time.Millisecond))
	if len(fired) != 1 || fired[0] != "a" {
		t.Fatalf("fired %v; want [a] (b was stopped)", fired)
	}
	w.arm(c, t0.Add(60*time.Millisecond)) // re-arm moves it
	w.advance(t0.Add(50 * time.Millisecond))
	if len(fired) != 1 {
		t.Fatalf("fired %v; c was moved later", fired)
	}
	w.advance(t0.Add(10 * time.Second)) // a long gap: every slot is walked once
	if len(fired) != 2 || fired[1] != "c" {
		t.Fatalf("fired %v; want c next", fired)
	}
	w.advance(t0.Add(30 * time.Second))
	if len(fired) != 3 || fired[2] != "far" || w.armed != 0 {
		t.Fatalf("fired %v, armed %d; want far last and nothing armed", fired, w.armed)
	}
}

func TestWheelPastDeadlineFiresOnNextTick(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	w, on := testWheel(10*time.Millisecond, t0)
	n := 0
	tm := new(timer)
	on[tm] = func(time.Time) { n++ }
	w.arm(tm, t0.Add(-time.Second))
	w.advance(t0.Add(10 * time.Millisecond))
	if n != 1 {
		t.Fatalf("fired %d times; want once", n)
	}
}

func TestWheelCallbackMayRearmOthers(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	w, on := testWheel(10*time.Millisecond, t0)
	var order []int
	var ts [3]*timer
	// Timers of one slot fire newest first, so arm 2, 1, 0: 0 fires first.
	for i := len(ts) - 1; i >= 0; i-- {
		ts[i] = new(timer)
		on[ts[i]] = func(now time.Time) {
			order = append(order, i)
			if i == 0 {
				w.stop(ts[1])                           // a due neighbour is cancelled
				w.arm(ts[2], now.Add(time.Millisecond)) // another moves on
			}
		}
		w.arm(ts[i], t0.Add(15*time.Millisecond))
	}
	w.advance(t0.Add(20 * time.Millisecond))
	if len(order) != 1 || order[0] != 0 {
		t.Fatalf("fired %v; want only 0", order)
	}
	w.advance(t0.Add(40 * time.Millisecond))
	if len(order) != 2 || order[1] != 2 {
		t.Fatalf("fired %v; want 2 after its new deadline", order)
	}
}

// testWheel returns a wheel whose timers run the callbacks set in the
// returned map.
func testWheel(tick time.Duration, now time.Time) (*wheel, map[*timer]func(time.Time)) {
	on := map[*timer]func(time.Time){}
	return newWheel(tick, now, func(t *timer, now time.Time) { on[t](now) }), on
}
