package share

import (
	"bytes"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"
)

// evStreet is alice's pledge of 1500 Wh to bob over 4 slots, bob's accept
// of 1000 (250 Wh a slot) and both parties' reports after the window:
// alice exported 1000, 1000, 100, 1000; bob imported 300, 200, 250, 0. The
// allocation is 250, 200, 100, 0 = 550 Wh.
type evStreet struct {
	*pledgeFixture
	accept, aReport, bReport *Message
	msgs                     []*Message
}

func newEvStreet(t *testing.T) *evStreet {
	s := &evStreet{pledgeFixture: newPledgeFixture(t)}
	s.msgs = append(s.msgs, s.pledge)
	s.accept = s.add(t, s.bob, t0.Add(time.Minute), &Accept{Pledge: s.pledge.ID(), EnergyWh: 1000})
	s.aReport = s.add(t, s.alice, s.end.Add(time.Minute), &Report{FromSlot: s.window().From, ExportWh: []int64{1000, 1000, 100, 1000}, ImportWh: []int64{0, 0, 0, 0}})
	s.bReport = s.add(t, s.bob, s.end.Add(time.Minute), &Report{FromSlot: s.window().From, ExportWh: []int64{0, 0, 0, 0}, ImportWh: []int64{300, 200, 250, 0}})
	return s
}

func (s *evStreet) add(t *testing.T, k *Identity, at time.Time, c Content) *Message {
	m := s.by(t, k, at, c)
	s.msgs = append(s.msgs, m)
	return m
}

func (s *evStreet) window() SlotRange {
	c, _ := s.pledge.Decode()
	p := c.(*Pledge)
	return SlotRange{From: p.FromSlot, To: p.ToSlot}
}

// settle2 is an honest-looking settle2 content with the given allocation
// and evidence (accepts of alice's pledges), naming the parties' current
// heads.
func (s *evStreet) settle2(alloc []int64, reports, accepts []*Message) *Settle2 {
	w := s.window()
	x := &Settle2{Pledge: s.pledge.ID(), FromSlot: w.From, ToSlot: w.To, AllocatedWh: alloc, Key: "pro-rata",
		ExporterSeq: int64(s.aHead.Seq), ExporterHead: s.aHead.ID, RecipientSeq: int64(s.bHead.Seq), RecipientHead: s.bHead.ID}
	for _, a := range alloc {
		x.TotalWh += a
	}
	var r []ID
	for _, m := range reports {
		r = append(r, m.ID())
	}
	x.Reports = idSet(r)
	type entry struct {
		p, a ID
		wh   int64
	}
	var es []entry
	for _, m := range accepts {
		c, _ := m.Decode()
		a := c.(*Accept)
		es = append(es, entry{a.Pledge, m.ID(), a.EnergyWh})
	}
	sort.Slice(es, func(i, j int) bool { return bytes.Compare(es[i].p[:], es[j].p[:]) < 0 })
	for _, e := range es {
		x.Pledges, x.Accepts, x.AcceptedWh = append(x.Pledges, e.p), append(x.Accepts, e.a), append(x.AcceptedWh, e.wh)
	}
	return x
}

// thirdParty adds alice's pledge of 4000 Wh to carol over the same
// window, carol's accept of accepted Wh (held by the receiver when held),
// optionally alice's cancel, and alice's settle2 stating carol accepted
// stated Wh. With 1000 Wh accepted (250 a slot) the two pledges share
// alice's 100 Wh export in the third slot: bob gets 250, 200, 50, 0.
func (s *evStreet) thirdParty(t *testing.T, accepted, stated int64, held bool, cancel ...bool) {
	w := s.window()
	pc := s.add(t, s.alice, t0.Add(time.Minute), &Pledge{To: s.carol.ID(), FromSlot: w.From, ToSlot: w.To, EnergyWh: 4000, ExpirySlot: w.From, Nonce: 3})
	ac := s.by(t, s.carol, t0.Add(2*time.Minute), &Accept{Pledge: pc.ID(), EnergyWh: accepted})
	if held {
		s.msgs = append(s.msgs, ac)
	}
	if len(cancel) > 0 {
		s.add(t, s.alice, t0.Add(3*time.Minute), &Cancel{Pledge: pc.ID()})
	}
	s.aReport = s.add(t, s.alice, s.end.Add(2*time.Minute), &Report{FromSlot: w.From, ExportWh: []int64{1000, 1000, 100, 1000}, ImportWh: []int64{0, 0, 0, 0}})
	terms := []Terms{
		{Pledge: s.pledge.ID(), From: s.alice.ID(), To: s.bob.ID(), Window: w, PledgedWh: 1500, AcceptedWh: 1000},
		{Pledge: pc.ID(), From: s.alice.ID(), To: s.carol.ID(), Window: w, PledgedWh: 4000, AcceptedWh: stated},
	}
	meas := MeterTable{}
	meas.AddReport(s.alice.ID(), &Report{FromSlot: w.From, ExportWh: []int64{1000, 1000, 100, 1000}, ImportWh: []int64{0, 0, 0, 0}})
	meas.AddReport(s.bob.ID(), &Report{FromSlot: w.From, ExportWh: []int64{0, 0, 0, 0}, ImportWh: []int64{300, 200, 250, 0}})
	meas.AddReport(s.carol.ID(), &Report{FromSlot: w.From, ExportWh: []int64{0, 0, 0, 0}, ImportWh: []int64{5000, 5000, 5000, 5000}})
	allocs, err := Allocate(terms, meas, ProRata{})
	if err != nil {
		t.Fatal(err)
	}
	x, err := Settle2Content(terms[0], allocs, ProRata{}, []ID{s.aReport.ID(), s.bReport.ID()}, terms, []ID{s.accept.ID(), ac.ID()}, s.aHead, s.bHead)
	if err != nil {
		t.Fatal(err)
	}
	s.add(t, s.alice, s.end.Add(5*time.Minute), x)
}

func (s *evStreet) fold(t *testing.T, ev Evidence) *PledgeView {
	t.Helper()
	var rel []*Message
	for _, m := range s.msgs {
		if m.Kind != KindPledge && m.Kind != KindReport {
			rel = append(rel, m)
		}
	}
	v, err := FoldPledgeWith(testManifest, s.pledge, rel, ev, s.end.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSettle2Evidence(t *testing.T) {
	honest := []int64{250, 200, 100, 0}
	tests := []struct {
		name   string
		build  func(t *testing.T, s *evStreet) // appends the settles
		hide   func(s *evStreet) []*Message    // messages the receiver does not hold
		state  State
		total  int64  // settled total
		reason string // in a dispute, or a pending reason when state is accepted
	}{
		{name: "exporter settles from the evidence", state: StateSettled, total: 550, build: func(t *testing.T, s *evStreet) {
			s.add(t, s.alice, s.end.Add(5*time.Minute), s.settle2(honest, []*Message{s.aReport, s.bReport}, []*Message{s.accept}))
		}},
		{name: "recipient settles from the evidence", state: StateSettled, total: 550, build: func(t *testing.T, s *evStreet) {
			s.add(t, s.bob, s.end.Add(5*time.Minute), s.settle2(honest, []*Message{s.aReport, s.bReport}, []*Message{s.accept}))
		}},
		{name: "both parties agree", state: StateSettled, total: 550, build: func(t *testing.T, s *evStreet) {
			s.add(t, s.alice, s.end.Add(5*time.Minute), s.settle2(honest, []*Message{s.aReport, s.bReport}, []*Message{s.accept}))
			s.add(t, s.bob, s.end.Add(6*time.Minute), s.settle2(honest, []*Message{s.aReport, s.bReport}, []*Message{s.accept}))
		}},
		{name: "allocation above the recipient's report", state: StateDisputed, reason: "allocates 250 Wh in slot", build: func(t *testing.T, s *evStreet) {
			s.add(t, s.alice, s.end.Add(5*time.Minute), s.settle2([]int64{250, 250, 250, 250}, []*Message{s.aReport, s.bReport}, []*Message{s.accept}))
		}},
		{name: "an invalid settle does not undo a valid one of the other party", state: StateSettled, total: 550, build: func(t *testing.T, s *evStreet) {
			s.add(t, s.alice, s.end.Add(5*time.Minute), s.settle2([]int64{250, 250, 250, 250}, []*Message{s.aReport, s.bReport}, []*Message{s.accept}))
			s.add(t, s.bob, s.end.Add(6*time.Minute), s.settle2(honest, []*Message{s.aReport, s.bReport}, []*Message{s.accept}))
		}},
		{name: "report does not cover the window", state: StateDisputed, reason: "no referenced report of the recipient", build: func(t *testing.T, s *evStreet) {
			short := s.add(t, s.bob, s.end.Add(2*time.Minute), &Report{FromSlot: s.window().From, ExportWh: []int64{0, 0}, ImportWh: []int64{300, 200}})
			s.add(t, s.alice, s.end.Add(5*time.Minute), s.settle2(honest, []*Message{s.aReport, short}, []*Message{s.accept}))
		}},
		{name: "report of a third household", state: StateDisputed, reason: "not a report of the exporter or the recipient", build: func(t *testing.T, s *evStreet) {
			other := s.add(t, s.carol, s.end.Add(2*time.Minute), &Report{FromSlot: s.window().From, ExportWh: []int64{0, 0, 0, 0}, ImportWh: []int64{900, 900, 900, 900}})
			s.add(t, s.alice, s.end.Add(5*time.Minute), s.settle2(honest, []*Message{s.aReport, s.bReport, other}, []*Message{s.accept}))
		}},
		{name: "head that is not the feed's message", state: StateDisputed, reason: "as the recipient's message at seq", build: func(t *testing.T, s *evStreet) {
			x := s.settle2(honest, []*Message{s.aReport, s.bReport}, []*Message{s.accept})
			x.RecipientHead = s.aReport.ID()
			s.add(t, s.alice, s.end.Add(5*time.Minute), x)
		}},
		{name: "a report the receiver does not hold yet", state: StateAccepted, reason: "waiting for report", build: func(t *testing.T, s *evStreet) {
			s.add(t, s.bob, s.end.Add(2*time.Minute), &Announce{Name: "bob"})
			s.add(t, s.alice, s.end.Add(5*time.Minute), s.settle2(honest, []*Message{s.aReport, s.bReport}, []*Message{s.accept}))
		}, hide: func(s *evStreet) []*Message { return []*Message{s.bReport} }},
		{name: "accepted pledge left out", state: StateDisputed, reason: "leaves out pledge", build: func(t *testing.T, s *evStreet) {
			w := s.window()
			p2 := s.add(t, s.alice, t0.Add(time.Minute), &Pledge{To: s.bob.ID(), FromSlot: w.From, ToSlot: w.To, EnergyWh: 400, ExpirySlot: w.From, Nonce: 2})
			s.add(t, s.bob, t0.Add(2*time.Minute), &Accept{Pledge: p2.ID(), EnergyWh: 400})
			s.aReport = s.add(t, s.alice, s.end.Add(2*time.Minute), &Report{FromSlot: w.From, ExportWh: []int64{1000, 1000, 100, 1000}, ImportWh: []int64{0, 0, 0, 0}})
			s.bReport = s.add(t, s.bob, s.end.Add(2*time.Minute), &Report{FromSlot: w.From, ExportWh: []int64{0, 0, 0, 0}, ImportWh: []int64{300, 200, 250, 0}})
			// Alone, the pledge would get 250, 200, 100, 0: but it shares
			// bob's import and alice's export with the second pledge.
			s.add(t, s.alice, s.end.Add(5*time.Minute), s.settle2(honest, []*Message{s.aReport, s.bReport}, []*Message{s.accept}))
		}},
		{name: "competing pledge listed", state: StateSettled, total: 428, build: func(t *testing.T, s *evStreet) {
			w := s.window()
			p2 := s.add(t, s.alice, t0.Add(time.Minute), &Pledge{To: s.bob.ID(), FromSlot: w.From, ToSlot: w.To, EnergyWh: 400, ExpirySlot: w.From, Nonce: 2})
			a2 := s.add(t, s.bob, t0.Add(2*time.Minute), &Accept{Pledge: p2.ID(), EnergyWh: 400})
			s.aReport = s.add(t, s.alice, s.end.Add(2*time.Minute), &Report{FromSlot: w.From, ExportWh: []int64{1000, 1000, 100, 1000}, ImportWh: []int64{0, 0, 0, 0}})
			s.bReport = s.add(t, s.bob, s.end.Add(2*time.Minute), &Report{FromSlot: w.From, ExportWh: []int64{0, 0, 0, 0}, ImportWh: []int64{300, 200, 250, 0}})
			terms := []Terms{
				{Pledge: s.pledge.ID(), From: s.alice.ID(), To: s.bob.ID(), Window: w, PledgedWh: 1500, AcceptedWh: 1000},
				{Pledge: p2.ID(), From: s.alice.ID(), To: s.bob.ID(), Window: w, PledgedWh: 400, AcceptedWh: 400},
			}
			meas := MeterTable{}
			meas.AddReport(s.alice.ID(), &Report{FromSlot: w.From, ExportWh: []int64{1000, 1000, 100, 1000}, ImportWh: []int64{0, 0, 0, 0}})
			meas.AddReport(s.bob.ID(), &Report{FromSlot: w.From, ExportWh: []int64{0, 0, 0, 0}, ImportWh: []int64{300, 200, 250, 0}})
			allocs, err := Allocate(terms, meas, ProRata{})
			if err != nil {
				t.Fatal(err)
			}
			x, err := Settle2Content(terms[0], allocs, ProRata{}, []ID{s.aReport.ID(), s.bReport.ID()}, terms, []ID{s.accept.ID(), a2.ID()}, s.aHead, s.bHead)
			if err != nil {
				t.Fatal(err)
			}
			s.add(t, s.alice, s.end.Add(5*time.Minute), x)
		}},
		{name: "third household's accept not held", state: StateSettled, total: 500, build: func(t *testing.T, s *evStreet) {
			s.thirdParty(t, 1000, 1000, false)
		}},
		{name: "third household's accept held, for other Wh", state: StateDisputed, reason: "in the parties' feeds with that accept", build: func(t *testing.T, s *evStreet) {
			s.thirdParty(t, 1000, 4000, true)
		}},
		{name: "third household's pledge cancelled by the exporter", state: StateDisputed, reason: "in the exporter's feed it is cancelled", build: func(t *testing.T, s *evStreet) {
			s.thirdParty(t, 1000, 1000, false, true)
		}},
		{name: "parties settle from different reports", state: StateDisputed, reason: "the parties settled differently", build: func(t *testing.T, s *evStreet) {
			s.add(t, s.alice, s.end.Add(5*time.Minute), s.settle2(honest, []*Message{s.aReport, s.bReport}, []*Message{s.accept}))
			// bob corrects his report late (§8.6) and settles from it.
			fixed := s.add(t, s.bob, s.end.Add(6*time.Minute), &Report{FromSlot: s.window().From, ExportWh: []int64{0, 0, 0, 0}, ImportWh: []int64{300, 200, 250, 250}})
			s.add(t, s.bob, s.end.Add(7*time.Minute), s.settle2([]int64{250, 200, 100, 250}, []*Message{s.aReport, fixed}, []*Message{s.accept}))
		}},
		{name: "late report: the exporter settles again from it", state: StateSettled, total: 800, build: func(t *testing.T, s *evStreet) {
			s.add(t, s.alice, s.end.Add(5*time.Minute), s.settle2(honest, []*Message{s.aReport, s.bReport}, []*Message{s.accept}))
			fixed := s.add(t, s.bob, s.end.Add(6*time.Minute), &Report{FromSlot: s.window().From, ExportWh: []int64{0, 0, 0, 0}, ImportWh: []int64{300, 200, 250, 250}})
			s.add(t, s.bob, s.end.Add(7*time.Minute), s.settle2([]int64{250, 200, 100, 250}, []*Message{s.aReport, fixed}, []*Message{s.accept}))
			// alice's later settle names bob's newer head and report.
			s.add(t, s.alice, s.end.Add(8*time.Minute), s.settle2([]int64{250, 200, 100, 250}, []*Message{s.aReport, fixed}, []*Message{s.accept}))
		}},
		{name: "late report alone leaves the settle that named the earlier one", state: StateSettled, total: 550, build: func(t *testing.T, s *evStreet) {
			s.add(t, s.alice, s.end.Add(5*time.Minute), s.settle2(honest, []*Message{s.aReport, s.bReport}, []*Message{s.accept}))
			s.add(t, s.bob, s.end.Add(6*time.Minute), &Report{FromSlot: s.window().From, ExportWh: []int64{0, 0, 0, 0}, ImportWh: []int64{300, 200, 250, 250}})
		}},
		{name: "version 1 settle above the recipient's report", state: StateDisputed, reason: "reported an import of 200 Wh", build: func(t *testing.T, s *evStreet) {
			w := s.window()
			s.add(t, s.alice, s.end.Add(5*time.Minute), &Settle{Pledge: s.pledge.ID(), FromSlot: w.From, ToSlot: w.To,
				AllocatedWh: []int64{250, 250, 250, 250}, ExportWh: []int64{900, 900, 900, 900}, ImportWh: []int64{900, 900, 900, 900}, TotalWh: 1000, Key: "pro-rata"})
		}},
		{name: "version 1 settle within the reports stays valid history", state: StateSettled, total: 550, build: func(t *testing.T, s *evStreet) {
			w := s.window()
			s.add(t, s.alice, s.end.Add(5*time.Minute), &Settle{Pledge: s.pledge.ID(), FromSlot: w.From, ToSlot: w.To,
				AllocatedWh: honest, ExportWh: []int64{1000, 1000, 100, 1000}, ImportWh: []int64{300, 200, 250, 0}, TotalWh: 550, Key: "pro-rata"})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newEvStreet(t)
			tc.build(t, s)
			hidden := map[ID]bool{}
			if tc.hide != nil {
				for _, m := range tc.hide(s) {
					hidden[m.ID()] = true
				}
			}
			ev := NewEvidenceSet()
			for _, m := range s.msgs {
				if !hidden[m.ID()] {
					ev.Add(m)
				}
			}
			v := s.fold(t, ev)
			if v.State != tc.state {
				t.Fatalf("state %s, want %s; disputes %v; pending %v; ignored %v", v.State, tc.state, v.Disputes, v.Pending, v.Ignored)
			}
			if tc.state == StateSettled && v.Settlement.TotalWh != tc.total {
				t.Errorf("settled %d Wh, want %d", v.Settlement.TotalWh, tc.total)
			}
			if tc.reason != "" {
				all := append(append([]error(nil), v.Disputes...), v.Pending...)
				found := false
				for _, e := range all {
					found = found || strings.Contains(e.Error(), tc.reason)
				}
				if !found {
					t.Errorf("no dispute or pending reason says %q: disputes %v; pending %v", tc.reason, v.Disputes, v.Pending)
				}
			}
			for _, e := range v.Disputes {
				if !errors.Is(e, ErrDisputed) || Reason(e) != "disputed" {
					t.Errorf("dispute %v does not wrap ErrDisputed", e)
				}
			}
			for _, e := range v.Pending {
				if Reason(e) != "missing_evidence" {
					t.Errorf("pending %v: reason %s", e, Reason(e))
				}
			}
		})
	}
}

func TestSettle2Content(t *testing.T) {
	s := newEvStreet(t)
	x := s.settle2([]int64{250, 200, 100, 0}, []*Message{s.aReport, s.bReport}, []*Message{s.accept})
	b, err := EncodeContent(x)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeContent(KindSettle2, b)
	if err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	if got, _ := EncodeContent(back); string(got) != string(b) {
		t.Fatalf("round trip %s, want %s", got, b)
	}
	bad := []struct {
		name string
		f    func(x *Settle2)
	}{
		{"reports out of order", func(x *Settle2) { x.Reports[0], x.Reports[1] = x.Reports[1], x.Reports[0] }},
		{"one report", func(x *Settle2) { x.Reports = x.Reports[:1] }},
		{"no pledges", func(x *Settle2) { x.Pledges, x.Accepts, x.AcceptedWh = nil, nil, nil }},
		{"accepts not parallel", func(x *Settle2) { x.Accepts = nil }},
		{"accepted 0 Wh", func(x *Settle2) { x.AcceptedWh = []int64{0} }},
		{"total", func(x *Settle2) { x.TotalWh++ }},
		{"zero head", func(x *Settle2) { x.ExporterHead = ID{} }},
		{"seq 0", func(x *Settle2) { x.RecipientSeq = 0 }},
	}
	for _, tc := range bad {
		y := *x
		y.Reports = append([]ID(nil), x.Reports...)
		tc.f(&y)
		if _, err := EncodeContent(&y); !errors.Is(err, ErrBadContent) {
			t.Errorf("%s: encode err %v, want bad_content", tc.name, err)
		}
	}
}
