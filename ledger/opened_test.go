package ledger

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/commons-energy/commons/share"
)

// bob's ledger with sealed reports instead of plain ones: the settle is
// recomputed once bob recorded what he opened, survives a reopen, and a
// third household's ledger settles it by consistency without any figure.
func TestOpenedReports(t *testing.T) {
	ctx := context.Background()
	s := newSettleStreet(t)
	carol := newHousehold(t, 3)
	seal := func(h *household, readers []share.HouseholdID, r *share.Report) *share.Message {
		x, err := share.SealReport(h.id, readers, r)
		if err != nil {
			t.Fatal(err)
		}
		return h.next(t, x)
	}
	at(s.alice, "10:30")
	at(s.bob, "10:30")
	aSealed := seal(s.alice, []share.HouseholdID{s.bob.ID()}, &share.Report{FromSlot: s.window.From, ExportWh: []int64{900}, ImportWh: []int64{0}})
	bSealed := seal(s.bob, []share.HouseholdID{s.alice.ID()}, &share.Report{FromSlot: s.window.From, ExportWh: []int64{0}, ImportWh: []int64{500}})
	s.store(t, aSealed, bSealed)
	s.aReport, s.bReport = aSealed, bSealed
	at(s.alice, "11:00")
	settle := s.alice.next(t, s.settle2(500))
	s.store(t, settle)

	// Not opened yet: bob's ledger checks it for consistency only.
	p, err := s.l.FindPledge(ctx, s.pledge.ID().String())
	if err != nil || p.State != share.StateSettled || !p.Sealed {
		t.Fatalf("before opening: %s sealed %v, %v", p.State, p.Sealed, err)
	}
	todo, err := s.l.UnopenedSealed(ctx, s.bob.ID())
	if err != nil || len(todo) != 2 {
		t.Fatalf("unopened = %d, %v; want both sealed reports", len(todo), err)
	}
	for _, m := range todo {
		c, _ := m.Decode()
		r, err := c.(*share.SealedReport).Open(s.bob.id)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.l.PutOpenedReport(ctx, m.ID(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.l.PutOpenedReport(ctx, s.pledge.ID(), &share.Report{FromSlot: 1, ExportWh: []int64{1}, ImportWh: []int64{1}}); err == nil {
		t.Fatal("a pledge recorded as an opened report")
	}
	if todo, _ := s.l.UnopenedSealed(ctx, s.bob.ID()); len(todo) != 0 {
		t.Fatalf("%d still unopened", len(todo))
	}
	p, err = s.l.FindPledge(ctx, s.pledge.ID().String())
	if err != nil || p.State != share.StateSettled || p.Sealed || p.Settlement.ImportWh[0] != 500 || p.Settlement.ExportWh[0] != 900 {
		t.Fatalf("after opening: %+v, %v", p, err)
	}
	// Survives a reopen.
	path := s.l.Path()
	s.l.Close()
	l2, err := Open(ctx, path, Options{Self: s.bob.ID(), Manifest: testManifest, Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if o, err := l2.OpenedReports(ctx); err != nil || len(o) != 2 || o[bSealed.ID()].ImportWh[0] != 500 {
		t.Fatalf("opened after reopen: %v, %v", o, err)
	}

	// carol holds every message and opens nothing.
	lc, err := Open(ctx, filepath.Join(t.TempDir(), FileName), Options{Self: carol.ID(), Manifest: testManifest, Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	addNeighbour(t, lc, s.alice, "alice")
	addNeighbour(t, lc, s.bob, "bob")
	for _, h := range []*household{s.alice, s.bob} {
		raws, err := l2.Range(ctx, h.ID(), 1, 100)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lc.Append(ctx, raws...); err != nil {
			t.Fatal(err)
		}
	}
	if todo, err := lc.UnopenedSealed(ctx, carol.ID()); err != nil || len(todo) != 0 {
		t.Fatalf("carol has %d to open, %v", len(todo), err)
	}
	p, err = lc.FindPledge(ctx, s.pledge.ID().String())
	if err != nil || p.State != share.StateSettled || !p.Sealed || p.Settlement.TotalWh != 500 {
		t.Fatalf("carol: %+v, %v; want settled by consistency", p, err)
	}
	if p.LimitedBy != "" || p.SlotLimits != nil {
		t.Fatalf("carol explains a settle she cannot read: %s %v", p.LimitedBy, p.SlotLimits)
	}
	if o, err := lc.OpenedReports(ctx); err != nil || len(o) != 0 {
		t.Fatalf("carol's ledger has opened reports: %v, %v", o, err)
	}
}
