package node

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
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
	h, err := ResolveHome(copyV1Home(t, name))
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

// copyV1Home copies the version 1 household name into a temporary folder
// and returns it.
func copyV1Home(t *testing.T, name string) string {
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
	return dir
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

// A version 2 box sends a household that has never written a version 2
// kind (so may run a version 1 program) what that program reads: a plain
// report and a version 1 settle for the pledges between them, which a
// version 1 reader settles; to a version 2 neighbour it sends a sealed
// report and settle2. Bob's messages are signed with the key of the
// household the version 1 program made, in its version 1 format, which
// version 2 did not change.
func TestVersion1NeighbourGetsWhatItReads(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	a := openV1Home(t, "Alice", clk) // now run by this program
	bobKey, err := share.LoadIdentity(filepath.Join(copyV1Home(t, "Bob"), "identity.key"))
	if err != nil {
		t.Fatal(err)
	}
	bob := bobKey.ID()
	carol := newHome(t, "Carol", clk) // a version 2 neighbour in the same community
	befriend(t, a, carol)
	carry(t, carol, a)
	if a.speaksVersion2(ctx, bob) || !a.speaksVersion2(ctx, carol.key.ID()) {
		t.Fatalf("Alice's view: Bob speaks version 2 = %v, Carol = %v; want false, true", a.speaksVersion2(ctx, bob), a.speaksVersion2(ctx, carol.key.ID()))
	}
	ns, err := a.Neighbours(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, nb := range ns {
		if want := map[string]int{"Bob": 1, "Carol": 2}[nb.Name]; nb.Protocol != want {
			t.Errorf("neighbours list: %s reads protocol %d, want %d", nb.Name, nb.Protocol, want)
		}
	}
	// bobSends signs c as Bob's next message and gives it to Alice's box.
	bobSends := func(at time.Time, c share.Content) *share.Message {
		t.Helper()
		head, err := a.led.Head(ctx, bob)
		if err != nil {
			t.Fatal(err)
		}
		m, err := bobKey.Compose(a.Manifest().ID(), head, at, c)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := share.Armor(&buf, [][]byte{m.Bytes()}); err != nil {
			t.Fatal(err)
		}
		if rep, err := a.Import(ctx, &buf); err != nil || len(rep.Rejected) > 0 {
			t.Fatalf("import Bob's %s: %+v, %v", c.Kind(), rep, err)
		}
		return m
	}
	win, win2 := time.Date(2026, 12, 3, 13, 0, 0, 0, time.UTC), time.Date(2026, 12, 3, 13, 30, 0, 0, time.UTC)
	pb, err := a.pledge(ctx, household.PledgeRequest{To: "Bob", EnergyWh: 300, Start: win, End: win.Add(15 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := a.pledge(ctx, household.PledgeRequest{To: "Carol", EnergyWh: 300, Start: win2, End: win2.Add(15 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	pbID, _ := share.ParseID(pb.ID)
	clk.Set(clk.Now().Add(time.Minute))
	bobSends(clk.Now(), &share.Accept{Pledge: pbID, EnergyWh: 300})
	carry(t, a, carol)
	if _, err := carol.Accept(ctx, pc.ID); err != nil {
		t.Fatal(err)
	}
	carry(t, carol, a)
	meterSlots(t, a, win, []int64{0, 0, 0}, []int64{450, 0, 450})
	meterSlots(t, carol, win2, []int64{240}, []int64{0})
	slot := a.Manifest().SlotOf(win)
	clk.Set(win2.Add(20 * time.Minute))
	bobSends(win.Add(20*time.Minute), &share.Report{FromSlot: slot, ExportWh: []int64{0}, ImportWh: []int64{195}})
	for _, n := range []*Node{a, carol, a} {
		if _, err := n.Settle(ctx); err != nil {
			t.Fatal(err)
		}
		carry(t, a, carol)
		carry(t, carol, a)
	}
	// To Bob: a plain report of the window and a version 1 settle.
	own := func(k share.Kind) []*share.Message {
		msgs, err := a.messagesOfKinds(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		var out []*share.Message
		for _, m := range msgs {
			if m.Author == a.key.ID() {
				out = append(out, m)
			}
		}
		return out
	}
	var plainFor []int64
	for _, m := range own(share.KindReport) {
		c, _ := m.Decode()
		plainFor = append(plainFor, c.(*share.Report).FromSlot)
	}
	if !slices.Contains(plainFor, slot) || slices.Contains(plainFor, slot+2) {
		t.Fatalf("Alice's plain reports start at slots %v; want Bob's window %d and not Carol's %d", plainFor, slot, slot+2)
	}
	var settle1 *share.Message
	for _, m := range own(share.KindSettle) {
		if c, _ := m.Decode(); c.(*share.Settle).Pledge == pbID {
			settle1 = m
		}
	}
	if settle1 == nil {
		t.Fatalf("Alice wrote no version 1 settle of Bob's pledge")
	}
	// What a version 1 program makes of it: the author's clock and the
	// first valid settle, no evidence (share.FoldPledge).
	rawPledge, err := a.led.Message(ctx, pbID)
	if err != nil {
		t.Fatal(err)
	}
	pm, _ := share.Parse(rawPledge)
	related := append([]*share.Message{settle1}, bobAccepts(t, a, bob)...)
	v1view, err := share.FoldPledge(a.Manifest(), pm, related, clk.Now())
	if err != nil || v1view.State != share.StateSettled || v1view.Settlement.TotalWh != 195 {
		t.Fatalf("a version 1 reader's view of Bob's pledge: %+v, %v; want settled at 195 Wh", v1view, err)
	}
	// To Carol: a sealed report and settle2; both boxes settle both pledges.
	if len(own(share.KindSealedReport)) != 1 || len(own(share.KindSettle2)) != 1 {
		t.Fatalf("Alice wrote %d sealed reports and %d settle2; want one of each, for Carol's pledge", len(own(share.KindSealedReport)), len(own(share.KindSettle2)))
	}
	for _, c := range []struct {
		n  *Node
		id string
		wh int64
	}{{a, pb.ID, 195}, {a, pc.ID, 240}, {carol, pc.ID, 240}} {
		p, err := c.n.FindPledge(ctx, c.id)
		if err != nil || p.State != household.StateSettled || p.DeliveredWh == nil || *p.DeliveredWh != c.wh {
			t.Fatalf("%s's view of %s: %+v, %v; want settled at %d Wh", c.n.cfg.Name, c.id, p, err, c.wh)
		}
	}
}

// bobAccepts returns the accepts by bob that a's ledger holds.
func bobAccepts(t *testing.T, a *Node, bob share.HouseholdID) []*share.Message {
	t.Helper()
	msgs, err := a.messagesOfKinds(context.Background(), share.KindAccept)
	if err != nil {
		t.Fatal(err)
	}
	var out []*share.Message
	for _, m := range msgs {
		if m.Author == bob {
			out = append(out, m)
		}
	}
	return out
}
