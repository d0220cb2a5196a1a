package ledger

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/commons-energy/commons/share"
)

// scanHeads is the query Heads ran before the heads table (migration 6):
// the reference the table must agree with.
func scanHeads(t testing.TB, l *Ledger) map[share.HouseholdID]share.Head {
	t.Helper()
	rows, err := l.db.Query(`SELECT m.author, m.seq, m.id, m.created_ms FROM messages m
JOIN (SELECT author, max(seq) AS seq FROM messages GROUP BY author) h ON h.author = m.author AND h.seq = m.seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[share.HouseholdID]share.Head{}
	for rows.Next() {
		var author, id string
		var seq, created int64
		if err := rows.Scan(&author, &seq, &id, &created); err != nil {
			t.Fatal(err)
		}
		a, err := share.ParseHouseholdID(author)
		if err != nil {
			t.Fatal(err)
		}
		mid, err := share.ParseID(id)
		if err != nil {
			t.Fatal(err)
		}
		out[a] = share.Head{Seq: uint64(seq), ID: mid, CreatedMs: created}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func checkHeadsTable(t *testing.T, l *Ledger) {
	t.Helper()
	got, err := l.Heads(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := scanHeads(t, l)
	if len(got) != len(want) {
		t.Fatalf("heads table has %d authors, the messages %d", len(got), len(want))
	}
	for a, h := range want {
		if got[a] != h {
			t.Errorf("head of %s: table %+v, messages %+v", a.Short(), got[a], h)
		}
	}
}

// TestHeadsSince: each step appends messages, then asks HeadsSince with
// the cursor of an earlier step; the answer names exactly the authors
// whose head moved after that cursor, with their new heads.
func TestHeadsSince(t *testing.T) {
	ctx := context.Background()
	self, a, b, c := newHousehold(t, 1), newHousehold(t, 2), newHousehold(t, 3), newHousehold(t, 4)
	l, _ := openTest(t, self.ID())
	addNeighbour(t, l, a, "a")
	addNeighbour(t, l, b, "b")
	addNeighbour(t, l, c, "c")
	name := map[share.HouseholdID]string{self.ID(): "self", a.ID(): "a", b.ID(): "b", c.ID(): "c"}
	hh := map[string]*household{"self": self, "a": a, "b": b, "c": c}

	var cursors []uint64 // cursor after each step
	steps := []struct {
		name   string
		append []string // one message each, by these households, one batch
		replay bool     // append the batch's messages a second time (duplicates)
		fork   string   // a second message at this household's head seq
		since  int      // ask with the cursor after step `since` (-1: cursor 0)
		want   []string // authors in the answer (the order within one batch is the ledger's)
		full   bool
	}{
		{name: "empty ledger", since: -1, full: true},
		{name: "first messages, asked with the empty ledger's cursor 0", append: []string{"a", "b"}, since: 0, want: []string{"a", "b"}, full: true},
		{name: "nothing new", since: 1},
		{name: "one author moves twice", append: []string{"c", "c"}, since: 2, want: []string{"c"}},
		{name: "since an older cursor", since: 1, want: []string{"c"}},
		{name: "own message and a", append: []string{"self", "a"}, since: 4, want: []string{"self", "a"}},
		{name: "a moved again: listed once, at its latest move", append: []string{"b", "a"}, since: 3, want: []string{"self", "b", "a"}},
		{name: "duplicates move nothing", append: []string{"c"}, replay: true, since: 6, want: []string{"c"}},
		{name: "a fork proof moves nothing", fork: "b", since: 7},
		{name: "cursor 0 is the full list", since: -1, want: []string{"self", "a", "b", "c"}, full: true},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			var batch []*share.Message
			for _, who := range st.append {
				batch = append(batch, hh[who].next(t, announce(who)))
			}
			if len(batch) > 0 {
				for _, r := range mustAppend(t, l, batch...) {
					if r.Outcome != Stored {
						t.Fatalf("append: %v %v", r.Outcome, r.Err)
					}
				}
			}
			if st.replay {
				for _, r := range mustAppend(t, l, batch...) {
					if r.Outcome != Duplicate {
						t.Fatalf("replay: %v", r.Outcome)
					}
				}
			}
			if st.fork != "" {
				h := hh[st.fork]
				other := h.signAfter(t, prevHead(t, l, h), announce("other"))
				if r := mustAppend(t, l, other); r[0].Outcome != Forked {
					t.Fatalf("fork: %v %v", r[0].Outcome, r[0].Err)
				}
			}
			since := uint64(0)
			if st.since >= 0 {
				since = cursors[st.since]
			}
			heads, cursor, full, err := l.HeadsSince(ctx, since)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for i, h := range heads {
				if i > 0 && h.Changed <= heads[i-1].Changed {
					t.Errorf("answer not in change order at %d", i)
				}
				got = append(got, name[h.Author])
				if h.Changed <= since || h.Changed > cursor {
					t.Errorf("%s changed %d, outside (%d, %d]", name[h.Author], h.Changed, since, cursor)
				}
				want, err := l.Head(ctx, h.Author)
				if err != nil || want != h.Head {
					t.Errorf("%s: head %+v, ledger %+v (%v)", name[h.Author], h.Head, want, err)
				}
			}
			want := slices.Clone(st.want)
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("since %d: got %v, want %v", since, got, want)
			}
			if full != st.full {
				t.Errorf("full = %v, want %v", full, st.full)
			}
			if cursor < since {
				t.Errorf("cursor went back: %d < %d", cursor, since)
			}
			// The cursor is where the next question starts: nothing after it.
			if again, c2, _, err := l.HeadsSince(ctx, cursor); err != nil || (cursor > 0 && len(again) != 0) || (cursor > 0 && c2 != cursor) {
				t.Errorf("asking again with cursor %d: %d heads, cursor %d, %v", cursor, len(again), c2, err)
			}
			cursors = append(cursors, cursor)
			checkHeadsTable(t, l)
		})
	}

	// A cursor this ledger never gave (as after the file was replaced by
	// an older copy) gets the full list.
	heads, _, full, err := l.HeadsSince(ctx, cursors[len(cursors)-1]+1000)
	if err != nil || !full || len(heads) != 4 {
		t.Fatalf("unknown cursor: %d heads, full %v, %v; want all 4, full", len(heads), full, err)
	}
}

// prevHead returns the head before h's current one, as stored.
func prevHead(t *testing.T, l *Ledger, h *household) share.Head {
	t.Helper()
	raws, err := l.Range(context.Background(), h.ID(), h.head.Seq-1, 1)
	if err != nil || len(raws) != 1 {
		t.Fatalf("range: %d, %v", len(raws), err)
	}
	m, err := share.Parse(raws[0])
	if err != nil {
		t.Fatal(err)
	}
	return share.HeadOf(m)
}

// TestHeadsMigration: a ledger written before the heads table (schema 5)
// gets it filled by migration 6 with the same heads the messages give, in
// the order the heads were stored, and appends after it keep it right.
func TestHeadsMigration(t *testing.T) {
	ctx := context.Background()
	self := newHousehold(t, 1)
	others := []*household{newHousehold(t, 2), newHousehold(t, 3), newHousehold(t, 4)}
	path := filepath.Join(t.TempDir(), FileName)
	opts := Options{Self: self.ID(), Manifest: testManifest, Now: func() time.Time { return t0.Add(time.Hour) }}

	saved := migrations
	migrations = saved[:5]
	l, err := Open(ctx, path, opts)
	if err != nil {
		migrations = saved
		t.Fatal(err)
	}
	for i, h := range others {
		addNeighbour(t, l, h, string(rune('a'+i)))
	}
	// Interleaved: self 3, a 2, b 5, self 1 more; c has nothing.
	var msgs []*share.Message
	for range 3 {
		msgs = append(msgs, self.next(t, announce("s")))
	}
	for range 2 {
		msgs = append(msgs, others[0].next(t, announce("a")))
	}
	for range 5 {
		msgs = append(msgs, others[1].next(t, announce("b")))
	}
	mustAppend(t, l, msgs...)
	mustAppend(t, l, self.next(t, announce("s")))
	var tables int64
	if err := l.db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'heads'`).Scan(&tables); err != nil || tables != 0 {
		migrations = saved
		t.Fatalf("schema 5 already has a heads table (%d, %v)", tables, err)
	}
	l.Close()
	migrations = saved

	l, err = Open(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if v, _ := l.SchemaVersion(ctx); v != len(migrations) || v < 6 {
		t.Fatalf("schema version %d, want %d", v, len(migrations))
	}
	checkHeadsTable(t, l)
	heads, cursor, full, err := l.HeadsSince(ctx, 0)
	if err != nil || !full {
		t.Fatal(err, full)
	}
	want := []share.Head{others[0].head, others[1].head, self.head} // a's head was stored first, self's last
	var got []share.Head
	for _, h := range heads {
		got = append(got, h.Head)
	}
	if !slices.Equal(got, want) || cursor != 3 {
		t.Fatalf("migrated heads %+v cursor %d; want %+v cursor 3", got, cursor, want)
	}
	// After the migration the trigger keeps the table.
	mustAppend(t, l, others[2].next(t, announce("c")), others[0].next(t, announce("a")))
	checkHeadsTable(t, l)
	heads, next, _, err := l.HeadsSince(ctx, cursor)
	if err != nil || len(heads) != 2 || heads[0].Author != others[0].ID() || heads[1].Author != others[2].ID() || next != 5 {
		t.Fatalf("after the migration: %+v, cursor %d, %v", heads, next, err)
	}
}
