package node

import (
	"fmt"
	"strings"
	"time"

	"github.com/commons-energy/commons/share"
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

// ParseWindow parses a pledge window with the protocol's rules
// (share.Manifest.ParseWindow): two RFC 3339 instants "START/END",
// "HH:MM/HH:MM" today in cal's zone (an end at or before the start means
// the next day, so "22:00/00:00" works), or "next-hour". The window is
// widened to whole slots of cal.Slot; it must not be over at now. The
// returned instants are in cal's zone.
func ParseWindow(s string, now time.Time, cal Calendar) (start, end time.Time, err error) {
	m := share.Manifest{SlotLen: int64(cal.Slot / time.Second)}
	r, err := m.ParseWindow(s, now, cal.Location)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	start, end = m.Times(r)
	start, end = start.In(cal.Location), end.In(cal.Location)
	if !end.After(now) {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: window %q ended at %s; pledge a window that ends in the future", ErrInvalid, s, end.Format(time.RFC3339))
	}
	return start, end, nil
}
