package share

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// memFeed is a test store of one author's chain.
type memFeed struct {
	Feed
	bySeq map[uint64]ID
	forks []*ForkError
}

func newMemFeed(a HouseholdID) *memFeed {
	return &memFeed{Feed: Feed{Author: a}, bySeq: map[uint64]ID{}}
}

func (f *memFeed) stored(seq uint64) (ID, bool) { id, ok := f.bySeq[seq]; return id, ok }

// add applies the chain rules like a ledger would.
func (f *memFeed) add(m *Message) error {
	err := f.Check(m, f.stored)
	var fe *ForkError
	switch {
	case err == nil:
		f.bySeq[m.Seq] = m.ID()
		f.Head = HeadOf(m)
	case errors.As(err, &fe):
		f.forks = append(f.forks, fe)
		f.Frozen = true
	}
	return err
}

func chainOf(t *testing.T, k *Identity, n int) []*Message {
	var out []*Message
	var h Head
	for i := 0; i < n; i++ {
		m := compose(t, k, h, t0.Add(time.Duration(i)*time.Minute), &Announce{Name: "Alice " + string(rune('a'+i))})
		out = append(out, m)
		h = HeadOf(m)
	}
	return out
}

func TestChainAppendAndReplay(t *testing.T) {
	alice := testKey(t, "alice")
	msgs := chainOf(t, alice, 5)
	f := newMemFeed(alice.ID())
	for _, m := range msgs {
		if err := f.add(m); err != nil {
			t.Fatalf("seq %d: %v", m.Seq, err)
		}
	}
	if f.Head.Seq != 5 || f.Head.ID != msgs[4].ID() {
		t.Fatalf("head %+v", f.Head)
	}
	// Replaying any stored message is a no-op, by id.
	for _, m := range msgs {
		err := f.add(m)
		if !errors.Is(err, ErrDuplicate) {
			t.Fatalf("replay seq %d: %v", m.Seq, err)
		}
	}
	if f.Head.Seq != 5 || f.Frozen {
		t.Fatal("replay changed the feed")
	}
}

func TestChainGap(t *testing.T) {
	alice := testKey(t, "alice")
	msgs := chainOf(t, alice, 7)
	f := newMemFeed(alice.ID())
	for _, m := range msgs[:5] {
		if err := f.add(m); err != nil {
			t.Fatal(err)
		}
	}
	err := f.add(msgs[6])
	var ge *GapError
	if !errors.As(err, &ge) || !errors.Is(err, ErrSeqGap) {
		t.Fatalf("got %v", err)
	}
	if ge.Head != 5 || ge.Got != 7 {
		t.Fatalf("gap %+v", ge)
	}
	want := "seq 7 does not follow head 5 of author " + alice.ID().Short() + " (missing 6): fetch the gap first"
	if !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "message "+msgs[6].ID().Short()) {
		t.Fatalf("message %q", err)
	}
	// First message missing entirely.
	g := newMemFeed(alice.ID())
	if err := g.add(msgs[3]); !strings.Contains(err.Error(), "(missing 1..3)") {
		t.Fatalf("got %v", err)
	}
	// After filling the gap it appends.
	if err := f.add(msgs[5]); err != nil {
		t.Fatal(err)
	}
	if err := f.add(msgs[6]); err != nil {
		t.Fatal(err)
	}
}

func TestChainFork(t *testing.T) {
	alice := testKey(t, "alice")
	msgs := chainOf(t, alice, 3)
	f := newMemFeed(alice.ID())
	for _, m := range msgs {
		if err := f.add(m); err != nil {
			t.Fatal(err)
		}
	}
	// Alice signs a different seq 2 (a second writer on one key).
	other := compose(t, alice, HeadOf(msgs[0]), t0.Add(time.Hour), &Announce{Name: "Alice II"})
	err := f.add(other)
	var fe *ForkError
	if !errors.As(err, &fe) || !errors.Is(err, ErrFork) {
		t.Fatalf("got %v", err)
	}
	if fe.Seq != 2 || fe.Stored != msgs[1].ID() || fe.Incoming != other.ID() {
		t.Fatalf("fork proof %+v", fe)
	}
	if !f.Frozen {
		t.Fatal("feed not frozen")
	}
	// A frozen feed accepts nothing new, but replays stay no-ops.
	next := compose(t, alice, HeadOf(msgs[2]), t0.Add(2*time.Hour), &Announce{Name: "Alice"})
	if err := f.add(next); !errors.Is(err, ErrFrozen) {
		t.Fatalf("after fork: %v", err)
	}
	if err := f.add(msgs[2]); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("replay after fork: %v", err)
	}
}

func TestChainPrevMismatch(t *testing.T) {
	alice := testKey(t, "alice")
	msgs := chainOf(t, alice, 2)
	f := newMemFeed(alice.ID())
	if err := f.add(msgs[0]); err != nil {
		t.Fatal(err)
	}
	// seq 2 whose prev is some other seq-1 message.
	alt := compose(t, alice, Head{}, t0, &Announce{Name: "Other"})
	bad := compose(t, alice, HeadOf(alt), t0.Add(time.Minute), &Announce{Name: "X"})
	if err := f.add(bad); !errors.Is(err, ErrPrevMismatch) {
		t.Fatalf("got %v", err)
	}
	// The missing seq-1 message then proves the fork.
	if err := f.add(alt); !errors.Is(err, ErrFork) {
		t.Fatalf("got %v", err)
	}
}

func TestChainClockBackwards(t *testing.T) {
	alice := testKey(t, "alice")
	first := compose(t, alice, Head{}, t0, &Announce{Name: "A"})
	f := newMemFeed(alice.ID())
	if err := f.add(first); err != nil {
		t.Fatal(err)
	}
	back := compose(t, alice, HeadOf(first), t0.Add(-time.Second), &Announce{Name: "B"})
	if err := f.add(back); !errors.Is(err, ErrClock) {
		t.Fatalf("got %v", err)
	}
	same := compose(t, alice, HeadOf(first), t0, &Announce{Name: "B"})
	if err := f.add(same); err != nil {
		t.Fatalf("equal created_ms must be accepted: %v", err)
	}
}

func TestChainWrongAuthorAndEphemeral(t *testing.T) {
	alice, bob := testKey(t, "alice"), testKey(t, "bob")
	f := newMemFeed(alice.ID())
	if err := f.add(compose(t, bob, Head{}, t0, &Announce{Name: "Bob"})); !errors.Is(err, ErrBadSeq) {
		t.Fatalf("bob in alice's feed: %v", err)
	}
	if err := f.add(compose(t, alice, Head{}, t0, &Status{})); !errors.Is(err, ErrBadSeq) {
		t.Fatalf("status in chain: %v", err)
	}
}

func TestCheckClock(t *testing.T) {
	alice := testKey(t, "alice")
	now := t0
	for _, tc := range []struct {
		created time.Time
		ok      bool
	}{
		{now, true},
		{now.Add(-48 * time.Hour), true},
		{now.Add(MaxClockSkew), true},
		{now.Add(MaxClockSkew + time.Millisecond), false},
		{now.Add(time.Hour), false},
	} {
		m := compose(t, alice, Head{}, tc.created, &Announce{Name: "A"})
		err := CheckClock(m, now, MaxClockSkew)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrClock)) {
			t.Errorf("created %s: %v", tc.created, err)
		}
	}
}

func TestNewerStatus(t *testing.T) {
	alice := testKey(t, "alice")
	a := compose(t, alice, Head{}, t0, &Status{SurplusW: 1})
	b := compose(t, alice, Head{}, t0.Add(time.Second), &Status{SurplusW: 2})
	c := compose(t, alice, Head{}, t0, &Status{SurplusW: 3})
	if !Newer(nil, a) || !Newer(a, b) || Newer(b, a) || Newer(a, a) {
		t.Fatal("order by created_ms")
	}
	// Equal times: the larger id wins, and exactly one way round.
	if Newer(a, c) == Newer(c, a) {
		t.Fatal("tie not broken by id")
	}
}
