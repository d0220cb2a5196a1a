package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// FutureMeterDataMargin is how far after the box clock a stored meter
// aggregate or baseline may be stamped before RepairFutureMeterData
// removes it. It is wide so that a box clock a little behind (a board
// without a real-time clock before NTP answers) removes nothing real.
const FutureMeterDataMargin = 24 * time.Hour

// plausibleSince is the earliest box clock a repair trusts: no ledger was
// written before it, so a clock earlier than this is unset (1970, 2000)
// and every stored row would look like the future.
var plausibleSince = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// repairFutureMeterData names the repair in the repairs table.
const repairFutureMeterData = "future-meter-data"

// RepairReport says what RepairFutureMeterData did.
type RepairReport struct {
	Ran       bool   // the repair ran now (false: done before, or skipped)
	Skipped   string // why it did not run yet; "" when it ran or was done before
	Minutes   int64  // per-minute rows removed
	Slots     int64  // slot rows removed
	Baselines int64  // stored baselines removed (0 or 1)
}

// RepairFutureMeterData removes meter data that older versions of commons
// filed by a meter's wrong clock: per-minute rows, slot rows and the
// stored baseline stamped more than FutureMeterDataMargin after the box
// clock (Options.Now). Such rows would otherwise count a year from now,
// hold the baseline there (so every new sample looked stale) and offer
// settlement data for slots that have not happened. It runs once per
// ledger, in one transaction that also records it in the repairs table;
// a later call does nothing. It does not run, and is not recorded, while
// the box clock itself is implausible: before 2025, or more than the
// margin before the newest time this box stamped a stored message with.
// Per-minute rows that old versions already pruned by the wrong clock
// cannot be brought back; slot rows of the same times, kept forever,
// still hold that energy.
//
// Call it from the process that holds the home's lock (the single
// writer), before meter data is aggregated.
func (l *Ledger) RepairFutureMeterData(ctx context.Context) (RepairReport, error) {
	var rep RepairReport
	now := l.opts.Now()
	err := l.write(ctx, func(tx *sql.Tx) error {
		var done int64
		err := tx.QueryRowContext(ctx, `SELECT done_ms FROM repairs WHERE name = ?`, repairFutureMeterData).Scan(&done)
		if err == nil {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if now.Before(plausibleSince) {
			rep.Skipped = fmt.Sprintf("the box clock (%s) is not set", now.UTC().Format(time.RFC3339))
			return nil
		}
		var newest sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT max(received_ms) FROM messages`).Scan(&newest); err != nil {
			return err
		}
		if newest.Valid && now.Before(time.UnixMilli(newest.Int64).Add(-FutureMeterDataMargin)) {
			rep.Skipped = fmt.Sprintf("the box clock (%s) is behind the newest stored message (%s)",
				now.UTC().Format(time.RFC3339), time.UnixMilli(newest.Int64).UTC().Format(time.RFC3339))
			return nil
		}
		limit := now.Add(FutureMeterDataMargin)
		// A minute or slot starting after the limit; a baseline stamped after it.
		res, err := tx.ExecContext(ctx, `DELETE FROM meter_minutes WHERE start_unix > ?`, limit.Unix())
		if err != nil {
			return err
		}
		if rep.Minutes, err = res.RowsAffected(); err != nil {
			return err
		}
		if res, err = tx.ExecContext(ctx, `DELETE FROM meter_slots WHERE start_unix > ?`, limit.Unix()); err != nil {
			return err
		}
		if rep.Slots, err = res.RowsAffected(); err != nil {
			return err
		}
		if res, err = tx.ExecContext(ctx, `DELETE FROM meter_baseline WHERE time_ms > ?`, limit.UnixMilli()); err != nil {
			return err
		}
		if rep.Baselines, err = res.RowsAffected(); err != nil {
			return err
		}
		detail := fmt.Sprintf("removed meter data stamped after %s: %d minute rows, %d slot rows, %d baselines",
			limit.UTC().Format(time.RFC3339), rep.Minutes, rep.Slots, rep.Baselines)
		if _, err := tx.ExecContext(ctx, `INSERT INTO repairs (name, done_ms, detail) VALUES (?, ?, ?)`,
			repairFutureMeterData, now.UnixMilli(), detail); err != nil {
			return err
		}
		rep.Ran = true
		return nil
	})
	if err != nil {
		return RepairReport{}, fmt.Errorf("repair future meter data in %s: %w", l.path, err)
	}
	switch {
	case rep.Skipped != "":
		l.log.Warn("not repairing meter data stamped in the future yet: will try at the next start", "reason", rep.Skipped)
	case rep.Minutes+rep.Slots+rep.Baselines > 0:
		l.log.Warn("removed meter data a wrong meter clock had stamped in the future",
			"minute_rows", rep.Minutes, "slot_rows", rep.Slots, "baselines", rep.Baselines, "after", now.Add(FutureMeterDataMargin))
	}
	return rep, nil
}
