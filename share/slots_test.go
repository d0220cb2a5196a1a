package share

import (
	"errors"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // tests must not depend on the host's zoneinfo
)

func brussels(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Brussels")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestSlotOf(t *testing.T) {
	m := testManifest
	for _, tc := range []struct {
		t    time.Time
		want int64
	}{
		{time.Unix(0, 0), 0},
		{time.Unix(899, 999), 0},
		{time.Unix(900, 0), 1},
		{time.Unix(-1, 0), -1},
		{time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC), 1748772000 / 900},
		{time.Date(2025, 6, 1, 12, 14, 59, 0, time.FixedZone("CEST", 7200)), 1748772000/900 + 0},
	} {
		if got := m.SlotOf(tc.t); got != tc.want {
			t.Errorf("SlotOf(%s) = %d, want %d", tc.t, got, tc.want)
		}
	}
	if !m.SlotStart(1748772000 / 900).Equal(t0) {
		t.Fatal("SlotStart")
	}
}

func TestDaySlotsDST(t *testing.T) {
	loc := brussels(t)
	m := testManifest
	for _, tc := range []struct {
		y, mo, d int
		want     int64
	}{
		{2025, 3, 30, 92},   // spring forward: 23 h
		{2025, 10, 26, 100}, // fall back: 25 h
		{2025, 6, 1, 96},
		{2026, 3, 29, 92},
		{2026, 10, 25, 100},
	} {
		r := m.DaySlots(tc.y, time.Month(tc.mo), tc.d, loc)
		if r.Len() != tc.want {
			t.Errorf("%d-%02d-%02d: %d slots, want %d", tc.y, tc.mo, tc.d, r.Len(), tc.want)
		}
		s, e := m.Times(r)
		if s.In(loc).Hour() != 0 || e.In(loc).Hour() != 0 || e.In(loc).Day() == s.In(loc).Day() {
			t.Errorf("day range %s..%s", s.In(loc), e.In(loc))
		}
	}
	// Hourly slots: 23 and 25.
	h := Manifest{Name: "h", SlotLen: 3600, Key: DefaultKey}
	if n := h.DaySlots(2025, 10, 26, loc).Len(); n != 25 {
		t.Fatalf("hourly fall-back day: %d", n)
	}
}

func TestParseWindow(t *testing.T) {
	loc := brussels(t)
	m := testManifest
	now := time.Date(2025, 6, 1, 11, 10, 0, 0, loc) // 09:10 UTC
	slot := func(s string) int64 {
		tt, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return m.SlotOf(tt)
	}
	tests := []struct {
		in       string
		now      time.Time
		from, to string // RFC 3339 of the aligned range
	}{
		{"2025-06-01T12:00:00+02:00/2025-06-01T14:00:00+02:00", now, "2025-06-01T10:00:00Z", "2025-06-01T12:00:00Z"},
		{"2025-06-01T12:05:00+02:00/2025-06-01T12:20:00+02:00", now, "2025-06-01T10:00:00Z", "2025-06-01T10:30:00Z"},
		{"14:00/15:30", now, "2025-06-01T12:00:00Z", "2025-06-01T13:30:00Z"},
		{"22:00/02:00", now, "2025-06-01T20:00:00Z", "2025-06-02T00:00:00Z"},
		{"next-hour", now, "2025-06-01T10:00:00Z", "2025-06-01T11:00:00Z"},
		{" next-hour ", time.Date(2025, 6, 1, 23, 30, 0, 0, loc), "2025-06-01T22:00:00Z", "2025-06-01T23:00:00Z"},
		// Spring forward 2025-03-30: 01:00/04:00 local is only 2 h.
		{"01:00/04:00", time.Date(2025, 3, 30, 0, 10, 0, 0, loc), "2025-03-30T00:00:00Z", "2025-03-30T02:00:00Z"},
		// Fall back 2025-10-26: 00:00/06:00 is 7 h; 02:30 is ambiguous and takes the earlier (CEST) one.
		{"00:00/06:00", time.Date(2025, 10, 26, 0, 10, 0, 0, loc), "2025-10-25T22:00:00Z", "2025-10-26T05:00:00Z"},
		{"02:30/03:00", time.Date(2025, 10, 26, 0, 10, 0, 0, loc), "2025-10-26T00:30:00Z", "2025-10-26T02:00:00Z"},
		// next-hour across the fall-back hour.
		{"next-hour", time.Date(2025, 10, 26, 1, 30, 0, 0, loc), "2025-10-26T00:00:00Z", "2025-10-26T01:00:00Z"},
		// In the repeated hour: 02:30 CEST (00:30Z) and then 02:30 CET (01:30Z).
		{"next-hour", time.Date(2025, 10, 26, 0, 30, 0, 0, time.UTC), "2025-10-26T01:00:00Z", "2025-10-26T02:00:00Z"},
		{"next-hour", time.Date(2025, 10, 26, 1, 30, 0, 0, time.UTC), "2025-10-26T02:00:00Z", "2025-10-26T03:00:00Z"},
		// Spring forward: 01:30 CET (00:30Z) → next hour is 03:00 CEST (01:00Z).
		{"next-hour", time.Date(2025, 3, 30, 0, 30, 0, 0, time.UTC), "2025-03-30T01:00:00Z", "2025-03-30T02:00:00Z"},
	}
	for _, tc := range tests {
		r, err := m.ParseWindow(tc.in, tc.now, loc)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if r.From != slot(tc.from) || r.To != slot(tc.to) {
			s, e := m.Times(r)
			t.Errorf("%q at %s: got %s..%s, want %s..%s", tc.in, tc.now, s.Format(time.RFC3339), e.Format(time.RFC3339), tc.from, tc.to)
		}
	}
	bad := []struct{ in, msg string }{
		{"", "want START/END"},
		{"tomorrow", "want START/END"},
		{"25:00/26:00", "hours 00-23"},
		{"14:00/15:61", "minutes"},
		{"02:30/03:30", "does not exist"}, // on 2025-03-30
		{"2025-06-01T12:00:00+02:00/2025-06-01T11:00:00+02:00", "not after"},
		{"2025-06-01T12:00:00/2025-06-01T14:00:00+02:00", "RFC 3339"},
		{"2025-06-01T12:00:00+02:00/soon", "window end"},
		{"2025-06-01T00:00:00Z/2025-06-03T00:00:00Z", "limit 96"},
	}
	for _, tc := range bad {
		_, err := m.ParseWindow(tc.in, time.Date(2025, 3, 30, 0, 10, 0, 0, loc), loc)
		if !errors.Is(err, ErrBadWindow) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%q: %v (want %q)", tc.in, err, tc.msg)
		}
	}
}

func TestManifest(t *testing.T) {
	m := DefaultManifest("Rue Test")
	if string(m.Canonical()) != `{"v":1,"name":"Rue Test","slot_len_s":900,"key":"pro-rata"}` {
		t.Fatalf("%s", m.Canonical())
	}
	if m.ID() == DefaultManifest("Rue Test2").ID() {
		t.Fatal("ids collide")
	}
	for _, bad := range []Manifest{{Name: "", SlotLen: 900, Key: "pro-rata"}, {Name: "x", SlotLen: 7 * 60, Key: "pro-rata"}, {Name: "x", SlotLen: 900, Key: "Pro Rata"}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
}
