package tui

import (
	"time"

	"github.com/commons-energy/commons/meter"
)

// meterClockWarning is the line under the meter's state when the meter's
// clock disagrees with this box's ("meter clock 1 year ahead of this
// box"), "" when it agrees or the meter sends no time.
func (m Model) meterClockWarning() string {
	h := m.state.Live.Meter
	if !h.ClockWrong || !h.ClockSkewS.OK {
		return ""
	}
	skew := meter.DescribeClockSkew(time.Duration(h.ClockSkewS.V) * time.Second)
	if h.ClockSkewS.V > 0 {
		skew += " of" // "1 year ahead of this box", "1 year behind this box"
	}
	return m.st.warn.Render(clip("meter clock "+skew+" this box · energy is counted by this box's clock", m.width))
}
