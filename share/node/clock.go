package node

import (
	"time"

	"github.com/commons-energy/commons/meter"
)

// clockState is what the grid meter's clock looks like, to log a change
// once rather than every telegram.
type clockState int

const (
	clockUnknown clockState = iota // no reading yet
	clockOK                        // within meter.MaxClockSkew of the box
	clockAhead                     // ahead by more
	clockBehind                    // behind by more
	clockNone                      // the meter sends no time (or a placeholder)
)

// update moves c to the state of skew (known false: the meter sent no
// time) and reports whether it changed in a way worth a log line: every
// change except the first reading finding the clock right.
func (c *clockState) update(skew time.Duration, known bool) bool {
	next := clockOK
	switch {
	case !known:
		next = clockNone
	case skew > meter.MaxClockSkew:
		next = clockAhead
	case skew < -meter.MaxClockSkew:
		next = clockBehind
	}
	prev := *c
	*c = next
	return prev != next && !(prev == clockUnknown && next == clockOK)
}

// clockWrong reports whether a meter clock skew, when known, is beyond
// meter.MaxClockSkew.
func clockWrong(skew time.Duration, known bool) bool {
	return known && (skew > meter.MaxClockSkew || skew < -meter.MaxClockSkew)
}

// logMeterClock says what the grid meter's clock just became; the caller
// logs only changes. meterTime is the reading's time, now the box's.
func (n *Node) logMeterClock(state clockState, skew time.Duration, meterTime, now time.Time) {
	switch state {
	case clockOK:
		n.log.Info("meter clock agrees with this box again", "skew", skew.Round(time.Second))
	case clockNone:
		n.log.Info("meter sends no time (clock not set or not in its protocol): energy is filed by this box's clock")
	default:
		n.log.Warn("meter clock disagrees with this box: energy is filed by this box's clock; the meter's time is shown only",
			"meter_clock", meter.DescribeClockSkew(skew), "meter_time", meterTime, "box_time", now, "limit", meter.MaxClockSkew)
	}
}

// meterClock returns the grid meter's clock skew for Status: seconds, nil
// when unknown, and whether it is within meter.MaxClockSkew.
func (n *Node) meterClock() (skewS *int64, ok bool) {
	skew, known := n.MeterClockSkew()
	if !known {
		return nil, true
	}
	sec := int64(skew / time.Second)
	return &sec, !clockWrong(skew, true)
}

// MeterClockSkew returns the grid meter's clock minus this box's at the
// latest reading; ok is false when the household is not running, no
// reading arrived yet, or the meter sends no time.
func (n *Node) MeterClockSkew() (skew time.Duration, ok bool) {
	n.live.mu.Lock()
	defer n.live.mu.Unlock()
	if !n.live.running || !n.live.clockKnown {
		return 0, false
	}
	return n.live.clockSkew, true
}
