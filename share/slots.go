package share

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SlotRange is the half-open range of slots [From, To).
type SlotRange struct {
	From int64 `json:"from_slot"`
	To   int64 `json:"to_slot"`
}

// Len returns the number of slots in r.
func (r SlotRange) Len() int64 { return r.To - r.From }

// Contains reports whether slot is in r.
func (r SlotRange) Contains(slot int64) bool { return slot >= r.From && slot < r.To }

// Times returns the instants r starts and ends (UTC).
func (m Manifest) Times(r SlotRange) (start, end time.Time) {
	return m.SlotStart(r.From), m.SlotStart(r.To)
}

// Align returns the smallest slot range covering [start, end): start is
// rounded down and end up to slot boundaries.
func (m Manifest) Align(start, end time.Time) (SlotRange, error) {
	if !end.After(start) {
		return SlotRange{}, reject(ErrBadWindow, "window end %s is not after its start %s", end.Format(time.RFC3339), start.Format(time.RFC3339))
	}
	r := SlotRange{From: m.SlotOf(start), To: m.SlotOf(end)}
	if !m.SlotStart(r.To).Equal(end) {
		r.To++
	}
	if r.Len() > MaxWindowSlots {
		return SlotRange{}, reject(ErrBadWindow, "window %s/%s covers %d slots of %s, limit %d: split it into several pledges",
			start.Format(time.RFC3339), end.Format(time.RFC3339), r.Len(), m.SlotDuration(), MaxWindowSlots)
	}
	return r, nil
}

// DaySlots returns the slots of the local calendar day of date in loc,
// from local midnight to the next local midnight. On DST days in
// Europe/Brussels that is 92 or 100 quarter-hours.
func (m Manifest) DaySlots(year int, month time.Month, day int, loc *time.Location) SlotRange {
	start := time.Date(year, month, day, 0, 0, 0, 0, loc)
	end := time.Date(year, month, day+1, 0, 0, 0, 0, loc)
	return SlotRange{From: m.SlotOf(start), To: m.SlotOf(end)}
}

// ParseWindow parses a pledge window and aligns it to slots (Align). The
// forms are:
//
//   - "START/END" with RFC 3339 instants, e.g. 2025-06-01T12:00:00+02:00/2025-06-01T14:00:00+02:00;
//   - "HH:MM/HH:MM": today in loc (the date of now in loc); an end at or
//     before the start means the next day; a time that does not exist on
//     a DST day is an error, an ambiguous one takes the earlier instant;
//   - "next-hour": from the next full hour in loc, one hour long.
func (m Manifest) ParseWindow(s string, now time.Time, loc *time.Location) (SlotRange, error) {
	if loc == nil {
		loc = time.Local
	}
	s = strings.TrimSpace(s)
	if s == "next-hour" {
		// Step back to the start of the current local hour on the
		// absolute time line (correct in a repeated DST hour too), then on.
		n := now.In(loc)
		start := n.Add(-time.Duration(n.Minute())*time.Minute - time.Duration(n.Second())*time.Second - time.Duration(n.Nanosecond())).Add(time.Hour)
		return m.Align(start, start.Add(time.Hour))
	}
	a, b, ok := strings.Cut(s, "/")
	if !ok {
		return SlotRange{}, reject(ErrBadWindow, "window %s: want START/END (RFC 3339), HH:MM/HH:MM or next-hour", quoteShort(s))
	}
	if isClock(a) && isClock(b) {
		n := now.In(loc)
		start, err := clockToday(a, n, loc)
		if err != nil {
			return SlotRange{}, err
		}
		end, err := clockToday(b, n, loc)
		if err != nil {
			return SlotRange{}, err
		}
		if !end.After(start) {
			end, err = clockToday(b, n.AddDate(0, 0, 1), loc)
			if err != nil {
				return SlotRange{}, err
			}
		}
		return m.Align(start, end)
	}
	start, err := time.Parse(time.RFC3339, a)
	if err != nil {
		return SlotRange{}, reject(ErrBadWindow, "window start %s: not an RFC 3339 instant like 2025-06-01T12:00:00+02:00 nor HH:MM", quoteShort(a))
	}
	end, err := time.Parse(time.RFC3339, b)
	if err != nil {
		return SlotRange{}, reject(ErrBadWindow, "window end %s: not an RFC 3339 instant like 2025-06-01T14:00:00+02:00", quoteShort(b))
	}
	return m.Align(start, end)
}

func isClock(s string) bool {
	if len(s) != 5 || s[2] != ':' {
		return false
	}
	for _, i := range []int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// clockToday returns HH:MM on the date of day in loc.
func clockToday(hhmm string, day time.Time, loc *time.Location) (time.Time, error) {
	h, _ := strconv.Atoi(hhmm[:2])
	mi, _ := strconv.Atoi(hhmm[3:])
	if h > 23 || mi > 59 {
		return time.Time{}, reject(ErrBadWindow, "window time %s: hours 00-23, minutes 00-59", hhmm)
	}
	t := localTime(day.Year(), day.Month(), day.Day(), h, mi, loc)
	if t.Hour() != h || t.Minute() != mi {
		return time.Time{}, reject(ErrBadWindow, "window time %s does not exist on %s in %s (the clocks skip it for daylight saving time)", hhmm, day.Format("2006-01-02"), loc)
	}
	return t, nil
}

// localTime is time.Date that resolves an ambiguous wall time (a DST
// fall-back hour) to the earlier instant.
func localTime(y int, mo time.Month, d, h, mi int, loc *time.Location) time.Time {
	t := time.Date(y, mo, d, h, mi, 0, 0, loc)
	for _, back := range []time.Duration{time.Hour, 30 * time.Minute, 2 * time.Hour} {
		e := t.Add(-back)
		if e.Hour() == h && e.Minute() == mi && e.Day() == d {
			return e
		}
	}
	return t
}

// FormatRange returns r as "START/END" in RFC 3339 in loc.
func (m Manifest) FormatRange(r SlotRange, loc *time.Location) string {
	s, e := m.Times(r)
	if loc != nil {
		s, e = s.In(loc), e.In(loc)
	}
	return fmt.Sprintf("%s/%s", s.Format(time.RFC3339), e.Format(time.RFC3339))
}
