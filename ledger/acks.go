package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/commons-energy/commons/share"
)

// Ack is how far a neighbour's box has acknowledged this household's own
// feed.
type Ack struct {
	Seq uint64    // the highest seq of this household's feed it is known to hold
	At  time.Time // when this box learnt it (its own clock)
}

// RecordAck records that neighbour's box holds this household's feed up
// to seq: it answered a push of that message, or reported that head. An
// acknowledgement never goes back; one at or below the stored seq writes
// nothing, so calling it after every exchange costs no disk write;
// changed says whether it moved.
func (l *Ledger) RecordAck(ctx context.Context, neighbour share.HouseholdID, seq uint64) (changed bool, err error) {
	if seq == 0 {
		return false, nil
	}
	l.acksMu.Lock()
	defer l.acksMu.Unlock()
	if err := l.loadAcks(ctx); err != nil {
		return false, err
	}
	if a, ok := l.acks[neighbour]; ok && a.Seq >= seq {
		return false, nil
	}
	a := Ack{Seq: seq, At: l.opts.Now()}
	err = l.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO acks (neighbour, seq, at_ms) VALUES (?, ?, ?)
			ON CONFLICT (neighbour) DO UPDATE SET seq = excluded.seq, at_ms = excluded.at_ms WHERE excluded.seq > acks.seq`,
			neighbour.String(), int64(seq), a.At.UnixMilli())
		return err
	})
	if err != nil {
		return false, fmt.Errorf("record acknowledgement from %s: %w", neighbour.Short(), err)
	}
	l.acks[neighbour] = a
	return true, nil
}

// Acks returns every neighbour's acknowledgement of this household's feed.
func (l *Ledger) Acks(ctx context.Context) (map[share.HouseholdID]Ack, error) {
	l.acksMu.Lock()
	defer l.acksMu.Unlock()
	if err := l.loadAcks(ctx); err != nil {
		return nil, err
	}
	out := make(map[share.HouseholdID]Ack, len(l.acks))
	for k, v := range l.acks {
		out[k] = v
	}
	return out, nil
}

// loadAcks reads the table once; acksMu is held.
func (l *Ledger) loadAcks(ctx context.Context) error {
	if l.acks != nil {
		return nil
	}
	rows, err := l.db.QueryContext(ctx, `SELECT neighbour, seq, at_ms FROM acks`)
	if err != nil {
		return fmt.Errorf("read acknowledgements: %w", err)
	}
	defer rows.Close()
	acks := map[share.HouseholdID]Ack{}
	for rows.Next() {
		var hex string
		var seq, at int64
		if err := rows.Scan(&hex, &seq, &at); err != nil {
			return fmt.Errorf("read acknowledgements: %w", err)
		}
		id, err := share.ParseHouseholdID(hex)
		if err != nil {
			continue
		}
		acks[id] = Ack{Seq: uint64(seq), At: time.UnixMilli(at).UTC()}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read acknowledgements: %w", err)
	}
	l.acks = acks
	return nil
}
