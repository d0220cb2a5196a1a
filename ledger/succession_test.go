package ledger

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/commons-energy/commons/share"
)

// handover signs h's handover to next as h's next message (the two keys
// sign it); it moves h's head.
func handover(t *testing.T, h, next *household) *share.Message {
	t.Helper()
	c, err := share.SignHandover(testCommunity, h.ID(), h.head, next.id)
	if err != nil {
		t.Fatal(err)
	}
	return h.next(t, c)
}

// recoverFrom signs next's first message, recovering old at its message
// keep with the recovery key rk.
func recoverFrom(t *testing.T, old *household, keep *share.Message, rk, next *household) *share.Message {
	t.Helper()
	c, err := share.SignRecover(testCommunity, old.ID(), keep.Seq, keep.ID(), rk.id, next.id)
	if err != nil {
		t.Fatal(err)
	}
	return next.next(t, c)
}

func reasons(res []Result) []string {
	out := make([]string, len(res))
	for i, r := range res {
		out[i] = r.Outcome.String()
		if r.Err != nil {
			out[i] += ":" + Reason(r.Err)
		}
	}
	return out
}

func neighbourNamed(t *testing.T, l *Ledger, name string) Neighbour {
	t.Helper()
	n, err := l.FindNeighbour(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func verifyOK(t *testing.T, l *Ledger) {
	t.Helper()
	rep, err := l.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK {
		t.Fatalf("verify: %+v", rep.Problems)
	}
}

// TestRotateNeighbourFollows: bob hands his key over to a new one; this
// ledger follows him (the new key is the neighbour "bob", its messages are
// accepted) and refuses the old key's messages after the handover.
func TestRotateNeighbourFollows(t *testing.T) {
	ctx := context.Background()
	self, bob, bob2, rk := newHousehold(t, 1), newHousehold(t, 2), newHousehold(t, 3), newHousehold(t, 9)
	l, _ := openTest(t, self.ID())
	addNeighbour(t, l, bob, "bob")
	msgs := []*share.Message{
		bob.next(t, announce("Bob")),
		bob.next(t, &share.RecoveryKey{Key: rk.ID()}),
	}
	h := handover(t, bob, bob2)
	msgs = append(msgs, h)
	bob2.at = bob.at
	start := bob2.next(t, &share.Successor{Old: bob.ID(), Handover: h.ID()})
	p := bob2.next(t, &share.Pledge{To: self.ID(), FromSlot: 100, ToSlot: 104, EnergyWh: 500})
	// New key first in the batch: the ledger orders the handover before.
	res := mustAppend(t, l, append([]*share.Message{start, p}, msgs...)...)
	for i, r := range res {
		if r.Outcome != Stored {
			t.Fatalf("message %d: %s %v", i, r.Outcome, r.Err)
		}
	}
	n := neighbourNamed(t, l, "bob")
	if n.ID != bob2.ID() {
		t.Fatalf("neighbour bob is %s, want the new key %s", n.ID.Short(), bob2.ID().Short())
	}
	if ns, _ := l.Neighbours(ctx); len(ns) != 1 {
		t.Fatalf("neighbours = %+v, want bob once", ns)
	}
	// The old key's later messages are refused, even validly chained.
	late := bob.next(t, &share.Pledge{To: self.ID(), FromSlot: 200, ToSlot: 204, EnergyWh: 1})
	if got := reasons(mustAppend(t, l, late)); !slices.Equal(got, []string{"rejected:rotated"}) {
		t.Fatalf("old key after the handover: %v", got)
	}
	if c := count(t, l, `SELECT count(*) FROM messages WHERE id = ?`, late.ID().String()); c != 0 {
		t.Fatal("refused message stored")
	}
	// The history of the old key is still replicated (a duplicate) and
	// known.
	if got := reasons(mustAppend(t, l, msgs[0])); !slices.Equal(got, []string{"duplicate"}) {
		t.Fatalf("old history again: %v", got)
	}
	if k, _ := l.IsKnown(ctx, bob.ID()); !k {
		t.Fatal("old key no longer known: its history would not replicate")
	}
	ss, err := l.Successions(ctx)
	if err != nil || len(ss) != 1 || ss[0].Via != "rotate" || ss[0].AtSeq != 3 || ss[0].Start != start.ID() {
		t.Fatalf("successions = %+v, %v", ss, err)
	}
	verifyOK(t, l)
}

// TestRotateOwnKey: the household's own handover and successor, stored
// by its own ledger, then the ledger opened with the new key.
func TestRotateOwnKey(t *testing.T) {
	self, self2 := newHousehold(t, 1), newHousehold(t, 4)
	l, path := openTest(t, self.ID())
	mustAppend(t, l, self.next(t, announce("me")))
	h := handover(t, self, self2)
	self2.at = self.at
	res := mustAppend(t, l, h, self2.next(t, &share.Successor{Old: self.ID(), Handover: h.ID()}))
	if got := reasons(res); !slices.Equal(got, []string{"stored", "stored"}) {
		t.Fatalf("own rotation: %v", got)
	}
	l.Close()
	l2, err := Open(context.Background(), path, Options{Self: self2.ID(), Manifest: testManifest, Now: l.opts.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if got := reasons(mustAppend(t, l2, self2.next(t, announce("me again")), self.next(t, announce("old")))); !slices.Equal(got, []string{"stored", "rejected:rotated"}) {
		t.Fatalf("after reopening with the new key: %v", got)
	}
	verifyOK(t, l2)
}

// TestForgedHandoverRefused: a handover signed by the old key only (the
// new key's signature is another key's, or over another position) is
// refused and not stored; the key stays current.
func TestForgedHandoverRefused(t *testing.T) {
	self, bob, bob2, mallory := newHousehold(t, 1), newHousehold(t, 2), newHousehold(t, 3), newHousehold(t, 5)
	l, _ := openTest(t, self.ID())
	addNeighbour(t, l, bob, "bob")
	mustAppend(t, l, bob.next(t, announce("Bob")))
	good, err := share.SignHandover(testCommunity, bob.ID(), bob.head, bob2.id)
	if err != nil {
		t.Fatal(err)
	}
	otherSig, _ := share.SignHandover(testCommunity, bob.ID(), bob.head, mallory.id)
	otherPos, _ := share.SignHandover(testCommunity, bob.ID(), share.Head{Seq: 7, ID: bob.head.ID}, bob2.id)
	for _, tc := range []struct {
		name string
		c    *share.Handover
	}{
		{"signed by another key", &share.Handover{New: bob2.ID(), NewSig: otherSig.NewSig}},
		{"signed for another seq", &share.Handover{New: bob2.ID(), NewSig: otherPos.NewSig}},
		{"no new signature", &share.Handover{New: bob2.ID()}},
		{"to itself", func() *share.Handover {
			c, _ := share.SignHandover(testCommunity, bob.ID(), bob.head, bob.id)
			return c
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := bob.signAfter(t, bob.head, tc.c)
			if got := reasons(mustAppend(t, l, m)); !slices.Equal(got, []string{"rejected:bad_handover"}) {
				t.Fatalf("forged handover: %v", got)
			}
			if c := count(t, l, `SELECT count(*) FROM messages WHERE author = ? AND seq = 2`, bob.ID().String()); c != 0 {
				t.Fatal("forged handover stored")
			}
		})
	}
	// The genuine one is accepted.
	if got := reasons(mustAppend(t, l, bob.next(t, good))); !slices.Equal(got, []string{"stored"}) {
		t.Fatalf("genuine handover: %v", got)
	}
}

// TestVerifyChecksHandovers: verify re-checks every handover: one signed
// by only one key written into the file, a succession record without its
// message, and an old key's message after its handover are problems.
func TestVerifyChecksHandovers(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, l *Ledger, h *share.Message, bob, bob2 *household)
		want   string
	}{
		{"forged handover in the file", func(t *testing.T, l *Ledger, h *share.Message, bob, bob2 *household) {
			forged := bob.signAfter(t, share.Head{Seq: h.Seq - 1, ID: h.Prev, CreatedMs: h.CreatedMs - 1}, &share.Handover{New: bob2.ID()})
			if _, err := l.db.Exec(`UPDATE messages SET id = ?, raw = ?, content = ? WHERE id = ?`, forged.ID().String(), forged.Bytes(), string(forged.Content), h.ID().String()); err != nil {
				t.Fatal(err)
			}
			if _, err := l.db.Exec(`UPDATE successions SET handover = ?`, forged.ID().String()); err != nil {
				t.Fatal(err)
			}
		}, "not signed by the new key"},
		{"record removed", func(t *testing.T, l *Ledger, h *share.Message, bob, bob2 *household) {
			if _, err := l.db.Exec(`DELETE FROM successions`); err != nil {
				t.Fatal(err)
			}
		}, "succession records do not hold"},
		{"old key after its handover", func(t *testing.T, l *Ledger, h *share.Message, bob, bob2 *household) {
			m := bob.next(t, announce("late"))
			if _, err := l.db.Exec(`INSERT INTO messages (id, author, seq, prev, kind, kind_name, created_ms, received_ms, content, raw) VALUES (?, ?, ?, ?, 1, 'announce', ?, 0, ?, ?)`,
				m.ID().String(), bob.ID().String(), int64(m.Seq), m.Prev.String(), m.CreatedMs, string(m.Content), m.Bytes()); err != nil {
				t.Fatal(err)
			}
		}, "after its last valid seq"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			self, bob, bob2 := newHousehold(t, 1), newHousehold(t, 2), newHousehold(t, 3)
			l, _ := openTest(t, self.ID())
			addNeighbour(t, l, bob, "bob")
			a := bob.next(t, announce("Bob"))
			h := handover(t, bob, bob2)
			bob2.at = bob.at
			mustAppend(t, l, a, h, bob2.next(t, &share.Successor{Old: bob.ID(), Handover: h.ID()}))
			verifyOK(t, l)
			tc.damage(t, l, h, bob, bob2)
			rep, err := l.Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, p := range rep.Problems {
				found = found || strings.Contains(p.Reason, tc.want)
			}
			if rep.OK || !found {
				t.Fatalf("verify after damage: ok=%v problems=%+v, want one with %q", rep.OK, rep.Problems, tc.want)
			}
		})
	}
}

// TestRecoverStolenKey: a thief with bob's key signs a pledge and rotates
// the key to his own; bob recovers with his recovery key from before the
// theft. The thief's messages leave the chain, his key is no longer a
// neighbour, bob's new key is, and the old key's messages after the
// recovery point are refused.
func TestRecoverStolenKey(t *testing.T) {
	ctx := context.Background()
	self, bob, bob2, rk, thief := newHousehold(t, 1), newHousehold(t, 2), newHousehold(t, 3), newHousehold(t, 9), newHousehold(t, 6)
	l, _ := openTest(t, self.ID())
	addNeighbour(t, l, bob, "bob")
	a := bob.next(t, announce("Bob"))
	keep := bob.next(t, &share.RecoveryKey{Key: rk.ID()})
	mustAppend(t, l, a, keep)
	// The thief, with bob's key.
	stolenPledge := bob.next(t, &share.Pledge{To: self.ID(), FromSlot: 100, ToSlot: 104, EnergyWh: 5000})
	h := handover(t, bob, thief)
	thief.at = bob.at
	tStart := thief.next(t, &share.Successor{Old: bob.ID(), Handover: h.ID()})
	mustAppend(t, l, stolenPledge, h, tStart)
	if n := neighbourNamed(t, l, "bob"); n.ID != thief.ID() {
		t.Fatalf("before the recovery bob is %s", n.ID.Short())
	}
	// Bob recovers at seq 2, the last message he signed himself.
	bob2.at = bob.at
	rec := recoverFrom(t, bob, keep, rk, bob2)
	if got := reasons(mustAppend(t, l, rec)); !slices.Equal(got, []string{"stored"}) {
		t.Fatalf("recovery: %v", got)
	}
	if n := neighbourNamed(t, l, "bob"); n.ID != bob2.ID() {
		t.Fatalf("after the recovery bob is %s, want %s", n.ID.Short(), bob2.ID().Short())
	}
	for _, m := range []*share.Message{stolenPledge, h, tStart} {
		if c := count(t, l, `SELECT count(*) FROM messages WHERE id = ?`, m.ID().String()); c != 0 {
			t.Fatalf("thief's message %s still in the chain", m.ID().Short())
		}
		if c := count(t, l, `SELECT count(*) FROM superseded WHERE id = ?`, m.ID().String()); c != 1 {
			t.Fatalf("thief's message %s not kept as evidence", m.ID().Short())
		}
	}
	if ps, _ := l.Pledges(ctx, PledgeFilter{}); len(ps) != 0 {
		t.Fatalf("the thief's pledge still counts: %+v", ps)
	}
	// Offered again: the old key's later messages are refused, the thief's
	// key is unknown.
	got := reasons(mustAppend(t, l, stolenPledge, thief.next(t, announce("t"))))
	if !slices.Equal(got, []string{"rejected:rotated", "rejected:unknown_author"}) {
		t.Fatalf("thief again: %v", got)
	}
	if got := reasons(mustAppend(t, l, bob2.next(t, announce("Bob")))); !slices.Equal(got, []string{"stored"}) {
		t.Fatalf("bob's new key: %v", got)
	}
	verifyOK(t, l)
}

// TestRecoverForkedFeed: a box restored from a backup forked bob's feed,
// which froze it; a recovery at the last seq before the fork resolves it.
func TestRecoverForkedFeed(t *testing.T) {
	ctx := context.Background()
	self, bob, bob2, rk := newHousehold(t, 1), newHousehold(t, 2), newHousehold(t, 3), newHousehold(t, 9)
	l, _ := openTest(t, self.ID())
	addNeighbour(t, l, bob, "bob")
	a := bob.next(t, announce("Bob"))
	keep := bob.next(t, &share.RecoveryKey{Key: rk.ID()})
	x := bob.next(t, announce("before the backup was restored"))
	y := bob.signAfter(t, share.HeadOf(keep), announce("the restored box"))
	if got := reasons(mustAppend(t, l, a, keep, x, y)); !slices.Equal(got, []string{"stored", "stored", "stored", "forked:fork"}) {
		t.Fatalf("fork: %v", got)
	}
	if rep, _ := l.Verify(ctx); rep.OK {
		t.Fatal("frozen feed verifies OK")
	}
	bob2.at = bob.at
	if got := reasons(mustAppend(t, l, recoverFrom(t, bob, keep, rk, bob2))); !slices.Equal(got, []string{"stored"}) {
		t.Fatalf("recovery: %v", got)
	}
	if n := neighbourNamed(t, l, "bob"); n.ID != bob2.ID() || n.Frozen() {
		t.Fatalf("bob after the recovery: %+v", n)
	}
	if got := reasons(mustAppend(t, l, x)); !slices.Equal(got, []string{"rejected:rotated"}) {
		t.Fatalf("forked branch again: %v", got)
	}
	verifyOK(t, l)
}

// TestRecoverRefused: recoveries that do not hold are refused and stored
// nowhere.
func TestRecoverRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(t *testing.T, l *Ledger, bob, rk, other, bob2 *household) *share.Message
		want  string
	}{
		{"wrong recovery key", func(t *testing.T, l *Ledger, bob, rk, other, bob2 *household) *share.Message {
			keep := bob.next(t, &share.RecoveryKey{Key: rk.ID()})
			mustAppend(t, l, keep)
			return recoverFrom(t, bob, keep, other, bob2)
		}, "rejected:bad_handover"},
		{"no recovery key announced", func(t *testing.T, l *Ledger, bob, rk, other, bob2 *household) *share.Message {
			keep := bob.next(t, announce("old household"))
			mustAppend(t, l, keep)
			return recoverFrom(t, bob, keep, rk, bob2)
		}, "rejected:bad_handover"},
		{"recovery key announced after the point", func(t *testing.T, l *Ledger, bob, rk, other, bob2 *household) *share.Message {
			keep := bob.next(t, announce("old household"))
			mustAppend(t, l, keep, bob.next(t, &share.RecoveryKey{Key: rk.ID()}))
			return recoverFrom(t, bob, keep, rk, bob2)
		}, "rejected:bad_handover"},
		{"point this ledger holds another message at", func(t *testing.T, l *Ledger, bob, rk, other, bob2 *household) *share.Message {
			keep := bob.next(t, &share.RecoveryKey{Key: rk.ID()})
			mustAppend(t, l, keep, bob.next(t, announce("x")))
			fork := bob.signAfter(t, share.HeadOf(keep), announce("y"))
			return recoverFrom(t, bob, fork, rk, bob2)
		}, "rejected:bad_handover"},
		{"second recovery key", func(t *testing.T, l *Ledger, bob, rk, other, bob2 *household) *share.Message {
			mustAppend(t, l, bob.next(t, &share.RecoveryKey{Key: rk.ID()}))
			return bob.next(t, &share.RecoveryKey{Key: other.ID()})
		}, "rejected:bad_handover"},
		{"recovery point not held yet", func(t *testing.T, l *Ledger, bob, rk, other, bob2 *household) *share.Message {
			keep := bob.next(t, &share.RecoveryKey{Key: rk.ID()})
			return recoverFrom(t, bob, keep, rk, bob2)
		}, "rejected:seq_gap"},
		{"successor without its handover", func(t *testing.T, l *Ledger, bob, rk, other, bob2 *household) *share.Message {
			h := handover(t, bob, bob2)
			return bob2.next(t, &share.Successor{Old: bob.ID(), Handover: h.ID()})
		}, "rejected:seq_gap"},
		{"successor of a stranger", func(t *testing.T, l *Ledger, bob, rk, other, bob2 *household) *share.Message {
			h := handover(t, other, bob2)
			mustAppend(t, l, other.next(t, announce("o")))
			return bob2.next(t, &share.Successor{Old: other.ID(), Handover: h.ID()})
		}, "rejected:unknown_author"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			self, bob, bob2, rk, other := newHousehold(t, 1), newHousehold(t, 2), newHousehold(t, 3), newHousehold(t, 9), newHousehold(t, 7)
			l, _ := openTest(t, self.ID())
			addNeighbour(t, l, bob, "bob")
			mustAppend(t, l, bob.next(t, announce("Bob")))
			m := tc.build(t, l, bob, rk, other, bob2)
			if got := reasons(mustAppend(t, l, m)); !slices.Equal(got, []string{tc.want}) {
				t.Fatalf("got %v, want %s", got, tc.want)
			}
			if c := count(t, l, `SELECT count(*) FROM messages WHERE id = ?`, m.ID().String()); c != 0 {
				t.Fatal("refused message stored")
			}
			// A key that is no neighbour gets no per-author counters.
			if c := count(t, l, `SELECT count(*) FROM refusals WHERE author = ?`, m.Author.String()); m.Author != bob.ID() && c != 0 {
				t.Fatalf("refusals kept for %s, no neighbour", m.Author.Short())
			}
			if n := neighbourNamed(t, l, "bob"); n.ID != bob.ID() {
				t.Fatalf("bob moved to %s", n.ID.Short())
			}
		})
	}
}
