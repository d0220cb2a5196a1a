package node

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/commons-energy/commons/ledger"
	"github.com/commons-energy/commons/share"
	"github.com/commons-energy/commons/share/household"
)

// importRaw imports signed messages into n and returns the outcome of
// each, as "added", "duplicate" or the rejection's reason code.
func importRaw(t *testing.T, n *Node, msgs ...*share.Message) []string {
	t.Helper()
	raws := make([][]byte, len(msgs))
	for i, m := range msgs {
		raws[i] = m.Bytes()
	}
	var buf bytes.Buffer
	if err := share.Armor(&buf, raws); err != nil {
		t.Fatal(err)
	}
	rep, err := n.Import(context.Background(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(msgs))
	for i := range out {
		out[i] = "added"
	}
	for _, r := range rep.Rejected {
		code := r.Reason[strings.LastIndex(r.Reason, "[")+1 : len(r.Reason)-1]
		out[r.Index-1] = code
	}
	return out
}

// neighbourID returns the id of n's neighbour called name.
func neighbourID(t *testing.T, n *Node, name string) string {
	t.Helper()
	ns, err := n.Neighbours(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, nb := range ns {
		if nb.Name == name {
			return nb.ID
		}
	}
	t.Fatalf("no neighbour %q in %+v", name, ns)
	return ""
}

func verifyNode(t *testing.T, n *Node) household.VerifyReport {
	t.Helper()
	rep, err := n.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// signAs signs c with key as the message after head.
func signAs(t *testing.T, n *Node, key *share.Identity, head share.Head, c share.Content) *share.Message {
	t.Helper()
	m, err := key.Compose(n.manifest.ID(), head, n.opts.Now(), c)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRotateKeyNeighbourFollows: Alice rotates her key; Bob, importing
// her messages, follows her to the new key (her pledge under it counts
// from the neighbour "Alice", he can accept it) and refuses anything the
// old key signs after the handover. Alice's box reopens on the new key.
func TestRotateKeyNeighbourFollows(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: testT0}
	a, b := newHome(t, "Alice", clk), newHome(t, "Bob", clk)
	befriend(t, a, b)
	carry(t, a, b)
	carry(t, b, a)
	old := a.key.ID()
	kc, err := a.RotateKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if kc.Old != old || kc.New == old || a.Identity().ID != kc.New.String() || kc.AtSeq != 3 {
		t.Fatalf("key change = %+v, identity %s", kc, a.Identity().ID)
	}
	onDisk, err := share.LoadIdentity(a.home.KeyPath())
	if err != nil || onDisk.ID() != kc.New {
		t.Fatalf("identity.key after rotate: %v, %v", onDisk, err)
	}
	retired, err := share.LoadIdentity(kc.Retired)
	if err != nil || retired.ID() != old {
		t.Fatalf("retired key %s: %v", kc.Retired, err)
	}
	p, err := a.Pledge(ctx, household.PledgeRequest{To: "Bob", EnergyWh: 100, Start: testT0.Add(2 * time.Hour), End: testT0.Add(3 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	rep := carry(t, a, b)
	if rep.Added != 4 { // handover, successor, recovery key, pledge
		t.Fatalf("import after rotate = %+v", rep)
	}
	if id := neighbourID(t, b, "Alice"); id != kc.New.String() {
		t.Fatalf("Bob's neighbour Alice is %s, want the new key %s", id, kc.New)
	}
	if _, err := b.Accept(ctx, p.Pledge.ID); err != nil {
		t.Fatalf("accept the pledge of the new key: %v", err)
	}
	carry(t, b, a)
	if got, err := a.FindPledge(ctx, p.Pledge.ID); err != nil || got.State != "accepted" {
		t.Fatalf("pledge at Alice = %+v, %v", got, err)
	}
	// The old key, stolen or copied, signs after the handover: refused.
	oldHead, _, err := b.led.HeadAt(ctx, old, kc.AtSeq)
	if err != nil {
		t.Fatal(err)
	}
	late := signAs(t, b, retired, oldHead, &share.Pledge{To: b.key.ID(), FromSlot: 1_000_000, ToSlot: 1_000_004, EnergyWh: 1})
	if got := importRaw(t, b, late); got[0] != "rotated" {
		t.Fatalf("old key after the handover: %v", got)
	}
	for _, n := range []*Node{a, b} {
		if rep := verifyNode(t, n); !rep.OK {
			t.Fatalf("verify %s: %+v", n.cfg.Name, rep.Problems)
		}
	}
	// Reopened, Alice is her new key and signs with it.
	home := a.home
	a.Close()
	a2, err := Open(ctx, home, Options{Owner: "test", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	if a2.key.ID() != kc.New {
		t.Fatalf("reopened as %s", a2.key.ID().Short())
	}
	if _, err := a2.sign(ctx, &share.Announce{Name: "Alice"}); err != nil {
		t.Fatal(err)
	}
}

// TestRecoverKeyAfterTheft: a thief copies Alice's key and pledges in her
// name; Alice recovers with her recovery key. Bob drops the thief's
// pledge, follows Alice to her new key and refuses the stolen key.
func TestRecoverKeyAfterTheft(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: testT0}
	a, b := newHome(t, "Alice", clk), newHome(t, "Bob", clk)
	befriend(t, a, b)
	carry(t, a, b)
	stolen, err := share.LoadIdentity(a.home.KeyPath())
	if err != nil {
		t.Fatal(err)
	}
	head, _ := a.head(ctx)
	theft := signAs(t, b, stolen, head, &share.Pledge{To: b.key.ID(), FromSlot: 1_000_000, ToSlot: 1_000_004, EnergyWh: 9000})
	if got := importRaw(t, b, theft); got[0] != "added" {
		t.Fatalf("thief's pledge: %v", got)
	}
	rk, err := share.LoadRecoveryKey(a.home.RecoveryKeyPath())
	if err != nil {
		t.Fatal(err)
	}
	kc, err := a.RecoverKey(ctx, rk)
	if err != nil {
		t.Fatal(err)
	}
	if kc.Via != "recover" || kc.AtSeq != head.Seq {
		t.Fatalf("key change = %+v", kc)
	}
	carry(t, a, b)
	if id := neighbourID(t, b, "Alice"); id != kc.New.String() {
		t.Fatalf("Bob's Alice is %s", id)
	}
	if _, err := b.FindPledge(ctx, theft.ID().String()); !errors.Is(err, household.ErrNotFound) {
		t.Fatalf("the thief's pledge is still there: %v", err)
	}
	if got := importRaw(t, b, theft); got[0] != "rotated" {
		t.Fatalf("thief's pledge again: %v", got)
	}
	for _, n := range []*Node{a, b} {
		if rep := verifyNode(t, n); !rep.OK {
			t.Fatalf("verify %s: %+v", n.cfg.Name, rep.Problems)
		}
	}
}

// TestRecoverForkedHousehold: Alice's box, restored from a backup, signs
// a second message at a seq it had already used; Bob's ledger proves the
// fork and freezes her feed. Alice, shown the fork, recovers from the seq
// before it and Bob follows her to the new key.
func TestRecoverForkedHousehold(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: testT0}
	a, b := newHome(t, "Alice", clk), newHome(t, "Bob", clk)
	befriend(t, a, b)
	carry(t, a, b)
	head, _ := a.head(ctx)
	lost := signAs(t, a, a.key, head, &share.Announce{Name: "Alice before the backup was restored"})
	if got := importRaw(t, b, lost); got[0] != "added" {
		t.Fatalf("message before the restore: %v", got)
	}
	if _, err := a.sign(ctx, &share.Announce{Name: "Alice restored"}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := a.ExportMessages(ctx, &buf, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Import(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	if rep := verifyNode(t, b); rep.OK {
		t.Fatal("Bob's ledger verifies with a frozen feed")
	}
	// Bob shows Alice the fork: her box stores the proof too.
	if got := importRaw(t, a, lost); got[0] != "fork" {
		t.Fatalf("fork at Alice: %v", got)
	}
	rk, err := share.LoadRecoveryKey(a.home.RecoveryKeyPath())
	if err != nil {
		t.Fatal(err)
	}
	kc, err := a.RecoverKey(ctx, rk)
	if err != nil {
		t.Fatal(err)
	}
	if kc.AtSeq != head.Seq {
		t.Fatalf("recovered at seq %d, want %d (before the fork)", kc.AtSeq, head.Seq)
	}
	carry(t, a, b)
	if id := neighbourID(t, b, "Alice"); id != kc.New.String() {
		t.Fatalf("Bob's Alice is %s", id)
	}
	for _, n := range []*Node{a, b} {
		if rep := verifyNode(t, n); !rep.OK {
			t.Fatalf("verify %s: %+v", n.cfg.Name, rep.Problems)
		}
	}
}

// legacyHome makes a household the way init did before recovery keys: an
// identity and an announce, no recovery key.
func legacyHome(t *testing.T, name string, clk *clock) *Node {
	t.Helper()
	ctx := context.Background()
	h, err := ResolveHome(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.mkdirs(); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig(name)
	cfg.Timezone = "UTC"
	key, err := share.GenerateIdentity(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := key.Save(h.KeyPath()); err != nil {
		t.Fatal(err)
	}
	led, err := ledger.Open(ctx, h.LedgerPath(), ledger.Options{Self: key.ID(), Manifest: cfg.Manifest(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	m, err := key.Compose(cfg.Manifest().ID(), share.Head{}, clk.Now(), &share.Announce{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := led.AppendMessages(ctx, m); err != nil {
		t.Fatal(err)
	}
	led.Close()
	if err := SaveConfig(h, cfg); err != nil {
		t.Fatal(err)
	}
	n, err := Open(ctx, h, Options{Owner: "test", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// TestRecoverKeyRefused: another household's recovery key, and a
// household made before recovery keys, cannot recover; the latter can
// still rotate.
func TestRecoverKeyRefused(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: testT0}
	a, other := newHome(t, "Alice", clk), newHome(t, "Other", clk)
	wrong, err := share.LoadRecoveryKey(other.home.RecoveryKeyPath())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.RecoverKey(ctx, wrong); !errors.Is(err, ErrWrongRecoveryKey) {
		t.Fatalf("another household's recovery key: %v", err)
	}
	if _, err := os.Stat(a.home.nextKeyPath()); err == nil {
		t.Fatal("a refused recovery left a next key")
	}
	old := legacyHome(t, "Old", clk)
	if rep := verifyNode(t, old); !rep.OK {
		t.Fatalf("legacy household verify: %+v", rep.Problems)
	}
	if _, err := old.RecoverKey(ctx, wrong); !errors.Is(err, ErrNoRecoveryKey) {
		t.Fatalf("legacy household recover: %v", err)
	}
	kc, err := old.RotateKey(ctx)
	if err != nil {
		t.Fatalf("legacy household rotate: %v", err)
	}
	if rep := verifyNode(t, old); !rep.OK || kc.AtSeq != 3 || kc.NewRecoveryKey != old.home.RecoveryKeyPath() {
		t.Fatalf("legacy household after rotate: %+v, %+v", kc, rep.Problems)
	}
	// Its new key announced a recovery key, made by the rotation: now it
	// can recover.
	rk, err := share.LoadRecoveryKey(kc.NewRecoveryKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.RecoverKey(ctx, rk); err != nil {
		t.Fatalf("recover after the rotation made a recovery key: %v", err)
	}
}

// TestInitRecoveryKey: init writes the recovery key, mode 0600, and
// announces its public half.
func TestInitRecoveryKey(t *testing.T) {
	ctx := context.Background()
	a := newHome(t, "Alice", &clock{t: testT0})
	st, err := os.Stat(a.home.RecoveryKeyPath())
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("recovery key file: %v, %v", st, err)
	}
	rk, err := share.LoadRecoveryKey(a.home.RecoveryKeyPath())
	if err != nil {
		t.Fatal(err)
	}
	if got, ok, err := a.led.RecoveryKey(ctx, a.key.ID(), 0); err != nil || !ok || got != rk.ID() {
		t.Fatalf("announced recovery key = %s, %v, %v", got.Short(), ok, err)
	}
	if _, err := share.LoadRecoveryKey(a.home.KeyPath()); !errors.Is(err, share.ErrBadKeyFile) {
		t.Fatalf("identity key as recovery key: %v", err)
	}
}
