package ledger

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
)

func TestExportCSV(t *testing.T) {
	ctx := context.Background()
	s := newStreet(t)
	tests := []struct {
		table  string
		rows   int
		header string
		check  func(t *testing.T, rec map[string]string) bool // true for the row it checks
	}{
		{TablePledges, 6, "id,from,to,from_name,to_name,energy_wh,accepted_wh,delivered_wh,window_start,window_end,from_slot,to_slot,state,created",
			func(t *testing.T, r map[string]string) bool {
				if r["id"] != s.settled.ID().String() {
					return false
				}
				if r["state"] != "settled" || r["energy_wh"] != "1000" || r["accepted_wh"] != "800" || r["delivered_wh"] != "600" ||
					r["window_start"] != "2025-01-21T10:00:00Z" || r["to_name"] != "bob" || r["from_name"] != "Alice" {
					t.Errorf("settled pledge row = %v", r)
				}
				return true
			}},
		{TableSettlements, 4, "pledge,settle,from,to,from_name,to_name,slot,slot_start,allocated_wh,export_wh,import_wh,key",
			func(t *testing.T, r map[string]string) bool {
				if r["slot_start"] != "2025-01-21T10:15:00Z" {
					return false
				}
				if r["allocated_wh"] != "150" || r["export_wh"] != "150" || r["import_wh"] != "300" || r["pledge"] != s.settled.ID().String() {
					t.Errorf("settlement row = %v", r)
				}
				return true
			}},
		{TableMessages, 14, "id,author,author_name,seq,prev,kind,created,received,content",
			func(t *testing.T, r map[string]string) bool {
				if r["id"] != s.declined.ID().String() {
					return false
				}
				if r["kind"] != "pledge" || r["author_name"] != "bob" || r["seq"] != "3" || !strings.Contains(r["content"], `"energy_wh":500`) {
					t.Errorf("message row = %v", r)
				}
				return true
			}},
	}
	for _, tt := range tests {
		t.Run(tt.table, func(t *testing.T) {
			var buf bytes.Buffer
			if err := s.l.Export(ctx, &buf, "csv", tt.table); err != nil {
				t.Fatal(err)
			}
			recs, err := csv.NewReader(&buf).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(recs[0], ",") != tt.header {
				t.Fatalf("header = %v", recs[0])
			}
			if len(recs)-1 != tt.rows {
				t.Fatalf("%d rows, want %d", len(recs)-1, tt.rows)
			}
			checked := 0
			for _, rec := range recs[1:] {
				m := map[string]string{}
				for i, name := range recs[0] {
					m[name] = rec[i]
				}
				if tt.check(t, m) {
					checked++
				}
			}
			if checked != 1 {
				t.Fatalf("checked %d rows, want 1", checked)
			}
		})
	}
}

func TestExportJSONL(t *testing.T) {
	ctx := context.Background()
	s := newStreet(t)
	var buf bytes.Buffer
	if err := s.l.Export(ctx, &buf, "jsonl", ""); err != nil {
		t.Fatal(err)
	}
	types := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var obj map[string]any
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		types[obj["type"].(string)]++
		if obj["type"] == "pledge" && obj["id"] == s.open.ID().String() {
			if obj["state"] != "pledged" || obj["delivered_wh"] != nil || obj["energy_wh"] != float64(400) {
				t.Errorf("open pledge = %v", obj)
			}
		}
		if obj["type"] == "message" {
			if _, ok := obj["content"].(map[string]any); !ok {
				t.Errorf("message content is not a JSON object: %v", obj["content"])
			}
		}
	}
	if types["message"] != 14 || types["pledge"] != 6 || types["settlement"] != 4 {
		t.Fatalf("record types = %v", types)
	}
}

func TestExportBadArguments(t *testing.T) {
	s := newStreet(t)
	for _, tt := range []struct{ format, table, want string }{
		{"xlsx", "", "unknown format"},
		{"csv", "all", "one table"},
		{"jsonl", "people", "unknown table"},
	} {
		var buf bytes.Buffer
		err := s.l.Export(context.Background(), &buf, tt.format, tt.table)
		if err == nil || !strings.Contains(err.Error(), tt.want) || buf.Len() != 0 {
			t.Errorf("Export(%q, %q) = %v, wrote %d bytes", tt.format, tt.table, err, buf.Len())
		}
	}
}
