package share

import (
	"errors"
	"testing"
	"time"
)

type pledgeFixture struct {
	alice, bob, carol *Identity
	pledge            *Message
	aHead, bHead      Head
	start, expiry     time.Time // window start, expiry instant
	end               time.Time
}

func newPledgeFixture(t *testing.T) *pledgeFixture {
	f := &pledgeFixture{alice: testKey(t, "alice"), bob: testKey(t, "bob"), carol: testKey(t, "carol")}
	from := testManifest.SlotOf(t0) + 8
	f.pledge = compose(t, f.alice, Head{}, t0, &Pledge{To: f.bob.ID(), FromSlot: from, ToSlot: from + 4, EnergyWh: 1500, ExpirySlot: from - 2, Nonce: 1})
	f.aHead = HeadOf(f.pledge)
	f.start = testManifest.SlotStart(from)
	f.end = testManifest.SlotStart(from + 4)
	f.expiry = testManifest.SlotStart(from - 2)
	return f
}

func (f *pledgeFixture) by(t *testing.T, k *Identity, at time.Time, c Content) *Message {
	h := &f.bHead
	if k == f.alice {
		h = &f.aHead
	} else if k == f.carol {
		h = &Head{}
	}
	m := compose(t, k, *h, at, c)
	*h = HeadOf(m)
	return m
}

func TestFoldPledge(t *testing.T) {
	type step struct {
		who  string
		at   time.Duration // relative to t0
		c    func(f *pledgeFixture) Content
		skip bool // expected to be ignored
	}
	accept := func(wh int64) func(f *pledgeFixture) Content {
		return func(f *pledgeFixture) Content { return &Accept{Pledge: f.pledge.ID(), EnergyWh: wh} }
	}
	decline := func(f *pledgeFixture) Content { return &Decline{Pledge: f.pledge.ID(), Reason: "away"} }
	cancel := func(f *pledgeFixture) Content { return &Cancel{Pledge: f.pledge.ID()} }
	settle := func(alloc ...int64) func(f *pledgeFixture) Content {
		return func(f *pledgeFixture) Content {
			c, _ := f.pledge.Decode()
			p := c.(*Pledge)
			s := &Settle{Pledge: f.pledge.ID(), FromSlot: p.FromSlot, ToSlot: p.ToSlot, Key: "pro-rata"}
			for _, a := range alloc {
				s.AllocatedWh = append(s.AllocatedWh, a)
				s.ExportWh = append(s.ExportWh, 1000)
				s.ImportWh = append(s.ImportWh, 1000)
				s.TotalWh += a
			}
			return s
		}
	}
	h := time.Hour
	tests := []struct {
		name  string
		steps []step
		now   time.Duration
		want  State
		accWh int64
	}{
		{"fresh", nil, 0, StatePledged, 0},
		{"expired", nil, 90 * time.Minute, StateExpired, 0},
		{"accepted", []step{{"bob", 10 * time.Minute, accept(1000), false}}, 0, StateAccepted, 1000},
		{"accepted stays after expiry", []step{{"bob", 10 * time.Minute, accept(1500), false}}, 3 * h, StateAccepted, 1500},
		{"accept too late", []step{{"bob", 90 * time.Minute, accept(1000), true}}, 3 * h, StateExpired, 0},
		{"accept more than pledged", []step{{"bob", time.Minute, accept(1501), true}}, 0, StatePledged, 0},
		{"accept by sender", []step{{"alice", time.Minute, accept(100), true}}, 0, StatePledged, 0},
		{"accept by stranger", []step{{"carol", time.Minute, accept(100), true}}, 0, StatePledged, 0},
		{"declined", []step{{"bob", time.Minute, decline, false}}, 3 * h, StateDeclined, 0},
		{"decline after accept", []step{{"bob", time.Minute, accept(5), false}, {"bob", 2 * time.Minute, decline, true}}, 0, StateAccepted, 5},
		{"cancel by sender", []step{{"alice", time.Minute, cancel, false}}, 0, StateCancelled, 0},
		{"cancel accepted by recipient", []step{{"bob", time.Minute, accept(5), false}, {"bob", 100 * time.Minute, cancel, false}}, 0, StateCancelled, 5},
		{"cancel at window start", []step{{"bob", time.Minute, accept(5), false}, {"alice", 2 * h, cancel, true}}, 3 * h, StateAccepted, 5},
		{"cancel after window start", []step{{"bob", time.Minute, accept(5), false}, {"alice", 2*h + time.Minute, cancel, true}}, 3 * h, StateAccepted, 5},
		{"cancel by stranger", []step{{"carol", time.Minute, cancel, true}}, 0, StatePledged, 0},
		{"accept after cancel", []step{{"alice", time.Minute, cancel, false}, {"bob", 2 * time.Minute, accept(5), true}}, 0, StateCancelled, 0},
		{"settled", []step{{"bob", time.Minute, accept(1000), false}, {"alice", 3 * h, settle(250, 250, 250, 0), false}}, 3 * h, StateSettled, 1000},
		{"settled by recipient", []step{{"bob", time.Minute, accept(1000), false}, {"bob", 3 * h, settle(1, 2, 3, 4), false}}, 3 * h, StateSettled, 1000},
		{"settle before window end", []step{{"bob", time.Minute, accept(1000), false}, {"alice", 2*h + 59*time.Minute, settle(1, 1, 1, 1), true}}, 3 * h, StateAccepted, 1000},
		{"settle above accepted share", []step{{"bob", time.Minute, accept(1000), false}, {"alice", 3 * h, settle(251, 250, 250, 0), true}}, 3 * h, StateAccepted, 1000},
		{"settle unaccepted", []step{{"alice", 3 * h, settle(0, 0, 0, 0), true}}, 3 * h, StateExpired, 0},
		{"settle by stranger", []step{{"bob", time.Minute, accept(1000), false}, {"carol", 3 * h, settle(1, 1, 1, 1), true}}, 3 * h, StateAccepted, 1000},
		{"second settle ignored", []step{{"bob", time.Minute, accept(1000), false}, {"alice", 3 * h, settle(1, 1, 1, 1), false}, {"bob", 4 * h, settle(2, 2, 2, 2), true}}, 4 * h, StateSettled, 1000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newPledgeFixture(t)
			keys := map[string]*Identity{"alice": f.alice, "bob": f.bob, "carol": f.carol}
			var related []*Message
			wantIgnored := 0
			for _, s := range tc.steps {
				related = append(related, f.by(t, keys[s.who], t0.Add(s.at), s.c(f)))
				if s.skip {
					wantIgnored++
				}
			}
			// An unrelated message and the pledge itself are skipped silently.
			related = append(related, f.pledge, compose(t, f.carol, Head{}, t0, &Announce{Name: "Carol"}))
			// Order of the slice must not matter.
			for _, rev := range []bool{false, true} {
				in := append([]*Message(nil), related...)
				if rev {
					for i, j := 0, len(in)-1; i < j; i, j = i+1, j-1 {
						in[i], in[j] = in[j], in[i]
					}
				}
				v, err := FoldPledge(testManifest, f.pledge, in, t0.Add(tc.now))
				if err != nil {
					t.Fatal(err)
				}
				if v.State != tc.want || v.AcceptedWh != tc.accWh {
					t.Fatalf("state %s accepted %d, want %s %d (ignored: %v)", v.State, v.AcceptedWh, tc.want, tc.accWh, v.Ignored)
				}
				if len(v.Ignored) != wantIgnored {
					t.Fatalf("ignored %d, want %d: %v", len(v.Ignored), wantIgnored, v.Ignored)
				}
				for _, e := range v.Ignored {
					if !errors.Is(e, ErrInvalidTransfer) {
						t.Fatalf("ignored reason %v", e)
					}
				}
				if v.From != f.alice.ID() || v.To != f.bob.ID() || v.PledgedWh != 1500 || v.Window.Len() != 4 {
					t.Fatalf("view %+v", v)
				}
			}
		})
	}
}

func TestFoldPledgeNotAPledge(t *testing.T) {
	alice := testKey(t, "alice")
	m := compose(t, alice, Head{}, t0, &Announce{Name: "A"})
	if _, err := FoldPledge(testManifest, m, nil, t0); !errors.Is(err, ErrInvalidTransfer) {
		t.Fatalf("got %v", err)
	}
}
