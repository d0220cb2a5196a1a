package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/commons-energy/commons/meter"
)

// Sample is one observation of a meter's cumulative energy registers, the
// input of an Aggregator.
type Sample struct {
	Time         time.Time      // when this box received the registers, by its own clock (never the meter's clock)
	MeterID      string         // equipment id; a change means a new meter and a new baseline
	ImportWh     meter.Optional // import register total, Wh
	ExportWh     meter.Optional // export register total, Wh
	ProductionWh meter.Optional // production register total (an inverter or sub-meter), Wh
}

// SampleFromReading takes the import and export register totals of r,
// stamped with received, the time this box received r by its own clock.
// The meter's own timestamp (r.Time) is deliberately not used: a meter
// clock that is wrong, unset or jumping must not decide which minute,
// slot or day energy is filed under, nor what retention deletes; it stays
// on the reading as a label. ok is false when r carries neither total.
func SampleFromReading(r *meter.Reading, received time.Time) (s Sample, ok bool) {
	s = Sample{Time: received, MeterID: r.MeterID, ImportWh: r.EnergyImport.Total, ExportWh: r.EnergyExport.Total}
	return s, s.ImportWh.OK || s.ExportWh.OK
}

// AggregatorOptions tune an Aggregator. Zero values take the defaults.
type AggregatorOptions struct {
	// SlotLength is the settlement slot length, a whole number of minutes
	// dividing a day. Default 15 minutes.
	SlotLength time.Duration
	// FlushEvery is how much sample time may pass between writes. Default
	// one minute.
	FlushEvery time.Duration
	// Retention is how long per-minute rows are kept. Default 30 days.
	// Slot rows are kept forever.
	Retention time.Duration
	// MaxGap is the longest time between two samples whose register
	// deltas are spread over the minutes in between. Energy across a
	// longer gap (a box that was off for hours) is not attributed to any
	// minute or slot, so settlement never credits a slot with energy that
	// may belong elsewhere; it is logged. Default 15 minutes.
	MaxGap time.Duration
	// MaxPowerW bounds a plausible register delta: a jump implying more
	// than this power is treated as a meter swap or a bad value and starts
	// a new baseline. Default 250 kW.
	MaxPowerW int64
	// MaxPendingMinutes bounds the minutes held in memory while writes
	// fail; the oldest are dropped beyond it. Default 1440 (one day).
	MaxPendingMinutes int
	// Now is the box clock. A sample stamped after Now() is filed at
	// Now() (and logged), so no single sample can move the baseline or
	// the retention cutoff into the future. nil trusts the sample times,
	// which is right only when they come from this box's clock.
	Now func() time.Time
}

func (o *AggregatorOptions) defaults() error {
	if o.SlotLength == 0 {
		o.SlotLength = 15 * time.Minute
	}
	if o.SlotLength < time.Minute || o.SlotLength%time.Minute != 0 || (24*time.Hour)%o.SlotLength != 0 {
		return fmt.Errorf("slot length %s: want a whole number of minutes that divides a day", o.SlotLength)
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = time.Minute
	}
	if o.Retention <= 0 {
		o.Retention = 30 * 24 * time.Hour
	}
	if o.MaxGap <= 0 {
		o.MaxGap = 15 * time.Minute
	}
	if o.MaxPowerW <= 0 {
		o.MaxPowerW = 250_000
	}
	if o.MaxPendingMinutes <= 0 {
		o.MaxPendingMinutes = 1440
	}
	return nil
}

// bucket accumulates one minute or one slot.
type bucket struct {
	imp, exp, prod int64
	hasProd        bool
	readings       int64
}

func (b *bucket) add(o *bucket) {
	b.imp += o.imp
	b.exp += o.exp
	b.prod += o.prod
	b.hasProd = b.hasProd || o.hasProd
	b.readings += o.readings
}

// baseline is the last register values aggregated.
type baseline struct {
	meterID        string
	t              time.Time
	imp, exp, prod meter.Optional
	valid          bool
}

// Aggregator turns meter samples into per-minute and per-slot energy,
// computed from register deltas in integer Wh, and writes them to the
// ledger in batches: at most once per FlushEvery of sample time, plus
// Flush at shutdown. It is safe for concurrent use. Use one Aggregator per
// ledger: the stored baseline is shared.
//
// A delta between two samples is spread over the minutes the interval
// covers in proportion to time, in integer Wh that sum exactly to the
// delta. A register that goes down (a counter reset or a new meter), a
// change of meter id, or an implausible jump starts a new baseline and is
// logged; no negative energy is ever recorded. The baseline is stored with
// each flush, so energy used while the program was stopped for less than
// MaxGap is still counted after a restart.
//
// Sample times are this box's clock, never the meter's (see
// SampleFromReading), and are kept monotonic: no sample is dropped for
// its time, and none can move the baseline or the retention cutoff ahead
// of the box clock (AggregatorOptions.Now).
type Aggregator struct {
	l    *Ledger
	opts AggregatorOptions

	mu        sync.Mutex
	loaded    bool
	base      baseline
	minutes   map[int64]*bucket // minute start, Unix seconds
	lastFlush time.Time         // sample time of the last flush
	dirty     bool              // baseline changed since the last flush
	newest    time.Time         // newest sample time seen
	clamping  bool              // the last sample was clamped (logged once per run of them)
	stats     AggregatorStats
}

// AggregatorStats counts what the aggregator did, for status displays.
type AggregatorStats struct {
	Samples   int64 // samples aggregated
	Resets    int64 // new baselines after a reset, swap or implausible jump
	Gaps      int64 // intervals longer than MaxGap left unattributed
	Clamped   int64 // samples stamped before the baseline or after Now, filed at the nearest allowed time
	Flushes   int64 // successful writes
	Dropped   int64 // minutes dropped from memory because writes kept failing
	LastFlush time.Time
}

// NewAggregator returns an aggregator writing to l.
func (l *Ledger) NewAggregator(opts AggregatorOptions) (*Aggregator, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	return &Aggregator{l: l, opts: opts, minutes: map[int64]*bucket{}}, nil
}

// SlotLength returns the aggregator's slot length.
func (a *Aggregator) SlotLength() time.Duration { return a.opts.SlotLength }

// Stats returns a snapshot of the counters.
func (a *Aggregator) Stats() AggregatorStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stats
}

// Add aggregates one sample and writes the pending batch when FlushEvery
// of sample time has passed since the last write. flushed reports whether
// it wrote. On a write error the data stays pending for the next try.
func (a *Aggregator) Add(ctx context.Context, s Sample) (flushed bool, err error) {
	if s.Time.IsZero() {
		return false, errors.New("meter sample without a time: use SampleFromReading with the time it was received")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.loaded {
		if err := a.load(ctx); err != nil {
			return false, err
		}
	}
	t := a.add(s)
	if a.lastFlush.IsZero() {
		a.lastFlush = t
	}
	if t.Sub(a.lastFlush) < a.opts.FlushEvery {
		return false, nil
	}
	if err := a.flush(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// Flush writes everything pending now. Call it before shutdown and before
// settling a slot that just ended.
func (a *Aggregator) Flush(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.loaded {
		return nil
	}
	return a.flush(ctx)
}

func (a *Aggregator) load(ctx context.Context) error {
	var (
		b              baseline
		ms             int64
		imp, exp, prod sql.NullInt64
	)
	err := a.l.db.QueryRowContext(ctx, `SELECT meter_id, time_ms, import_wh, export_wh, production_wh FROM meter_baseline WHERE id = 1`).
		Scan(&b.meterID, &ms, &imp, &exp, &prod)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("load meter baseline from %s: %w", a.l.path, err)
	default:
		b.t = time.UnixMilli(ms)
		b.imp = meter.Optional{V: imp.Int64, OK: imp.Valid}
		b.exp = meter.Optional{V: exp.Int64, OK: exp.Valid}
		b.prod = meter.Optional{V: prod.Int64, OK: prod.Valid}
		b.valid = true
	}
	a.base = b
	a.loaded = true
	return nil
}

// add aggregates s and returns the time it was filed at.
func (a *Aggregator) add(s Sample) time.Time {
	log := a.l.log
	b := &a.base
	s.Time = a.clamp(s.Time)
	a.stats.Samples++
	a.bucketAt(floorDiv(s.Time.UnixMilli(), 60_000)).readings++
	if s.Time.After(a.newest) {
		a.newest = s.Time
	}
	a.dirty = true
	if b.valid && s.MeterID != "" && b.meterID != "" && s.MeterID != b.meterID {
		log.Warn("meter changed: starting new baseline", "old_meter", b.meterID, "new_meter", s.MeterID, "time", s.Time)
		a.stats.Resets++
		*b = baseline{}
	}
	if !b.valid {
		*b = baseline{meterID: s.MeterID, t: s.Time, imp: s.ImportWh, exp: s.ExportWh, prod: s.ProductionWh, valid: true}
		return s.Time
	}
	dt := s.Time.Sub(b.t)
	if dt > a.opts.MaxGap {
		log.Warn("meter data gap: energy in it not attributed to any minute or slot",
			"from", b.t, "to", s.Time, "import_wh", diff(b.imp, s.ImportWh), "export_wh", diff(b.exp, s.ExportWh))
		a.stats.Gaps++
		*b = baseline{meterID: s.MeterID, t: s.Time, imp: s.ImportWh, exp: s.ExportWh, prod: s.ProductionWh, valid: true}
		return s.Time
	}
	maxWh := a.opts.MaxPowerW*max(dt.Milliseconds(), 1000)/3_600_000 + 1
	delta := func(name string, old *meter.Optional, now meter.Optional) (int64, bool) {
		if !now.OK {
			return 0, false // keep the old baseline for this register
		}
		if !old.OK {
			*old = now
			return 0, false
		}
		d := now.V - old.V
		if d < 0 || d > maxWh {
			log.Warn("meter register jumped: starting new baseline", "register", name,
				"from_wh", old.V, "to_wh", now.V, "seconds", dt.Seconds(), "time", s.Time)
			a.stats.Resets++
			*old = now
			return 0, false
		}
		*old = now
		return d, true
	}
	imp, _ := delta("import", &b.imp, s.ImportWh)
	exp, _ := delta("export", &b.exp, s.ExportWh)
	prod, hasProd := delta("production", &b.prod, s.ProductionWh)
	a.spread(b.t, s.Time, imp, exp, prod, hasProd)
	b.t = s.Time
	if s.MeterID != "" {
		b.meterID = s.MeterID
	}
	return s.Time
}

// clamp keeps sample times monotonic and not in the future of the box
// clock: a time after Now is filed at Now; a time slightly before the
// baseline (the box clock stepped back by at most MaxGap) is filed at the
// baseline's time so its energy still counts. A baseline more than MaxGap
// after t (the box clock went back further, or a stored baseline from a
// wrong clock) is abandoned: the energy since it is not attributed, as
// across a gap, and it is logged.
func (a *Aggregator) clamp(t time.Time) time.Time {
	log := a.l.log
	orig := t
	if a.opts.Now != nil {
		if now := a.opts.Now(); t.After(now) {
			t = now
		}
	}
	if b := &a.base; b.valid && t.Before(b.t) {
		if back := b.t.Sub(t); back > a.opts.MaxGap {
			log.Warn("meter baseline is later than the box clock: starting a new baseline, energy since it not attributed",
				"baseline", b.t, "now", t, "ahead", back.Round(time.Second))
			a.stats.Gaps++
			*b = baseline{}
			a.newest, a.lastFlush = time.Time{}, time.Time{}
		} else {
			t = b.t
		}
	}
	if t.Equal(orig) {
		a.clamping = false
		return t
	}
	a.stats.Clamped++
	if !a.clamping {
		a.clamping = true
		log.Warn("meter sample stamped outside the box clock's order: filed at the nearest allowed time",
			"stamped", orig, "filed", t)
	}
	return t
}

func diff(a, b meter.Optional) any {
	if !a.OK || !b.OK {
		return "unknown"
	}
	return b.V - a.V
}

// bucketAt returns the pending bucket of a minute (Unix minutes).
func (a *Aggregator) bucketAt(minute int64) *bucket {
	bk := a.minutes[minute*60]
	if bk == nil {
		bk = &bucket{}
		a.minutes[minute*60] = bk
	}
	return bk
}

// spread attributes the deltas of the interval (t0, t1] to the minutes it
// covers, proportionally to time, with integer parts summing exactly to
// each delta.
func (a *Aggregator) spread(t0, t1 time.Time, imp, exp, prod int64, hasProd bool) {
	m1 := floorDiv(t1.UnixMilli()-1, 60_000) // minute holding the instant just before t1
	if !t1.After(t0) {
		m1 = floorDiv(t1.UnixMilli(), 60_000)
	}
	at := a.bucketAt
	ms0, ms1 := t0.UnixMilli(), t1.UnixMilli()
	total := ms1 - ms0
	m0 := floorDiv(ms0, 60_000)
	if total <= 0 || m0 == m1 {
		bk := at(m1)
		bk.imp += imp
		bk.exp += exp
		bk.prod += prod
		bk.hasProd = bk.hasProd || hasProd
		return
	}
	var prevI, prevE, prevP int64
	for m := m0; m <= m1; m++ {
		end := min((m+1)*60_000, ms1)
		done := end - ms0
		ci, ce, cp := imp*done/total, exp*done/total, prod*done/total
		bk := at(m)
		bk.imp += ci - prevI
		bk.exp += ce - prevE
		bk.prod += cp - prevP
		bk.hasProd = bk.hasProd || hasProd
		prevI, prevE, prevP = ci, ce, cp
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// flush writes pending minutes, their slots and the baseline in one
// transaction and prunes minutes older than the retention.
func (a *Aggregator) flush(ctx context.Context) error {
	if len(a.minutes) == 0 && !a.dirty {
		return nil
	}
	slotSec := int64(a.opts.SlotLength / time.Second)
	slots := map[int64]*bucket{}
	keys := make([]int64, 0, len(a.minutes))
	for start, bk := range a.minutes {
		keys = append(keys, start)
		slot := floorDiv(start, slotSec)
		sb := slots[slot]
		if sb == nil {
			sb = &bucket{}
			slots[slot] = sb
		}
		sb.add(bk)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	// Retention counts back from the newest sample, which is never after
	// the box clock (see clamp).
	newest := a.newest
	if a.opts.Now != nil {
		if now := a.opts.Now(); now.Before(newest) {
			newest = now
		}
	}
	cutoff := newest.Add(-a.opts.Retention).Unix()
	err := a.l.write(ctx, func(tx *sql.Tx) error {
		minStmt, err := tx.PrepareContext(ctx, `
INSERT INTO meter_minutes (start_unix, import_wh, export_wh, production_wh, readings) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (start_unix) DO UPDATE SET import_wh = import_wh + excluded.import_wh, export_wh = export_wh + excluded.export_wh,
	production_wh = CASE WHEN excluded.production_wh IS NULL THEN production_wh ELSE coalesce(production_wh, 0) + excluded.production_wh END,
	readings = readings + excluded.readings`)
		if err != nil {
			return err
		}
		defer minStmt.Close()
		for _, start := range keys {
			bk := a.minutes[start]
			if _, err := minStmt.ExecContext(ctx, start, bk.imp, bk.exp, prodArg(bk), bk.readings); err != nil {
				return err
			}
		}
		slotStmt, err := tx.PrepareContext(ctx, `
INSERT INTO meter_slots (slot_seconds, slot, start_unix, import_wh, export_wh, production_wh, readings) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (slot_seconds, slot) DO UPDATE SET import_wh = import_wh + excluded.import_wh, export_wh = export_wh + excluded.export_wh,
	production_wh = CASE WHEN excluded.production_wh IS NULL THEN production_wh ELSE coalesce(production_wh, 0) + excluded.production_wh END,
	readings = readings + excluded.readings`)
		if err != nil {
			return err
		}
		defer slotStmt.Close()
		for slot, bk := range slots {
			if _, err := slotStmt.ExecContext(ctx, slotSec, slot, slot*slotSec, bk.imp, bk.exp, prodArg(bk), bk.readings); err != nil {
				return err
			}
		}
		if a.base.valid {
			_, err = tx.ExecContext(ctx, `
INSERT INTO meter_baseline (id, meter_id, time_ms, import_wh, export_wh, production_wh) VALUES (1, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET meter_id = excluded.meter_id, time_ms = excluded.time_ms, import_wh = excluded.import_wh,
	export_wh = excluded.export_wh, production_wh = excluded.production_wh`,
				a.base.meterID, a.base.t.UnixMilli(), optArg(a.base.imp), optArg(a.base.exp), optArg(a.base.prod))
			if err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM meter_minutes WHERE start_unix < ?`, cutoff)
		return err
	})
	if err != nil {
		a.dropOverflow()
		return fmt.Errorf("write meter aggregates to %s: %w", a.l.path, err)
	}
	clear(a.minutes)
	a.dirty = false
	a.lastFlush = a.newest
	a.stats.Flushes++
	a.stats.LastFlush = a.newest
	return nil
}

func (a *Aggregator) dropOverflow() {
	if len(a.minutes) <= a.opts.MaxPendingMinutes {
		return
	}
	keys := make([]int64, 0, len(a.minutes))
	for k := range a.minutes {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	n := len(keys) - a.opts.MaxPendingMinutes
	for _, k := range keys[:n] {
		delete(a.minutes, k)
	}
	a.stats.Dropped += int64(n)
	a.l.log.Warn("meter aggregates could not be written: dropped the oldest minutes", "minutes", n)
}

func prodArg(b *bucket) any {
	if !b.hasProd {
		return nil
	}
	return b.prod
}

func optArg(o meter.Optional) any {
	if !o.OK {
		return nil
	}
	return o.V
}

// LastSample returns the time of the last meter sample whose registers the
// stored aggregates include (the stored baseline); ok is false before the
// first write.
func (l *Ledger) LastSample(ctx context.Context) (t time.Time, ok bool, err error) {
	var ms int64
	err = l.db.QueryRowContext(ctx, `SELECT time_ms FROM meter_baseline WHERE id = 1`).Scan(&ms)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, fmt.Errorf("read meter baseline: %w", err)
	}
	return time.UnixMilli(ms), true, nil
}

// Interval is the energy of one stored minute or slot.
type Interval struct {
	Start        time.Time // UTC
	Length       time.Duration
	ImportWh     int64
	ExportWh     int64
	ProductionWh meter.Optional
	Readings     int64 // samples taken in it; a minute between two samples has energy and 0 readings
}

// Totals is energy summed over a span.
type Totals struct {
	ImportWh     int64
	ExportWh     int64
	ProductionWh meter.Optional
}

// Minutes returns the stored minutes starting in [from, to), oldest first.
func (l *Ledger) Minutes(ctx context.Context, from, to time.Time) ([]Interval, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT start_unix, import_wh, export_wh, production_wh, readings FROM meter_minutes
WHERE start_unix >= ? AND start_unix < ? ORDER BY start_unix`, ceilUnix(from), ceilUnix(to))
	if err != nil {
		return nil, fmt.Errorf("read meter minutes: %w", err)
	}
	return scanIntervals(rows, time.Minute)
}

// Slots returns the stored slots of length slotLen starting in [from, to),
// oldest first. Slots the meter data does not cover are absent.
func (l *Ledger) Slots(ctx context.Context, slotLen time.Duration, from, to time.Time) ([]Interval, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT start_unix, import_wh, export_wh, production_wh, readings FROM meter_slots
WHERE slot_seconds = ? AND start_unix >= ? AND start_unix < ? ORDER BY start_unix`,
		int64(slotLen/time.Second), ceilUnix(from), ceilUnix(to))
	if err != nil {
		return nil, fmt.Errorf("read meter slots: %w", err)
	}
	return scanIntervals(rows, slotLen)
}

// SlotEnergy returns measured import and export of the slots with indices
// [fromSlot, toSlot) (slot = floor(unix seconds / slot length)), as used by
// settlement. measured[i] is false for a slot the meter data does not
// cover at all.
func (l *Ledger) SlotEnergy(ctx context.Context, slotLen time.Duration, fromSlot, toSlot int64) (importWh, exportWh []int64, measured []bool, err error) {
	if toSlot < fromSlot || toSlot-fromSlot > 100_000 {
		return nil, nil, nil, fmt.Errorf("slot energy: bad slot range [%d, %d)", fromSlot, toSlot)
	}
	n := toSlot - fromSlot
	importWh, exportWh, measured = make([]int64, n), make([]int64, n), make([]bool, n)
	rows, err := l.db.QueryContext(ctx, `SELECT slot, import_wh, export_wh, readings FROM meter_slots
WHERE slot_seconds = ? AND slot >= ? AND slot < ?`, int64(slotLen/time.Second), fromSlot, toSlot)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read meter slots: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var slot, imp, exp, readings int64
		if err := rows.Scan(&slot, &imp, &exp, &readings); err != nil {
			return nil, nil, nil, fmt.Errorf("read meter slots: %w", err)
		}
		i := slot - fromSlot
		importWh[i], exportWh[i], measured[i] = imp, exp, true
	}
	return importWh, exportWh, measured, rows.Err()
}

// MeterTotals sums the stored minutes starting in [from, to). Minutes are
// kept for the retention period only.
func (l *Ledger) MeterTotals(ctx context.Context, from, to time.Time) (Totals, error) {
	var (
		t    Totals
		prod sql.NullInt64
	)
	err := l.db.QueryRowContext(ctx, `SELECT coalesce(sum(import_wh), 0), coalesce(sum(export_wh), 0), sum(production_wh)
FROM meter_minutes WHERE start_unix >= ? AND start_unix < ?`, ceilUnix(from), ceilUnix(to)).Scan(&t.ImportWh, &t.ExportWh, &prod)
	if err != nil {
		return Totals{}, fmt.Errorf("sum meter minutes: %w", err)
	}
	t.ProductionWh = meter.Optional{V: prod.Int64, OK: prod.Valid}
	return t, nil
}

// DayBounds returns the start of the calendar day holding now in loc and
// the start of the next day: 23, 24 or 25 hours apart.
func DayBounds(now time.Time, loc *time.Location) (start, end time.Time) {
	t := now.In(loc)
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc), time.Date(y, m, d+1, 0, 0, 0, 0, loc)
}

// Today returns the stored totals of the calendar day holding now in loc.
func (l *Ledger) Today(ctx context.Context, now time.Time, loc *time.Location) (Totals, error) {
	from, to := DayBounds(now, loc)
	return l.MeterTotals(ctx, from, to)
}

// Today returns the day's totals in loc including what is still pending in
// memory.
func (a *Aggregator) Today(ctx context.Context, now time.Time, loc *time.Location) (Totals, error) {
	from, to := DayBounds(now, loc)
	// Hold the lock across the read so a flush cannot move minutes from
	// memory to the file between the two sums.
	a.mu.Lock()
	defer a.mu.Unlock()
	t, err := a.l.MeterTotals(ctx, from, to)
	if err != nil {
		return t, err
	}
	lo, hi := ceilUnix(from), ceilUnix(to)
	for start, bk := range a.minutes {
		if start >= lo && start < hi {
			t.ImportWh += bk.imp
			t.ExportWh += bk.exp
			if bk.hasProd {
				t.ProductionWh = meter.Some(t.ProductionWh.V + bk.prod)
			}
		}
	}
	return t, nil
}

// Minutes returns the minutes starting in [from, to) like Ledger.Minutes,
// with what is still pending in memory added, so a chart of the last
// minutes is current between writes.
func (a *Aggregator) Minutes(ctx context.Context, from, to time.Time) ([]Interval, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	stored, err := a.l.Minutes(ctx, from, to)
	if err != nil {
		return nil, err
	}
	lo, hi := ceilUnix(from), ceilUnix(to)
	byStart := make(map[int64]int, len(stored))
	for i, iv := range stored {
		byStart[iv.Start.Unix()] = i
	}
	for start, bk := range a.minutes {
		if start < lo || start >= hi {
			continue
		}
		i, ok := byStart[start]
		if !ok {
			stored = append(stored, Interval{Start: time.Unix(start, 0).UTC(), Length: time.Minute})
			i = len(stored) - 1
		}
		iv := &stored[i]
		iv.ImportWh += bk.imp
		iv.ExportWh += bk.exp
		iv.Readings += bk.readings
		if bk.hasProd {
			iv.ProductionWh = meter.Some(iv.ProductionWh.V + bk.prod)
		}
	}
	sort.Slice(stored, func(i, j int) bool { return stored[i].Start.Before(stored[j].Start) })
	return stored, nil
}

// ceilUnix is t in Unix seconds, rounded up to a whole second.
func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() != 0 {
		s++
	}
	return s
}

func scanIntervals(rows *sql.Rows, length time.Duration) ([]Interval, error) {
	defer rows.Close()
	var out []Interval
	for rows.Next() {
		var (
			start int64
			iv    Interval
			prod  sql.NullInt64
		)
		if err := rows.Scan(&start, &iv.ImportWh, &iv.ExportWh, &prod, &iv.Readings); err != nil {
			return nil, fmt.Errorf("read meter aggregates: %w", err)
		}
		iv.Start = time.Unix(start, 0).UTC()
		iv.Length = length
		iv.ProductionWh = meter.Optional{V: prod.Int64, OK: prod.Valid}
		out = append(out, iv)
	}
	return out, rows.Err()
}
