package ledger

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/commons-energy/commons/share"
)

// settleStreet is bob's ledger: alice pledged him 800 Wh in the slot
// 10:00-10:15, he accepted it all and reported importing 500 Wh in it;
// alice reported exporting 900 Wh.
type settleStreet struct {
	l                *Ledger
	alice, bob       *household
	pledge, accept   *share.Message
	aReport, bReport *share.Message
	window           share.SlotRange
}

func newSettleStreet(t *testing.T) *settleStreet {
	t.Helper()
	s := &settleStreet{alice: newHousehold(t, 1), bob: newHousehold(t, 2)}
	s.l, _ = openTest(t, s.bob.ID())
	addNeighbour(t, s.l, s.alice, "alice")
	at(s.alice, "06:00")
	at(s.bob, "06:00")
	s.window = share.SlotRange{From: slotAt("10:00"), To: slotAt("10:15")}
	s.pledge = s.alice.next(t, pledge(s.bob, "10:00", "10:15", 800))
	s.accept = s.bob.next(t, &share.Accept{Pledge: s.pledge.ID(), EnergyWh: 800})
	at(s.alice, "10:20")
	at(s.bob, "10:20")
	s.aReport = s.alice.next(t, &share.Report{FromSlot: s.window.From, ExportWh: []int64{900}, ImportWh: []int64{0}})
	s.bReport = s.bob.next(t, &share.Report{FromSlot: s.window.From, ExportWh: []int64{0}, ImportWh: []int64{500}})
	s.store(t, s.pledge, s.accept, s.aReport, s.bReport)
	return s
}

func (s *settleStreet) store(t *testing.T, msgs ...*share.Message) {
	t.Helper()
	for i, r := range mustAppend(t, s.l, msgs...) {
		if r.Outcome != Stored {
			t.Fatalf("message %d: %v %v", i, r.Outcome, r.Err)
		}
	}
}

// settle2 is alice's settle2 of the pledge allocating wh, naming both
// reports, the accept and both parties' heads.
func (s *settleStreet) settle2(wh int64) *share.Settle2 {
	x := &share.Settle2{Pledge: s.pledge.ID(), FromSlot: s.window.From, ToSlot: s.window.To, AllocatedWh: []int64{wh}, TotalWh: wh, Key: "pro-rata",
		Pledges: []share.ID{s.pledge.ID()}, Accepts: []share.ID{s.accept.ID()}, AcceptedWh: []int64{800}, ExporterSeq: int64(s.alice.head.Seq), ExporterHead: s.alice.head.ID,
		RecipientSeq: int64(s.bob.head.Seq), RecipientHead: s.bob.head.ID}
	x.Reports = []share.ID{s.aReport.ID(), s.bReport.ID()}
	if string(x.Reports[0][:]) > string(x.Reports[1][:]) {
		x.Reports[0], x.Reports[1] = x.Reports[1], x.Reports[0]
	}
	return x
}

// The attack found in the protocol: with the recipient's report saying
// 500 Wh, a settle claiming 900 settled 800 Wh. It must be disputed, not
// applied, and `ledger verify` must say so.
func TestSettleAboveRecipientReportIsDisputed(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		content func(s *settleStreet) share.Content
	}{
		{"version 1 settle", func(s *settleStreet) share.Content {
			return &share.Settle{Pledge: s.pledge.ID(), FromSlot: s.window.From, ToSlot: s.window.To,
				AllocatedWh: []int64{800}, ExportWh: []int64{900}, ImportWh: []int64{900}, TotalWh: 800, Key: "pro-rata"}
		}},
		{"settle2 naming the reports", func(s *settleStreet) share.Content { return s.settle2(800) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSettleStreet(t)
			at(s.alice, "11:00")
			s.store(t, s.alice.next(t, tc.content(s)))
			p, err := s.l.FindPledge(ctx, s.pledge.ID().String())
			if err != nil {
				t.Fatal(err)
			}
			if p.State != "disputed" || p.DeliveredWh.OK {
				t.Fatalf("state %s, delivered %+v: want disputed, nothing delivered", p.State, p.DeliveredWh)
			}
			rep, err := s.l.Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, pr := range rep.Problems {
				found = found || (pr.ID == s.pledge.ID().String() && strings.HasPrefix(pr.Reason, "disputed: "))
			}
			if rep.OK || !found {
				t.Fatalf("verify = %+v, want a disputed problem for the pledge", rep)
			}
		})
	}
}

// A settle2 that recomputes from the stored evidence settles the pledge;
// verify is then OK. Until the receiver holds the evidence it waits.
func TestSettle2FromStoredEvidence(t *testing.T) {
	ctx := context.Background()
	s := newSettleStreet(t)
	at(s.alice, "11:00")
	// alice also announced after her report: the head a settle names
	// need not be a message the fold reads otherwise.
	s.store(t, s.alice.next(t, announce("Alice")))
	x := s.settle2(500)
	settle := s.alice.next(t, x)
	s.store(t, settle)
	p, err := s.l.FindPledge(ctx, s.pledge.ID().String())
	if err != nil {
		t.Fatal(err)
	}
	if p.State != share.StateSettled || p.DeliveredWh.V != 500 || p.Closing != settle.ID() {
		t.Fatalf("pledge = %s %+v closing %s, disputes %v pending %v", p.State, p.DeliveredWh, p.Closing.Short(), p.Disputes, p.Pending)
	}
	if got := p.Settlement.ImportWh; len(got) != 1 || got[0] != 500 {
		t.Errorf("settlement import %v, want the reported 500", got)
	}
	rep, err := s.l.Verify(ctx)
	if err != nil || !rep.OK || rep.Disputes != 0 {
		t.Fatalf("verify = %+v, %v", rep, err)
	}
	ss, err := s.l.Settlements(ctx)
	if err != nil || len(ss) != 1 || ss[0].TotalWh != 500 || ss[0].Settle != settle.ID() {
		t.Fatalf("settlements = %+v, %v", ss, err)
	}
}

// BenchmarkSettledPledges folds a ledger holding 1,000 pledges settled by
// settle2 (each checked against its reports, accept and heads) into the
// pledge view: what `commons pledges` and a dashboard refresh pay.
func BenchmarkSettledPledges(b *testing.B) {
	self, bob := newHousehold(b, 1), newHousehold(b, 2)
	l, _ := openTest(b, self.ID())
	addNeighbour(b, l, bob, "bob")
	const n = 1000
	first := testManifest.SlotOf(t0) - 4*n - 8
	start := testManifest.SlotStart(first).Add(-time.Hour)
	self.at, bob.at = start, start
	var msgs []*share.Message
	var ps, as []*share.Message
	for i := range n {
		w := share.SlotRange{From: first + 4*int64(i), To: first + 4*int64(i) + 4}
		ps = append(ps, self.next(b, &share.Pledge{To: bob.ID(), FromSlot: w.From, ToSlot: w.To, EnergyWh: 1000, ExpirySlot: w.From, Nonce: uint32(i)}))
		as = append(as, bob.next(b, &share.Accept{Pledge: ps[i].ID(), EnergyWh: 800}))
		msgs = append(msgs, ps[i], as[i])
	}
	for i := range n {
		w := share.SlotRange{From: first + 4*int64(i), To: first + 4*int64(i) + 4}
		p, a := ps[i], as[i]
		end := testManifest.SlotStart(w.To)
		self.at, bob.at = end, end
		ra := self.next(b, &share.Report{FromSlot: w.From, ExportWh: []int64{300, 300, 100, 0}, ImportWh: []int64{0, 0, 0, 0}})
		rb := bob.next(b, &share.Report{FromSlot: w.From, ExportWh: []int64{0, 0, 0, 0}, ImportWh: []int64{150, 400, 400, 400}})
		terms := share.Terms{Pledge: p.ID(), From: self.ID(), To: bob.ID(), Window: w, PledgedWh: 1000, AcceptedWh: 800}
		meas := share.MeterTable{}
		meas.Set(self.ID(), w.From, 300, 0)
		for s, e := range []int64{300, 300, 100, 0} {
			meas.Set(self.ID(), w.From+int64(s), e, 0)
		}
		for s, im := range []int64{150, 400, 400, 400} {
			meas.Set(bob.ID(), w.From+int64(s), 0, im)
		}
		allocs, err := share.Allocate([]share.Terms{terms}, meas, share.ProRata{})
		if err != nil {
			b.Fatal(err)
		}
		c, err := share.Settle2Content(terms, allocs, share.ProRata{}, []share.ID{ra.ID(), rb.ID()}, []share.Terms{terms}, []share.ID{a.ID()}, self.head, bob.head)
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, ra, rb, self.next(b, c))
	}
	mustAppend(b, l, msgs...)
	for b.Loop() {
		ps, err := l.Pledges(context.Background(), PledgeFilter{})
		if err != nil || len(ps) != n || ps[0].State != share.StateSettled {
			b.Fatalf("%d pledges (%v), %v", len(ps), ps[0].State, err)
		}
	}
}

// A stored pledge whose bytes were changed behind the ledger's back is a
// problem verify reports; looking for disputes (which folds every
// pledge) must not turn it into a failure of verify itself.
func TestVerifyDisputesWithBrokenPledge(t *testing.T) {
	ctx := context.Background()
	s := newSettleStreet(t)
	if _, err := s.l.db.Exec(`UPDATE messages SET raw = X'00' WHERE id = ?`, s.pledge.ID().String()); err != nil {
		t.Fatal(err)
	}
	rep, err := s.l.Verify(ctx)
	if err != nil {
		t.Fatalf("verify failed: %v", err)
	}
	if rep.OK || len(rep.Problems) == 0 {
		t.Fatalf("verify = %+v, want the broken pledge reported", rep)
	}
}

// The evidence a settle is checked against holds every kind it names:
// pledges, answers, seen messages and reports.
func TestEvidenceHoldsEveryKind(t *testing.T) {
	s := newSettleStreet(t)
	seen := s.alice.next(t, &share.Seen{Pledge: s.pledge.ID(), Slot: s.window.From, Seq: 0})
	s.store(t, seen)
	var errp error
	ev, err := loadEvidence(context.Background(), s.l.db, &errp)
	if err != nil || errp != nil {
		t.Fatal(err, errp)
	}
	for _, m := range []*share.Message{s.pledge, s.accept, s.aReport, s.bReport, seen} {
		if ev.Message(m.ID()) == nil {
			t.Errorf("the evidence lacks the %s", m.Kind)
		}
	}
	if rel := ev.Related(s.pledge.ID()); len(rel) != 2 {
		t.Errorf("related to the pledge: %d messages, want the accept and the seen", len(rel))
	}
}
