package ledger

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/commons-energy/commons/meter"
)

// meterClockCases are wrong meter clocks: what the meter stamps a
// telegram with, given the box's time of receipt.
var meterClockCases = []struct {
	name  string
	stamp func(box time.Time) time.Time
}{
	{"a year ahead", func(box time.Time) time.Time { return box.AddDate(1, 0, 0) }},
	{"a year behind", func(box time.Time) time.Time { return box.AddDate(-1, 0, 0) }},
	{"not set", func(time.Time) time.Time { return time.Time{} }},
	// A meter a little ahead that then loses its clock: the box's own
	// time of receipt is behind the last meter stamp.
	{"ahead then not set", func(time.Time) time.Time { return time.Time{} }},
}

// TestAggregatorIgnoresMeterClock feeds readings through SampleFromReading
// at a steady box clock while the meter's own clock is right, then wrong
// for a few telegrams, then right again. Energy is filed by the box clock:
// every sample counts, today's totals are the exact register deltas, the
// baseline stays at the box's time, and retention deletes no minute.
func TestAggregatorIgnoresMeterClock(t *testing.T) {
	for _, tc := range meterClockCases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			l, _ := openTest(t, newHousehold(t, 1).ID())
			agg, err := l.NewAggregator(AggregatorOptions{})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
			var reg, n int64
			add := func(box, stamp time.Time) {
				t.Helper()
				r := meter.Reading{Time: stamp, MeterID: "M1",
					EnergyImport: meter.Registers{Total: meter.Some(1000 + 3*reg)}, EnergyExport: meter.Registers{Total: meter.Some(50 + reg)}}
				s, ok := SampleFromReading(&r, box)
				if !ok {
					t.Fatal("no sample")
				}
				if _, err := agg.Add(ctx, s); err != nil {
					t.Fatal(err)
				}
				reg++
				n++
			}
			box := start
			ahead := time.Duration(0)
			if tc.name == "ahead then not set" {
				ahead = 2 * time.Minute
			}
			// 10 minutes right (or slightly ahead), a telegram every 10 s.
			for ; box.Before(start.Add(10 * time.Minute)); box = box.Add(10 * time.Second) {
				add(box, box.Add(ahead))
			}
			// 5 telegrams with the wrong clock, then 10 more minutes right.
			for i := 0; i < 5; i++ {
				add(box, tc.stamp(box))
				box = box.Add(10 * time.Second)
			}
			for end := box.Add(10 * time.Minute); !box.After(end); box = box.Add(10 * time.Second) {
				add(box, box)
			}
			last := box.Add(-10 * time.Second)
			if err := agg.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if st := agg.Stats(); st.Samples != n || st.Resets != 0 || st.Gaps != 0 {
				t.Fatalf("stats %+v: want all %d samples aggregated, no reset, no gap", st, n)
			}
			wantImp, wantExp := 3*(reg-1), reg-1
			today, err := l.Today(ctx, start, time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			if today.ImportWh != wantImp || today.ExportWh != wantExp {
				t.Fatalf("today = %+v, want import %d, export %d Wh", today, wantImp, wantExp)
			}
			from, to := start, last.Truncate(time.Minute).Add(time.Minute)
			ms, err := l.Minutes(ctx, from, to)
			if err != nil {
				t.Fatal(err)
			}
			if want := int(to.Sub(from) / time.Minute); len(ms) != want {
				t.Fatalf("%d minute rows between %s and %s, want %d (retention or a wrong clock removed some)", len(ms), from, to, want)
			}
			if all := count(t, l, "SELECT count(*) FROM meter_minutes"); all != int64(len(ms)) {
				t.Fatalf("%d minute rows stored, %d of them today: rows filed at the meter's time", all, len(ms))
			}
			if lt, ok, err := l.LastSample(ctx); err != nil || !ok || !lt.Equal(last) {
				t.Fatalf("stored baseline at %v (%v, %v), want the box time %v", lt, ok, err, last)
			}
		})
	}
}

// TestAggregatorFutureSampleKeepsMinutes: one sample stamped a year after
// the box clock (Now) neither deletes per-minute rows through retention
// nor moves the baseline: it is filed at Now, its energy counted.
func TestAggregatorFutureSampleKeepsMinutes(t *testing.T) {
	ctx := context.Background()
	var logBuf bytes.Buffer
	var mu sync.Mutex
	l, _ := openTest(t, newHousehold(t, 1).ID())
	l.log = slog.New(slog.NewTextHandler(&lockedWriter{w: &logBuf, mu: &mu}, nil))
	start := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
	now := start
	agg, err := l.NewAggregator(AggregatorOptions{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	var reg int64
	for ; now.Before(start.Add(5 * time.Minute)); now = now.Add(30 * time.Second) {
		if _, err := agg.Add(ctx, sample(now, reg, 0)); err != nil {
			t.Fatal(err)
		}
		reg++
	}
	if err := agg.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	before := count(t, l, "SELECT count(*) FROM meter_minutes")
	// One sample a year ahead, then back to normal.
	if _, err := agg.Add(ctx, sample(now.AddDate(1, 0, 0), reg, 0)); err != nil {
		t.Fatal(err)
	}
	if err := agg.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if lt, _, _ := l.LastSample(ctx); !lt.Equal(now) {
		t.Fatalf("baseline at %v after a future sample, want the box clock %v", lt, now)
	}
	if n := count(t, l, "SELECT count(*) FROM meter_minutes WHERE start_unix < ?", start.Add(5*time.Minute).Unix()); n != before {
		t.Fatalf("%d of %d minute rows left after one future sample", n, before)
	}
	if n := count(t, l, "SELECT count(*) FROM meter_minutes WHERE start_unix > ?", now.Unix()); n != 0 {
		t.Fatalf("%d minute rows in the future", n)
	}
	now = now.Add(30 * time.Second)
	if _, err := agg.Add(ctx, sample(now, reg+1, 0)); err != nil {
		t.Fatal(err)
	}
	agg.Flush(ctx)
	tot, _ := l.MeterTotals(ctx, start, start.Add(time.Hour))
	if tot.ImportWh != reg+1 {
		t.Fatalf("import %d Wh, want %d: every register delta counted", tot.ImportWh, reg+1)
	}
	if st := agg.Stats(); st.Clamped != 1 {
		t.Fatalf("clamped %d samples, want 1", st.Clamped)
	}
	mu.Lock()
	logs := logBuf.String()
	mu.Unlock()
	if strings.Count(logs, "outside the box clock") != 1 {
		t.Fatalf("want one log line for the clamped sample:\n%s", logs)
	}
}

// TestAggregatorBoxClockStepsBack: a box clock that steps back a little
// (NTP) files samples at the baseline's time, energy counted; one that
// steps back further than MaxGap starts a new baseline, logged, rather
// than dropping every sample until the clock catches up.
func TestAggregatorBoxClockStepsBack(t *testing.T) {
	ctx := context.Background()
	var logBuf bytes.Buffer
	var mu sync.Mutex
	l, _ := openTest(t, newHousehold(t, 1).ID())
	l.log = slog.New(slog.NewTextHandler(&lockedWriter{w: &logBuf, mu: &mu}, nil))
	agg, _ := l.NewAggregator(AggregatorOptions{})
	start := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return start.Add(time.Duration(s) * time.Second) }
	for _, s := range []Sample{
		sample(at(0), 100, 0),
		sample(at(10), 102, 0), // +2
		sample(at(5), 105, 0),  // 5 s back: filed at 10 s, +3
		sample(at(20), 106, 0), // +1
		sample(at(-7200), 110, 0),
		sample(at(-7190), 111, 0), // +1
	} {
		if _, err := agg.Add(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	agg.Flush(ctx)
	tot, _ := l.MeterTotals(ctx, start.Add(-3*time.Hour), start.Add(time.Hour))
	if tot.ImportWh != 7 {
		t.Fatalf("import %d Wh, want 7", tot.ImportWh)
	}
	if st := agg.Stats(); st.Samples != 6 || st.Clamped != 1 || st.Gaps != 1 {
		t.Fatalf("stats %+v: want 6 samples, 1 clamped, 1 gap", st)
	}
	if lt, _, _ := l.LastSample(ctx); !lt.Equal(at(-7190)) {
		t.Fatalf("baseline at %v, want %v", lt, at(-7190))
	}
	mu.Lock()
	logs := logBuf.String()
	mu.Unlock()
	if !strings.Contains(logs, "baseline is later than the box clock") {
		t.Fatalf("no log of the step back:\n%s", logs)
	}
}
