package node

import (
	"context"
	"testing"
	"time"

	"github.com/commons-energy/commons/share"
	"github.com/commons-energy/commons/share/household"
)

// seens returns the seen messages n's ledger holds, by author.
func seens(t *testing.T, n *Node) map[share.HouseholdID][]*share.Seen {
	t.Helper()
	msgs, err := n.messagesOfKinds(context.Background(), share.KindSeen)
	if err != nil {
		t.Fatal(err)
	}
	out := map[share.HouseholdID][]*share.Seen{}
	for _, m := range msgs {
		c, err := m.Decode()
		if err != nil {
			t.Fatal(err)
		}
		out[m.Author] = append(out[m.Author], c.(*share.Seen))
	}
	return out
}

func stateOf(t *testing.T, n *Node, id string) household.PledgeState {
	t.Helper()
	p, err := n.FindPledge(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return p.State
}

// The first deadline attack: Bob's accept is dated before the
// pledge expired (his clock) but reaches Alice's box after it (hers).
// Version 1 rules took the accept; now Alice's box notes what it held of
// Bob's feed at the expiry, and every box, Bob's and a third one's too,
// sees the pledge expired.
func TestLateAcceptNotedBySeen(t *testing.T) {
	ctx := context.Background()
	ca, cb, cc := &clock{t: testT0}, &clock{t: testT0}, &clock{t: testT0}
	a, b, c := newHome(t, "Alice", ca), newHome(t, "Bob", cb), newHome(t, "Carol", cc)
	befriend(t, a, b)
	befriend(t, a, c)
	befriend(t, b, c)
	win := testT0.Add(time.Hour) // the pledge expires when its window starts
	p, err := a.pledge(ctx, household.PledgeRequest{To: "Bob", EnergyWh: 800, Start: win, End: win.Add(15 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	carry(t, a, b)
	cb.Set(win.Add(-time.Millisecond)) // Bob's clock says the offer is still open
	if _, err := b.Accept(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	ca.Set(win.Add(5 * time.Minute)) // by Alice's clock it expired 5 minutes ago
	carry(t, b, a)
	if got := stateOf(t, a, p.ID); got != household.StateExpired {
		t.Fatalf("Alice's box: pledge %s, want expired", got)
	}
	s := seens(t, a)[a.key.ID()]
	if len(s) != 1 || s[0].Pledge.String() != p.ID || s[0].Seq >= 2 {
		t.Fatalf("Alice's seens = %+v, want one for the pledge holding Bob's feed below his accept", s)
	}
	// Bob and Carol learn it from Alice's feed.
	cb.Set(win.Add(6 * time.Minute))
	cc.Set(win.Add(6 * time.Minute))
	carry(t, a, b)
	carry(t, a, c)
	carry(t, b, c)
	for _, n := range []*Node{b, c} {
		if got := stateOf(t, n, p.ID); got != household.StateExpired {
			t.Errorf("%s's box: pledge %s, want expired", n.cfg.Name, got)
		}
	}
	// Carrying the same messages again writes no second seen.
	carry(t, b, a)
	if s := seens(t, a)[a.key.ID()]; len(s) != 1 {
		t.Errorf("Alice wrote %d seens, want 1", len(s))
	}
}

// The second deadline attack: Alice cancels an accepted pledge
// with a cancel dated 1 ms before the window started, sent after it
// started. Bob's box notes it as late: the pledge stays accepted for
// both, where version 1 rules cancelled it retroactively. A cancel that
// arrives in time is not noted and cancels.
func TestLateCancelNotedBySeen(t *testing.T) {
	ctx := context.Background()
	for _, late := range []bool{true, false} {
		ca, cb := &clock{t: testT0}, &clock{t: testT0}
		a, b := newHome(t, "Alice", ca), newHome(t, "Bob", cb)
		befriend(t, a, b)
		win := testT0.Add(time.Hour)
		p, err := a.pledge(ctx, household.PledgeRequest{To: "Bob", EnergyWh: 800, Start: win, End: win.Add(15 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		carry(t, a, b)
		cb.Set(testT0.Add(time.Minute))
		if _, err := b.Accept(ctx, p.ID); err != nil {
			t.Fatal(err)
		}
		ca.Set(testT0.Add(2 * time.Minute))
		carry(t, b, a)
		if n := len(seens(t, a)); n != 0 {
			t.Fatalf("an accept in time was noted: %d seens", n)
		}
		ca.Set(win.Add(-time.Millisecond))
		if _, err := a.Cancel(ctx, p.ID); err != nil {
			t.Fatal(err)
		}
		arrive := win.Add(2 * time.Minute)
		if !late {
			arrive = win.Add(-time.Minute / 2)
		}
		cb.Set(arrive)
		carry(t, a, b)
		want := household.StateCancelled
		if late {
			want = household.StateAccepted
		}
		if got := stateOf(t, b, p.ID); got != want {
			t.Fatalf("late=%v: Bob's box: pledge %s, want %s", late, got, want)
		}
		ca.Set(win.Add(3 * time.Minute))
		carry(t, b, a)
		if got := stateOf(t, a, p.ID); got != want {
			t.Fatalf("late=%v: Alice's box: pledge %s, want %s", late, got, want)
		}
		if n := len(seens(t, b)[b.key.ID()]); late && n != 1 || !late && n != 0 {
			t.Fatalf("late=%v: Bob wrote %d seens", late, n)
		}
	}
}
