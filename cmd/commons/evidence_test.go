package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/commons-energy/commons/share"
	"github.com/commons-energy/commons/share/node"
)

// TestCLIDisputedSettle: Bob pledged Alice 800 Wh for one slot, she
// accepted and reported importing 500 Wh; Bob's settle claims 900 and
// allocates 800. `pledges --json` shows the pledge disputed with its
// reason, `pledges` says so, and `ledger verify` exits 4 naming it.
func TestCLIDisputedSettle(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	home, err := node.ResolveHome(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := node.DefaultConfig("Alice")
	cfg.Timezone = "UTC"
	if _, err := node.Init(ctx, home, cfg); err != nil {
		t.Fatal(err)
	}
	// The window starts in two slots: Alice's accept must follow her
	// announce (signed now by Init) and precede the window. The box that
	// imports the settle runs its clock after the window, so that the
	// settle is not ahead of it.
	now := time.Now()
	man := share.DefaultManifest("") // the default slot length, as cfg's
	slot := man.SlotOf(now) + 2
	end := man.SlotStart(slot + 1)
	n, err := node.Open(ctx, home, node.Options{Owner: "test", Now: func() time.Time { return end.Add(10 * time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	man = n.Manifest()
	alice, err := share.LoadIdentity(home.KeyPath())
	if err != nil {
		t.Fatal(err)
	}
	bob := neighbourKey(t, "bob")
	inv, err := bob.Invite("Bob", nil, man)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.AddNeighbour(ctx, inv, ""); err != nil {
		t.Fatal(err)
	}
	aHead, err := n.Ledger().Head(ctx, alice.ID())
	if err != nil {
		t.Fatal(err)
	}
	var bHead share.Head
	sign := func(k *share.Identity, at time.Time, c share.Content) *share.Message {
		h := &bHead
		if k.ID() == alice.ID() {
			h = &aHead
		}
		m, err := k.Compose(man.ID(), *h, at, c)
		if err != nil {
			t.Fatal(err)
		}
		*h = share.HeadOf(m)
		return m
	}
	p := sign(bob, now.Add(time.Second), &share.Pledge{To: alice.ID(), FromSlot: slot, ToSlot: slot + 1, EnergyWh: 800, ExpirySlot: slot})
	msgs := []*share.Message{p,
		sign(alice, now.Add(2*time.Second), &share.Accept{Pledge: p.ID(), EnergyWh: 800}),
		sign(alice, end.Add(time.Minute), &share.Report{FromSlot: slot, ExportWh: []int64{0}, ImportWh: []int64{500}}),
		sign(bob, end.Add(2*time.Minute), &share.Report{FromSlot: slot, ExportWh: []int64{900}, ImportWh: []int64{0}}),
		sign(bob, end.Add(3*time.Minute), &share.Settle{Pledge: p.ID(), FromSlot: slot, ToSlot: slot + 1,
			AllocatedWh: []int64{800}, ExportWh: []int64{900}, ImportWh: []int64{900}, TotalWh: 800, Key: man.Key}),
	}
	var block bytes.Buffer
	raws := make([][]byte, len(msgs))
	for i, m := range msgs {
		raws[i] = m.Bytes()
	}
	if err := share.Armor(&block, raws); err != nil {
		t.Fatal(err)
	}
	if rep, err := n.Import(ctx, &block); err != nil || len(rep.Rejected) > 0 {
		t.Fatalf("import: %+v, %v", rep, err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	out, code := runInProcess(t, "--home", dir, "pledges", "--json")
	var ps []struct {
		ID          string `json:"id"`
		State       string `json:"state"`
		DeliveredWh *int64 `json:"delivered_wh"`
		Dispute     string `json:"dispute"`
	}
	if err := json.Unmarshal([]byte(out), &ps); code != 0 || err != nil || len(ps) != 1 {
		t.Fatalf("pledges --json: exit %d, %v\n%s", code, err, out)
	}
	if ps[0].State != "disputed" || ps[0].DeliveredWh != nil || !strings.Contains(ps[0].Dispute, "reported an import of 500 Wh") {
		t.Fatalf("pledges --json = %s", out)
	}
	if out, code := runInProcess(t, "--home", dir, "pledges"); code != 0 || !strings.Contains(out, "disputed") || !strings.Contains(out, "is disputed: ") {
		t.Fatalf("pledges: exit %d\n%s", code, out)
	}
	out, code = runInProcess(t, "--home", dir, "ledger", "verify", "--json")
	var v struct {
		OK       bool  `json:"ok"`
		Disputes int64 `json:"disputes"`
		Problems []struct {
			ID, Reason string
		} `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, out)
	}
	if code != exitIntegrity || v.OK || v.Disputes != 1 || len(v.Problems) != 1 || v.Problems[0].ID != p.ID().String() || !strings.HasPrefix(v.Problems[0].Reason, "disputed: ") {
		t.Fatalf("verify --json: exit %d, %s", code, out)
	}
	if _, code := runInProcess(t, "--home", dir, "ledger", "verify"); code != exitIntegrity {
		t.Fatalf("verify: exit %d, want %d", code, exitIntegrity)
	}
}
