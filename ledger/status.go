package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/commons-energy/commons/share"
)

// Status buffering. Statuses are ephemeral and arrive often (every
// neighbour sends its surplus every few seconds); writing each in its own
// fsync'd transaction wears an SD card for nothing. PutStatus keeps the
// latest per author in memory, readers see it at once, and the buffer is
// written in one transaction when statusFlushCount statuses were kept or
// statusFlushEvery after the first one, and on Close. A crash loses at most
// those few seconds of statuses, which their authors send again anyway.
const (
	statusFlushCount = 64
	statusFlushEvery = 5 * time.Second
)

// pendingStatus is a status kept in memory, not yet written.
type pendingStatus struct {
	m        *share.Message
	received int64 // Unix ms
}

// statusBuffer is the in-memory part of the statuses table.
type statusBuffer struct {
	pending map[share.HouseholdID]pendingStatus // at most one per known author
	kept    int                                 // statuses kept since the last flush
	timer   *time.Timer                         // flushes statusFlushEvery after the first kept one
	closed  bool
}

// PutStatus keeps an ephemeral status message (raw, in its wire form) as
// its author's latest, like Append does, but without a transaction of its
// own: the newest status per author is held in memory, returned by
// Statuses and Neighbours at once, and written with others in one
// transaction (see FlushStatuses). Anything else, and a status that is
// refused, goes through Append so that rejections are counted as usual.
func (l *Ledger) PutStatus(ctx context.Context, raw []byte) (Result, error) {
	m, err := share.Open(raw, l.community)
	if err == nil {
		err = share.CheckClock(m, l.opts.Now(), share.MaxClockSkew)
	}
	if err != nil || m.Kind != share.KindStatus || m.Author == l.opts.Self {
		return l.appendOne(ctx, raw)
	}
	known, err := l.IsKnown(ctx, m.Author)
	if err != nil {
		return Result{}, fmt.Errorf("put status: %w", err)
	}
	if !known || l.checkReserve() != nil {
		return l.appendOne(ctx, raw)
	}
	current, err := l.latestStatus(ctx, m.Author)
	if err != nil {
		return Result{}, err
	}
	l.statusMu.Lock()
	defer l.statusMu.Unlock()
	if p, ok := l.status.pending[m.Author]; ok && share.Newer(current, p.m) {
		current = p.m
	}
	switch {
	case current != nil && current.ID() == m.ID():
		return Result{Outcome: Duplicate, Message: m}, nil
	case !share.Newer(current, m):
		return Result{Outcome: Older, Message: m}, nil
	}
	if l.status.pending == nil {
		l.status.pending = map[share.HouseholdID]pendingStatus{}
	}
	l.status.pending[m.Author] = pendingStatus{m: m, received: l.nowMS()}
	l.status.kept++
	if l.status.kept >= statusFlushCount || l.status.closed {
		if err := l.flushStatusesLocked(ctx); err != nil {
			return Result{}, err
		}
	} else if l.status.timer == nil {
		l.status.timer = time.AfterFunc(statusFlushEvery, func() {
			if err := l.FlushStatuses(context.Background()); err != nil {
				l.log.Warn("write buffered statuses", "err", err)
			}
		})
	}
	return Result{Outcome: Latest, Message: m}, nil
}

func (l *Ledger) appendOne(ctx context.Context, raw []byte) (Result, error) {
	res, err := l.Append(ctx, raw)
	if err != nil {
		return Result{}, err
	}
	return res[0], nil
}

// latestStatus reads the stored status of author, nil when none.
func (l *Ledger) latestStatus(ctx context.Context, author share.HouseholdID) (*share.Message, error) {
	var raw []byte
	err := l.db.QueryRowContext(ctx, `SELECT raw FROM statuses WHERE author = ?`, author.String()).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read status of %s: %w", author.Short(), err)
	}
	m, _ := share.Parse(raw) // an unreadable stored status is replaced
	return m, nil
}

// FlushStatuses writes the statuses PutStatus holds in memory, in one
// transaction. Close calls it.
func (l *Ledger) FlushStatuses(ctx context.Context) error {
	l.statusMu.Lock()
	defer l.statusMu.Unlock()
	return l.flushStatusesLocked(ctx)
}

func (l *Ledger) flushStatusesLocked(ctx context.Context) error {
	if l.status.timer != nil {
		l.status.timer.Stop()
		l.status.timer = nil
	}
	l.status.kept = 0
	if len(l.status.pending) == 0 {
		return nil
	}
	err := l.write(ctx, func(tx *sql.Tx) error {
		for author, p := range l.status.pending {
			r, err := l.storeStatus(ctx, tx, p.m, p.received)
			if err != nil {
				return err
			}
			if r.Outcome != Latest {
				continue
			}
			if _, err := tx.ExecContext(ctx, `UPDATE neighbours SET last_seen_ms = max(coalesce(last_seen_ms, 0), ?) WHERE id = ?`, p.received, author.String()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// Kept for the next try; a newer status replaces them meanwhile.
		return fmt.Errorf("write %d buffered statuses to ledger %s: %w", len(l.status.pending), l.path, err)
	}
	clear(l.status.pending)
	return nil
}

// pendingStatuses returns a copy of the statuses held in memory.
func (l *Ledger) pendingStatuses() map[share.HouseholdID]pendingStatus {
	l.statusMu.Lock()
	defer l.statusMu.Unlock()
	out := make(map[share.HouseholdID]pendingStatus, len(l.status.pending))
	for a, p := range l.status.pending {
		out[a] = p
	}
	return out
}
