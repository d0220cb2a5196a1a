package share

import (
	"bytes"
	"sort"
	"time"
)

// State is a pledge's lifecycle state.
type State string

// Pledge states. See docs/PROTOCOL.md, "Pledge lifecycle".
const (
	StatePledged   State = "pledged"   // signed, not yet answered
	StateAccepted  State = "accepted"  // recipient accepted; awaiting settlement
	StateDeclined  State = "declined"  // recipient declined (final)
	StateCancelled State = "cancelled" // withdrawn before the window (final)
	StateExpired   State = "expired"   // not accepted before the expiry slot (final)
	StateSettled   State = "settled"   // settled after the window (final)
	// StateDisputed: a settle does not recompute from the evidence it
	// names, or the parties settled differently; not applied. A settle
	// that holds (or the parties agreeing) settles it later.
	StateDisputed State = "disputed"
)

// Final reports whether no further message can change state s.
func (s State) Final() bool {
	return s == StateDeclined || s == StateCancelled || s == StateExpired || s == StateSettled
}

// PledgeView is a pledge's state folded from its messages.
type PledgeView struct {
	ID         ID
	From, To   HouseholdID
	Window     SlotRange
	ExpirySlot int64
	PledgedWh  int64
	AcceptedWh int64 // 0 until accepted
	State      State
	Accept     ID      // the accept message, when accepted
	Closing    ID      // the decline, cancel or settle message that closed it
	Settlement *Settle // when settled
	Sealed     bool    // settled by consistency: a sealed report it names was not readable here (§10.4)
	Ignored    []error // related messages that did not apply, each wrapping ErrInvalidTransfer
	// Disputes says why settles did not apply (each wrapping
	// ErrDisputed): one that does not recompute from its evidence, or
	// the parties settling differently. The pledge is StateDisputed when
	// no settle applies.
	Disputes []error
	// Pending lists settle2 messages whose evidence this reader does not
	// hold yet (each wrapping ErrMissingEvidence): not applied, not
	// disputed; fold again when the messages arrive.
	Pending []error
}

// Terms returns the settlement terms of an accepted or settled pledge.
func (v *PledgeView) Terms() Terms {
	return Terms{Pledge: v.ID, From: v.From, To: v.To, Window: v.Window, PledgedWh: v.PledgedWh, AcceptedWh: v.AcceptedWh}
}

// FoldPledge folds a pledge message and the messages referring to it
// (accept, decline, cancel, settle; others are skipped) into its state at
// now. Related messages apply in order of created_ms, then id; one that is
// not allowed in the current state, by its author, or at its time is
// recorded in Ignored. All messages must already be verified (Open).
//
// Rules: accept and decline by the recipient, while pledged, created
// before the expiry slot starts; accept for at most the pledged Wh. Cancel
// by either party, while pledged or accepted, created before the window's
// first slot starts. Settle by either party, while accepted, created at or
// after the window's end, for exactly the window, no slot above the
// pledged or accepted share. A pledge still pledged once the expiry slot
// has started is expired.
func FoldPledge(m Manifest, pledge *Message, related []*Message, now time.Time) (*PledgeView, error) {
	return FoldPledgeWith(m, pledge, related, nil, now)
}

// FoldPledgeWith is FoldPledge checking settles against the evidence ev
// holds (docs/PROTOCOL.md §10.4). A version 1 settle (kind 30) that
// allocates more in a slot than the recipient reported importing (or the
// exporter exporting), in any report ev holds, is a dispute. Settle2
// messages (kind 31) apply only when they recompute from the reports,
// accepts and heads they name (CheckSettle2); each party's latest one
// counts, and the pledge is settled when one holds or both hold and
// agree, disputed when they disagree or only disputed ones exist. With a
// nil ev no settle2 applies (all are pending).
func FoldPledgeWith(m Manifest, pledge *Message, related []*Message, ev Evidence, now time.Time) (*PledgeView, error) {
	c, err := pledge.Decode()
	if err != nil {
		return nil, err
	}
	p, ok := c.(*Pledge)
	if !ok {
		return nil, reject(ErrInvalidTransfer, "message %s is a %s, not a pledge", pledge.id.Short(), pledge.Kind)
	}
	v := &PledgeView{
		ID: pledge.id, From: pledge.Author, To: p.To,
		Window: SlotRange{From: p.FromSlot, To: p.ToSlot}, ExpirySlot: p.ExpirySlot,
		PledgedWh: p.EnergyWh, State: StatePledged,
	}
	msgs := append([]*Message(nil), related...)
	sort.SliceStable(msgs, func(i, j int) bool {
		if msgs[i].CreatedMs != msgs[j].CreatedMs {
			return msgs[i].CreatedMs < msgs[j].CreatedMs
		}
		return bytes.Compare(msgs[i].id[:], msgs[j].id[:]) < 0
	})
	windowStart := m.SlotStartMs(p.FromSlot)
	windowEnd := m.SlotStartMs(p.ToSlot)
	expiry := m.SlotStartMs(p.ExpirySlot)
	seen := v.seenClaims(m, p, msgs, ev)
	// lateFor is the Seen by the other party that makes msg late for the
	// deadline slot (§9.1), or nil: then msg's own created_ms decides.
	lateFor := func(msg *Message, slot int64) *seenClaim {
		other := v.From
		if msg.Author == v.From {
			other = v.To
		}
		return seen.lateBy(other, slot, msg.Seq)
	}
	var settles2 []*Message // applied together after the others (resolveSettles2)
	for _, msg := range msgs {
		if msg.id == pledge.id {
			continue
		}
		switch msg.Kind {
		case KindAccept, KindDecline, KindCancel, KindSettle, KindSettle2:
		default: // seen messages were read by seenClaims

			continue
		}
		mc, err := msg.Decode()
		if err != nil {
			v.ignore(msg, "%v", err)
			continue
		}
		if refersTo(mc) != pledge.id {
			continue
		}
		party := msg.Author == v.From || msg.Author == v.To
		switch x := mc.(type) {
		case *Accept:
			switch {
			case msg.Author != v.To:
				v.ignore(msg, "accept by %s, but only the recipient %s may accept", msg.Author.Short(), v.To.Short())
			case v.State != StatePledged:
				v.ignore(msg, "accept while the pledge is %s", v.State)
			case lateFor(msg, p.ExpirySlot) != nil:
				v.ignoreLate(msg, lateFor(msg, p.ExpirySlot), "the pledge expired")
			case msg.CreatedMs >= expiry:
				v.ignore(msg, "accept created %s, after the pledge expired at %s", fmtMs(msg.CreatedMs), fmtMs(expiry))
			case x.EnergyWh > v.PledgedWh:
				v.ignore(msg, "accepts %d Wh of a %d Wh pledge", x.EnergyWh, v.PledgedWh)
			default:
				v.State, v.AcceptedWh, v.Accept = StateAccepted, x.EnergyWh, msg.id
			}
		case *Decline:
			switch {
			case msg.Author != v.To:
				v.ignore(msg, "decline by %s, but only the recipient %s may decline", msg.Author.Short(), v.To.Short())
			case v.State != StatePledged:
				v.ignore(msg, "decline while the pledge is %s (cancel an accepted pledge instead)", v.State)
			case lateFor(msg, p.ExpirySlot) != nil:
				v.ignoreLate(msg, lateFor(msg, p.ExpirySlot), "the pledge expired")
			case msg.CreatedMs >= expiry:
				v.ignore(msg, "decline created %s, after the pledge expired", fmtMs(msg.CreatedMs))
			default:
				v.State, v.Closing = StateDeclined, msg.id
			}
		case *Cancel:
			switch {
			case !party:
				v.ignore(msg, "cancel by %s, who is not a party to the pledge", msg.Author.Short())
			case v.State != StatePledged && v.State != StateAccepted:
				v.ignore(msg, "cancel while the pledge is %s", v.State)
			case lateFor(msg, p.FromSlot) != nil:
				v.ignoreLate(msg, lateFor(msg, p.FromSlot), "the window started")
			case msg.CreatedMs >= windowStart:
				v.ignore(msg, "cancel created %s, after the window started at %s: too late to cancel", fmtMs(msg.CreatedMs), fmtMs(windowStart))
			default:
				v.State, v.Closing = StateCancelled, msg.id
			}
		case *Settle:
			switch {
			case !party:
				v.ignore(msg, "settle by %s, who is not a party to the pledge", msg.Author.Short())
			case v.State != StateAccepted && v.State != StateDisputed:
				v.ignore(msg, "settle while the pledge is %s", v.State)
			case msg.CreatedMs < windowEnd:
				v.ignore(msg, "settle created %s, before the window ends at %s", fmtMs(msg.CreatedMs), fmtMs(windowEnd))
			case x.FromSlot != v.Window.From || x.ToSlot != v.Window.To:
				v.ignore(msg, "settle covers slots %d..%d, the pledge %d..%d", x.FromSlot, x.ToSlot, v.Window.From, v.Window.To)
			default:
				if err := checkSettleCaps(v.Terms(), x); err != nil {
					v.ignore(msg, "%v", err)
					continue
				}
				if err := checkSettle1Reports(v, msg, x, ev); err != nil {
					v.Disputes = append(v.Disputes, err)
					v.State, v.Closing = StateDisputed, msg.id
					continue
				}
				v.State, v.Closing, v.Settlement = StateSettled, msg.id, x
			}
		case *Settle2:
			switch {
			case !party:
				v.ignore(msg, "settle2 by %s, who is not a party to the pledge", msg.Author.Short())
			case v.State != StateAccepted && v.State != StateDisputed:
				v.ignore(msg, "settle2 while the pledge is %s", v.State)
			case msg.CreatedMs < windowEnd:
				v.ignore(msg, "settle2 created %s, before the window ends at %s", fmtMs(msg.CreatedMs), fmtMs(windowEnd))
			case x.FromSlot != v.Window.From || x.ToSlot != v.Window.To:
				v.ignore(msg, "settle2 covers slots %d..%d, the pledge %d..%d", x.FromSlot, x.ToSlot, v.Window.From, v.Window.To)
			default:
				settles2 = append(settles2, msg)
			}
		}
	}
	if len(settles2) > 0 {
		if v.State == StateAccepted || v.State == StateDisputed {
			v.resolveSettles2(m, settles2, ev)
		} else {
			for _, msg := range settles2 {
				v.ignore(msg, "settle2 while the pledge is %s (by a version 1 settle)", v.State)
			}
		}
	}
	if v.State == StatePledged && now.UnixMilli() >= expiry {
		v.State = StateExpired
	}
	return v, nil
}

func checkSettleCaps(t Terms, s *Settle) error {
	for i, a := range s.AllocatedWh {
		slot := s.FromSlot + int64(i)
		p, acc := t.SlotWh(slot)
		if a > p || a > acc {
			return reject(ErrInvalidTransfer, "settle allocates %d Wh in slot %d, above pledged %d or accepted %d", a, slot, p, acc)
		}
	}
	return nil
}

func (v *PledgeView) ignore(m *Message, format string, args ...any) {
	v.Ignored = append(v.Ignored, reject(ErrInvalidTransfer, "message %s (%s) ignored for pledge %s: "+format,
		append([]any{m.id.Short(), m.Kind, v.ID.Short()}, args...)...))
}

// RefersTo returns the pledge id a lifecycle content (accept, decline,
// cancel, settle, settle2) refers to, or the zero id for other contents.
func RefersTo(c Content) ID { return refersTo(c) }

func refersTo(c Content) ID {
	switch x := c.(type) {
	case *Accept:
		return x.Pledge
	case *Decline:
		return x.Pledge
	case *Cancel:
		return x.Pledge
	case *Settle:
		return x.Pledge
	case *Settle2:
		return x.Pledge
	case *Seen:
		return x.Pledge
	}
	return ID{}
}
