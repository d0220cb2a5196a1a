package node

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/commons-energy/commons/ledger"
	"github.com/commons-energy/commons/share"
	"github.com/commons-energy/commons/share/household"
)

// A settle2 whose allocation does not recompute from the reports it names
// reaches the recipient's box: the pledge is disputed there, in the CLI's
// JSON, in the dashboard's state and in verify; nothing is delivered.
func TestDisputedSettleShown(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: testT0}
	a, b := newHome(t, "Alice", clk), newHome(t, "Bob", clk)
	befriend(t, a, b)
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
	// Alice reports 900 Wh and waits for Bob's report; Bob reports 450.
	for _, n := range []*Node{a, b} {
		if _, err := n.Settle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	carry(t, b, a)
	// Alice's box settles honestly (450 Wh) but, instead of storing
	// that, a tampered box signs 800 Wh from the same evidence.
	aliceSettle := func(wh int64) {
		t.Helper()
		ps, err := a.led.Pledges(ctx, ledger.PledgeFilter{})
		if err != nil {
			t.Fatal(err)
		}
		v := &ps[0]
		_, refs, _, err := a.reports(ctx)
		if err != nil {
			t.Fatal(err)
		}
		terms := v.Terms()
		allocs := []share.Allocation{{Pledge: v.ID, Slot: v.Window.From, PledgedWh: 800, AcceptedWh: 800, ExportWh: 900, ImportWh: 900, Wh: wh}}
		c, err := a.settle2(ctx, terms, []*share.PledgeView{&v.PledgeView}, allocs, share.ProRata{}, refs)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.sign(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	aliceSettle(800)
	carry(t, a, b)
	bp, err := b.FindPledge(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if bp.State != household.StateDisputed || bp.DeliveredWh != nil || !strings.Contains(bp.Dispute, "its evidence gives 450 Wh") {
		t.Fatalf("Bob's view = %s delivered %v dispute %q", bp.State, bp.DeliveredWh, bp.Dispute)
	}
	js, _ := json.Marshal(bp)
	if !strings.Contains(string(js), `"state":"disputed"`) || !strings.Contains(string(js), `"dispute":"settle2 `) {
		t.Errorf("JSON = %s", js)
	}
	st, err := b.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, q := range st.Pledges {
		found = found || (q.ID == p.ID && q.State == household.StateDisputed)
	}
	if !found {
		t.Errorf("the dashboard's state does not show the pledge disputed: %+v", st.Pledges)
	}
	if v, err := b.Verify(ctx); err != nil || v.OK {
		t.Fatalf("Bob's verify = %+v, %v; want the dispute reported", v, err)
	}
	// Alice's box runs its settlement round: the pledge is disputed and
	// the evidence gives something else than her latest settle2, so it
	// settles again from the evidence; a second round has nothing new.
	rep, err := a.Settle(ctx)
	if err != nil || len(rep.Settled) != 1 || *rep.Settled[0].DeliveredWh != 450 {
		t.Fatalf("Alice's round = %+v, %v", rep, err)
	}
	if rep, err := a.Settle(ctx); err != nil || len(rep.Settled)+len(rep.Waiting) != 0 {
		t.Fatalf("Alice's second round = %+v, %v", rep, err)
	}
	carry(t, a, b)
	bp, err = b.FindPledge(ctx, p.ID)
	if err != nil || bp.State != household.StateSettled || *bp.DeliveredWh != 450 {
		t.Fatalf("after Alice's second settle, Bob's view = %+v, %v", bp, err)
	}
	if v, err := b.Verify(ctx); err != nil || !v.OK {
		t.Fatalf("Bob's verify = %+v, %v", v, err)
	}
}

// A late, corrected report: Bob's box reports again after Alice settled
// and settles from the new report itself. The parties' settles differ:
// the pledge is disputed on both boxes. Alice's next settlement round
// settles again from Bob's newer report and the two agree.
func TestLateReportResettles(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: testT0}
	a, b := newHome(t, "Alice", clk), newHome(t, "Bob", clk)
	befriend(t, a, b)
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
	meterSlots(t, b, win, []int64{300}, []int64{0})
	clk.Set(win.Add(20 * time.Minute))
	for _, n := range []*Node{a, b} {
		if _, err := n.Settle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	carry(t, b, a)
	if rep, err := a.Settle(ctx); err != nil || len(rep.Settled) != 1 || *rep.Settled[0].DeliveredWh != 300 {
		t.Fatalf("Alice's settle = %+v, %v", rep, err)
	}
	carry(t, a, b)
	state := func(n *Node) household.Pledge {
		t.Helper()
		q, err := n.FindPledge(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	// Bob's meter data is corrected: he imported 600 Wh. His box reports
	// again and settles from the new report as the recipient.
	clk.Set(win.Add(40 * time.Minute))
	fixed := &share.Report{FromSlot: state(b).Window.FromSlot, ExportWh: []int64{0}, ImportWh: []int64{600}}
	if _, err := b.sign(ctx, fixed); err != nil {
		t.Fatal(err)
	}
	ps, err := b.led.Pledges(ctx, ledger.PledgeFilter{})
	if err != nil {
		t.Fatal(err)
	}
	table, refs, _, err := b.reports(ctx)
	if err != nil {
		t.Fatal(err)
	}
	terms := ps[0].Terms()
	allocs, err := share.Allocate([]share.Terms{terms}, table, share.ProRata{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := b.settle2(ctx, terms, []*share.PledgeView{&ps[0].PledgeView}, allocs, share.ProRata{}, refs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.sign(ctx, c); err != nil {
		t.Fatal(err)
	}
	if q := state(b); q.State != household.StateDisputed || !strings.Contains(q.Dispute, "settled differently") {
		t.Fatalf("Bob's view after his own settle = %s %q", q.State, q.Dispute)
	}
	carry(t, b, a)
	if q := state(a); q.State != household.StateDisputed {
		t.Fatalf("Alice's view = %s", q.State)
	}
	rep, err := a.Settle(ctx)
	if err != nil || len(rep.Settled) != 1 || *rep.Settled[0].DeliveredWh != 600 {
		t.Fatalf("Alice's round after the correction = %+v, %v", rep, err)
	}
	carry(t, a, b)
	for _, n := range []*Node{a, b} {
		if q := state(n); q.State != household.StateSettled || *q.DeliveredWh != 600 {
			t.Fatalf("%s's view = %s %v", n.cfg.Name, q.State, q.DeliveredWh)
		}
		if v, err := n.Verify(ctx); err != nil || !v.OK {
			t.Fatalf("verify %s = %+v, %v", n.cfg.Name, v, err)
		}
	}
}
