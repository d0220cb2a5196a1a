package peer

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/commons-energy/commons/ledger"
)

// A neighbour added while the list is cached is known at once (a daemon
// must not turn away the household it was just introduced to until the
// cache expires), while the cache still serves known ones.
func TestLedgerNeighboursKnownAfterAdd(t *testing.T) {
	self, other, stranger := newAuthor(t), newAuthor(t), newAuthor(t)
	l, err := ledger.Open(context.Background(), filepath.Join(t.TempDir(), ledger.FileName), ledger.Options{Self: self.id(), Manifest: testManifest})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	nb := &LedgerNeighbours{L: l, TTL: time.Hour}
	if nb.Known(other.id()) {
		t.Fatal("a household that is not a neighbour is known")
	}
	if err := l.AddNeighbour(context.Background(), ledger.Neighbour{ID: other.id(), Name: "Other", Addresses: []string{"127.0.0.1:1"}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !nb.Known(other.id()) {
		if time.Now().After(deadline) {
			t.Fatal("a neighbour added after the list was cached stays unknown")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if nb.Known(stranger.id()) {
		t.Fatal("a stranger is known")
	}
	if addr, ok := nb.Addr(other.id()); !ok || addr != "127.0.0.1:1" {
		t.Fatalf("Addr = %q, %v", addr, ok)
	}
}
