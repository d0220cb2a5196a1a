package tui

import (
	"fmt"
	"time"
)

// fmtAge says how long ago t was, relative to now: "3 s", "4 min", "2 h",
// "5 d". Times in the future count as "0 s".
func fmtAge(now, t time.Time) string {
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(d/time.Hour))
	default:
		return fmt.Sprintf("%d d", int(d/(24*time.Hour)))
	}
}

// fmtWindow formats a pledge window in loc: "14:00-15:00" when it lies
// within one day, with the date when that day is not today.
func fmtWindow(now time.Time, start, end time.Time, loc *time.Location) string {
	s, e := start.In(loc), end.In(loc)
	n := now.In(loc)
	day := ""
	if s.YearDay() != n.YearDay() || s.Year() != n.Year() {
		day = s.Format("Jan 2 ")
	}
	endDay := ""
	if e.Sub(s) > 24*time.Hour || (e.YearDay() != s.YearDay() && !(e.Hour() == 0 && e.Minute() == 0)) {
		endDay = e.Format("Jan 2 ")
	}
	return day + s.Format("15:04") + "-" + endDay + e.Format("15:04")
}

// nextSlot returns the slot after the one now falls in. Slots are aligned
// to the Unix epoch, as the protocol's slot indices are.
func nextSlot(now time.Time, slot time.Duration) (time.Time, time.Time) {
	if slot <= 0 {
		slot = 15 * time.Minute
	}
	start := now.Truncate(slot).Add(slot)
	return start, start.Add(slot)
}

// nextHour returns the next full clock hour in loc.
func nextHour(now time.Time, loc *time.Location) (time.Time, time.Time) {
	n := now.In(loc)
	start := time.Date(n.Year(), n.Month(), n.Day(), n.Hour()+1, 0, 0, 0, loc)
	return start, start.Add(time.Hour)
}

// pct returns 100*a/b rounded to the nearest whole percent, half away
// from zero (a is clamped to [0, b], so half up), in integers; false when b
// is not positive.
func pct(a, b int64) (int64, bool) {
	if b <= 0 {
		return 0, false
	}
	if a < 0 {
		a = 0
	}
	if a > b {
		a = b
	}
	return (a*200 + b) / (2 * b), true
}

// timeOf is *t, or the zero time when t is nil.
func timeOf(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}
