package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/commons-energy/commons/share"
)

// HeldBefore returns the head of author's chain as this box held it just
// before the instant ms by its own clock: the highest seq it had stored
// (received_ms) before then, or the zero head. Chains are stored in seq
// order, so every lower seq was held too. A seen message states it
// (docs/PROTOCOL.md §8.14).
func (l *Ledger) HeldBefore(ctx context.Context, author share.HouseholdID, ms int64) (share.Head, error) {
	var (
		seq     int64
		id      string
		created int64
	)
	err := l.db.QueryRowContext(ctx, `SELECT seq, id, created_ms FROM messages
		WHERE author = ? AND seq > 0 AND received_ms < ? ORDER BY seq DESC LIMIT 1`, author.String(), ms).Scan(&seq, &id, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return share.Head{}, nil
	}
	if err != nil {
		return share.Head{}, fmt.Errorf("read what was held of %s: %w", author.Short(), err)
	}
	mid, err := share.ParseID(id)
	if err != nil {
		return share.Head{}, err
	}
	return share.Head{Seq: uint64(seq), ID: mid, CreatedMs: created}, nil
}

// ReceivedMs returns when this box stored message id, by its own clock.
func (l *Ledger) ReceivedMs(ctx context.Context, id share.ID) (int64, bool, error) {
	var ms int64
	err := l.db.QueryRowContext(ctx, `SELECT received_ms FROM messages WHERE id = ?`, id.String()).Scan(&ms)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read when %s was stored: %w", id.Short(), err)
	}
	return ms, true, nil
}

// WroteAny reports whether this ledger holds a chain message of author
// of one of kinds.
func (l *Ledger) WroteAny(ctx context.Context, author share.HouseholdID, kinds ...share.Kind) (bool, error) {
	if len(kinds) == 0 {
		return false, nil
	}
	in, args := kindIn(kinds...)
	var one int
	err := l.db.QueryRowContext(ctx, `SELECT 1 FROM messages WHERE `+in+` AND author = ? LIMIT 1`, append(args, author.String())...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read the kinds %s wrote: %w", author.Short(), err)
	}
	return true, nil
}
