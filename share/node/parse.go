package node

import (
	"fmt"
	"time"

	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/input"
)

// ParseEnergy parses an amount of energy such as "1.5kWh", "1,5 kWh",
// "1500Wh", "0.002 MWh" or "1500" (a bare number is Wh) into exact integer
// Wh, with the rules of package input shared with the dashboard. A value
// finer than 1 Wh is an error, never rounded.
func ParseEnergy(s string) (int64, error) {
	wh, err := input.ParseEnergy(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %s", household.ErrInvalid, input.Message(err))
	}
	return wh, nil
}

// ParseWindow parses a pledge window with the rules of package input:
// "HH:MM/HH:MM" or "HH:MM-HH:MM" today in cal's zone, two RFC 3339 instants
// "START/END", or "next-hour". A window that ends at or before its start is
// refused, never wrapped into the next day. The window is widened to whole
// slots of cal.Slot; it must not be over at now. The returned instants are
// in cal's zone.
func ParseWindow(s string, now time.Time, cal household.Calendar) (start, end time.Time, err error) {
	start, end, err = input.ParseWindow(s, now, cal.Location, cal.Slot)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: %s", household.ErrInvalid, input.Message(err))
	}
	return start, end, nil
}
