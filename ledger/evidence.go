package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/commons-energy/commons/share"
)

// loadEvidence reads what settles are checked against (share.Evidence):
// every stored pledge, accept, decline, cancel, seen, report and sealed
// report, the plain reports this household opened from sealed ones, and any chain
// message by author and seq on demand, all from the transaction tx, which
// must stay open while the evidence is used. A read error on demand is
// kept in *errp (the message then counts as not held).
func loadEvidence(ctx context.Context, tx querier, errp *error) (*share.EvidenceSet, error) {
	in, args := kindIn(share.KindPledge, share.KindAccept, share.KindDecline, share.KindCancel, share.KindReport, share.KindSealedReport, share.KindSeen)
	msgs, err := loadMessages(ctx, tx, `SELECT raw FROM messages WHERE `+in, args...)
	if err != nil {
		return nil, fmt.Errorf("read settlement evidence: %w", err)
	}
	ev := share.NewEvidenceSet(msgs...)
	opened, err := openedReports(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("read settlement evidence: %w", err)
	}
	for id, r := range opened {
		ev.AddOpened(id, r)
	}
	ev.AtFunc = func(author share.HouseholdID, seq uint64) *share.Message {
		if seq > 1<<62 {
			return nil
		}
		var raw []byte
		err := tx.QueryRowContext(ctx, `SELECT raw FROM messages WHERE author = ? AND seq = ?`, author.String(), int64(seq)).Scan(&raw)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err == nil {
			var m *share.Message
			if m, err = share.Parse(raw); err == nil {
				return m
			}
		}
		if *errp == nil {
			*errp = fmt.Errorf("read message %s at seq %d: %w", author.Short(), seq, err)
		}
		return nil
	}
	return ev, nil
}
