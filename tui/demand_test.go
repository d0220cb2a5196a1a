package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/lipgloss"

	"github.com/commons-energy/commons/meter"
)

// TestDemandPeakLine: a Belgian meter's month peak shows as one short line
// on the overview, in the household's zone, within 80 columns; a meter
// without it shows none.
func TestDemandPeakLine(t *testing.T) {
	winter := time.FixedZone("CET", 3600)
	tests := []struct {
		name string
		peak meter.Optional
		at   time.Time
		want string // "" = no line
	}{
		{"peak with time", meter.Some(4123), time.Date(2026, 6, 12, 18, 15, 0, 0, testZone), "Month peak 4.1 kW at 12 Jun 18:15"},
		{"time shown in the household's zone", meter.Some(11173), time.Date(2026, 1, 16, 9, 0, 0, 0, winter), "Month peak 11.2 kW at 16 Jan 10:00"},
		{"placeholder time", meter.Some(0), time.Time{}, "Month peak 0.0 kW  capacity tariff"},
		{"no peak: a Dutch meter", meter.Optional{}, time.Time{}, ""},
	}
	for _, tc := range tests {
		for _, size := range [][2]int{{80, 24}, {80, 40}, {100, 30}, {160, 48}} {
			w, h := size[0], size[1]
			f := newFake()
			f.state.Live.Reading.DemandPeakW = tc.peak
			f.state.Live.Reading.DemandPeakTime = tc.at
			m := loaded(t, f, w, h)
			if l := m.overview.demandPeakLine(); lipgloss.Width(l) > 80 {
				t.Errorf("%s at width %d: line %q is %d columns", tc.name, w, l, lipgloss.Width(l))
			}
			v := m.View()
			if vw, vh := lipgloss.Width(v), lipgloss.Height(v); vw > w || vh != h {
				t.Errorf("%s: %dx%d view rendered %dx%d", tc.name, w, h, vw, vh)
			}
			if tc.want == "" {
				if strings.Contains(v, "Month peak") {
					t.Errorf("%s at width %d: peak shown:\n%s", tc.name, w, v)
				}
				continue
			}
			if !strings.Contains(v, tc.want) {
				t.Errorf("%s at width %d: want %q in:\n%s", tc.name, w, tc.want, v)
			}
		}
	}
}

func TestFmtKW1(t *testing.T) {
	for w, want := range map[int64]string{0: "0.0 kW", 49: "0.0 kW", 50: "0.1 kW", 4123: "4.1 kW", 4150: "4.2 kW", 13603: "13.6 kW", -1566: "-1.6 kW"} {
		if got := fmtKW1(w); got != want {
			t.Errorf("fmtKW1(%d) = %q, want %q", w, got, want)
		}
	}
}
