package tui

// meterClockWarning is the line under the meter's state when the meter's
// clock disagrees with this box's ("meter clock 1 year ahead of this
// box"), "" when it agrees or the meter sends no time.
func (m overview) meterClockWarning() string {
	note := m.state.Live.Meter.ClockNote()
	if note == "" {
		return ""
	}
	return m.st.warn.Render(clip("meter clock "+note+" · energy is counted by this box's clock", m.width))
}
