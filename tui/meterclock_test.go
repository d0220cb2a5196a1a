package tui

import (
	"strings"
	"testing"

	"github.com/charmbracelet/lipgloss"
)

// TestMeterClockWarning: a meter clock far off the box's is named under
// the meter's state, in every layout, without pushing the view past the
// terminal; a clock in step or absent says nothing.
func TestMeterClockWarning(t *testing.T) {
	year := int64(365 * 24 * 3600)
	tests := []struct {
		name string
		skew *int64
		ok   bool
		want string
	}{
		{"a year ahead", ptr(year), false, "meter clock 1 year ahead of this box"},
		{"a year behind", ptr(-year), false, "meter clock 1 year behind this box"},
		{"in step", ptr(int64(3)), true, ""},
		{"no clock", nil, true, ""},
	}
	for _, tt := range tests {
		for _, size := range [][2]int{{120, 40}, {100, 30}, {80, 24}} {
			f := newFake()
			f.state.Live.Meter.ClockSkewS, f.state.Live.Meter.ClockOK = tt.skew, tt.ok
			v := loaded(t, f, size[0], size[1]).View()
			if tt.want != "" && !strings.Contains(v, tt.want) {
				t.Errorf("%s at %dx%d: want %q in:\n%s", tt.name, size[0], size[1], tt.want, v)
			}
			if !strings.Contains(v, "Meter dsmr") {
				t.Errorf("%s at %dx%d: the meter line is cut off:\n%s", tt.name, size[0], size[1], v)
			}
			if tt.want == "" && strings.Contains(v, "meter clock") {
				t.Errorf("%s at %dx%d: a clock warning without cause:\n%s", tt.name, size[0], size[1], v)
			}
			if h := lipgloss.Height(v); h != size[1] {
				t.Errorf("%s at %dx%d: %d lines", tt.name, size[0], size[1], h)
			}
		}
	}
}
