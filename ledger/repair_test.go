package ledger

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// poisonedLedger writes a ledger file at schema version 1 the way commons
// did before meter data was filed by the box clock: ten minutes of samples
// at the box's time, then one telegram stamped a year ahead by the meter's
// clock, then a flush. It returns the path and the box time of the last
// good sample.
func poisonedLedger(t *testing.T, self *household, start time.Time) (string, time.Time) {
	t.Helper()
	ctx := context.Background()
	saved := migrations
	migrations = saved[:1]
	defer func() { migrations = saved }()
	path := filepath.Join(t.TempDir(), FileName)
	l, err := Open(ctx, path, Options{Self: self.ID(), Manifest: testManifest, Now: func() time.Time { return start }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	mustAppend(t, l, self.next(t, announce("home")))
	// Without AggregatorOptions.Now the aggregator trusts sample times, as
	// the old code trusted the meter's.
	agg, err := l.NewAggregator(AggregatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	box := start
	var reg int64
	for ; box.Before(start.Add(10 * time.Minute)); box = box.Add(10 * time.Second) {
		if _, err := agg.Add(ctx, sample(box, 1000+reg, 0)); err != nil {
			t.Fatal(err)
		}
		reg++
	}
	if _, err := agg.Add(ctx, sample(box.AddDate(1, 0, 0), 1000+reg, 0)); err != nil {
		t.Fatal(err)
	}
	if err := agg.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := l.SchemaVersion(ctx); v != 1 {
		t.Fatalf("poisoned ledger at version %d, want 1", v)
	}
	if n := count(t, l, "SELECT count(*) FROM meter_minutes WHERE start_unix < ?", box.Unix()); n != 0 {
		t.Fatalf("the old retention left %d minute rows: the poisoning did not happen", n)
	}
	return path, box.Add(-10 * time.Second)
}

// TestRepairFutureMeterData opens a ledger poisoned by a meter clock a
// year ahead: the migration and the repair remove the future minute, slot
// and baseline rows, keep today's slot rows, record themselves once, and
// the aggregator then files today's energy exactly again.
func TestRepairFutureMeterData(t *testing.T) {
	ctx := context.Background()
	self := newHousehold(t, 1)
	start := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	path, last := poisonedLedger(t, self, start)

	var logBuf bytes.Buffer
	var mu sync.Mutex
	now := last.Add(time.Minute)
	l, err := Open(ctx, path, Options{Self: self.ID(), Manifest: testManifest, Now: func() time.Time { return now },
		Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logBuf, mu: &mu}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if v, _ := l.SchemaVersion(ctx); v != len(migrations) {
		t.Fatalf("schema version %d, want the latest %d", v, len(migrations))
	}
	slotsBefore := count(t, l, "SELECT count(*) FROM meter_slots WHERE start_unix <= ?", now.Unix())
	rep, err := l.RepairFutureMeterData(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Ran || rep.Minutes != 1 || rep.Slots != 1 || rep.Baselines != 1 {
		t.Fatalf("repair = %+v, want one future minute, slot and baseline removed", rep)
	}
	if n := count(t, l, "SELECT count(*) FROM meter_minutes WHERE start_unix > ?", now.Unix()); n != 0 {
		t.Fatalf("%d future minute rows left", n)
	}
	if n := count(t, l, "SELECT count(*) FROM meter_slots WHERE start_unix > ?", now.Unix()); n != 0 {
		t.Fatalf("%d future slot rows left", n)
	}
	if n := count(t, l, "SELECT count(*) FROM meter_slots"); n != slotsBefore || n == 0 {
		t.Fatalf("%d slot rows kept, want today's %d", n, slotsBefore)
	}
	if _, ok, _ := l.LastSample(ctx); ok {
		t.Fatal("the future baseline is still stored")
	}
	mu.Lock()
	logs := logBuf.String()
	mu.Unlock()
	if !strings.Contains(logs, "removed meter data") || !strings.Contains(logs, "minute_rows=1") {
		t.Fatalf("the repair did not say what it removed:\n%s", logs)
	}
	var detail string
	if err := l.db.QueryRow(`SELECT detail FROM repairs WHERE name = 'future-meter-data'`).Scan(&detail); err != nil || !strings.Contains(detail, "1 minute rows") {
		t.Fatalf("repair record %q, %v", detail, err)
	}

	// Recorded: a second run, even with a clock that would remove more,
	// changes nothing.
	if _, err := l.db.Exec(`INSERT INTO meter_minutes VALUES (?, 5, 0, NULL, 1)`, now.Add(48*time.Hour).Truncate(time.Minute).Unix()); err != nil {
		t.Fatal(err)
	}
	if rep, err := l.RepairFutureMeterData(ctx); err != nil || rep.Ran || rep.Minutes != 0 {
		t.Fatalf("second repair = %+v, %v; want nothing done", rep, err)
	}
	if _, err := l.db.Exec(`DELETE FROM meter_minutes WHERE start_unix > ?`, now.Unix()); err != nil {
		t.Fatal(err)
	}

	// The aggregator starts afresh at the box clock and counts exactly.
	agg, _ := l.NewAggregator(AggregatorOptions{Now: func() time.Time { return now }})
	for i := int64(0); i <= 6; i++ {
		if _, err := agg.Add(ctx, sample(now, 5000+7*i, 0)); err != nil {
			t.Fatal(err)
		}
		now = now.Add(10 * time.Second)
	}
	if err := agg.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	today, _ := l.Today(ctx, now, time.UTC)
	if today.ImportWh != 42 {
		t.Fatalf("today's import %d Wh, want 42", today.ImportWh)
	}
	if st := agg.Stats(); st.Samples != 7 || st.Gaps != 0 || st.Clamped != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestRepairWaitsForAPlausibleClock: with the box clock unset (1970) or
// behind the messages it stored, the repair removes nothing and is not
// recorded; it runs once the clock is right.
func TestRepairWaitsForAPlausibleClock(t *testing.T) {
	ctx := context.Background()
	self := newHousehold(t, 1)
	start := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	path, last := poisonedLedger(t, self, start)
	for _, clock := range []time.Time{time.Unix(0, 0), start.AddDate(0, 0, -3)} {
		l, err := Open(ctx, path, Options{Self: self.ID(), Manifest: testManifest, Now: func() time.Time { return clock }})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := l.RepairFutureMeterData(ctx)
		if err != nil || rep.Ran || rep.Skipped == "" {
			t.Fatalf("clock %s: repair = %+v, %v; want skipped", clock, rep, err)
		}
		if n := count(t, l, "SELECT count(*) FROM meter_minutes") + count(t, l, "SELECT count(*) FROM repairs"); n != 1 {
			t.Fatalf("clock %s: rows changed or repair recorded (%d)", clock, n)
		}
		l.Close()
	}
	l, err := Open(ctx, path, Options{Self: self.ID(), Manifest: testManifest, Now: func() time.Time { return last }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if rep, err := l.RepairFutureMeterData(ctx); err != nil || !rep.Ran || rep.Minutes != 1 {
		t.Fatalf("repair with a right clock = %+v, %v", rep, err)
	}
}
