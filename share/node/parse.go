package node

import (
	"fmt"
	"strings"
	"time"
)

// MaxPledgeWh bounds one pledge's energy (1 GWh): far above any household,
// far below integer overflow.
const MaxPledgeWh = 1_000_000_000

// ParseEnergy parses an amount of energy such as "1.5kWh", "1500Wh" or
// "0.002 MWh" into exact integer Wh. The unit is required and
// case-insensitive; a value that is not a whole number of Wh is an error,
// never rounded.
func ParseEnergy(s string) (int64, error) {
	in := strings.TrimSpace(s)
	lower := strings.ToLower(in)
	var num string
	var scale int // decimal digits the unit shifts: Wh 0, kWh 3, MWh 6
	switch {
	case strings.HasSuffix(lower, "mwh"):
		num, scale = in[:len(in)-3], 6
	case strings.HasSuffix(lower, "kwh"):
		num, scale = in[:len(in)-3], 3
	case strings.HasSuffix(lower, "wh"):
		num, scale = in[:len(in)-2], 0
	default:
		return 0, fmt.Errorf("energy %q has no unit; write it like 1.5kWh or 1500Wh", s)
	}
	num = strings.TrimSpace(num)
	intPart, frac, _ := strings.Cut(num, ".")
	if intPart == "" && frac == "" || !digits(intPart) || !digits(frac) {
		return 0, fmt.Errorf("energy %q is not a number; write it like 1.5kWh or 1500Wh", s)
	}
	frac = strings.TrimRight(frac, "0")
	if len(frac) > scale {
		return 0, fmt.Errorf("energy %q is not a whole number of Wh; energy is counted in whole Wh", s)
	}
	frac += strings.Repeat("0", scale-len(frac))
	intPart = strings.TrimLeft(intPart, "0")
	all := intPart + frac
	if len(all) > 12 {
		return 0, fmt.Errorf("energy %q is too large; one pledge can be at most %d Wh", s, MaxPledgeWh)
	}
	var wh int64
	for _, c := range all {
		wh = wh*10 + int64(c-'0')
	}
	if wh == 0 {
		return 0, fmt.Errorf("energy %q is zero; pledge at least 1Wh", s)
	}
	if wh > MaxPledgeWh {
		return 0, fmt.Errorf("energy %q is too large; one pledge can be at most %d Wh", s, MaxPledgeWh)
	}
	return wh, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// FormatEnergy prints wh the way people read it: "1.5 kWh", "750 Wh".
func FormatEnergy(wh int64) string {
	if wh < 1000 && wh > -1000 {
		return fmt.Sprintf("%d Wh", wh)
	}
	sign := ""
	if wh < 0 {
		sign, wh = "-", -wh
	}
	k, r := wh/1000, wh%1000
	if r == 0 {
		return fmt.Sprintf("%s%d kWh", sign, k)
	}
	return strings.TrimRight(fmt.Sprintf("%s%d.%03d", sign, k, r), "0") + " kWh"
}

// Window is a half-open time range [Start, End) aligned to settlement slots.
type Window struct {
	Start, End time.Time
}

// Slots returns the window's slot indices [first, end) for slot length d:
// slot = floor(unix seconds / slot seconds).
func (w Window) Slots(d time.Duration) (first, end int64) {
	s := int64(d / time.Second)
	return floorDiv(w.Start.Unix(), s), floorDiv(w.End.Unix(), s)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// MaxWindow bounds a pledge window.
const MaxWindow = 7 * 24 * time.Hour

// ParseWindow parses a pledge window: two RFC 3339 instants "START/END",
// "HH:MM/HH:MM" today in loc (an end at or before the start means the next
// day, so "22:00/00:00" works), or "next-hour" (the next whole hour). Both
// ends must lie on slot boundaries of length slot, and the window must not
// be over at now.
func ParseWindow(s string, now time.Time, loc *time.Location, slot time.Duration) (Window, error) {
	in := strings.TrimSpace(s)
	var w Window
	switch {
	case in == "next-hour":
		t := now.In(loc).Truncate(time.Hour).Add(time.Hour)
		w = Window{Start: t, End: t.Add(time.Hour)}
	default:
		a, b, ok := strings.Cut(in, "/")
		if !ok {
			return Window{}, fmt.Errorf("window %q needs START/END, e.g. 12:00/13:00, 2025-06-01T12:00:00+02:00/2025-06-01T13:00:00+02:00 or next-hour", s)
		}
		if isClock(a) && isClock(b) {
			var err error
			if w, err = clockWindow(a, b, now, loc); err != nil {
				return Window{}, fmt.Errorf("window %q: %w", s, err)
			}
			break
		}
		start, err := time.Parse(time.RFC3339, a)
		if err != nil {
			return Window{}, fmt.Errorf("window start %q is neither RFC 3339 (2025-06-01T12:00:00+02:00) nor HH:MM", a)
		}
		end, err := time.Parse(time.RFC3339, b)
		if err != nil {
			return Window{}, fmt.Errorf("window end %q is neither RFC 3339 (2025-06-01T13:00:00+02:00) nor HH:MM", b)
		}
		if !end.After(start) {
			return Window{}, fmt.Errorf("window %q ends before it starts; give START/END with END later", s)
		}
		w = Window{Start: start.In(loc), End: end.In(loc)}
	}
	if d := w.End.Sub(w.Start); d > MaxWindow {
		return Window{}, fmt.Errorf("window %q is %s long; a pledge covers at most %s", s, d, MaxWindow)
	}
	for _, t := range []time.Time{w.Start, w.End} {
		if t.Unix()%int64(slot/time.Second) != 0 {
			lo := t.Truncate(slot)
			return Window{}, fmt.Errorf("window %q: %s is not on a %s slot boundary; try %s or %s",
				s, t.Format("15:04:05"), slot, lo.Format("15:04"), lo.Add(slot).Format("15:04"))
		}
	}
	if !w.End.After(now) {
		return Window{}, fmt.Errorf("window %q is already over (now %s); pledge a window that ends in the future", s, now.In(loc).Format(time.RFC3339))
	}
	return w, nil
}

func isClock(s string) bool {
	return len(s) == 5 && s[2] == ':' && digits(s[:2]) && digits(s[3:])
}

// clockWindow builds the window for HH:MM/HH:MM on now's date in loc.
func clockWindow(a, b string, now time.Time, loc *time.Location) (Window, error) {
	day := now.In(loc)
	at := func(hhmm string, addDays int) (time.Time, error) {
		h := int(hhmm[0]-'0')*10 + int(hhmm[1]-'0')
		m := int(hhmm[3]-'0')*10 + int(hhmm[4]-'0')
		if h > 24 || m > 59 || h == 24 && m != 0 {
			return time.Time{}, fmt.Errorf("%s is not a time of day; use 00:00 to 23:59", hhmm)
		}
		t := time.Date(day.Year(), day.Month(), day.Day()+addDays, h, m, 0, 0, loc)
		// A wall time skipped by a DST change does not exist that day.
		if h != 24 && (t.Hour() != h || t.Minute() != m) {
			return time.Time{}, fmt.Errorf("%s does not exist on %s in %s (clocks change); use RFC 3339 instants", hhmm, day.Format("2006-01-02"), loc)
		}
		return t, nil
	}
	start, err := at(a, 0)
	if err != nil {
		return Window{}, err
	}
	end, err := at(b, 0)
	if err != nil {
		return Window{}, err
	}
	if !end.After(start) {
		if end, err = at(b, 1); err != nil {
			return Window{}, err
		}
	}
	return Window{Start: start, End: end}, nil
}
