package node

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/commons-energy/commons/ledger"
	"github.com/commons-energy/commons/share"
	"github.com/commons-energy/commons/share/household"
)

// sealedStreet is alice's pledge of 800 Wh to bob in one slot, accepted,
// both meters read (alice exported 900, bob imported 450) and both boxes'
// reports made; carol is a neighbour of both who will hold every message.
func sealedStreet(t *testing.T) (a, b, c *Node, p household.Pledge, clk *clock) {
	t.Helper()
	ctx := context.Background()
	clk = &clock{t: testT0}
	a, b, c = newHome(t, "Alice", clk), newHome(t, "Bob", clk), newHome(t, "Carol", clk)
	befriend(t, a, b)
	befriend(t, a, c)
	befriend(t, b, c)
	win := testT0.Add(time.Hour)
	p, err := a.pledge(ctx, household.PledgeRequest{To: "Bob", EnergyWh: 800, Start: win, End: win.Add(15 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	carry(t, a, b)
	clk.Set(testT0.Add(time.Minute))
	if _, err := b.Accept(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	carry(t, b, a)
	meterSlots(t, a, win, []int64{0}, []int64{900})
	meterSlots(t, b, win, []int64{450}, []int64{0})
	clk.Set(win.Add(20 * time.Minute))
	for _, n := range []*Node{a, b} {
		if rep, err := n.Settle(ctx); err != nil || len(rep.Reported) != 1 {
			t.Fatalf("%s's first round = %+v, %v", n.cfg.Name, rep, err)
		}
	}
	carry(t, b, a)
	return a, b, c, p, clk
}

// Settlement end to end with sealed reports: the parties recompute from
// the figures they opened; carol, holding every message, sees the pledge
// settled by consistency and has no figure of either meter.
func TestSealedReportsSettle(t *testing.T) {
	ctx := context.Background()
	a, b, c, p, _ := sealedStreet(t)
	rep, err := a.Settle(ctx)
	if err != nil || len(rep.Settled) != 1 || *rep.Settled[0].DeliveredWh != 450 {
		t.Fatalf("Alice's round = %+v, %v", rep, err)
	}
	carry(t, a, b)
	carry(t, a, c)
	carry(t, b, c)
	for _, n := range []*Node{a, b} {
		q, err := n.led.FindPledge(ctx, p.ID)
		if err != nil || q.State != share.StateSettled || q.Sealed || q.Settlement.ImportWh[0] != 450 || q.Settlement.ExportWh[0] != 900 {
			t.Fatalf("%s's view = %+v, %v; want settled from the opened figures", n.cfg.Name, q, err)
		}
		if v, err := n.Verify(ctx); err != nil || !v.OK {
			t.Fatalf("%s's verify = %+v, %v", n.cfg.Name, v, err)
		}
		if o, err := n.led.OpenedReports(ctx); err != nil || len(o) != 2 {
			t.Fatalf("%s opened %d reports, %v; want both parties'", n.cfg.Name, len(o), err)
		}
	}
	q, err := c.led.FindPledge(ctx, p.ID)
	if err != nil || q.State != share.StateSettled || !q.Sealed || q.Settlement.TotalWh != 450 {
		t.Fatalf("Carol's view = %+v, %v; want settled by consistency", q, err)
	}
	if v, err := c.Verify(ctx); err != nil || !v.OK {
		t.Fatalf("Carol's verify = %+v, %v", v, err)
	}
	// Carol's ledger holds the sealed reports and no plaintext figure.
	sealed, err := c.messagesOfKinds(ctx, share.KindSealedReport)
	if err != nil || len(sealed) != 2 {
		t.Fatalf("Carol holds %d sealed reports, %v", len(sealed), err)
	}
	if plain, err := c.messagesOfKinds(ctx, share.KindReport); err != nil || len(plain) != 0 {
		t.Fatalf("Carol holds %d plain reports, %v", len(plain), err)
	}
	if o, err := c.led.OpenedReports(ctx); err != nil || len(o) != 0 {
		t.Fatalf("Carol opened %d reports, %v", len(o), err)
	}
	var rows int
	if err := c.led.DB().QueryRowContext(ctx, `SELECT count(*) FROM messages WHERE content LIKE '%export_wh%' OR content LIKE '%import_wh%'`).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("%d of Carol's stored messages carry meter figures in clear, %v", rows, err)
	}
	table, _, _, err := c.reports(ctx)
	if err != nil || len(table) != 0 {
		t.Fatalf("Carol's measurement table = %v, %v; want empty", table, err)
	}
	for _, s := range sealed {
		x, _ := s.Decode()
		if _, err := x.(*share.SealedReport).Open(c.key); share.Reason(err) != "not_reader" {
			t.Fatalf("Carol opens a sealed report: %v", err)
		}
	}
	if c.SealedFailures() != 0 {
		t.Fatalf("Carol counted %d failures for reports not addressed to her", c.SealedFailures())
	}
}

// A settle2 naming sealed reports whose opened figures are lower than it
// allocates is disputed by both parties; carol, who cannot open them,
// can only check it against the accepted share, which it respects.
func TestSealedSettleAboveFiguresDisputed(t *testing.T) {
	ctx := context.Background()
	a, b, c, p, _ := sealedStreet(t)
	ps, err := a.led.Pledges(ctx, ledger.PledgeFilter{})
	if err != nil {
		t.Fatal(err)
	}
	v := &ps[0]
	_, refs, _, err := a.reports(ctx)
	if err != nil {
		t.Fatal(err)
	}
	allocs := []share.Allocation{{Pledge: v.ID, Slot: v.Window.From, PledgedWh: 800, AcceptedWh: 800, ExportWh: 900, ImportWh: 900, Wh: 800}}
	x, err := a.settle2(ctx, v.Terms(), []*share.PledgeView{&v.PledgeView}, allocs, share.ProRata{}, refs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.sign(ctx, x); err != nil {
		t.Fatal(err)
	}
	carry(t, a, b)
	carry(t, a, c)
	carry(t, b, c)
	for _, n := range []*Node{a, b} {
		q, err := n.FindPledge(ctx, p.ID)
		if err != nil || q.State != household.StateDisputed || !strings.Contains(q.Dispute, "its evidence gives 450 Wh") {
			t.Fatalf("%s's view = %s %q, %v; want disputed", n.cfg.Name, q.State, q.Dispute, err)
		}
	}
	q, err := c.led.FindPledge(ctx, p.ID)
	if err != nil || q.State != share.StateSettled || !q.Sealed {
		t.Fatalf("Carol's view = %s sealed %v, %v", q.State, q.Sealed, err)
	}
}

// Sealed reports stored while the node did not open them (here: the
// opened table emptied, as after an import by an older program) are
// opened at the next start; a sealed report to bob whose ciphertext does
// not open is counted and logged, and breaks nothing.
func TestSealedCatchUpAndBadCiphertext(t *testing.T) {
	ctx := context.Background()
	a, b, _, p, clk := sealedStreet(t)
	carry(t, a, b)
	if _, err := b.led.DB().ExecContext(ctx, `DELETE FROM opened_reports`); err != nil {
		t.Fatal(err)
	}
	home := b.home
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2, err := Open(ctx, home, Options{Owner: "test", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if o, err := b2.led.OpenedReports(ctx); err != nil || len(o) != 2 {
		t.Fatalf("after restart bob opened %d, %v; want both reports", len(o), err)
	}

	// Alice's box signs a sealed report to bob whose ciphertext was
	// damaged after sealing.
	bad, err := share.SealReport(a.key, []share.HouseholdID{b2.key.ID()}, &share.Report{FromSlot: 5, ExportWh: []int64{1}, ImportWh: []int64{2}})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(bad.Sealed)
	raw[len(raw)-3] ^= 0x40
	bad.Sealed = base64.StdEncoding.EncodeToString(raw)
	bm, err := a.sign(ctx, bad)
	if err != nil {
		t.Fatal(err)
	}
	a.Settle(ctx)
	rep := carry(t, a, b2)
	if rep.Added == 0 {
		t.Fatalf("import = %+v", rep)
	}
	if b2.SealedFailures() != 1 {
		t.Fatalf("failures = %d, want 1", b2.SealedFailures())
	}
	if o, _ := b2.led.OpenedReports(ctx); o[bm.ID()] != nil {
		t.Fatal("a sealed report that does not open was recorded as opened")
	}
	q, err := b2.FindPledge(ctx, p.ID)
	if err != nil || q.State != household.StateSettled || *q.DeliveredWh != 450 {
		t.Fatalf("bob's view after the bad message = %+v, %v", q, err)
	}
}
