package ledger

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/commons-energy/commons/share"
)

var (
	testManifest  = share.DefaultManifest("ledger-test")
	testCommunity = testManifest.ID()
)

// t0 is a fixed instant for signed messages: 2025-01-21 12:00 UTC.
var t0 = time.Date(2025, 1, 21, 12, 0, 0, 0, time.UTC)

// household is a signing test household that tracks its own head.
type household struct {
	id   *share.Identity
	head share.Head
	at   time.Time
}

func newHousehold(t testing.TB, seed byte) *household {
	t.Helper()
	id, err := share.IdentityFromSeed(bytes.Repeat([]byte{seed}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return &household{id: id, at: t0}
}

func (h *household) ID() share.HouseholdID { return h.id.ID() }

// signAfter signs c as the message after head, without moving h's head.
func (h *household) signAfter(t testing.TB, head share.Head, c share.Content) *share.Message {
	t.Helper()
	h.at = h.at.Add(time.Second)
	d, err := share.NewDraft(testCommunity, head, h.at, c)
	if err != nil {
		t.Fatal(err)
	}
	m, err := h.id.Sign(d)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// next signs c as h's next message and moves the head.
func (h *household) next(t testing.TB, c share.Content) *share.Message {
	t.Helper()
	m := h.signAfter(t, h.head, c)
	if !m.Ephemeral() {
		h.head = share.HeadOf(m)
	}
	return m
}

// announce is a cheap chained content.
func announce(name string) share.Content { return &share.Announce{Name: name} }

func openTest(t testing.TB, self share.HouseholdID) (*Ledger, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), FileName)
	l, err := Open(context.Background(), path, Options{Self: self, Manifest: testManifest, Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, path
}

func addNeighbour(t testing.TB, l *Ledger, h *household, name string) {
	t.Helper()
	if err := l.AddNeighbour(context.Background(), Neighbour{ID: h.ID(), Name: name}); err != nil {
		t.Fatal(err)
	}
}

func mustAppend(t testing.TB, l *Ledger, msgs ...*share.Message) []Result {
	t.Helper()
	res, err := l.AppendMessages(context.Background(), msgs...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func outcomes(res []Result) []Outcome {
	out := make([]Outcome, len(res))
	for i, r := range res {
		out[i] = r.Outcome
	}
	return out
}

func count(t testing.TB, l *Ledger, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := l.db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
