package tui

import "fmt"

// demandPeakLine is one short line with the month's peak demand of a
// Belgian capacity-tariff meter (e-MUCS 1-0:1.6.0), e.g.
// "Month peak 4.1 kW at 12 Jan 18:15  capacity tariff"; "" when the
// reading has no peak. It fits 80 columns.
func (m overview) demandPeakLine() string {
	live := m.state.Live
	if !live.HasReading || !live.Reading.DemandPeakW.OK {
		return ""
	}
	r := live.Reading
	line := m.st.label.Render("Month peak") + " " + m.st.strong.Render(fmtKW1(r.DemandPeakW.V))
	if !r.DemandPeakTime.IsZero() {
		line += " at " + r.DemandPeakTime.In(m.loc).Format("2 Jan 15:04")
	}
	return clip(line+m.st.muted.Render("  capacity tariff"), min(m.width, 80))
}

// fmtKW1 formats W as kW with one decimal, rounded half up in integers:
// 4123 -> "4.1 kW", 4150 -> "4.2 kW".
func fmtKW1(w int64) string {
	sign := ""
	if w < 0 {
		sign, w = "-", -w
	}
	tenths := (w + 50) / 100
	return fmt.Sprintf("%s%d.%d kW", sign, tenths/10, tenths%10)
}
