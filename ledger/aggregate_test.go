package ledger

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/commons-energy/commons/meter"
)

func sample(t time.Time, imp, exp int64) Sample {
	return Sample{Time: t, MeterID: "M1", ImportWh: meter.Some(imp), ExportWh: meter.Some(exp)}
}

func minuteMap(t *testing.T, l *Ledger, from, to time.Time) map[string][2]int64 {
	t.Helper()
	ms, err := l.Minutes(context.Background(), from, to)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][2]int64{}
	for _, m := range ms {
		out[m.Start.Format("15:04")] = [2]int64{m.ImportWh, m.ExportWh}
	}
	return out
}

func TestAggregatorExactWhAndBatches(t *testing.T) {
	ctx := context.Background()
	l, _ := openTest(t, newHousehold(t, 1).ID())
	agg, err := l.NewAggregator(AggregatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := l.LastSample(ctx); ok || err != nil {
		t.Fatalf("last sample before any: %v %v", ok, err)
	}
	start := time.Date(2025, 1, 21, 12, 0, 0, 0, time.UTC)
	// Every 10 s: import +7 Wh, export +3 Wh, for 3 minutes (19 samples).
	var flushes []int
	for i := 0; i <= 18; i++ {
		flushed, err := agg.Add(ctx, sample(start.Add(time.Duration(i)*10*time.Second), 1000+7*int64(i), 500+3*int64(i)))
		if err != nil {
			t.Fatal(err)
		}
		if flushed {
			flushes = append(flushes, i)
		}
		if i == 5 {
			// Nothing written per telegram.
			if n := count(t, l, "SELECT count(*) FROM meter_minutes"); n != 0 {
				t.Fatalf("minutes written before a minute passed: %d", n)
			}
		}
	}
	// Writes once per minute of sample time: at 12:01:00, 12:02:00, 12:03:00.
	if len(flushes) != 3 || flushes[0] != 6 || flushes[1] != 12 || flushes[2] != 18 {
		t.Fatalf("flushed after samples %v, want [6 12 18]", flushes)
	}
	got := minuteMap(t, l, start, start.Add(time.Hour))
	// 12:03 holds the sample taken at 12:03:00 (a reading, no energy yet).
	want := map[string][2]int64{"12:00": {42, 18}, "12:01": {42, 18}, "12:02": {42, 18}, "12:03": {0, 0}}
	if len(got) != len(want) {
		t.Fatalf("minutes = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("minute %s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	if last, ok, err := l.LastSample(ctx); err != nil || !ok || !last.Equal(start.Add(180*time.Second)) {
		t.Fatalf("last sample = %v %v %v, want 12:03:00", last, ok, err)
	}
	// One more sample stays pending until Flush (shutdown).
	if flushed, _ := agg.Add(ctx, sample(start.Add(190*time.Second), 1000+7*19, 500+3*19)); flushed {
		t.Fatal("flushed early")
	}
	tot, _ := l.MeterTotals(ctx, start, start.Add(time.Hour))
	if tot.ImportWh != 126 {
		t.Fatalf("stored import before flush = %d, want 126", tot.ImportWh)
	}
	live, err := agg.Minutes(ctx, start, start.Add(time.Hour))
	if err != nil || len(live) != 4 || live[3].ImportWh != 7 || live[3].Readings != 2 || live[0].ImportWh != 42 {
		t.Fatalf("minutes with pending = %+v, %v", live, err)
	}
	today, _ := agg.Today(ctx, start, time.UTC)
	if today.ImportWh != 133 || today.ExportWh != 57 {
		t.Fatalf("aggregator today (with pending) = %+v, want 133/57", today)
	}
	if err := agg.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	tot, _ = l.MeterTotals(ctx, start, start.Add(time.Hour))
	if tot.ImportWh != 133 || tot.ExportWh != 57 || tot.ProductionWh.OK {
		t.Fatalf("stored totals after flush = %+v, want 133/57, no production", tot)
	}
	// The same minute accumulated across two flushes; slots too.
	slots, err := l.Slots(ctx, 15*time.Minute, start, start.Add(time.Hour))
	if err != nil || len(slots) != 1 || slots[0].ImportWh != 133 || slots[0].ExportWh != 57 || slots[0].Readings != 20 {
		t.Fatalf("slots = %+v, %v", slots, err)
	}
	slot := start.Unix() / 900
	imp, exp, measured, err := l.SlotEnergy(ctx, 15*time.Minute, slot-1, slot+2)
	if err != nil || imp[1] != 133 || exp[1] != 57 || measured[0] || !measured[1] || measured[2] {
		t.Fatalf("slot energy = %v %v %v %v", imp, exp, measured, err)
	}
}

func TestAggregatorSpreadsAcrossMinutes(t *testing.T) {
	ctx := context.Background()
	l, _ := openTest(t, newHousehold(t, 1).ID())
	agg, _ := l.NewAggregator(AggregatorOptions{})
	base := time.Date(2025, 1, 21, 12, 0, 50, 0, time.UTC)
	tests := []struct {
		at       time.Duration
		imp      int64
		wantNote string
	}{
		{0, 0, ""},
		{20 * time.Second, 20, "12:00:50 → 12:01:10: 10 + 10"},
		{150 * time.Second, 150, "12:01:10 → 12:03:20: 50 + 60 + 20 (130 Wh over 130 s)"},
		{150*time.Second + 0, 151, "same instant: +1 into 12:03"},
	}
	for _, tt := range tests {
		if _, err := agg.Add(ctx, sample(base.Add(tt.at), tt.imp, 0)); err != nil {
			t.Fatal(err)
		}
	}
	agg.Flush(ctx)
	got := minuteMap(t, l, base.Add(-time.Hour), base.Add(time.Hour))
	want := map[string]int64{"12:00": 10, "12:01": 60, "12:02": 60, "12:03": 21}
	for k, v := range want {
		if got[k][0] != v {
			t.Fatalf("minute %s = %d, want %d (all %v)", k, got[k][0], v, got)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("minutes %v", got)
	}
}

func TestAggregatorResetsAndGaps(t *testing.T) {
	ctx := context.Background()
	var logBuf bytes.Buffer
	var mu sync.Mutex
	l, _ := openTest(t, newHousehold(t, 1).ID())
	l.log = slog.New(slog.NewTextHandler(&lockedWriter{w: &logBuf, mu: &mu}, nil))
	agg, _ := l.NewAggregator(AggregatorOptions{})
	start := time.Date(2025, 1, 21, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return start.Add(time.Duration(s) * time.Second) }
	steps := []Sample{
		sample(at(0), 5000, 100),
		sample(at(10), 5010, 100), // +10
		sample(at(20), 20, 100),   // import register reset: new baseline, no negative energy
		sample(at(30), 25, 104),   // +5 import, +4 export
		{Time: at(40), MeterID: "M2", ImportWh: meter.Some(900000), ExportWh: meter.Some(7)},            // new meter
		{Time: at(50), MeterID: "M2", ImportWh: meter.Some(900003), ExportWh: meter.Some(7)},            // +3
		{Time: at(45), MeterID: "M2", ImportWh: meter.Some(900004), ExportWh: meter.Some(7)},            // stamped before the baseline: filed at its time, +1
		{Time: at(60), MeterID: "M2", ImportWh: meter.Some(9_900_003), ExportWh: meter.Some(7)},         // +10 MWh in 10 s: implausible
		{Time: at(70), MeterID: "M2", ImportWh: meter.Some(9_900_004), ExportWh: meter.Some(7)},         // +1
		{Time: at(70 + 3600), MeterID: "M2", ImportWh: meter.Some(9_901_004), ExportWh: meter.Some(8)},  // 1 h gap: not attributed
		{Time: at(70 + 3610), MeterID: "M2", ImportWh: meter.Some(9_901_006), ExportWh: meter.Some(9)},  // +2, +1
		{Time: at(70 + 3620), MeterID: "M2", ExportWh: meter.Some(10)},                                  // no import register: export +1 only
		{Time: at(70 + 3630), MeterID: "M2", ImportWh: meter.Some(9_901_010), ExportWh: meter.Some(10)}, // +4 against the last import seen
	}
	for _, s := range steps {
		if _, err := agg.Add(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := agg.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	tot, _ := l.MeterTotals(ctx, start, start.Add(3*time.Hour))
	if tot.ImportWh != 10+5+3+1+1+2+4 || tot.ExportWh != 4+1+1 {
		t.Fatalf("totals = %+v, want import 26, export 6", tot)
	}
	if n := count(t, l, "SELECT count(*) FROM meter_minutes WHERE import_wh < 0 OR export_wh < 0"); n != 0 {
		t.Fatal("negative energy stored")
	}
	st := agg.Stats()
	if st.Resets != 3 || st.Gaps != 1 || st.Clamped != 1 {
		t.Fatalf("stats = %+v, want 3 resets (reset, swap, jump), 1 gap, 1 clamped", st)
	}
	mu.Lock()
	logs := logBuf.String()
	mu.Unlock()
	for _, want := range []string{"meter register jumped", "meter changed", "meter data gap", "outside the box clock"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

func TestAggregatorBaselineSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	self := newHousehold(t, 1)
	l, path := openTest(t, self.ID())
	agg, _ := l.NewAggregator(AggregatorOptions{})
	start := time.Date(2025, 1, 21, 12, 0, 0, 0, time.UTC)
	for i := 0; i <= 6; i++ { // flushes at 12:01:00
		if _, err := agg.Add(ctx, sample(start.Add(time.Duration(i)*10*time.Second), 100+int64(i)*2, 0)); err != nil {
			t.Fatal(err)
		}
	}
	// Two more samples pending, then the process dies without Flush.
	agg.Add(ctx, sample(start.Add(70*time.Second), 116, 0))
	agg.Add(ctx, sample(start.Add(80*time.Second), 118, 0))
	l.Close()

	l2, err := Open(ctx, path, Options{Self: self.ID(), Manifest: testManifest})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	agg2, _ := l2.NewAggregator(AggregatorOptions{})
	// After a 2-minute restart the delta from the stored baseline is counted.
	if _, err := agg2.Add(ctx, sample(start.Add(200*time.Second), 130, 0)); err != nil {
		t.Fatal(err)
	}
	agg2.Flush(ctx)
	tot, _ := l2.MeterTotals(ctx, start, start.Add(time.Hour))
	if tot.ImportWh != 30 {
		t.Fatalf("import after restart = %d, want 30 (130-100: nothing lost)", tot.ImportWh)
	}
}

func TestAggregatorDSTDays(t *testing.T) {
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		day        time.Time
		hours      int64
		quarterHrs int
	}{
		{"spring forward", time.Date(2025, 3, 30, 12, 0, 0, 0, ams), 23, 92},
		{"fall back", time.Date(2025, 10, 26, 12, 0, 0, 0, ams), 25, 100},
		{"ordinary", time.Date(2025, 6, 1, 12, 0, 0, 0, ams), 24, 96},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			l, _ := openTest(t, newHousehold(t, 1).ID())
			// Hourly writes keep the test quick; batching is tested above.
			agg, _ := l.NewAggregator(AggregatorOptions{FlushEvery: time.Hour})
			from, to := DayBounds(tt.day, ams)
			if got := int64(to.Sub(from) / time.Hour); got != tt.hours {
				t.Fatalf("day is %d h, want %d", got, tt.hours)
			}
			// 1 Wh import per minute, 2 Wh export per minute, from one hour
			// before the day to one hour after it, in UTC minutes.
			var reg int64
			for ts := from.Add(-time.Hour); !ts.After(to.Add(time.Hour)); ts = ts.Add(time.Minute) {
				if _, err := agg.Add(ctx, sample(ts, reg, 2*reg)); err != nil {
					t.Fatal(err)
				}
				reg++
			}
			if err := agg.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			today, err := l.Today(ctx, tt.day, ams)
			if err != nil {
				t.Fatal(err)
			}
			if today.ImportWh != tt.hours*60 || today.ExportWh != 2*tt.hours*60 {
				t.Fatalf("today = %+v, want import %d", today, tt.hours*60)
			}
			slots, _ := l.Slots(ctx, 15*time.Minute, from, to)
			if len(slots) != tt.quarterHrs {
				t.Fatalf("%d quarter-hours, want %d", len(slots), tt.quarterHrs)
			}
			for _, s := range slots {
				if s.ImportWh != 15 {
					t.Fatalf("slot %s import %d, want 15", s.Start, s.ImportWh)
				}
			}
			aggToday, _ := agg.Today(ctx, tt.day, ams)
			if aggToday != today {
				t.Fatalf("aggregator today %+v != stored today %+v after flush", aggToday, today)
			}
		})
	}
}

func TestAggregatorProductionAndRetention(t *testing.T) {
	ctx := context.Background()
	l, _ := openTest(t, newHousehold(t, 1).ID())
	agg, _ := l.NewAggregator(AggregatorOptions{Retention: 2 * time.Hour, FlushEvery: time.Hour})
	start := time.Date(2025, 1, 21, 10, 0, 0, 0, time.UTC)
	for i := int64(0); i <= 4*60; i++ { // 4 hours, one sample a minute
		s := sample(start.Add(time.Duration(i)*time.Minute), i, 0)
		s.ProductionWh = meter.Some(3 * i)
		if _, err := agg.Add(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	agg.Flush(ctx)
	ms, _ := l.Minutes(ctx, start, start.Add(5*time.Hour))
	// Minutes older than the newest sample minus the retention are pruned.
	if len(ms) == 0 || ms[0].Start.Before(start.Add(2*time.Hour)) {
		t.Fatalf("oldest minute %v, want >= 12:00 after pruning", ms[0].Start)
	}
	if !ms[0].ProductionWh.OK || ms[0].ProductionWh.V != 3 {
		t.Fatalf("production = %+v, want 3 Wh", ms[0].ProductionWh)
	}
	// Slots are kept forever (16 full ones, and 14:00 holding the last sample).
	slots, _ := l.Slots(ctx, 15*time.Minute, start, start.Add(5*time.Hour))
	if len(slots) != 17 || slots[0].ImportWh != 15 || slots[0].ProductionWh.V != 45 {
		t.Fatalf("slots: %d, first %+v", len(slots), slots[0])
	}
}

func TestSampleFromReading(t *testing.T) {
	recv := time.Date(2025, 1, 21, 12, 0, 0, 0, time.UTC)
	meterTime := recv.Add(-2 * time.Second)
	r := meter.Reading{Time: meterTime, MeterID: "X"}
	if _, ok := SampleFromReading(&r, recv); ok {
		t.Fatal("reading without registers gave a sample")
	}
	r.EnergyImport.Total = meter.Some(12)
	s, ok := SampleFromReading(&r, recv)
	if !ok || !s.Time.Equal(recv) || s.ImportWh.V != 12 || s.ExportWh.OK || s.MeterID != "X" {
		t.Fatalf("sample = %+v: want the box's time of receipt, not the meter's", s)
	}
	r.Time = time.Time{}
	if s, _ := SampleFromReading(&r, recv); !s.Time.Equal(recv) {
		t.Fatalf("no meter time: sample time %v, want received", s.Time)
	}
	l, _ := openTest(t, newHousehold(t, 1).ID())
	agg, _ := l.NewAggregator(AggregatorOptions{})
	if _, err := agg.Add(context.Background(), Sample{ImportWh: meter.Some(1)}); err == nil {
		t.Fatal("a sample without time was accepted")
	}
	if _, err := l.NewAggregator(AggregatorOptions{SlotLength: 7 * time.Minute}); err == nil {
		t.Fatal("a slot length that does not divide a day was accepted")
	}
}

// TestAggregatorConservesEnergy is a property test: for random sample
// streams (irregular intervals, random increments, counter resets, random
// flush points), the stored minutes and the stored slots each sum exactly
// to the energy the registers counted outside resets, and nothing is
// negative.
func TestAggregatorConservesEnergy(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(seed, 42))
			l, _ := openTest(t, newHousehold(t, 1).ID())
			agg, _ := l.NewAggregator(AggregatorOptions{SlotLength: 5 * time.Minute, FlushEvery: 20 * time.Minute})
			start := time.Date(2025, 3, 30, 0, 30, 0, 0, time.UTC).Add(time.Duration(rng.IntN(60_000)) * time.Millisecond)
			ts, imp, exp := start, int64(rng.IntN(1_000_000)), int64(rng.IntN(1_000_000))
			var wantImp, wantExp int64
			if _, err := agg.Add(ctx, sample(ts, imp, exp)); err != nil { // the baseline
				t.Fatal(err)
			}
			for i := 0; i < 2000; i++ {
				ts = ts.Add(time.Duration(1+rng.IntN(120_000)) * time.Millisecond)
				if rng.IntN(200) == 0 && imp > 0 {
					imp = rng.Int64N(imp) // counter reset (goes down): not energy
				} else {
					d := int64(rng.IntN(5))
					imp += d
					wantImp += d
				}
				d := int64(rng.IntN(3))
				exp += d
				wantExp += d
				if _, err := agg.Add(ctx, sample(ts, imp, exp)); err != nil {
					t.Fatal(err)
				}
				if rng.IntN(300) == 0 {
					if err := agg.Flush(ctx); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := agg.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			from, to := start.Add(-time.Hour), ts.Add(time.Hour)
			tot, _ := l.MeterTotals(ctx, from, to)
			if tot.ImportWh != wantImp || tot.ExportWh != wantExp {
				t.Fatalf("minutes sum to %d/%d Wh, registers counted %d/%d", tot.ImportWh, tot.ExportWh, wantImp, wantExp)
			}
			slots, _ := l.Slots(ctx, 5*time.Minute, from, to)
			var si, se int64
			for _, s := range slots {
				si += s.ImportWh
				se += s.ExportWh
			}
			if si != wantImp || se != wantExp {
				t.Fatalf("slots sum to %d/%d Wh, want %d/%d", si, se, wantImp, wantExp)
			}
			if n := count(t, l, "SELECT count(*) FROM meter_minutes WHERE import_wh < 0 OR export_wh < 0"); n != 0 {
				t.Fatal("negative minute")
			}
		})
	}
}
