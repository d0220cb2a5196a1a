package peer

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestPushOverQuota: a neighbour pushing past its storage quota gets 507
// Insufficient Storage naming the quota, and nothing past it is stored.
func TestPushOverQuota(t *testing.T) {
	ctx := context.Background()
	b := newAuthor(t)
	l, err := ledger.Open(ctx, filepath.Join(t.TempDir(), ledger.FileName), ledger.Options{Self: b.id(), Manifest: testManifest,
		Quota: ledger.Quota{UnknownKindBytes: 20000, FreeSpace: func(string) (int64, error) { return 1 << 40, nil }}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	nb := &ledgerTestNeighbours{LedgerNeighbours{L: l, TTL: 5 * time.Millisecond}}
	srv, err := NewServer(ServerConfig{Key: b.key, Store: LedgerStore{L: l}, Neighbours: nb, Verifier: ShareVerifier{Community: testCommunity}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	a := newAuthor(t)
	nb.add(a.id(), "")
	c, err := NewClient(ClientConfig{Key: a.key, Peer: b.id(), Addr: ln.Addr().String(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	content := []byte(`{"x":"` + strings.Repeat("x", 8000) + `"}`)
	batch := make([][]byte, 5)
	for i := range batch {
		batch[i] = a.sign(t, a.head, 99, content)
		m, err := share.Parse(batch[i])
		if err != nil {
			t.Fatal(err)
		}
		a.head = share.HeadOf(m)
	}
	res, err := c.Push(ctx, batch)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusInsufficientStorage || !strings.Contains(err.Error(), "quota") {
		t.Fatalf("push over quota: %+v, %v; want 507 naming the quota", res, err)
	}
	if h, err := l.Head(ctx, a.id()); err != nil || h.Seq != 2 {
		t.Errorf("stored head = %d, %v; want 2 (20000 bytes hold two 8 KiB messages)", h.Seq, err)
	}
}
