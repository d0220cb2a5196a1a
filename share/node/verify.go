package node

import (
	"context"
	"fmt"
	"io"

	"github.com/commons-energy/commons/ledger"
)

// VerifyReport is the outcome of re-verifying the ledger; its JSON form is
// the `ledger verify --json` contract (ok, messages, problems, and more).
type VerifyReport = ledger.Report

// Problem is one thing found wrong, or one reason a pledge waits: the
// message or pledge id and a reason in words.
type Problem = ledger.Problem

// Verify implements Household: every stored message is re-checked from
// its verbatim bytes (signature, chain, content hash), and the database
// with SQLite's integrity check (ledger.Verify).
func (n *Node) Verify(ctx context.Context) (VerifyReport, error) {
	rep, err := n.led.Verify(ctx)
	if err != nil {
		return VerifyReport{}, err
	}
	return *rep, nil
}

// ExportLedger implements Household: the ledger for spreadsheets and
// scripts (ledger.Export). format is "csv" or "jsonl"; table is
// "messages", "pledges", "settlements" or (jsonl only) "all"; "" means
// pledges for csv and all for jsonl.
func (n *Node) ExportLedger(ctx context.Context, w io.Writer, format, table string) error {
	switch format {
	case "csv", "jsonl":
	default:
		return fmt.Errorf("%w: export format %q: use csv or jsonl", ErrInvalid, format)
	}
	switch table {
	case "", ledger.TableMessages, ledger.TablePledges, ledger.TableSettlements:
	case ledger.TableAll:
		if format == "csv" {
			return fmt.Errorf("%w: csv holds one table: use --table messages, pledges or settlements, or --format jsonl", ErrInvalid)
		}
	default:
		return fmt.Errorf("%w: export table %q: use messages, pledges, settlements or all", ErrInvalid, table)
	}
	return n.led.Export(ctx, w, format, table)
}
