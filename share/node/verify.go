package node

import (
	"context"
	"fmt"
	"io"

	"github.com/commons-energy/commons/ledger"
	"github.com/commons-energy/commons/share/household"
)

// Verify implements household.Household: every stored message is re-checked from
// its verbatim bytes (signature, chain, content hash), and the database
// with SQLite's integrity check (ledger.Verify).
func (n *Node) Verify(ctx context.Context) (household.VerifyReport, error) {
	rep, err := n.led.Verify(ctx)
	if err != nil {
		return household.VerifyReport{}, err
	}
	return household.VerifyReport{OK: rep.OK, Messages: rep.Messages, Statuses: rep.Statuses, Ephemerals: rep.Ephemerals,
		Forks: rep.Forks, Disputes: rep.Disputes, Problems: problems(rep.Problems), Omitted: rep.Omitted}, nil
}

// ExportLedger implements household.Household: the ledger for spreadsheets and
// scripts (ledger.Export). format is "csv" or "jsonl"; table is
// "messages", "pledges", "settlements" or (jsonl only) "all"; "" means
// pledges for csv and all for jsonl.
func (n *Node) ExportLedger(ctx context.Context, w io.Writer, format, table string) error {
	switch format {
	case "csv", "jsonl":
	default:
		return fmt.Errorf("%w: export format %q: use csv or jsonl", household.ErrInvalid, format)
	}
	switch table {
	case "", ledger.TableMessages, ledger.TablePledges, ledger.TableSettlements:
	case ledger.TableAll:
		if format == "csv" {
			return fmt.Errorf("%w: csv holds one table: use --table messages, pledges or settlements, or --format jsonl", household.ErrInvalid)
		}
	default:
		return fmt.Errorf("%w: export table %q: use messages, pledges, settlements or all", household.ErrInvalid, table)
	}
	return n.led.Export(ctx, w, format, table)
}

// problems converts the ledger's problems to the household's.
func problems(ps []ledger.Problem) []household.Problem {
	if ps == nil {
		return nil
	}
	out := make([]household.Problem, len(ps))
	for i, p := range ps {
		out[i] = household.Problem(p)
	}
	return out
}
