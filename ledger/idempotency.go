package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Idempotent is the pledge an idempotency key was first used for.
type Idempotent struct {
	Request string // the request's parameters, as the caller encoded them
	Message string // the pledge's message id, hex
}

// IdempotencyKey returns what key was first used for; ok is false when the
// key is unused.
func (l *Ledger) IdempotencyKey(ctx context.Context, key string) (v Idempotent, ok bool, err error) {
	err = l.db.QueryRowContext(ctx, `SELECT request, message FROM idempotency WHERE key = ?`, key).Scan(&v.Request, &v.Message)
	if errors.Is(err, sql.ErrNoRows) {
		return Idempotent{}, false, nil
	}
	if err != nil {
		return Idempotent{}, false, fmt.Errorf("look up idempotency key: %w", err)
	}
	return v, true, nil
}

// PutIdempotencyKey records that key was used for v. A key already
// recorded keeps its first use.
func (l *Ledger) PutIdempotencyKey(ctx context.Context, key string, v Idempotent) error {
	return l.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO idempotency (key, request, message, created_ms) VALUES (?, ?, ?, ?)`,
			key, v.Request, v.Message, l.nowMS()); err != nil {
			return fmt.Errorf("record idempotency key: %w", err)
		}
		return nil
	})
}
