package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/commons-energy/commons/share"
)

// street is a ledger of household A with neighbours bob and carol and a
// set of pledges in every state. The ledger's clock is t0+1h (13:00 UTC);
// the households sign from 06:00.
type street struct {
	l                                *Ledger
	a, bob, carol                    *household
	settled, declined, open, expired *share.Message
	cancelled, accepted              *share.Message
}

func slotAt(hhmm string) int64 {
	t, _ := time.Parse("15:04", hhmm)
	at := time.Date(2025, 1, 21, t.Hour(), t.Minute(), 0, 0, time.UTC)
	return testManifest.SlotOf(at)
}

func at(h *household, hhmm string) {
	t, _ := time.Parse("15:04", hhmm)
	h.at = time.Date(2025, 1, 21, t.Hour(), t.Minute(), 0, 0, time.UTC)
}

func pledge(to *household, from, until string, wh int64) *share.Pledge {
	return &share.Pledge{To: to.ID(), FromSlot: slotAt(from), ToSlot: slotAt(until), EnergyWh: wh, ExpirySlot: slotAt(from), Nonce: uint32(wh)}
}

func newStreet(t *testing.T) *street {
	t.Helper()
	s := &street{a: newHousehold(t, 1), bob: newHousehold(t, 2), carol: newHousehold(t, 3)}
	s.l, _ = openTest(t, s.a.ID())
	addNeighbour(t, s.l, s.bob, "bob")
	addNeighbour(t, s.l, s.carol, "carol")
	for _, h := range []*household{s.a, s.bob, s.carol} {
		at(h, "06:00")
	}
	a, bob, carol := s.a, s.bob, s.carol
	var msgs []*share.Message
	add := func(m *share.Message) *share.Message { msgs = append(msgs, m); return m }
	add(a.next(t, announce("Alice")))
	add(bob.next(t, announce("Robert"))) // the local alias "bob" wins

	// Settled: A gives bob 1000 Wh over 10:00-11:00; bob accepts 800.
	s.settled = add(a.next(t, pledge(bob, "10:00", "11:00", 1000)))
	add(bob.next(t, &share.Accept{Pledge: s.settled.ID(), EnergyWh: 800}))
	// Declined: bob offers A 500 Wh, A declines.
	s.declined = add(bob.next(t, pledge(a, "14:00", "15:00", 500)))
	add(a.next(t, &share.Decline{Pledge: s.declined.ID(), Reason: "not home"}))
	// Open: A offers carol, unanswered, window ahead.
	s.open = add(a.next(t, pledge(carol, "14:00", "15:00", 400)))
	// Expired: A offers bob 12:00-12:15, nobody answers before 12:00.
	s.expired = add(a.next(t, pledge(bob, "12:00", "12:15", 100)))
	// Cancelled: accepted, then A withdraws before the window.
	s.cancelled = add(a.next(t, pledge(bob, "15:00", "16:00", 300)))
	add(bob.next(t, &share.Accept{Pledge: s.cancelled.ID(), EnergyWh: 300}))
	add(a.next(t, &share.Cancel{Pledge: s.cancelled.ID()}))
	// Accepted (open): carol gives A, A accepts.
	s.accepted = add(carol.next(t, pledge(a, "14:00", "14:30", 200)))
	add(a.next(t, &share.Accept{Pledge: s.accepted.ID(), EnergyWh: 200}))

	// After the settled pledge's window: A settles from measured data.
	terms := share.Terms{Pledge: s.settled.ID(), From: a.ID(), To: bob.ID(),
		Window: share.SlotRange{From: slotAt("10:00"), To: slotAt("11:00")}, PledgedWh: 1000, AcceptedWh: 800}
	meas := share.MeterTable{}
	for slot := terms.Window.From; slot < terms.Window.To; slot++ {
		meas.Set(a.ID(), slot, 150, 0)
		meas.Set(bob.ID(), slot, 0, 300)
	}
	allocs, err := share.Allocate([]share.Terms{terms}, meas, share.ProRata{})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := share.SettleContent(terms, allocs, share.ProRata{})
	if err != nil {
		t.Fatal(err)
	}
	at(a, "11:30")
	add(a.next(t, sc))

	for i, r := range mustAppend(t, s.l, msgs...) {
		if r.Outcome != Stored {
			t.Fatalf("message %d: %v %v", i, r.Outcome, r.Err)
		}
	}
	return s
}

func ids(ps []Pledge) []share.ID {
	out := make([]share.ID, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}

func sameIDs(a, b []share.ID) bool {
	cmp := func(x, y share.ID) int { return slices.Compare(x[:], y[:]) }
	a, b = slices.Clone(a), slices.Clone(b)
	slices.SortFunc(a, cmp)
	slices.SortFunc(b, cmp)
	return slices.Equal(a, b)
}

func TestPledgeViews(t *testing.T) {
	ctx := context.Background()
	s := newStreet(t)
	l := s.l

	all, err := l.Pledges(ctx, PledgeFilter{})
	if err != nil {
		t.Fatal(err)
	}
	states := map[share.ID]share.State{}
	for _, p := range all {
		states[p.ID] = p.State
	}
	want := map[share.ID]share.State{
		s.settled.ID(): share.StateSettled, s.declined.ID(): share.StateDeclined, s.open.ID(): share.StatePledged,
		s.expired.ID(): share.StateExpired, s.cancelled.ID(): share.StateCancelled, s.accepted.ID(): share.StateAccepted,
	}
	if len(states) != len(want) {
		t.Fatalf("states = %v", states)
	}
	for id, st := range want {
		if states[id] != st {
			t.Errorf("pledge %s: state %s, want %s", id.Short(), states[id], st)
		}
	}

	open, _ := l.OpenPledges(ctx)
	if !sameIDs(ids(open), []share.ID{s.open.ID(), s.accepted.ID()}) {
		t.Fatalf("open pledges = %v", ids(open))
	}
	withBob, _ := l.PledgesWith(ctx, s.bob.ID())
	if !sameIDs(ids(withBob), []share.ID{s.settled.ID(), s.declined.ID(), s.expired.ID(), s.cancelled.ID()}) {
		t.Fatalf("pledges with bob = %v", ids(withBob))
	}

	p, err := l.FindPledge(ctx, s.settled.ID().String()[:8])
	if err != nil {
		t.Fatal(err)
	}
	if p.State != share.StateSettled || !p.DeliveredWh.OK || p.DeliveredWh.V != 600 || p.AcceptedWh != 800 ||
		p.FromName != "Alice" || p.ToName != "bob" || !p.Outgoing || p.Incoming {
		t.Fatalf("settled pledge = %+v", p)
	}
	// 200 Wh accepted per slot, 150 exported: the export decided
	// every slot; found by id prefix as in a full fold.
	exp := share.LimitExport
	if p.LimitedBy != exp || !slices.Equal(p.SlotLimits, []share.Limit{exp, exp, exp, exp}) {
		t.Fatalf("settled pledge limited by %q, slots %v; want export throughout", p.LimitedBy, p.SlotLimits)
	}
	for _, q := range all {
		if q.ID != s.settled.ID() && (q.LimitedBy != "" || q.SlotLimits != nil) {
			t.Errorf("pledge %s (%s) says it was limited by %q %v", q.ID.Short(), q.State, q.LimitedBy, q.SlotLimits)
		}
	}
	if !p.Start.Equal(time.Date(2025, 1, 21, 10, 0, 0, 0, time.UTC)) || !p.End.Equal(time.Date(2025, 1, 21, 11, 0, 0, 0, time.UTC)) {
		t.Fatalf("window %v..%v", p.Start, p.End)
	}
	if _, err := l.FindPledge(ctx, "0000000"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown pledge: %v", err)
	}
	// An answer's id is not a pledge id.
	if _, err := l.FindPledge(ctx, p.Accept.String()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("accept id as pledge: %v", err)
	}

	bals, err := l.Balances(ctx, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if len(bals) != 2 || bals[0].Name != "bob" || bals[1].Name != "carol" {
		t.Fatalf("balances = %+v", bals)
	}
	if b := bals[0]; b.GivenWh != 600 || b.ReceivedWh != 0 || b.MonthGivenWh != 600 || b.OpenPledges != 0 {
		t.Fatalf("bob balance = %+v", b)
	}
	if c := bals[1]; c.GivenWh != 0 || c.OpenPledges != 2 {
		t.Fatalf("carol balance = %+v", c)
	}

	answers, err := l.MessagesOfKinds(ctx, share.KindAccept, share.KindSettle)
	kinds := map[share.Kind]int{}
	for _, m := range answers {
		kinds[m.Kind]++
	}
	if err != nil || len(answers) != 4 || kinds[share.KindAccept] != 3 || kinds[share.KindSettle] != 1 {
		t.Fatalf("accepts and settles: %v, %v", kinds, err)
	}
	sets, err := l.Settlements(ctx)
	if err != nil || len(sets) != 1 {
		t.Fatalf("settlements = %+v, %v", sets, err)
	}
	if st := sets[0]; st.Pledge != s.settled.ID() || st.TotalWh != 600 || !slices.Equal(st.AllocatedWh, []int64{150, 150, 150, 150}) || st.Key != "pro-rata" || st.LimitedBy != share.LimitExport || len(st.SlotLimits) != 4 {
		t.Fatalf("settlement = %+v", st)
	}
}

func TestBalancesMonthBoundary(t *testing.T) {
	ctx := context.Background()
	s := newStreet(t)
	// A month later the all-time balance stays, this month's is empty.
	s.l.opts.Now = func() time.Time { return time.Date(2025, 2, 3, 12, 0, 0, 0, time.UTC) }
	bals, err := s.l.Balances(ctx, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if b := bals[0]; b.Name != "bob" || b.GivenWh != 600 || b.MonthGivenWh != 0 {
		t.Fatalf("bob balance in February = %+v", b)
	}
}

// TestDelivered: a pledge is delivered once the counterparty's box has
// acknowledged this household's latest message about it, and an
// acknowledgement never goes back and survives a restart.
func TestDelivered(t *testing.T) {
	ctx := context.Background()
	s := newStreet(t)
	find := func(l *Ledger, m *share.Message) Pledge {
		t.Helper()
		p, err := l.FindPledge(ctx, m.ID().String())
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	seqOf := func(author *household, kind share.Kind, pledge share.ID) uint64 {
		t.Helper()
		ms, err := s.l.MessagesOfKinds(ctx, kind)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			c, _ := m.Decode()
			if m.Author == author.ID() && (m.ID() == pledge || share.RefersTo(c) == pledge) {
				return m.Seq
			}
		}
		t.Fatalf("no %v of %s about %s", kind, author.ID().Short(), pledge.Short())
		return 0
	}
	settle := seqOf(s.a, share.KindSettle, s.settled.ID())
	accept := seqOf(s.a, share.KindAccept, s.accepted.ID())

	tests := []struct {
		name      string
		ack       func() error
		settled   bool // A's pledge to bob: A wrote the pledge, then the settle
		accepted  bool // carol's pledge to A: A wrote the accept
		declined  bool // bob's pledge to A: A wrote the decline
		latestOwn uint64
	}{
		{"nothing acknowledged", func() error { return nil }, false, false, false, settle},
		{"bob holds the pledge but not the settle", func() error { _, err := s.l.RecordAck(ctx, s.bob.ID(), settle-1); return err }, false, false, true, settle},
		{"carol holds the accept", func() error { _, err := s.l.RecordAck(ctx, s.carol.ID(), accept); return err }, false, true, true, settle},
		{"bob holds the settle", func() error { _, err := s.l.RecordAck(ctx, s.bob.ID(), settle); return err }, true, true, true, settle},
		{"an older acknowledgement does not go back", func() error {
			if changed, err := s.l.RecordAck(ctx, s.bob.ID(), 1); changed || err != nil {
				return fmt.Errorf("an older acknowledgement: changed %v, %v", changed, err)
			}
			return nil
		}, true, true, true, settle},
	}
	for _, tc := range tests {
		if err := tc.ack(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		st, ac, de := find(s.l, s.settled), find(s.l, s.accepted), find(s.l, s.declined)
		if st.Delivered != tc.settled || ac.Delivered != tc.accepted || de.Delivered != tc.declined || st.LatestOwn != tc.latestOwn {
			t.Errorf("%s: delivered settled %v accepted %v declined %v (latest own %d); want %v %v %v (%d)",
				tc.name, st.Delivered, ac.Delivered, de.Delivered, st.LatestOwn, tc.settled, tc.accepted, tc.declined, tc.latestOwn)
		}
	}
	// A's open pledge to carol, older than the accept carol holds.
	if p := find(s.l, s.open); p.LatestOwn == 0 || p.LatestOwn >= accept || !p.Delivered {
		t.Errorf("open pledge to carol: latest own %d, delivered %v; want below %d, true", p.LatestOwn, p.Delivered, accept)
	}
	// The acknowledgements survive a restart.
	l2 := reopen(t, s.l)
	if !find(l2, s.settled).Delivered || !find(l2, s.accepted).Delivered {
		t.Error("acknowledgements lost on reopen")
	}
	acks, err := l2.Acks(ctx)
	if err != nil || acks[s.bob.ID()].Seq != settle || acks[s.carol.ID()].Seq != accept {
		t.Errorf("acks after reopen = %v, %v", acks, err)
	}
}

// TestDeliveredByAnswer: the counterparty's answer to this household's
// pledge proves the pledge reached it, with no acknowledgement recorded
// (as through a hub, which acknowledges nothing).
func TestDeliveredByAnswer(t *testing.T) {
	ctx := context.Background()
	s := newStreet(t)
	p, err := s.l.FindPledge(ctx, s.open.ID().String())
	if err != nil || p.Delivered {
		t.Fatalf("A's unanswered pledge to carol: delivered %v, %v; want false", p.Delivered, err)
	}
	at(s.carol, "09:00")
	mustAppend(t, s.l, s.carol.next(t, &share.Accept{Pledge: s.open.ID(), EnergyWh: 400}))
	if p, err = s.l.FindPledge(ctx, s.open.ID().String()); err != nil || !p.Delivered {
		t.Errorf("after carol accepted A's pledge: delivered %v, %v; want true", p.Delivered, err)
	}
	if acks, _ := s.l.Acks(ctx); len(acks) != 0 {
		t.Errorf("acks = %v; the answer alone must prove delivery", acks)
	}
}

// TestFoldWithOneConnection: folding pledges never needs a second
// database connection while it holds one (reading the acknowledgements,
// explaining a settled pledge found by prefix), so a busy pool cannot
// deadlock it. With one connection allowed, a wait would never end.
func TestFoldWithOneConnection(t *testing.T) {
	s := newStreet(t)
	l := reopen(t, s.l) // acknowledgements not read yet
	l.db.SetMaxOpenConns(1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		p, err := l.FindPledge(ctx, s.settled.ID().String()[:10])
		if err == nil && p.LimitedBy != share.LimitExport {
			err = fmt.Errorf("limited by %q, want export", p.LimitedBy)
		}
		if err == nil {
			_, err = l.RecordAck(ctx, s.bob.ID(), 3)
		}
		if err == nil {
			_, err = l.Pledges(ctx, PledgeFilter{})
		}
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatalf("fold with one connection: %v", err)
	}
}
