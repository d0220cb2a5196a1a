package ledger

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/commons-energy/commons/share"
)

// PutOpenedReport records r as the plain report that the stored sealed
// report message id carries, as this household opened it
// (share.SealedReport.Open, which checked it against the commit).
// Settles naming id are then recomputed from r. Recording it again is
// harmless.
func (l *Ledger) PutOpenedReport(ctx context.Context, id share.ID, r *share.Report) error {
	b, err := share.EncodeContent(r)
	if err != nil {
		return fmt.Errorf("record opened report %s: %w", id.Short(), err)
	}
	err = l.write(ctx, func(tx *sql.Tx) error {
		var kind int64
		if err := tx.QueryRowContext(ctx, `SELECT kind FROM messages WHERE id = ?`, id.String()).Scan(&kind); err != nil {
			return fmt.Errorf("the sealed report is not stored: %w", err)
		}
		if share.Kind(kind) != share.KindSealedReport {
			return fmt.Errorf("message is a %s, not a sealed report", share.Kind(kind))
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO opened_reports (id, content, opened_ms) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			id.String(), b, l.nowMS())
		return err
	})
	if err != nil {
		return fmt.Errorf("record opened report %s: %w", id.Short(), err)
	}
	return nil
}

// OpenedReports returns every plain report this household opened, by the
// id of its sealed report.
func (l *Ledger) OpenedReports(ctx context.Context) (map[share.ID]*share.Report, error) {
	return openedReports(ctx, l.db)
}

func openedReports(ctx context.Context, q querier) (map[share.ID]*share.Report, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, content FROM opened_reports`)
	if err != nil {
		return nil, fmt.Errorf("read opened reports: %w", err)
	}
	defer rows.Close()
	out := map[share.ID]*share.Report{}
	for rows.Next() {
		var (
			hexID string
			b     []byte
		)
		if err := rows.Scan(&hexID, &b); err != nil {
			return nil, fmt.Errorf("read opened reports: %w", err)
		}
		id, err := share.ParseID(hexID)
		if err != nil {
			return nil, fmt.Errorf("opened report %q: %w", hexID, err)
		}
		c, err := share.DecodeContent(share.KindReport, b)
		if err != nil {
			return nil, fmt.Errorf("opened report %s: %w", id.Short(), err)
		}
		out[id] = c.(*share.Report)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read opened reports: %w", err)
	}
	return out, nil
}

// UnopenedSealed returns the stored sealed reports that name reader among
// their readers and have no opened report recorded: those to open (at
// start, after an import, or after a key change).
func (l *Ledger) UnopenedSealed(ctx context.Context, reader share.HouseholdID) ([]*share.Message, error) {
	msgs, err := loadMessages(ctx, l.db, `SELECT raw FROM messages m WHERE m.kind = ?
		AND NOT EXISTS (SELECT 1 FROM opened_reports o WHERE o.id = m.id)
		AND EXISTS (SELECT 1 FROM json_each(m.content, '$.to') WHERE value = ?)`,
		int64(share.KindSealedReport), reader.String())
	if err != nil {
		return nil, fmt.Errorf("read sealed reports to open: %w", err)
	}
	return msgs, nil
}
