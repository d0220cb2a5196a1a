package demo

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestStreet runs a street of the user and two neighbours on four fixed
// dates: midwinter and midsummer mornings, and the nights the clocks go
// forward and back. On every date the user sees both neighbours' signed
// statuses, the production meter is measured, today's import never goes
// down, and the meter's own timestamps carry the offset of the hour the
// street has reached (so the DST change is crossed while the test runs).
// On the summer morning the solar roof also pledges its surplus to the
// user by itself. Close removes every home and closes the meters'
// terminals. Each street runs on its own simulated clock, so what the test
// checks never depends on the day it runs.
func TestStreet(t *testing.T) {
	ams, err := time.LoadLocation(Zone)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		start time.Time
		speed float64
		// offset is the UTC offset, in hours, of the meter's timestamps
		// the test waits for.
		offset int
		// pledge: the solar roof has surplus, so Sofia pledges to the
		// user. On a winter morning (about 40 W of net export at most) and
		// at night she has none, so nothing is promised either way.
		pledge bool
	}{
		{"midwinter", time.Date(2026, time.December, 21, 11, 0, 0, 0, ams), 10, 1, false},
		{"midsummer", time.Date(2026, time.June, 21, 11, 0, 0, 0, ams), 10, 2, true},
		// 00:40 UTC: 20 simulated minutes before the change at 01:00 UTC.
		{"clocks go forward", time.Date(2026, time.March, 29, 0, 40, 0, 0, time.UTC), 60, 2, false},
		{"clocks go back", time.Date(2026, time.October, 25, 0, 40, 0, 0, time.UTC), 60, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runStreet(t, Options{Neighbours: 2, Seed: 3, Dir: t.TempDir(), Start: tc.start, Speed: tc.speed}, tc.offset, tc.pledge)
		})
	}
}

// runStreet runs one street until the user has seen what the test
// promises, or fails after a minute and a half.
func runStreet(t *testing.T, opts Options, offsetHours int, wantPledge bool) {
	ctx := context.Background()
	s, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{s.Neighbours[0].Profile, s.Neighbours[1].Profile}; got[0] != "solar-roof" || got[1] != "flat" {
		t.Fatalf("profiles %v, want solar-roof, flat", got)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()

	user := s.User.Runtime.Node()
	backend := user
	deadline := time.Now().Add(90 * time.Second)
	var (
		statuses   int
		incoming   string
		production bool
		offset     = -1
		importWh   int64
		importDay  string
		importWent string
		satisfied  bool
	)
	for !satisfied && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		st, err := backend.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		production = st.Home.Production && st.Live.ProductionW.OK
		status, err := user.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if r := status.Reading; r != nil && !r.Time.IsZero() {
			_, off := r.Time.Zone()
			offset = off / 3600
		}
		// Today's import only grows within one day of the street.
		day := s.Now().In(s.Location()).Format(time.DateOnly)
		if day == importDay && status.Today.ImportWh < importWh {
			importWent = fmt.Sprintf("today's import went from %d Wh down to %d Wh at %s", importWh, status.Today.ImportWh, s.Now().Format(time.RFC3339))
		}
		importDay, importWh = day, status.Today.ImportWh
		nbs, err := user.Neighbours(ctx)
		if err != nil {
			t.Fatal(err)
		}
		statuses = 0
		for _, nb := range nbs {
			if nb.Status != nil {
				statuses++
			}
		}
		ps, err := user.Pledges(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if !p.Outgoing && p.FromName == "Sofia" {
				incoming = p.ID
			}
		}
		satisfied = statuses >= 2 && production && offset == offsetHours && (!wantPledge || incoming != "")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
	dir := s.Dir
	if err := s.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if !satisfied {
		t.Errorf("by %s the user saw %d neighbour statuses, incoming pledge %q (wanted: %v), production measured %v, meter time offset %+d h; want 2 statuses, production, offset %+d h",
			s.Now().Format(time.RFC3339), statuses, incoming, wantPledge, production, offset, offsetHours)
	}
	if importWent != "" {
		t.Error(importWent)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the street's folder %s is still there (stat: %v)", dir, err)
	}
	for _, h := range append(s.Neighbours, s.User) {
		select {
		case <-h.Meter.Done():
		default:
			t.Errorf("%s's simulated meter still runs after Close", h.Name)
		}
		if h.Production != nil {
			select {
			case <-h.Production.Done():
			default:
				t.Errorf("%s's simulated production meter still runs after Close", h.Name)
			}
		}
	}
}

// TestDefaultStart: without a chosen start the street runs on a summer
// morning of the current year, whatever the date and zone of the machine.
func TestDefaultStart(t *testing.T) {
	ams, err := time.LoadLocation(Zone)
	if err != nil {
		t.Fatal(err)
	}
	for _, now := range []time.Time{
		time.Date(2026, time.December, 2, 9, 0, 0, 0, time.UTC),
		time.Date(2027, time.January, 1, 0, 30, 0, 0, time.FixedZone("", 14*3600)),
		time.Date(2026, time.June, 21, 23, 30, 0, 0, time.UTC),
	} {
		got := DefaultStart(now, ams)
		want := time.Date(now.In(ams).Year(), time.June, 21, 11, 0, 0, 0, ams)
		if !got.Equal(want) || got.Location() != ams {
			t.Errorf("DefaultStart(%s) = %s, want %s", now, got, want)
		}
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"negative neighbours", Options{Neighbours: -1}, "neighbours is out of range"},
		{"too many neighbours", Options{Neighbours: MaxNeighbours + 1}, "neighbours is out of range"},
		{"slow", Options{Speed: 0.5}, "speed 0.5 is out of range"},
		{"too fast", Options{Speed: MaxSpeed * 2}, "is out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.opts.Dir = dir
			_, err := Open(context.Background(), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: %v, want an error containing %q", err, tc.want)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Fatalf("a failed Open left %s behind", left[0].Name())
			}
		})
	}
}

func TestSlotFor(t *testing.T) {
	for _, tc := range []struct {
		speed float64
		want  time.Duration
	}{{1, time.Minute}, {4, 5 * time.Minute}, {10, 15 * time.Minute}, {60, time.Hour}, {3600, time.Hour}} {
		if got := slotFor(tc.speed); got != tc.want {
			t.Errorf("slotFor(%v) = %v, want %v", tc.speed, got, tc.want)
		}
	}
}
