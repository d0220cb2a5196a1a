package share

import "fmt"

// KindSeen is the kind of a Seen message: a party's statement of how much
// of the other party's feed it held when one of a pledge's deadlines
// passed (docs/PROTOCOL.md §8.14, §9.1).
const KindSeen Kind = 14

// Seen says that, when the start of Slot passed by its author's clock, the
// author held the other party's chain up to Seq (whose message id is
// Head; the zero id when Seq is 0). Slot is one of the pledge's deadlines:
// its expiry_slot (answers from the recipient) or its from_slot (cancels).
// A party writes one when a message of the other party bound by that
// deadline arrives after the deadline although dated before it: the
// message, at a seq above Seq, is then late for every reader, whatever its
// created_ms says.
type Seen struct {
	Pledge ID     `json:"pledge"`
	Slot   int64  `json:"slot"`
	Seq    uint64 `json:"seq"`
	Head   ID     `json:"head"`
}

// Kind returns KindSeen.
func (*Seen) Kind() Kind { return KindSeen }

func (c *Seen) validate() error {
	if c.Pledge.IsZero() {
		return fmt.Errorf("pledge is missing")
	}
	if err := checkInt("slot", c.Slot, 0, MaxSafeInt); err != nil {
		return err
	}
	if c.Seq > MaxSafeInt {
		return fmt.Errorf("seq is %d, want 0..%d", c.Seq, int64(MaxSafeInt))
	}
	if (c.Seq == 0) != c.Head.IsZero() {
		return fmt.Errorf("head must be the zero id exactly when seq is 0")
	}
	return nil
}

func readSeen(r *canonReader) Content {
	x := &Seen{}
	r.field("pledge", true)
	x.Pledge = r.id()
	r.field("slot", false)
	x.Slot = r.int()
	r.field("seq", false)
	x.Seq = uint64(r.int())
	r.field("head", false)
	x.Head = r.id()
	return x
}

// seenIndex holds, per party and deadline slot, the first valid Seen of a
// pledge's parties (the lowest seq in its author's chain).
type seenIndex map[HouseholdID]map[int64]*seenClaim

type seenClaim struct {
	msg  *Message
	seen *Seen
}

// lateBy reports the Seen of the party other than author that makes a
// message of author at seq late for the deadline slot, or nil.
func (s seenIndex) lateBy(other HouseholdID, slot int64, seq uint64) *seenClaim {
	c := s[other][slot]
	if c == nil || seq <= c.seen.Seq {
		return nil
	}
	return c
}

// seenClaims reads the Seen messages among msgs that name v's pledge p. A
// Seen counts when its author is a party, its slot is one of the pledge's
// deadlines (expiry_slot or from_slot), it was created at or after that
// deadline (nobody can say what they held at an instant still to come),
// and, when ev holds the other party's message at seq, head is that
// message's id. Of a party's Seens for one deadline the first in its
// chain counts. Others are recorded in v.Ignored.
func (v *PledgeView) seenClaims(m Manifest, p *Pledge, msgs []*Message, ev Evidence) seenIndex {
	var idx seenIndex
	for _, msg := range msgs {
		if msg.Kind != KindSeen {
			continue
		}
		c, err := msg.Decode()
		if err != nil {
			v.ignore(msg, "%v", err)
			continue
		}
		s, ok := c.(*Seen)
		if !ok || s.Pledge != v.ID {
			continue
		}
		other := v.To
		switch msg.Author {
		case v.From:
		case v.To:
			other = v.From
		default:
			v.ignore(msg, "seen by %s, who is not a party to the pledge", msg.Author.Short())
			continue
		}
		if s.Slot != p.ExpirySlot && s.Slot != p.FromSlot {
			v.ignore(msg, "seen for slot %d, which is neither the pledge's expiry slot %d nor its first slot %d", s.Slot, p.ExpirySlot, p.FromSlot)
			continue
		}
		if at := m.SlotStartMs(s.Slot); msg.CreatedMs < at {
			v.ignore(msg, "seen created %s, before slot %d started at %s", fmtMs(msg.CreatedMs), s.Slot, fmtMs(at))
			continue
		}
		if ev != nil && s.Seq > 0 {
			if held := ev.At(other, s.Seq); held != nil && held.id != s.Head {
				v.ignore(msg, "seen names %s at seq %d as %s, but that message is %s", other.Short(), s.Seq, s.Head.Short(), held.id.Short())
				continue
			}
		}
		if idx == nil {
			idx = seenIndex{}
		}
		if idx[msg.Author] == nil {
			idx[msg.Author] = map[int64]*seenClaim{}
		}
		if prev := idx[msg.Author][s.Slot]; prev == nil || msg.Seq < prev.msg.Seq {
			idx[msg.Author][s.Slot] = &seenClaim{msg: msg, seen: s}
		}
	}
	return idx
}

// ignoreLate records msg as late: the other party's Seen c says it did
// not hold msg when the deadline (what) passed.
func (v *PledgeView) ignoreLate(msg *Message, c *seenClaim, what string) {
	v.ignore(msg, "arrived after %s: %s held %s's feed only up to seq %d when slot %d started (seen %s), and this message is seq %d",
		what, c.msg.Author.Short(), msg.Author.Short(), c.seen.Seq, c.seen.Slot, c.msg.id.Short(), msg.Seq)
}
