package node

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/commons-energy/commons/ledger"
	"github.com/commons-energy/commons/meter"
	"github.com/commons-energy/commons/share"
	"github.com/commons-energy/commons/share/household"
)

// testT0 is where the tests' clocks start: a fixed ordinary weekday, so
// no test depends on the date it runs.
var testT0 = time.Date(2026, time.June, 3, 10, 0, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// newHome initialises a household called name in a temporary folder and
// opens it on clk.
func newHome(t testing.TB, name string, clk *clock) *Node {
	t.Helper()
	h, err := ResolveHome(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig(name)
	cfg.Timezone = "UTC"
	if _, err := InitWithClock(context.Background(), h, cfg, clk.Now); err != nil {
		t.Fatalf("init %s: %v", name, err)
	}
	n, err := Open(context.Background(), h, Options{Owner: "test", Now: clk.Now})
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// carry moves from's own messages to to, as export-messages | import do.
func carry(t testing.TB, from, to *Node) household.ImportReport {
	t.Helper()
	var buf bytes.Buffer
	if _, err := from.ExportMessages(context.Background(), &buf, ""); err != nil {
		t.Fatalf("export: %v", err)
	}
	rep, err := to.Import(context.Background(), &buf)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if len(rep.Rejected) > 0 {
		t.Fatalf("import rejected %+v", rep.Rejected)
	}
	return rep
}

func befriend(t testing.TB, a, b *Node) {
	t.Helper()
	ctx := context.Background()
	if _, err := a.AddNeighbour(ctx, b.Identity().Invite, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddNeighbour(ctx, a.Identity().Invite, ""); err != nil {
		t.Fatal(err)
	}
}

// meterSlots writes per-minute samples into n's ledger through the real
// aggregator: for each slot of 15 minutes starting at start, whExport[i]
// and whImport[i] spread evenly over its minutes (values divisible by 15),
// plus one minute after the last slot so the data is known complete.
func meterSlots(t *testing.T, n *Node, start time.Time, whImport, whExport []int64) {
	t.Helper()
	ctx := context.Background()
	agg, err := n.Ledger().NewAggregator(ledger.AggregatorOptions{SlotLength: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	imp, exp := int64(5_000_000), int64(7_000_000)
	add := func(at time.Time) {
		if _, err := agg.Add(ctx, ledger.Sample{Time: at, MeterID: "M1", ImportWh: meter.Some(imp), ExportWh: meter.Some(exp)}); err != nil {
			t.Fatal(err)
		}
	}
	at := start
	add(at)
	for i := range whImport {
		for m := 0; m < 15; m++ {
			imp += whImport[i] / 15
			exp += whExport[i] / 15
			at = at.Add(time.Minute)
			add(at)
		}
	}
	add(at.Add(time.Minute))
	if err := agg.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestSettlementFromSlotAggregates(t *testing.T) {
	ctx := context.Background()
	t0 := testT0
	clk := &clock{t: t0}
	a, b := newHome(t, "Alice", clk), newHome(t, "Bob", clk)
	befriend(t, a, b)

	win := t0.Add(time.Hour)
	p, err := a.pledge(ctx, household.PledgeRequest{To: "Bob", EnergyWh: 1500, Start: win, End: win.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	carry(t, a, b)
	clk.Set(t0.Add(time.Minute))
	if _, err := b.Accept(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	carry(t, b, a)

	// Alice exports 210, 600, 375, 0 Wh in the four slots; Bob imports
	// 1005, 105, 375, 495 Wh. Each slot's pledged share is 375 Wh, so
	// allocated = min(375, export, import) = 210, 105, 375, 0 = 690 Wh.
	meterSlots(t, a, win, []int64{0, 0, 0, 0}, []int64{210, 600, 375, 0})
	meterSlots(t, b, win, []int64{1005, 105, 375, 495}, []int64{0, 0, 0, 0})

	// Before the window closes nothing happens.
	clk.Set(win.Add(30 * time.Minute))
	if rep, err := a.Settle(ctx); err != nil || len(rep.Reported)+len(rep.Settled) != 0 {
		t.Fatalf("settle during the window = %+v, %v; want nothing", rep, err)
	}
	clk.Set(win.Add(time.Hour + 5*time.Minute))
	// Alice alone lacks Bob's import: she reports and waits.
	rep, err := a.Settle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Reported) != 1 || len(rep.Settled) != 0 || len(rep.Waiting) != 1 || !strings.Contains(rep.Waiting[0].Reason, "Bob's report of its import") {
		t.Fatalf("settle without Bob's report = %+v", rep)
	}
	// Bob reports; his report reaches Alice; Alice settles.
	if rep, err := b.Settle(ctx); err != nil || len(rep.Reported) != 1 || len(rep.Settled) != 0 {
		t.Fatalf("Bob's settle = %+v, %v; want one report, no settlement (Bob is the recipient)", rep, err)
	}
	carry(t, b, a)
	rep, err = a.Settle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Settled) != 1 || rep.Settled[0].DeliveredWh == nil || *rep.Settled[0].DeliveredWh != 690 || rep.Settled[0].State != "settled" {
		t.Fatalf("settle = %+v; want the pledge settled with 690 Wh", rep)
	}
	// The settle2 message holds the per-slot allocation and names both
	// reports; the figures it applies come from them.
	msgs, err := a.messagesOfKinds(ctx, share.KindSettle2)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("settle2 messages = %d, %v", len(msgs), err)
	}
	c, err := msgs[0].Decode()
	if err != nil {
		t.Fatal(err)
	}
	s2 := c.(*share.Settle2)
	if got, want := s2.AllocatedWh, []int64{210, 105, 375, 0}; !equal(got, want) {
		t.Errorf("allocated = %v, want %v", got, want)
	}
	// Both parties' reports are sealed to the two of them (§8.15).
	reports, err := a.messagesOfKinds(ctx, share.KindSealedReport)
	if err != nil || len(reports) != 2 || len(s2.Reports) != 2 {
		t.Fatalf("sealed reports stored %d, named %d, %v", len(reports), len(s2.Reports), err)
	}
	if plain, err := a.messagesOfKinds(ctx, share.KindReport); err != nil || len(plain) != 0 {
		t.Fatalf("plain reports stored %d, %v: a version 2 box writes sealed ones", len(plain), err)
	}
	ss, err := a.led.Settlements(ctx)
	if err != nil || len(ss) != 1 {
		t.Fatalf("settlements = %+v, %v", ss, err)
	}
	s := ss[0]
	if got, want := s.ExportWh, []int64{210, 600, 375, 0}; !equal(got, want) {
		t.Errorf("export = %v, want %v", got, want)
	}
	if got, want := s.ImportWh, []int64{1005, 105, 375, 495}; !equal(got, want) {
		t.Errorf("import = %v, want %v", got, want)
	}
	// A second round changes nothing; Bob sees the same settlement.
	if rep, err := a.Settle(ctx); err != nil || len(rep.Reported)+len(rep.Settled)+len(rep.Waiting) != 0 {
		t.Fatalf("second settle = %+v, %v", rep, err)
	}
	carry(t, a, b)
	bp, err := b.FindPledge(ctx, p.ID)
	if err != nil || bp.State != "settled" || bp.DeliveredWh == nil || *bp.DeliveredWh != 690 {
		t.Fatalf("Bob's view = %+v, %v", bp, err)
	}
	// The dashboard's pledge detail shows each slot's allocation and limit.
	if !equal(bp.SlotWh, []int64{210, 105, 375, 0}) || !slices.Equal(bp.SlotLimits, []string{"export", "import", "pledged", "export"}) {
		t.Errorf("Bob's slots: %v Wh, limited by %v", bp.SlotWh, bp.SlotLimits)
	}
	for _, n := range []*Node{a, b} {
		if v, err := n.Verify(ctx); err != nil || !v.OK {
			t.Fatalf("verify %s = %+v, %v", n.cfg.Name, v, err)
		}
	}
}

func TestSettlementProRata(t *testing.T) {
	// Alice pledges 400 Wh to Bob and 800 Wh to Carol for the same slot
	// but exports only 300 Wh: pro rata, Bob gets 100 and Carol 200.
	ctx := context.Background()
	t0 := testT0
	clk := &clock{t: t0}
	a, b, c := newHome(t, "Alice", clk), newHome(t, "Bob", clk), newHome(t, "Carol", clk)
	befriend(t, a, b)
	befriend(t, a, c)
	win := t0.Add(time.Hour)
	pb, err := a.pledge(ctx, household.PledgeRequest{To: "Bob", EnergyWh: 400, Start: win, End: win.Add(15 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := a.pledge(ctx, household.PledgeRequest{To: "Carol", EnergyWh: 800, Start: win, End: win.Add(15 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		n  *Node
		id string
	}{{b, pb.ID}, {c, pc.ID}} {
		carry(t, a, r.n)
		if _, err := r.n.Accept(ctx, r.id); err != nil {
			t.Fatal(err)
		}
		carry(t, r.n, a)
	}
	meterSlots(t, a, win, []int64{0}, []int64{300})
	meterSlots(t, b, win, []int64{900}, []int64{0})
	meterSlots(t, c, win, []int64{900}, []int64{0})
	clk.Set(win.Add(20 * time.Minute))
	for _, r := range []*Node{b, c} {
		if _, err := r.Settle(ctx); err != nil {
			t.Fatal(err)
		}
		carry(t, r, a)
	}
	rep, err := a.Settle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, p := range rep.Settled {
		got[p.ToName] = *p.DeliveredWh
	}
	if got["Bob"] != 100 || got["Carol"] != 200 || len(got) != 2 {
		t.Fatalf("settled = %v (%+v); want Bob 100, Carol 200", got, rep)
	}
	// Bob's box recomputes Alice's settle, in which Carol's pledge
	// competed for Alice's export.
	carry(t, a, b)
	// Bob's box does not hold Carol's accept (Carol is not its
	// neighbour): it checks what Alice's feed shows and recomputes.
	bp, err := b.FindPledge(ctx, pb.ID)
	if err != nil || bp.State != "settled" || *bp.DeliveredWh != 100 {
		t.Fatalf("Bob's view = %+v, %v", bp, err)
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestOperationsRejectBadInput(t *testing.T) {
	ctx := context.Background()
	t0 := testT0
	clk := &clock{t: t0}
	a, b := newHome(t, "Alice", clk), newHome(t, "Bob", clk)
	befriend(t, a, b)
	win := t0.Add(time.Hour)
	tests := []struct {
		name string
		do   func() error
		want error
		text string
	}{
		{"unknown neighbour", func() error {
			_, err := a.pledge(ctx, household.PledgeRequest{To: "Zoe", EnergyWh: 1, Start: win, End: win.Add(time.Hour)})
			return err
		}, household.ErrNotFound, "no neighbour called \"Zoe\""},
		{"window started", func() error {
			_, err := a.pledge(ctx, household.PledgeRequest{To: "Bob", EnergyWh: 1, Start: t0, End: win})
			return err
		}, household.ErrInvalid, "not in the future"},
		{"zero energy", func() error {
			_, err := a.pledge(ctx, household.PledgeRequest{To: "Bob", EnergyWh: 0, Start: win, End: win.Add(time.Hour)})
			return err
		}, household.ErrInvalid, "out of range"},
		{"own invite", func() error { _, err := a.AddNeighbour(ctx, a.Identity().Invite, ""); return err }, household.ErrInvalid, "own invite"},
		{"broken invite", func() error {
			inv := []byte(b.Identity().Invite)
			inv[40] = map[bool]byte{true: 'b', false: 'a'}[inv[40] == 'a']
			_, err := a.AddNeighbour(ctx, string(inv), "Bobby")
			return err
		}, household.ErrInvalid, "does not verify"},
		{"other community", func() error {
			h, _ := ResolveHome(t.TempDir())
			cfg := DefaultConfig("Mallory")
			cfg.Community.Name = "elsewhere"
			id, err := Init(ctx, h, cfg)
			if err != nil {
				return err
			}
			_, err = a.AddNeighbour(ctx, id.Invite, "")
			return err
		}, household.ErrInvalid, "the invite is for community \"elsewhere\""},
		{"unknown pledge", func() error { _, err := a.Accept(ctx, "abcdef12"); return err }, household.ErrNotFound, "no pledge abcdef12"},
		{"bad pledge id", func() error { _, err := a.Accept(ctx, "xyz"); return err }, household.ErrInvalid, "hex id"},
		{"garbage import", func() error {
			_, err := a.Import(ctx, strings.NewReader(share.ArmorBegin+"\n!!!!\n\n"+share.ArmorEnd+"\n"))
			return err
		}, household.ErrIntegrity, "nothing was imported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("err = %v; want %v containing %q", err, tt.want, tt.text)
			}
		})
	}
	// Accepting one's own pledge; cancelling after the window started;
	// accepting after the pledge expired.
	p, err := a.pledge(ctx, household.PledgeRequest{To: "Bob", EnergyWh: 1500, Start: win, End: win.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	late, err := a.pledge(ctx, household.PledgeRequest{To: "Bob", EnergyWh: 500, Start: win, End: win.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Accept(ctx, p.ID); !errors.Is(err, household.ErrInvalid) || !strings.Contains(err.Error(), "only its recipient") {
		t.Errorf("accept own pledge: %v; want ErrInvalid", err)
	}
	carry(t, a, b)
	if _, err := b.Accept(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	carry(t, b, a)
	clk.Set(win.Add(time.Minute))
	if _, err := a.Cancel(ctx, p.ID); !errors.Is(err, household.ErrInvalid) || !strings.Contains(err.Error(), "only before its window") {
		t.Errorf("cancel after start: %v", err)
	}
	if _, err := b.Accept(ctx, late.ID[:10]); !errors.Is(err, household.ErrInvalid) || !strings.Contains(err.Error(), "is expired") {
		t.Errorf("accept after expiry: %v", err)
	}
}

func TestOpenUninitialisedAndBusy(t *testing.T) {
	h, _ := ResolveHome(t.TempDir())
	_, err := Open(context.Background(), h, Options{})
	if !errors.Is(err, ErrNotInitialised) || !strings.Contains(err.Error(), "init --name NAME") {
		t.Fatalf("open uninitialised: %v", err)
	}
	if _, err := Init(context.Background(), h, DefaultConfig("Alice")); err != nil {
		t.Fatal(err)
	}
	if _, err := Init(context.Background(), h, DefaultConfig("Eve")); err == nil || !strings.Contains(err.Error(), "already holds the household \"Alice\"") {
		t.Fatalf("second init: %v", err)
	}
	n, err := Open(context.Background(), h, Options{Owner: "first"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if _, err := Open(context.Background(), h, Options{Owner: "second"}); !errors.Is(err, ledger.ErrHomeInUse) || !strings.Contains(err.Error(), "(first)") {
		t.Fatalf("second writer: %v", err)
	}
	r, err := Open(context.Background(), h, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("reader beside the writer: %v", err)
	}
	defer r.Close()
	if _, err := r.Pledge(context.Background(), household.PledgeRequest{}); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("pledge through a reader: %v", err)
	}
}

func TestExportSinceAndRemoveNeighbour(t *testing.T) {
	ctx := context.Background()
	t0 := testT0
	clk := &clock{t: t0}
	a, b := newHome(t, "Alice", clk), newHome(t, "Bob", clk)
	befriend(t, a, b)
	head, err := a.head(ctx)
	if err != nil || head.Seq != 2 {
		t.Fatalf("head after init = %+v, %v; want the recovery key after the announce, at seq 2", head, err)
	}
	p, err := a.pledge(ctx, household.PledgeRequest{To: "bob", EnergyWh: 10, Start: t0.Add(time.Hour), End: t0.Add(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if k, err := a.ExportMessages(ctx, &buf, head.ID.String()[:8]); err != nil || k != 1 {
		t.Fatalf("export since the recovery key = %d, %v; want 1 (the pledge)", k, err)
	}
	raws, err := share.Dearmor(&buf, 10)
	if err != nil || len(raws) != 1 {
		t.Fatalf("dearmor = %d, %v", len(raws), err)
	}
	m, err := share.Parse(raws[0])
	if err != nil || m.ID().String() != p.ID {
		t.Fatalf("exported %v, %v; want pledge %s", m, err, p.ID)
	}
	if k, err := a.ExportMessages(ctx, &buf, p.ID); err != nil || k != 0 {
		t.Fatalf("export since the newest = %d, %v; want 0", k, err)
	}
	// Since a neighbour's message: refused, this household exports its own.
	carry(t, b, a)
	bh, _ := b.head(ctx)
	if _, err := a.ExportMessages(ctx, &buf, bh.ID.String()); !errors.Is(err, household.ErrInvalid) {
		t.Fatalf("export since a neighbour's message: %v; want ErrInvalid", err)
	}

	// Removing Bob: his new messages are refused; adding him again works.
	if nb, err := a.RemoveNeighbour(ctx, "Bob"); err != nil || nb.Name != "Bob" {
		t.Fatalf("remove = %+v, %v", nb, err)
	}
	if ns, _ := a.Neighbours(ctx); len(ns) != 0 {
		t.Fatalf("neighbours after remove = %+v", ns)
	}
	if _, err := b.Accept(ctx, p.ID); !errors.Is(err, household.ErrNotFound) {
		t.Fatalf("Bob accepting a pledge he never received: %v", err)
	}
	carry(t, a, b)
	if _, err := b.Accept(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	var blk bytes.Buffer
	if _, err := b.ExportMessages(ctx, &blk, ""); err != nil {
		t.Fatal(err)
	}
	rep, err := a.Import(ctx, &blk)
	if err != nil || rep.Added != 0 || len(rep.Rejected) == 0 {
		t.Fatalf("import from a removed neighbour = %+v, %v; want everything rejected", rep, err)
	}
	for _, r := range rep.Rejected {
		if !strings.Contains(r.Reason, "[unknown_author]") || !strings.Contains(r.Reason, "commons neighbours add") {
			t.Fatalf("rejection %+v; want unknown_author with what to do", r)
		}
	}
	if _, err := a.AddNeighbour(ctx, b.Identity().Invite, ""); err != nil {
		t.Fatal(err)
	}
	carry(t, b, a)
	if got, err := a.FindPledge(ctx, p.ID); err != nil || got.State != "accepted" {
		t.Fatalf("after re-adding Bob = %+v, %v", got, err)
	}
}
