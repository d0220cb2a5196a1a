package tui

import (
	"strings"
	"testing"

	"github.com/commons-energy/commons/meter"
)

// Percentages round to the nearest whole percent, half away from zero:
// 67.7 % is 68 %, not 67 %.
func TestPctRoundsToNearest(t *testing.T) {
	tests := []struct {
		a, b int64
		want int64
		ok   bool
	}{
		{677, 1000, 68, true},   // 67.7
		{674, 1000, 67, true},   // 67.4
		{675, 1000, 68, true},   // 67.5: half away from zero
		{1, 200, 1, true},       // 0.5
		{1, 201, 0, true},       // 0.497
		{7655, 11976, 64, true}, // 63.92
		{50, 200, 25, true},
		{0, 10, 0, true},
		{-5, 10, 0, true}, // clamped
		{20, 10, 100, true},
		{199, 200, 100, true}, // 99.5
		{1, 0, 0, false},
	}
	for _, tt := range tests {
		if v, ok := pct(tt.a, tt.b); v != tt.want || ok != tt.ok {
			t.Errorf("pct(%d, %d) = %d %v, want %d %v", tt.a, tt.b, v, ok, tt.want, tt.ok)
		}
	}
}

// A phase's current is shown as the meter gives it (DSMR: whole amperes,
// so no invented ".0"), and not at all when the meter gives none.
func TestPhaseCurrentAsGiven(t *testing.T) {
	m := New(newFake(), testOptions(80, 24))
	tests := []struct {
		name    string
		ph      meter.Phase
		want    []string
		notWant []string
	}{
		{"whole amperes", meter.Phase{CurrentMA: meter.Some(0), PowerExportW: meter.Some(73), PowerImportW: meter.Some(0)},
			[]string{" 0 A", "-73 W"}, []string{"0.0 A"}},
		{"ten amperes", meter.Phase{CurrentMA: meter.Some(10000), PowerImportW: meter.Some(2300)}, []string{" 10 A"}, []string{"10.0 A"}},
		{"fractions", meter.Phase{CurrentMA: meter.Some(10240), PowerImportW: meter.Some(2300)}, []string{"10.24 A"}, nil},
		{"no current", meter.Phase{PowerExportW: meter.Some(73), PowerImportW: meter.Some(0)}, []string{"-73 W"}, []string{"0 A", "0.0 A"}},
	}
	for _, tt := range tests {
		line := m.overview.phaseLine(1, tt.ph, 25000, 20)
		for _, w := range tt.want {
			if !strings.Contains(line, w) {
				t.Errorf("%s: want %q in %q", tt.name, w, line)
			}
		}
		for _, w := range tt.notWant {
			if strings.Contains(line, w) {
				t.Errorf("%s: %q should not be in %q", tt.name, w, line)
			}
		}
	}
}
