package share

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestSeenDeadlines covers §9.1: an answer or cancel dated before its
// deadline but held by the other party only after it is late once that
// party's seen says so, whatever its created_ms claims. Each "attack" row
// is the attack; its "no seen" twin is what the version 1 rules
// (author's clock only) decided, and must differ.
func TestSeenDeadlines(t *testing.T) {
	type msgFn func(f *pledgeFixture) []*Message
	ms := time.Millisecond
	// accept is bob's accept of 1000 Wh, dated 1 ms before expiry.
	accept := func(f *pledgeFixture) *Message {
		return f.by(t, f.bob, f.expiry.Add(-ms), &Accept{Pledge: f.pledge.ID(), EnergyWh: 1000})
	}
	seen := func(f *pledgeFixture, k *Identity, at time.Time, slot int64, h Head) *Message {
		return f.by(t, k, at, &Seen{Pledge: f.pledge.ID(), Slot: slot, Seq: h.Seq, Head: h.ID})
	}
	pl := func(f *pledgeFixture) *Pledge { c, _ := f.pledge.Decode(); return c.(*Pledge) }
	tests := []struct {
		name    string
		msgs    msgFn
		now     func(f *pledgeFixture) time.Time
		want    State
		ignored string // a substring of one Ignored reason, "" for none
	}{
		{"attack: backdated accept, no seen (version 1 rules)", func(f *pledgeFixture) []*Message {
			return []*Message{accept(f)}
		}, func(f *pledgeFixture) time.Time { return f.end }, StateAccepted, ""},
		{"attack: backdated accept, the exporter's seen says it came late", func(f *pledgeFixture) []*Message {
			before := f.bHead // what alice held of bob's feed at expiry
			a := accept(f)
			return []*Message{a, seen(f, f.alice, f.expiry.Add(time.Minute), pl(f).ExpirySlot, before)}
		}, func(f *pledgeFixture) time.Time { return f.end }, StateExpired, "arrived after the pledge expired"},
		{"accept held in time: the seen covers it", func(f *pledgeFixture) []*Message {
			a := accept(f)
			return []*Message{a, seen(f, f.alice, f.expiry, pl(f).ExpirySlot, HeadOf(a))}
		}, func(f *pledgeFixture) time.Time { return f.end }, StateAccepted, ""},
		{"backdated decline after a seen", func(f *pledgeFixture) []*Message {
			before := f.bHead
			d := f.by(t, f.bob, f.expiry.Add(-ms), &Decline{Pledge: f.pledge.ID()})
			return []*Message{d, seen(f, f.alice, f.expiry, pl(f).ExpirySlot, before)}
		}, func(f *pledgeFixture) time.Time { return f.end }, StateExpired, "arrived after the pledge expired"},
		{"attack: exporter's cancel 1 ms before the window, no seen (version 1 rules)", func(f *pledgeFixture) []*Message {
			a := f.by(t, f.bob, f.expiry.Add(-time.Hour), &Accept{Pledge: f.pledge.ID(), EnergyWh: 1000})
			c := f.by(t, f.alice, f.start.Add(-ms), &Cancel{Pledge: f.pledge.ID()})
			return []*Message{a, c}
		}, func(f *pledgeFixture) time.Time { return f.start.Add(time.Minute) }, StateCancelled, ""},
		{"attack: exporter's cancel 1 ms before the window, the recipient's seen says it came late", func(f *pledgeFixture) []*Message {
			a := f.by(t, f.bob, f.expiry.Add(-time.Hour), &Accept{Pledge: f.pledge.ID(), EnergyWh: 1000})
			before := f.aHead // bob held alice's feed up to the pledge
			c := f.by(t, f.alice, f.start.Add(-ms), &Cancel{Pledge: f.pledge.ID()})
			return []*Message{a, c, seen(f, f.bob, f.start.Add(2*time.Minute), pl(f).FromSlot, before)}
		}, func(f *pledgeFixture) time.Time { return f.start.Add(time.Minute) }, StateAccepted, "arrived after the window started"},
		{"recipient's backdated cancel, the exporter's seen", func(f *pledgeFixture) []*Message {
			a := f.by(t, f.bob, f.expiry.Add(-time.Hour), &Accept{Pledge: f.pledge.ID(), EnergyWh: 1000})
			held := HeadOf(a)
			c := f.by(t, f.bob, f.start.Add(-ms), &Cancel{Pledge: f.pledge.ID()})
			return []*Message{a, c, seen(f, f.alice, f.start, pl(f).FromSlot, held)}
		}, func(f *pledgeFixture) time.Time { return f.end }, StateAccepted, "arrived after the window started"},
		{"a seen by a third household does not count", func(f *pledgeFixture) []*Message {
			a := accept(f)
			return []*Message{a, seen(f, f.carol, f.expiry, pl(f).ExpirySlot, Head{})}
		}, func(f *pledgeFixture) time.Time { return f.end }, StateAccepted, "not a party"},
		{"a seen for another slot does not count", func(f *pledgeFixture) []*Message {
			before := f.bHead
			a := accept(f)
			return []*Message{a, seen(f, f.alice, f.end, pl(f).ToSlot, before)}
		}, func(f *pledgeFixture) time.Time { return f.end }, StateAccepted, "neither the pledge's expiry slot"},
		{"a seen dated before its deadline does not count", func(f *pledgeFixture) []*Message {
			before := f.bHead
			a := accept(f)
			return []*Message{a, seen(f, f.alice, f.expiry.Add(-time.Minute), pl(f).ExpirySlot, before)}
		}, func(f *pledgeFixture) time.Time { return f.end }, StateAccepted, "before slot"},
		{"of two seens for a deadline the first in the chain counts", func(f *pledgeFixture) []*Message {
			before := f.bHead
			a := accept(f)
			s1 := seen(f, f.alice, f.expiry, pl(f).ExpirySlot, HeadOf(a))
			s2 := seen(f, f.alice, f.expiry.Add(time.Minute), pl(f).ExpirySlot, before)
			return []*Message{a, s2, s1}
		}, func(f *pledgeFixture) time.Time { return f.end }, StateAccepted, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newPledgeFixture(t)
			v, err := FoldPledge(testManifest, f.pledge, tc.msgs(f), tc.now(f))
			if err != nil {
				t.Fatal(err)
			}
			if v.State != tc.want {
				t.Fatalf("state %s, want %s (ignored: %v)", v.State, tc.want, v.Ignored)
			}
			found := tc.ignored == ""
			for _, e := range v.Ignored {
				if tc.ignored != "" && strings.Contains(e.Error(), tc.ignored) {
					found = true
				}
			}
			if !found {
				t.Fatalf("no ignored reason contains %q: %v", tc.ignored, v.Ignored)
			}
		})
	}
}

// TestSeenHeadMustMatch: a seen naming a head the reader holds under
// another id is not taken (it speaks of a chain the reader does not have).
func TestSeenHeadMustMatch(t *testing.T) {
	f := newPledgeFixture(t)
	c, _ := f.pledge.Decode()
	p := c.(*Pledge)
	first := f.by(t, f.bob, f.expiry.Add(-time.Hour), &Decline{Pledge: ID{1}}) // bob's seq 1, about another pledge
	a := f.by(t, f.bob, f.expiry.Add(-time.Millisecond), &Accept{Pledge: f.pledge.ID(), EnergyWh: 1000})
	wrong := f.by(t, f.alice, f.expiry, &Seen{Pledge: f.pledge.ID(), Slot: p.ExpirySlot, Seq: 1, Head: ID{9}})
	ev := NewEvidenceSet(f.pledge, first, a, wrong)
	v, err := FoldPledgeWith(testManifest, f.pledge, []*Message{a, wrong}, ev, f.end)
	if err != nil {
		t.Fatal(err)
	}
	if v.State != StateAccepted || len(v.Ignored) != 1 || !strings.Contains(v.Ignored[0].Error(), "but that message is") {
		t.Fatalf("state %s, ignored %v; want accepted and the seen ignored for its head", v.State, v.Ignored)
	}
	right := f.by(t, f.alice, f.expiry.Add(time.Minute), &Seen{Pledge: f.pledge.ID(), Slot: p.ExpirySlot, Seq: 1, Head: first.ID()})
	v, err = FoldPledgeWith(testManifest, f.pledge, []*Message{a, wrong, right}, NewEvidenceSet(f.pledge, first, a, wrong, right), f.end)
	if err != nil {
		t.Fatal(err)
	}
	if v.State != StateExpired {
		t.Fatalf("state %s, want expired once a seen with the right head says the accept came late (ignored %v)", v.State, v.Ignored)
	}
}

// TestSeenContent: the canonical form and its refusals.
func TestSeenContent(t *testing.T) {
	good := &Seen{Pledge: ID{1}, Slot: 7, Seq: 2, Head: ID{2}}
	b, err := EncodeContent(good)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"pledge":"0100000000000000000000000000000000000000000000000000000000000000","slot":7,"seq":2,"head":"0200000000000000000000000000000000000000000000000000000000000000"}`
	if string(b) != want {
		t.Fatalf("encoded %s, want %s", b, want)
	}
	c, err := DecodeContent(KindSeen, b)
	if err != nil || *c.(*Seen) != *good {
		t.Fatalf("decode: %v %+v", err, c)
	}
	zero := "0000000000000000000000000000000000000000000000000000000000000000"
	for _, bad := range []string{
		`{"pledge":"` + zero + `","slot":7,"seq":2,"head":"` + strings.Repeat("02", 32) + `"}`,                     // no pledge
		`{"pledge":"` + strings.Repeat("01", 32) + `","slot":7,"seq":0,"head":"` + strings.Repeat("02", 32) + `"}`, // seq 0 with a head
		`{"pledge":"` + strings.Repeat("01", 32) + `","slot":7,"seq":3,"head":"` + zero + `"}`,                     // seq without a head
		`{"pledge":"` + strings.Repeat("01", 32) + `","slot":-1,"seq":3,"head":"` + strings.Repeat("02", 32) + `"}`,
		`{"pledge":"` + strings.Repeat("01", 32) + `","seq":3,"slot":7,"head":"` + strings.Repeat("02", 32) + `"}`, // order
	} {
		if _, err := DecodeContent(KindSeen, []byte(bad)); err == nil {
			t.Errorf("decoded %s, want a refusal", bad)
		}
	}
}

// TestProtocolContent: the protocol message's canonical form and its
// refusals (§8.16).
func TestProtocolContent(t *testing.T) {
	b, err := EncodeContent(&Protocol{Version: 2})
	if err != nil || string(b) != `{"version":2}` {
		t.Fatalf("encoded %s, %v", b, err)
	}
	for _, bad := range []string{`{"version":1}`, `{"version":0}`, `{"version":65536}`, `{"version":2,"x":1}`, `{"version":"2"}`, `{}`} {
		_, err := DecodeContent(KindProtocol, []byte(bad))
		if !errors.Is(err, ErrBadContent) {
			t.Errorf("decoded %s: %v, want bad_content", bad, err)
		}
	}
}
