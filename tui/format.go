package tui

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// fmtW formats a power in W: "1234 W", "12.35 kW". Exact integer
// arithmetic, no floats.
func fmtW(w int64) string {
	sign := ""
	if w < 0 {
		sign, w = "-", -w
	}
	if w < 10000 {
		return fmt.Sprintf("%s%d W", sign, w)
	}
	return fmt.Sprintf("%s%d.%02d kW", sign, w/1000, (w%1000)/10)
}

// fmtWh formats energy: "850 Wh", "12.345 kWh".
func fmtWh(wh int64) string {
	sign := ""
	if wh < 0 {
		sign, wh = "-", -wh
	}
	if wh < 1000 {
		return fmt.Sprintf("%s%d Wh", sign, wh)
	}
	return fmt.Sprintf("%s%d.%03d kWh", sign, wh/1000, wh%1000)
}

// fmtKWh formats energy always in kWh with three decimals.
func fmtKWh(wh int64) string {
	sign := ""
	if wh < 0 {
		sign, wh = "-", -wh
	}
	return fmt.Sprintf("%s%d.%03d kWh", sign, wh/1000, wh%1000)
}

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

var errEnergy = errors.New("give an amount like 1500 Wh, 1.5 kWh or 1500")

// parseEnergy reads an amount of energy typed by a person: "1500",
// "1500 Wh", "1.5 kWh", "1,5kwh", "2 kWh". A bare number is Wh. The result
// is exact integer Wh; kWh take at most three decimals.
func parseEnergy(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.ReplaceAll(s, " ", "")
	s = strings.ReplaceAll(s, ",", ".")
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "kwh"):
		s, mult = strings.TrimSuffix(s, "kwh"), 1000
	case strings.HasSuffix(s, "wh"):
		s = strings.TrimSuffix(s, "wh")
	}
	if s == "" {
		return 0, errEnergy
	}
	whole, frac, hasFrac := strings.Cut(s, ".")
	if whole == "" {
		whole = "0"
	}
	if len(whole) > 12 {
		return 0, errors.New("that amount is too large")
	}
	w, err := strconv.ParseUint(whole, 10, 64)
	if err != nil {
		return 0, errEnergy
	}
	v := int64(w) * mult
	if hasFrac {
		if frac == "" {
			return 0, errEnergy
		}
		digits := 0
		for m := mult; m > 1; m /= 10 {
			digits++
		}
		if len(frac) > digits {
			if mult == 1 {
				return 0, errors.New("whole Wh take no decimals; use kWh for fractions")
			}
			return 0, errors.New("kWh take at most three decimals (1 Wh)")
		}
		f, err := strconv.ParseUint(frac, 10, 64)
		if err != nil {
			return 0, errEnergy
		}
		for i := len(frac); i < digits; i++ {
			f *= 10
		}
		v += int64(f)
	}
	if v <= 0 {
		return 0, errors.New("the amount must be more than 0 Wh")
	}
	return v, nil
}

// parseRange reads "HH:MM-HH:MM" as a window in loc on the day of now. When
// the end is not after the start it ends the next day; when the whole window
// has already passed it moves to tomorrow.
func parseRange(s string, now time.Time, loc *time.Location) (time.Time, time.Time, error) {
	bad := fmt.Errorf("give the window as HH:MM-HH:MM, for example 14:00-16:00")
	a, b, ok := strings.Cut(strings.ReplaceAll(strings.TrimSpace(s), " ", ""), "-")
	if !ok {
		return time.Time{}, time.Time{}, bad
	}
	n := now.In(loc)
	clock := func(v string) (int, int, bool) {
		t, err := time.Parse("15:04", v)
		if err != nil {
			return 0, 0, false
		}
		return t.Hour(), t.Minute(), true
	}
	ah, am, ok1 := clock(a)
	bh, bm, ok2 := clock(b)
	if !ok1 || !ok2 {
		return time.Time{}, time.Time{}, bad
	}
	start := time.Date(n.Year(), n.Month(), n.Day(), ah, am, 0, 0, loc)
	end := time.Date(n.Year(), n.Month(), n.Day(), bh, bm, 0, 0, loc)
	if !end.After(start) {
		end = time.Date(n.Year(), n.Month(), n.Day()+1, bh, bm, 0, 0, loc)
	}
	if !end.After(now) {
		start = time.Date(n.Year(), n.Month(), n.Day()+1, ah, am, 0, 0, loc)
		end = time.Date(n.Year(), n.Month(), n.Day()+1, bh, bm, 0, 0, loc)
		if !end.After(start) {
			end = time.Date(n.Year(), n.Month(), n.Day()+2, bh, bm, 0, 0, loc)
		}
	}
	return start, end, nil
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

// shortID shortens a message or household id for a table cell.
func shortID(id string) string {
	if len(id) <= 8 {
		return id
	}
	return id[:8]
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
