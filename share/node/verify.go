package node

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/commons-energy/commons/share"
)

// Verify implements Household: it re-verifies every stored chain message
// from its verbatim bytes (structure, community, signature, content hash,
// content rules), checks that each author's chain is unbroken (seq 1, 2, 3
// ... each naming its predecessor's id as prev, the stored id matching the
// bytes), re-verifies the kept statuses, and runs SQLite's integrity
// check. Problems name the message.
func (n *Node) Verify(ctx context.Context) (VerifyReport, error) {
	rep := VerifyReport{}
	problem := func(id, format string, args ...any) {
		rep.Problems = append(rep.Problems, Problem{ID: id, Reason: fmt.Sprintf(format, args...)})
	}
	db := n.led.DB()
	rows, err := db.QueryContext(ctx, `SELECT id, author, seq, prev, raw FROM messages ORDER BY author, seq`)
	if err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	var (
		lastAuthor string
		lastSeq    uint64
		lastID     share.ID
	)
	for rows.Next() {
		var id, author, prev string
		var seq int64
		var raw []byte
		if err := rows.Scan(&id, &author, &seq, &prev, &raw); err != nil {
			rows.Close()
			return rep, fmt.Errorf("verify: %w", err)
		}
		rep.Messages++
		if author != lastAuthor {
			lastAuthor, lastSeq, lastID = author, 0, share.ID{}
		}
		m, err := share.Open(raw, n.manifest.ID())
		if err != nil {
			problem(id, "does not verify: %v", err)
			lastSeq, lastID = uint64(seq), share.ID{}
			continue
		}
		switch {
		case m.ID().String() != id:
			problem(id, "stored under id %s but its bytes hash to %s", id, m.ID())
		case m.Author.String() != author || m.Seq != uint64(seq):
			problem(id, "stored as seq %d of %s but its header says seq %d of %s", seq, author, m.Seq, m.Author)
		case m.Seq != lastSeq+1:
			problem(id, "seq %d follows seq %d of author %s: messages are missing", m.Seq, lastSeq, m.Author.Short())
		case m.Seq > 1 && !lastID.IsZero() && m.Prev != lastID:
			problem(id, "names prev %s but the stored seq %d is %s: the chain is broken", m.Prev.Short(), lastSeq, lastID.Short())
		}
		_ = prev
		lastSeq, lastID = m.Seq, m.ID()
	}
	if err := rows.Close(); err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	srows, err := db.QueryContext(ctx, `SELECT id, raw FROM statuses`)
	if err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	for srows.Next() {
		var id string
		var raw []byte
		if err := srows.Scan(&id, &raw); err != nil {
			srows.Close()
			return rep, fmt.Errorf("verify: %w", err)
		}
		if m, err := share.Open(raw, n.manifest.ID()); err != nil {
			problem(id, "status does not verify: %v", err)
		} else if m.ID().String() != id {
			problem(id, "status stored under id %s but its bytes hash to %s", id, m.ID())
		}
	}
	if err := srows.Close(); err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	irows, err := db.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return rep, fmt.Errorf("verify: integrity check: %w", err)
	}
	for irows.Next() {
		var s string
		if err := irows.Scan(&s); err != nil {
			irows.Close()
			return rep, fmt.Errorf("verify: integrity check: %w", err)
		}
		if s != "ok" {
			problem("", "database: %s", s)
		}
	}
	if err := irows.Close(); err != nil {
		return rep, fmt.Errorf("verify: integrity check: %w", err)
	}
	rep.OK = len(rep.Problems) == 0
	return rep, nil
}

// ExportLedger implements Household: every pledge to or from this
// household with its state, accepted and delivered (settled) energy, as
// CSV with a header row or as JSON lines in the shape of `pledges --json`.
func (n *Node) ExportLedger(ctx context.Context, w io.Writer, format string) error {
	ps, err := n.Pledges(ctx, false)
	if err != nil {
		return err
	}
	switch format {
	case "jsonl":
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for i := len(ps) - 1; i >= 0; i-- {
			if err := enc.Encode(ps[i]); err != nil {
				return fmt.Errorf("export: %w", err)
			}
		}
		return nil
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write([]string{"id", "from", "from_name", "to", "to_name", "energy_wh", "window_start", "window_end", "state", "accepted_wh", "delivered_wh", "created"})
		opt := func(v *int64) string {
			if v == nil {
				return ""
			}
			return strconv.FormatInt(*v, 10)
		}
		for i := len(ps) - 1; i >= 0; i-- {
			p := ps[i]
			cw.Write([]string{p.ID, p.From, p.FromName, p.To, p.ToName, strconv.FormatInt(p.EnergyWh, 10),
				p.Window.Start.Format(time.RFC3339), p.Window.End.Format(time.RFC3339), p.State,
				opt(p.AcceptedWh), opt(p.DeliveredWh), p.Created.Format(time.RFC3339)})
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		return nil
	}
	return fmt.Errorf("%w: export format %q: use csv or jsonl", ErrInvalid, format)
}
