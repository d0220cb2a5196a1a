package ledger

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/commons-energy/commons/share"
)

// headsLedger writes a ledger of rows messages over authors authors the
// way an existing ledger from before migration 6 looks (rows inserted
// directly: Heads reads only author, seq, id and created_ms, so the rows
// need not verify), then opens it with every migration, which fills the
// heads table. It returns the ledger and how long the migration took.
func headsLedger(b, owner *testing.B, rows, authors int) (*Ledger, time.Duration) {
	b.Helper()
	ctx := context.Background()
	self := newHousehold(b, 1)
	path := filepath.Join(b.TempDir(), FileName)
	opts := Options{Self: self.ID(), Manifest: testManifest, Now: func() time.Time { return t0 }}
	saved := migrations
	migrations = saved[:5]
	l, err := Open(ctx, path, opts)
	migrations = saved
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, authors)
	for i := range ids {
		var a share.HouseholdID
		h := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		copy(a[:], h[:])
		ids[i] = a.String()
	}
	err = l.write(ctx, func(tx *sql.Tx) error {
		ins, err := tx.PrepareContext(ctx, `INSERT INTO messages (id, author, seq, prev, kind, kind_name, created_ms, received_ms, content, raw) VALUES (?, ?, ?, '', 1, 'announce', ?, 0, '{}', x'00')`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for i := range rows {
			a, seq := i%authors, i/authors+1
			id := sha256.Sum256([]byte(fmt.Sprint(a, seq)))
			if _, err := ins.ExecContext(ctx, fmt.Sprintf("%x", id), ids[a], seq, int64(seq)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	l.Close()
	start := time.Now()
	l, err = Open(ctx, path, opts)
	if err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	owner.Cleanup(func() { l.Close() })
	return l, took
}

// BenchmarkHeads is the cost of answering one neighbour's "what do you
// have" at 11k, 101k and 1M stored messages over 101 authors (a box and
// 100 neighbours): scan = the query before the heads table (a group-by
// over the whole message index), table = Heads from the heads table,
// since = HeadsSince with the latest cursor (nothing changed: the common
// case every 30 s).
func BenchmarkHeads(b *testing.B) {
	const authors = 101
	owner := b
	for _, rows := range []int{11_000, 101_000, 1_000_000} {
		var l *Ledger
		setup := func(b *testing.B) {
			if l == nil {
				var took time.Duration
				l, took = headsLedger(b, owner, rows, authors)
				b.Logf("rows=%d: migration 6 filled the heads table in %v", rows, took)
			}
		}
		b.Run(fmt.Sprintf("rows=%d/scan", rows), func(b *testing.B) {
			setup(b)
			for b.Loop() {
				if n := len(scanHeads(b, l)); n != authors {
					b.Fatalf("%d heads", n)
				}
			}
		})
		b.Run(fmt.Sprintf("rows=%d/table", rows), func(b *testing.B) {
			setup(b)
			for b.Loop() {
				hs, err := l.Heads(context.Background())
				if err != nil || len(hs) != authors {
					b.Fatalf("%d heads, %v", len(hs), err)
				}
			}
		})
		b.Run(fmt.Sprintf("rows=%d/since", rows), func(b *testing.B) {
			setup(b)
			_, cursor, _, err := l.HeadsSince(context.Background(), 0)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				hs, _, _, err := l.HeadsSince(context.Background(), cursor)
				if err != nil || len(hs) != 0 {
					b.Fatalf("%d heads, %v", len(hs), err)
				}
			}
		})
	}
}
