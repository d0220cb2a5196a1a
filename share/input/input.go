// Package input holds the rules by which people type energy and pledge
// windows, shared by the command line and the dashboard so both accept and
// refuse the same things with the same words.
//
// Energy is "1.5 kWh", "1,5kwh", "1500 Wh", "0.002 MWh" or a bare number,
// which means Wh. Units are case-insensitive, the space before the unit is
// optional and the decimal separator may be a point or a comma. Amounts are
// exact integer Wh: a value finer than 1 Wh is refused, never rounded.
//
// A window is "HH:MM/HH:MM" or "HH:MM-HH:MM" today in the household's time
// zone, two RFC 3339 instants "START/END", or "next-hour". A window that
// ends at or before its start is refused; it is never taken to run into the
// next day.
package input

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/commons-energy/commons/share"
)

// MaxPledgeWh bounds one pledge's energy (1 GWh): far above any household,
// far below integer overflow.
const MaxPledgeWh = 1_000_000_000

// ErrInput marks every error of this package: the input was not
// acceptable, and the message says why in words a person can act on.
var ErrInput = errors.New("invalid input")

func errorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInput, fmt.Sprintf(format, args...))
}

// Message returns err's text without the ErrInput prefix, for showing to a
// person.
func Message(err error) string {
	return strings.TrimPrefix(err.Error(), ErrInput.Error()+": ")
}

// ParseEnergy parses an amount of energy into exact integer Wh. See the
// package documentation for the accepted forms. Zero, negative and amounts
// above MaxPledgeWh are refused.
func ParseEnergy(s string) (int64, error) {
	in := strings.TrimSpace(s)
	lower := strings.ToLower(in)
	num := lower
	scale := 0 // decimal digits the unit shifts: Wh 0, kWh 3, MWh 6
	switch {
	case strings.HasSuffix(lower, "mwh"):
		num, scale = lower[:len(lower)-3], 6
	case strings.HasSuffix(lower, "kwh"):
		num, scale = lower[:len(lower)-3], 3
	case strings.HasSuffix(lower, "wh"):
		num = lower[:len(lower)-2]
	}
	num = strings.TrimSpace(num)
	if num != "" && !strings.ContainsAny(num[len(num)-1:], "0123456789.,") {
		return 0, errorf("energy %q has an unknown unit; use Wh, kWh or MWh, e.g. 1.5 kWh", s)
	}
	intPart, frac, _ := strings.Cut(strings.Replace(num, ",", ".", 1), ".")
	if intPart == "" && frac == "" || !digits(intPart) || !digits(frac) {
		return 0, errorf("energy %q is not a number; write it like 1.5 kWh, 1,5 kWh or 1500 Wh", s)
	}
	frac = strings.TrimRight(frac, "0")
	if len(frac) > scale {
		return 0, errorf("energy %q is finer than 1 Wh; energy is counted in whole Wh", s)
	}
	frac += strings.Repeat("0", scale-len(frac))
	all := strings.TrimLeft(intPart, "0") + frac
	if len(all) > 12 {
		return 0, errorf("energy %q is too large; one pledge can be at most %s", s, FormatEnergy(MaxPledgeWh))
	}
	var wh int64
	for _, c := range all {
		wh = wh*10 + int64(c-'0')
	}
	if wh == 0 {
		return 0, errorf("energy %q is zero; pledge at least 1 Wh", s)
	}
	if wh > MaxPledgeWh {
		return 0, errorf("energy %q is too large; one pledge can be at most %s", s, FormatEnergy(MaxPledgeWh))
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

// FormatEnergy prints wh the way people read it: "750 Wh", "1.5 kWh",
// "2.25 MWh". Its output parses back to wh with ParseEnergy.
func FormatEnergy(wh int64) string {
	sign := ""
	if wh < 0 {
		sign, wh = "-", -wh
	}
	switch {
	case wh < 1000:
		return fmt.Sprintf("%s%d Wh", sign, wh)
	case wh < 1_000_000:
		return sign + decimal(wh, 1000) + " kWh"
	default:
		return sign + decimal(wh, 1_000_000) + " MWh"
	}
}

// FormatKWh prints wh in kWh whatever its size, exactly, without trailing
// zeros: "0.75 kWh", "1234.567 kWh". Meter registers and daily totals use
// it, so a figure reads like the meter's own display.
func FormatKWh(wh int64) string {
	sign := ""
	if wh < 0 {
		sign, wh = "-", -wh
	}
	return sign + decimal(wh, 1000) + " kWh"
}

// FormatPower prints w the way people read it: "850 W", "12.35 kW"
// (exact: 12,349 W is "12.349 kW"). Below 10 kW it stays in W, as meters
// and inverters show household power.
func FormatPower(w int64) string {
	sign := ""
	if w < 0 {
		sign, w = "-", -w
	}
	if w < 10_000 {
		return fmt.Sprintf("%s%d W", sign, w)
	}
	return sign + decimal(w, 1000) + " kW"
}

// decimal prints v/unit exactly, without trailing zeros.
func decimal(v, unit int64) string {
	q, r := v/unit, v%unit
	if r == 0 {
		return fmt.Sprint(q)
	}
	width := len(fmt.Sprint(unit)) - 1
	return strings.TrimRight(fmt.Sprintf("%d.%0*d", q, width, r), "0")
}

// ParseWindow parses a pledge window (see the package documentation) and
// widens it to whole slots of length slot. HH:MM is read on the date of now
// in loc; a clock time the daylight-saving change skips is refused. The
// window must end after it starts and after now. The instants returned are
// in loc.
func ParseWindow(s string, now time.Time, loc *time.Location, slot time.Duration) (start, end time.Time, err error) {
	if loc == nil {
		loc = time.Local
	}
	if slot <= 0 {
		slot = 15 * time.Minute
	}
	m := share.Manifest{SlotLen: int64(slot / time.Second)}
	in := strings.TrimSpace(s)
	var a, b time.Time
	switch {
	case strings.EqualFold(in, "next-hour"):
		r, err := m.ParseWindow("next-hour", now, loc)
		if err != nil {
			return time.Time{}, time.Time{}, errorf("window %q: %v", s, err)
		}
		a, b = m.Times(r)
	default:
		x, y, ok := splitClock(in)
		if ok {
			n := now.In(loc)
			if a, err = clock(x, n, loc); err == nil {
				b, err = clock(y, n, loc)
			}
			if err != nil {
				return time.Time{}, time.Time{}, err
			}
			break
		}
		x, y, ok = strings.Cut(in, "/")
		if !ok {
			return time.Time{}, time.Time{}, errorf("window %q: write it as 14:00/16:00, 14:00-16:00, two RFC 3339 instants START/END, or next-hour", s)
		}
		if a, err = time.Parse(time.RFC3339, strings.TrimSpace(x)); err != nil {
			return time.Time{}, time.Time{}, errorf("window start %q is neither HH:MM nor an RFC 3339 instant like 2025-06-01T12:00:00+02:00", x)
		}
		if b, err = time.Parse(time.RFC3339, strings.TrimSpace(y)); err != nil {
			return time.Time{}, time.Time{}, errorf("window end %q is neither HH:MM nor an RFC 3339 instant like 2025-06-01T14:00:00+02:00", y)
		}
	}
	if !b.After(a) {
		return time.Time{}, time.Time{}, errorf("the window ends before it starts: %q; write the earlier time first (a window cannot run past midnight as HH:MM, use RFC 3339 instants)", s)
	}
	r, err := m.Align(a, b)
	if err != nil {
		return time.Time{}, time.Time{}, errorf("window %q: %v", s, err)
	}
	start, end = m.Times(r)
	start, end = start.In(loc), end.In(loc)
	if !end.After(now) {
		return time.Time{}, time.Time{}, errorf("window %q ended at %s; pledge a window that ends in the future", s, end.Format(time.RFC3339))
	}
	return start, end, nil
}

// splitClock splits "HH:MM/HH:MM" or "HH:MM-HH:MM" (spaces allowed around
// the separator).
func splitClock(s string) (a, b string, ok bool) {
	for _, sep := range []string{"/", "-"} {
		if x, y, found := strings.Cut(s, sep); found {
			x, y = strings.TrimSpace(x), strings.TrimSpace(y)
			if isClock(x) && isClock(y) {
				return x, y, true
			}
		}
	}
	return "", "", false
}

func isClock(s string) bool {
	if len(s) == 4 && s[1] == ':' {
		s = "0" + s
	}
	return len(s) == 5 && s[2] == ':' && digits(s[:2]) && digits(s[3:])
}

// clock returns the clock time hhmm on the date of day in loc.
func clock(hhmm string, day time.Time, loc *time.Location) (time.Time, error) {
	if len(hhmm) == 4 {
		hhmm = "0" + hhmm
	}
	h := int(hhmm[0]-'0')*10 + int(hhmm[1]-'0')
	mi := int(hhmm[3]-'0')*10 + int(hhmm[4]-'0')
	if h > 23 || mi > 59 {
		return time.Time{}, errorf("window time %s: hours run 00-23, minutes 00-59", hhmm)
	}
	t := time.Date(day.Year(), day.Month(), day.Day(), h, mi, 0, 0, loc)
	// A time the clocks pass twice (autumn) is its earlier instant.
	for _, back := range []time.Duration{time.Hour, 30 * time.Minute, 2 * time.Hour} {
		if e := t.Add(-back); e.Hour() == h && e.Minute() == mi && e.Day() == t.Day() {
			t = e
			break
		}
	}
	if t.Hour() != h || t.Minute() != mi {
		return time.Time{}, errorf("window time %s does not exist on %s in %s (the clocks skip it for daylight saving time)", hhmm, day.Format("2006-01-02"), loc)
	}
	return t, nil
}

// ExportCapWh is the most energy a connection of fuseA amperes per phase
// on phases phases at 230 V can export between start and end, in Wh.
// fuseA 0 means DefaultFuseA and phases 0 means DefaultPhases.
func ExportCapWh(fuseA, phases int, start, end time.Time) int64 {
	if fuseA <= 0 {
		fuseA = DefaultFuseA
	}
	if phases <= 0 {
		phases = DefaultPhases
	}
	secs := int64(end.Sub(start) / time.Second)
	return int64(fuseA) * int64(phases) * 230 * secs / 3600
}

// The connection assumed when none is configured: 25 A on 3 phases
// (17.25 kW).
const (
	DefaultFuseA  = 25
	DefaultPhases = 3
)

// CheckPlausible refuses a pledge of wh in [start, end) that is more than
// the connection could export in that time (see ExportCapWh).
func CheckPlausible(wh int64, fuseA, phases int, start, end time.Time) error {
	if limit := ExportCapWh(fuseA, phases, start, end); wh > limit {
		if fuseA <= 0 {
			fuseA = DefaultFuseA
		}
		if phases <= 0 {
			phases = DefaultPhases
		}
		return errorf("%s is more than this home can export in %s (%d A × %d phases × 230 V: at most %s)",
			FormatEnergy(wh), end.Sub(start), fuseA, phases, FormatEnergy(limit))
	}
	return nil
}
