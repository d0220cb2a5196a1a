package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/commons-energy/commons/share"
	"github.com/commons-energy/commons/share/household"
)

// openV1Home copies a household made by the version 1 program
// (testdata/v1homes, written by commit 92d13ed of 2026-11-26 with its own
// node package: init, a pledge of 1500 Wh from Alice to Bob accepted,
// reported by both and settled at 690 Wh with a version 1 settle, and a
// pledge of 400 Wh Bob declined; its clock ran on 2026-12-03 from 07:00
// UTC) into a temporary folder and opens it with this program on clk.
func openV1Home(t *testing.T, name string, clk *clock) *Node {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "identity.key", "ledger.db"} {
		b, err := os.ReadFile(filepath.Join("testdata", "v1homes", name, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h, err := ResolveHome(dir)
	if err != nil {
		t.Fatal(err)
	}
	n, err := Open(context.Background(), h, Options{Owner: "test", Now: clk.Now})
	if err != nil {
		t.Fatalf("open the version 1 home of %s: %v", name, err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// Version 1 ledgers open, migrate and still verify; version 1 messages
// (its reports and its settle) remain valid history; and the households,
// now run by this program in their version 1 community, go on pledging
// and settling with version 2 messages.
func TestVersion1HomesOpenVerifyAndGoOn(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	a, b := openV1Home(t, "Alice", clk), openV1Home(t, "Bob", clk)
	if a.Manifest().Genesis != "" {
		t.Fatalf("the version 1 community got a genesis: %+v", a.Manifest())
	}
	for _, n := range []*Node{a, b} {
		v, err := n.Verify(ctx)
		if err != nil || !v.OK {
			t.Fatalf("verify %s = %+v, %v", n.cfg.Name, v, err)
		}
		ps, err := n.Pledges(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		got := map[household.PledgeState]int64{}
		for _, p := range ps {
			wh := int64(-1)
			if p.DeliveredWh != nil {
				wh = *p.DeliveredWh
			}
			got[p.State] = wh
		}
		if len(ps) != 2 || got[household.StateSettled] != 690 || got[household.StateDeclined] != -1 {
			t.Fatalf("%s's pledges from the version 1 ledger: %+v", n.cfg.Name, ps)
		}
	}
	for _, k := range []share.Kind{share.KindSettle, share.KindReport} {
		if msgs, err := a.messagesOfKinds(ctx, k); err != nil || len(msgs) == 0 {
			t.Fatalf("version 1 %s messages: %d, %v", k, len(msgs), err)
		}
	}

	// Go on: a new pledge, accepted, metered, reported and settled.
	win := time.Date(2026, 12, 3, 13, 0, 0, 0, time.UTC)
	p, err := a.pledge(ctx, household.PledgeRequest{To: "Bob", EnergyWh: 300, Start: win, End: win.Add(15 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	carry(t, a, b)
	if _, err := b.Accept(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	carry(t, b, a)
	meterSlots(t, a, win, []int64{0}, []int64{450})
	meterSlots(t, b, win, []int64{195}, []int64{0})
	clk.Set(win.Add(20 * time.Minute))
	for _, n := range []*Node{a, b, a} {
		if _, err := n.Settle(ctx); err != nil {
			t.Fatal(err)
		}
		carry(t, a, b)
		carry(t, b, a)
	}
	for _, n := range []*Node{a, b} {
		got, err := n.FindPledge(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != household.StateSettled || got.DeliveredWh == nil || *got.DeliveredWh != 195 {
			t.Fatalf("%s: the new pledge is %s, delivered %v; want settled at 195 Wh", n.cfg.Name, got.State, got.DeliveredWh)
		}
		if v, err := n.Verify(ctx); err != nil || !v.OK {
			t.Fatalf("verify %s after going on = %+v, %v", n.cfg.Name, v, err)
		}
	}
	if msgs, err := a.messagesOfKinds(ctx, share.KindSettle2); err != nil || len(msgs) != 1 {
		t.Fatalf("settle2 messages: %d, %v; want this program's one", len(msgs), err)
	}
}

// A version 2 program talks to households of a version 1 community when
// it is in that community (init --join with their commons1 invite, or the
// same settings without a genesis), and refuses, saying why and what to
// do, to add a version 1 community's invite to a version 2 community.
func TestVersion1CommunityMixing(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	alice := openV1Home(t, "Alice", clk)
	invite := alice.Identity().Invite

	joined := newHome(t, "Carol", clk) // the version 1 settings: no genesis
	if _, err := joined.AddNeighbour(ctx, invite, ""); err != nil {
		t.Fatalf("a household in the version 1 community adds a version 1 invite: %v", err)
	}

	h, err := ResolveHome(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig("Dave")
	cfg.Timezone = "UTC"
	if cfg.Community.Genesis, err = share.NewGenesis(); err != nil {
		t.Fatal(err)
	}
	if _, err := InitWithClock(ctx, h, cfg, clk.Now); err != nil {
		t.Fatal(err)
	}
	v2, err := Open(ctx, h, Options{Owner: "test", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v2.Close() })
	_, err = v2.AddNeighbour(ctx, invite, "")
	if !errors.Is(err, household.ErrInvalid) || !strings.Contains(err.Error(), "Alice's invite is for a version 1 community") ||
		!strings.Contains(err.Error(), "commons init --join INVITE") {
		t.Fatalf("adding a version 1 invite to a version 2 community: %v", err)
	}
}
