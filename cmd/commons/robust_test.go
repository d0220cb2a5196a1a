package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/commons-energy/commons/share"
	"github.com/commons-energy/commons/share/node"
)

// runInProcess runs the commons command line in this process, as main
// does, and returns stdout and the exit code run would return.
func runInProcess(t *testing.T, args ...string) (string, int) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	err := root.ExecuteContext(context.Background())
	if err == nil {
		return out.String(), exitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		t.Fatalf("commons %s: %v (not an exit error)", strings.Join(args, " "), err)
	}
	return out.String(), ee.code
}

// neighbourKey is a deterministic neighbour identity.
func neighbourKey(t *testing.T, name string) *share.Identity {
	t.Helper()
	seed := sha256.Sum256([]byte("commons cli robust test " + name))
	k, err := share.IdentityFromSeed(seed[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestCLIForkAndFarPledge: a neighbour whose feed forked makes `ledger
// verify --json` say ok false with a "frozen: fork at seq N" problem and
// exit 4, and `neighbours list --json` show it frozen; a pledge an older
// version stored with slots past the end of protocol time does not break
// `pledges --json`.
func TestCLIForkAndFarPledge(t *testing.T) {
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
	n, err := node.Open(ctx, home, node.Options{Owner: "test"})
	if err != nil {
		t.Fatal(err)
	}
	man := n.Manifest()
	self := n.Identity().ID
	bob, carol := neighbourKey(t, "bob"), neighbourKey(t, "carol")
	for _, k := range []struct {
		id   *share.Identity
		name string
	}{{bob, "Bob"}, {carol, "Carol"}} {
		inv, err := k.id.Invite(k.name, nil, man)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.AddNeighbour(ctx, inv, ""); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Now().Add(-time.Hour)
	sign := func(k *share.Identity, head share.Head, c share.Content) *share.Message {
		at = at.Add(time.Second)
		m, err := k.Compose(man.ID(), head, at, c)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	b1 := sign(bob, share.Head{}, &share.Announce{Name: "Bob"})
	b2 := sign(bob, share.HeadOf(b1), &share.Announce{Name: "Bob 2"})
	evil := sign(bob, share.HeadOf(b1), &share.Announce{Name: "Bob twice"})
	var block bytes.Buffer
	if err := share.Armor(&block, [][]byte{b1.Bytes(), b2.Bytes(), evil.Bytes()}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Import(ctx, &block); err != nil {
		t.Fatal(err)
	}
	selfID, err := share.ParseHouseholdID(self)
	if err != nil {
		t.Fatal(err)
	}
	far := sign(carol, share.Head{}, &share.Pledge{To: selfID, FromSlot: 1 << 40, ToSlot: 1<<40 + 4, EnergyWh: 1500, ExpirySlot: 1 << 40})
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	// An older version stored the far pledge before the end of protocol
	// time was enforced.
	db, err := sql.Open("sqlite", home.LedgerPath())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO messages (id, author, seq, prev, kind, kind_name, created_ms, received_ms, content, raw) VALUES (?, ?, 1, '', ?, 'pledge', ?, ?, ?, ?)`,
		far.ID().String(), far.Author.String(), int64(far.Kind), far.CreatedMs, far.CreatedMs, string(far.Content), far.Bytes()); err != nil {
		t.Fatal(err)
	}
	db.Close()

	out, code := runInProcess(t, "--home", dir, "ledger", "verify", "--json")
	var v struct {
		OK       bool `json:"ok"`
		Problems []struct {
			ID, Author, Reason string
			Seq                int64
		} `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, out)
	}
	if code != exitIntegrity || v.OK || len(v.Problems) != 1 || v.Problems[0].Author != bob.ID().String() ||
		v.Problems[0].Seq != 2 || !strings.HasPrefix(v.Problems[0].Reason, "frozen: fork at seq 2") {
		t.Fatalf("verify --json: exit %d, %s", code, out)
	}
	if _, code := runInProcess(t, "--home", dir, "ledger", "verify"); code != exitIntegrity {
		t.Fatalf("verify: exit %d, want %d", code, exitIntegrity)
	}

	out, code = runInProcess(t, "--home", dir, "neighbours", "list", "--json")
	var ns []map[string]any
	if err := json.Unmarshal([]byte(out), &ns); code != 0 || err != nil || len(ns) != 2 {
		t.Fatalf("neighbours list --json: exit %d, %v\n%s", code, err, out)
	}
	for _, nb := range ns {
		frozen := nb["name"] == "Bob"
		if nb["frozen"] != frozen || frozen && nb["fork_seq"] != 2.0 || !frozen && nb["fork_seq"] != nil {
			t.Errorf("neighbour %v: frozen %v, fork_seq %v", nb["name"], nb["frozen"], nb["fork_seq"])
		}
	}
	if out, code := runInProcess(t, "--home", dir, "neighbours", "list"); code != 0 || !strings.Contains(out, "frozen: fork at seq 2") {
		t.Fatalf("neighbours list: exit %d\n%s", code, out)
	}

	out, code = runInProcess(t, "--home", dir, "pledges", "--json")
	var ps []struct {
		ID     string `json:"id"`
		Window struct {
			Start    *time.Time `json:"start"`
			FromSlot int64      `json:"from_slot"`
		} `json:"window"`
	}
	if err := json.Unmarshal([]byte(out), &ps); code != 0 || err != nil || len(ps) != 1 {
		t.Fatalf("pledges --json: exit %d, %v\n%s", code, err, out)
	}
	if ps[0].ID != far.ID().String() || ps[0].Window.Start != nil || ps[0].Window.FromSlot != 1<<40 {
		t.Fatalf("pledges --json = %s", out)
	}
}
