package meter

import (
	"fmt"
	"time"
)

// MaxClockSkew is how far a meter's clock may differ from the clock of the
// box reading it before the meter's clock is reported as wrong. Meters
// synchronise through the grid operator and drift by seconds; five
// minutes leaves room for that and for a box whose NTP has not answered
// yet, and still catches a clock set to the wrong day, hour or DST.
// Energy is filed by the box's clock either way.
const MaxClockSkew = 5 * time.Minute

// ClockSkew returns r's meter time minus now, the box's clock: positive
// when the meter's clock is ahead. ok is false when r carries no time (the
// protocol has none, or the meter sent a placeholder such as
// 000101000000W because its clock is not set). A Floating time, a wall
// clock without offset, is compared with now's wall clock in loc, the
// household's zone.
func ClockSkew(r *Reading, now time.Time, loc *time.Location) (skew time.Duration, ok bool) {
	if r.Time.IsZero() {
		return 0, false
	}
	if r.Time.Location() != Floating {
		return r.Time.Sub(now), true
	}
	wall := func(t time.Time) time.Time {
		return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
	}
	return wall(r.Time).Sub(wall(now.In(loc))), true
}

// DescribeClockSkew says in a few words how far and which way a meter's
// clock is off: "1 year ahead", "3 days behind", "2 hours ahead",
// "7 minutes behind", "in step": rounded to the nearest minute (second
// below a minute), then down to the largest whole unit.
func DescribeClockSkew(skew time.Duration) string {
	dir := "ahead"
	if skew < 0 {
		dir, skew = "behind", -skew
	}
	// To the nearest minute (second, below a minute) first, so a clock
	// set a year ahead and read 0.7 s later is not "364 days ahead".
	if skew >= time.Minute {
		skew = skew.Round(time.Minute)
	} else {
		skew = skew.Round(time.Second)
	}
	const day = 24 * time.Hour
	n, unit := int64(0), ""
	switch {
	case skew >= 365*day:
		n, unit = int64(skew/(365*day)), "year"
	case skew >= day:
		n, unit = int64(skew/day), "day"
	case skew >= time.Hour:
		n, unit = int64(skew/time.Hour), "hour"
	case skew >= time.Minute:
		n, unit = int64(skew/time.Minute), "minute"
	case skew >= time.Second:
		n, unit = int64(skew/time.Second), "second"
	default:
		return "in step"
	}
	if n != 1 {
		unit += "s"
	}
	return fmt.Sprintf("%d %s %s", n, unit, dir)
}
