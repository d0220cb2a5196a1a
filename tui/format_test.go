package tui

import (
	"testing"
	"time"
	_ "time/tzdata" // DST tests need Europe/Brussels on any machine

	"github.com/commons-energy/commons/share/household"
)

func TestWindowsAcrossDST(t *testing.T) {
	bru, err := time.LoadLocation("Europe/Brussels")
	if err != nil {
		t.Fatal(err)
	}
	// 2026-03-29 02:00 CET jumps to 03:00 CEST
	now := time.Date(2026, 3, 29, 1, 40, 0, 0, bru)
	s, e := nextHour(now, bru)
	if got := s.In(bru).Format("15:04 MST"); got != "03:00 CEST" {
		t.Errorf("next hour starts %s, want 03:00 CEST", got)
	}
	if e.Sub(s) != time.Hour {
		t.Errorf("next hour lasts %v", e.Sub(s))
	}
}

func TestNextSlot(t *testing.T) {
	s, e := nextSlot(testNow, 15*time.Minute)
	if s.In(testZone).Format("15:04") != "13:30" || e.Sub(s) != 15*time.Minute {
		t.Errorf("next slot %v-%v", s, e)
	}
	s, _ = nextSlot(time.Date(2026, 6, 15, 13, 30, 0, 0, testZone), 15*time.Minute)
	if s.In(testZone).Format("15:04") != "13:45" {
		t.Errorf("on a slot boundary the next slot is %v", s)
	}
	if s, e := nextSlot(testNow, 0); e.Sub(s) != 15*time.Minute {
		t.Errorf("zero slot length did not default to 15 min")
	}
}

func TestFormatting(t *testing.T) {
	cases := []struct{ got, want string }{
		{fmtAge(testNow, testNow.Add(time.Second)), "0 s"},
		{fmtAge(testNow, testNow.Add(-59*time.Second)), "59 s"},
		{fmtAge(testNow, testNow.Add(-61*time.Minute)), "1 h"},
		{fmtAge(testNow, testNow.Add(-72*time.Hour)), "3 d"},
		{fmtWindow(testNow, testNow.Add(time.Hour), testNow.Add(2*time.Hour), testZone), "14:20-15:20"},
		{fmtWindow(testNow, testNow.Add(24*time.Hour), testNow.Add(25*time.Hour), testZone), "Jun 16 13:20-14:20"},
		{axisW(0, -1500), "-1.5k"}, {axisW(0, 500), "+500"},
	}
	for i, c := range cases {
		if c.got != c.want {
			t.Errorf("case %d: got %q, want %q", i, c.got, c.want)
		}
	}
	if v, ok := pct(50, 200); !ok || v != 25 {
		t.Errorf("pct = %d %v", v, ok)
	}
	if _, ok := pct(1, 0); ok {
		t.Error("pct of zero is defined")
	}
}

func TestDownsamplingIsBounded(t *testing.T) {
	f := newFake()
	m := loaded(t, f, 160, 48)
	start, end, n := m.charts.liveWindow(160)
	if end.Sub(start) != 15*time.Minute || n > 2*160 {
		t.Fatalf("live window %v-%v with %d points", start, end, n)
	}
	for _, s := range m.charts.liveSeries(start, end, n) {
		if len(s.pts) > n {
			t.Errorf("%s: %d points for %d columns", s.name, len(s.pts), n)
		}
	}
	m.charts.buckets = f.buckets
	hs, he := histWindowAt(testNow, span7d, testZone)
	sets := m.charts.histSeries(hs, he, 300)
	if len(sets[0].pts) == 0 || len(sets[0].pts) > 300 {
		t.Errorf("history: %d points for 300 columns", len(sets[0].pts))
	}
	// average power is exact: a bucket of 60 Wh per minute is 3600 W
	m.charts.buckets = []household.Bucket{{Start: hs, Length: time.Minute, ImportWh: 60}}
	if p := m.charts.histSeries(hs, he, 300)[0].pts[0]; p.Value != 3600 {
		t.Errorf("60 Wh in a minute drawn as %v W", p.Value)
	}
}

func TestNiceCeil(t *testing.T) {
	for _, c := range []struct{ in, want float64 }{{0, 100}, {101, 200}, {350, 500}, {501, 1000}, {4100, 5000}, {10000, 10000}} {
		if got := niceCeil(c.in); got != c.want {
			t.Errorf("niceCeil(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}
