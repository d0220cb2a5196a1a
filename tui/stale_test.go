package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/commons-energy/commons/meter"
)

// A meter that went silent is said where the figure stands, by the model's
// clock, even while the meter link (or the daemon) still says online.
func TestSilentMeterSaidAtThePowerFigure(t *testing.T) {
	tests := []struct {
		name      string
		version   string
		silent    time.Duration
		online    bool
		width     int
		stale     bool
		wantSince string
		noArrival bool // the arrival time is unknown: the reading's own (meter clock) time is not used
	}{
		{"dsmr5 58 s silent, link still online", "50", 58 * time.Second, true, 80, true, "meter offline since 13:19", false},
		{"dsmr5 58 s silent, wide", "50", 58 * time.Second, true, 160, true, "meter offline since 13:19", false},
		{"dsmr5 11 s silent", "50", 11 * time.Second, true, 80, true, "meter offline since 13:20", false},
		{"dsmr5 9 s silent: under the 10 s minimum", "50", 9 * time.Second, true, 80, false, "", false},
		{"dsmr4 20 s silent: two 10 s intervals", "42", 20 * time.Second, true, 80, false, "", false},
		{"dsmr4 31 s silent: three intervals", "42", 31 * time.Second, true, 80, true, "meter offline since 13:19", false},
		{"link says offline", "50", 2 * time.Second, false, 80, true, "meter offline since 13:20", false},
		{"fresh", "50", time.Second, true, 80, false, "", false},
		{"meter clock 10 min behind, arrival unknown", "50", 10 * time.Minute, true, 80, false, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			lv := &f.state.Live
			lv.Reading.Version = tt.version
			lv.Reading.PowerImportW, lv.Reading.PowerExportW = meter.Some(206), meter.Some(0)
			lv.Reading.Time = testNow.Add(-tt.silent)
			lv.Meter.LastTelegram = ptr(testNow.Add(-tt.silent))
			if tt.noArrival {
				lv.Meter.LastTelegram = nil
			}
			lv.Meter.Online = tt.online
			if !tt.online {
				lv.Meter.OfflineSince = ptr(testNow.Add(-tt.silent + time.Second))
			}
			v := loaded(t, f, tt.width, 40).View()
			if tt.stale {
				for _, want := range []string{tt.wantSince + ": power now unknown", "last reading +206 W importing at " + lv.Reading.Time.In(testZone).Format("15:04:05")} {
					if !strings.Contains(v, want) {
						t.Errorf("want %q in:\n%s", want, v)
					}
				}
				for _, not := range []string{"▲ importing from the grid", "● online"} {
					if strings.Contains(v, not) {
						t.Errorf("a silent meter's view still shows %q:\n%s", not, v)
					}
				}
			} else if !strings.Contains(v, "+206 W  ▲ importing from the grid") || strings.Contains(v, "power now unknown") {
				t.Errorf("a live meter's figure is not shown as current:\n%s", v)
			}
		})
	}
}

// The staleness follows the model's clock as it ticks, not the wall clock.
func TestMeterGoesStaleAsTheClockTicks(t *testing.T) {
	f := newFake()
	f.state.Live.Meter.LastTelegram = ptr(testNow)
	m := loaded(t, f, 80, 40)
	if strings.Contains(m.View(), "power now unknown") {
		t.Fatal("stale at once")
	}
	tm, _ := m.Update(tickMsg{tag: m.tickTag, now: testNow.Add(15 * time.Second)})
	if v := tm.View(); !strings.Contains(v, "meter offline since 13:20: power now unknown") {
		t.Errorf("15 s after the last telegram the figure is still current:\n%s", v)
	}
}

// A configured production meter that is silent is said, not passed off as
// "no production meter".
func TestSilentProductionMeterSaid(t *testing.T) {
	tests := []struct {
		name      string
		lastWrite time.Duration // before testNow, of the last sample with production; 0: none
		want      string
	}{
		{"silent for 12 min", 12 * time.Minute, "○ production meter offline since 13:08"},
		{"no production in the last hour", 0, "○ production meter offline "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			f.state.Home.Production = true
			for i, s := range f.samples {
				if tt.lastWrite > 0 && !s.Time.After(testNow.Add(-tt.lastWrite)) {
					f.samples[i].ProductionW = someW(900)
				}
			}
			v := loaded(t, f, 100, 40).View()
			if !strings.Contains(v, tt.want) || strings.Contains(v, "no production meter") {
				t.Errorf("want %q in:\n%s", tt.want, v)
			}
		})
	}
}

// A neighbour's status older than statusOldAfter is marked old in the list
// and in the detail, with since when.
func TestOldNeighbourStatusMarked(t *testing.T) {
	f := newFake()
	f.state.Neighbours[1].Status.Time = testNow.Add(-20 * time.Minute) // Bob
	m := loaded(t, f, 100, 40)
	tm, _ := m.Update(press("3"))
	v := tm.View()
	var bob, anna string
	for _, l := range strings.Split(v, "\n") {
		switch {
		case strings.Contains(l, "Bob"):
			bob = l
		case strings.Contains(l, "Anna"):
			anna = l
		}
	}
	if !strings.Contains(bob, "old 20m") {
		t.Errorf("Bob's 20 min old status is not marked old: %q", bob)
	}
	if strings.Contains(anna, "old") {
		t.Errorf("Anna's fresh status is marked old: %q", anna)
	}
	tm, _ = tm.Update(press("j"))
	tm, _ = tm.Update(press("enter"))
	if v := tm.View(); !strings.Contains(v, "at Jun 15 13:00 · old: may have changed") {
		t.Errorf("the detail does not say the status is old:\n%s", v)
	}
}
