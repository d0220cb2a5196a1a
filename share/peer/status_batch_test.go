package peer

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/commons-energy/commons/ledger"
	"github.com/commons-energy/commons/share"
)

// TestStatusesBatched checks that statuses received from neighbours are
// not each their own fsync'd transaction: n statuses cause at most a
// bounded number of commits, readers see the latest status of each author
// at once (before it is written), and the latest one is on disk after
// Close.
func TestStatusesBatched(t *testing.T) {
	for _, tc := range []struct {
		name       string
		authors    int
		statuses   int // per author
		maxCommits uint64
	}{
		{"one chatty neighbour", 1, 300, 300/64 + 2},
		{"three neighbours", 3, 100, 300/64 + 2},
		{"a few statuses", 2, 3, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			self := newAuthor(t)
			path := filepath.Join(t.TempDir(), ledger.FileName)
			l, err := ledger.Open(ctx, path, ledger.Options{Self: self.id(), Manifest: testManifest})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { l.Close() }()
			st := LedgerStore{L: l}
			v := ShareVerifier{Community: testCommunity}
			authors := make([]*author, tc.authors)
			for i := range authors {
				authors[i] = newAuthor(t)
				if err := l.AddNeighbour(ctx, ledger.Neighbour{ID: authors[i].id(), Name: "n" + authors[i].id().Short()}); err != nil {
					t.Fatal(err)
				}
			}
			latest := map[share.HouseholdID][]byte{}
			var first Message
			before := l.Commits()
			for i := range tc.statuses {
				for _, a := range authors {
					raw := a.status(t, int64(i))
					m, err := v.Verify(raw)
					if err != nil {
						t.Fatal(err)
					}
					if err := st.PutStatus(ctx, m); err != nil {
						t.Fatalf("status %d of %s: %v", i, a.id().Short(), err)
					}
					latest[a.id()] = raw
					if i == 0 && a == authors[0] {
						first = m
					}
				}
			}
			// An older status arriving late does not replace the latest.
			if err := st.PutStatus(ctx, first); err != nil {
				t.Fatalf("re-sent old status: %v", err)
			}
			if got := l.Commits() - before; got > tc.maxCommits {
				t.Errorf("%d statuses took %d commits, want at most %d", tc.authors*tc.statuses, got, tc.maxCommits)
			}
			check := func(when string, l *ledger.Ledger) {
				t.Helper()
				sts, err := l.Statuses(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, a := range authors {
					if m := sts[a.id()]; m == nil || !bytes.Equal(m.Bytes(), latest[a.id()]) {
						t.Errorf("%s: status of %s is not the latest sent", when, a.id().Short())
					}
				}
				ns, err := l.Neighbours(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range ns {
					if n.LastSeen.IsZero() {
						t.Errorf("%s: neighbour %s never seen after its statuses", when, n.Name)
					}
				}
			}
			check("before close", l)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if l, err = ledger.Open(ctx, path, ledger.Options{Self: self.id(), Manifest: testManifest}); err != nil {
				t.Fatal(err)
			}
			check("after reopening", l)
		})
	}
}
