package ledger

import (
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/commons-energy/commons/share"
)

// Export tables.
const (
	TableMessages    = "messages"    // one row per stored chain message
	TablePledges     = "pledges"     // one row per pledge, folded
	TableSettlements = "settlements" // one row per settled slot of a pledge
	TableAll         = "all"         // jsonl only: every record, with a "type" key
)

// Export writes the ledger for spreadsheets and scripts. format is "csv"
// (one table, with a header row) or "jsonl" (one JSON object per line).
// table is one of the Table constants; "" means pledges for csv and all
// for jsonl. Times are RFC 3339 in UTC, energy integer Wh, ids in their
// text forms. Nothing is written when the arguments are bad.
func (l *Ledger) Export(ctx context.Context, w io.Writer, format, table string) error {
	if table == "" {
		table = TablePledges
		if format == "jsonl" {
			table = TableAll
		}
	}
	var enc recordWriter
	switch format {
	case "csv":
		if table == TableAll {
			return fmt.Errorf("export: csv holds one table: choose --table messages, pledges or settlements")
		}
		cw := csv.NewWriter(w)
		enc = &csvRecords{w: cw}
	case "jsonl":
		enc = &jsonRecords{enc: json.NewEncoder(w), typed: table == TableAll}
	default:
		return fmt.Errorf("export: unknown format %q: use csv or jsonl", format)
	}
	switch table {
	case TableMessages, TablePledges, TableSettlements, TableAll:
	default:
		return fmt.Errorf("export: unknown table %q: use messages, pledges, settlements or all", table)
	}
	if table == TableMessages || table == TableAll {
		if err := l.exportMessages(ctx, enc); err != nil {
			return err
		}
	}
	if table == TablePledges || table == TableAll {
		if err := l.exportPledges(ctx, enc); err != nil {
			return err
		}
	}
	if table == TableSettlements || table == TableAll {
		if err := l.exportSettlements(ctx, enc); err != nil {
			return err
		}
	}
	return enc.flush()
}

// field is one named column of a record.
type field struct {
	name  string
	value any // string, int64, bool, nil, or json.RawMessage
}

type recordWriter interface {
	write(kind string, fields []field) error
	flush() error
}

type csvRecords struct {
	w      *csv.Writer
	header bool
}

func (c *csvRecords) write(_ string, fields []field) error {
	if !c.header {
		names := make([]string, len(fields))
		for i, f := range fields {
			names[i] = f.name
		}
		if err := c.w.Write(names); err != nil {
			return err
		}
		c.header = true
	}
	row := make([]string, len(fields))
	for i, f := range fields {
		switch v := f.value.(type) {
		case nil:
		case string:
			row[i] = v
		case int64:
			row[i] = strconv.FormatInt(v, 10)
		case bool:
			row[i] = strconv.FormatBool(v)
		case json.RawMessage:
			row[i] = string(v)
		default:
			row[i] = fmt.Sprint(v)
		}
	}
	return c.w.Write(row)
}

func (c *csvRecords) flush() error {
	c.w.Flush()
	return c.w.Error()
}

type jsonRecords struct {
	enc   *json.Encoder
	typed bool
}

func (j *jsonRecords) write(kind string, fields []field) error {
	obj := make(orderedObject, 0, len(fields)+1)
	if j.typed {
		obj = append(obj, field{"type", kind})
	}
	obj = append(obj, fields...)
	return j.enc.Encode(obj)
}

func (j *jsonRecords) flush() error { return nil }

// orderedObject marshals fields as a JSON object in their order.
type orderedObject []field

// MarshalJSON writes the fields as one JSON object, in order.
func (o orderedObject) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, f := range o {
		if i > 0 {
			b = append(b, ',')
		}
		k, _ := json.Marshal(f.name)
		b = append(b, k...)
		b = append(b, ':')
		v, err := json.Marshal(f.value)
		if err != nil {
			return nil, err
		}
		b = append(b, v...)
	}
	return append(b, '}'), nil
}

// rfc3339 returns t in UTC as RFC 3339 text, or nil (an empty csv cell,
// JSON null) when RFC 3339 cannot hold it: a year outside 0..9999, which a
// signed created_ms or a slot stored before the end of protocol time was
// enforced (docs/PROTOCOL.md §4.1) can name. The raw numbers are exported
// beside it.
func rfc3339(t time.Time) any {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return nil
	}
	return t.Format(time.RFC3339)
}

// rfc3339ms is rfc3339 with fractional seconds for Unix ms.
func rfc3339ms(ms int64) any {
	t := time.UnixMilli(ms).UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return nil
	}
	return t.Format(time.RFC3339Nano)
}

func (l *Ledger) exportMessages(ctx context.Context, enc recordWriter) error {
	tx, err := l.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("export messages: %w", err)
	}
	defer tx.Rollback()
	names, err := l.names(ctx, tx)
	if err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, author, seq, prev, kind_name, created_ms, received_ms, content FROM messages ORDER BY author, seq`)
	if err != nil {
		return fmt.Errorf("export messages: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id, author, prev, kind, content string
			seq, created, received          int64
		)
		if err := rows.Scan(&id, &author, &seq, &prev, &kind, &created, &received, &content); err != nil {
			return fmt.Errorf("export messages: %w", err)
		}
		name := ""
		if h, err := share.ParseHouseholdID(author); err == nil {
			name = names[h]
		}
		var contentVal any = content
		if json.Valid([]byte(content)) {
			contentVal = json.RawMessage(content)
		}
		if err := enc.write("message", []field{
			{"id", id}, {"author", author}, {"author_name", name}, {"seq", seq}, {"prev", prev}, {"kind", kind},
			{"created", rfc3339ms(created)}, {"received", rfc3339ms(received)}, {"content", contentVal},
		}); err != nil {
			return fmt.Errorf("export messages: %w", err)
		}
	}
	return rows.Err()
}

func (l *Ledger) exportPledges(ctx context.Context, enc recordWriter) error {
	ps, err := l.Pledges(ctx, PledgeFilter{})
	if err != nil {
		return err
	}
	for i := len(ps) - 1; i >= 0; i-- { // oldest first in a file
		p := ps[i]
		var delivered any
		if p.DeliveredWh.OK {
			delivered = p.DeliveredWh.V
		}
		if err := enc.write("pledge", []field{
			{"id", p.ID.String()}, {"from", p.From.String()}, {"to", p.To.String()},
			{"from_name", p.FromName}, {"to_name", p.ToName},
			{"energy_wh", p.PledgedWh}, {"accepted_wh", p.AcceptedWh}, {"delivered_wh", delivered},
			{"window_start", rfc3339(p.Start)}, {"window_end", rfc3339(p.End)},
			{"from_slot", p.Window.From}, {"to_slot", p.Window.To},
			{"state", string(p.State)}, {"created", rfc3339(p.Created)},
		}); err != nil {
			return fmt.Errorf("export pledges: %w", err)
		}
	}
	return nil
}

func (l *Ledger) exportSettlements(ctx context.Context, enc recordWriter) error {
	ss, err := l.Settlements(ctx)
	if err != nil {
		return err
	}
	for i := len(ss) - 1; i >= 0; i-- {
		s := ss[i]
		for k := range s.AllocatedWh {
			slot := s.Window.From + int64(k)
			if err := enc.write("settlement", []field{
				{"pledge", s.Pledge.String()}, {"settle", s.Settle.String()},
				{"from", s.From.String()}, {"to", s.To.String()}, {"from_name", s.FromName}, {"to_name", s.ToName},
				{"slot", slot}, {"slot_start", rfc3339(l.opts.Manifest.SlotStart(slot))},
				{"allocated_wh", nth(s.AllocatedWh, k)}, {"export_wh", nth(s.ExportWh, k)}, {"import_wh", nth(s.ImportWh, k)},
				{"key", s.Key},
			}); err != nil {
				return fmt.Errorf("export settlements: %w", err)
			}
		}
	}
	return nil
}

func nth(v []int64, i int) any {
	if i < len(v) {
		return v[i]
	}
	return nil
}
