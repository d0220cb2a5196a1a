package node

import (
	"context"

	"github.com/commons-energy/commons/share"
)

// noteLate writes a seen message (docs/PROTOCOL.md §8.14, §9.1) for each
// message in msgs that the other party of one of this household's pledges
// dated before a deadline this household is protected by, but that this
// box stored only after it: a recipient's accept or decline of our pledge
// after its expiry, or the other party's cancel after the window started.
// The seen says how much of that party's feed this box held when the
// deadline passed, which makes the message late for every reader. It is
// best effort: a failure is logged and the message stays judged by its
// author's clock.
func (n *Node) noteLate(ctx context.Context, msgs []*share.Message) {
	if n.writable("note a late message") != nil {
		return
	}
	self := n.key.ID()
	var written map[seenKey]bool // (pledge, slot) already covered by one of our seens
	for _, m := range msgs {
		if m.Author == self {
			continue
		}
		switch m.Kind {
		case share.KindAccept, share.KindDecline, share.KindCancel:
		default:
			continue
		}
		c, err := m.Decode()
		if err != nil {
			continue
		}
		pid := share.RefersTo(c)
		raw, err := n.led.Message(ctx, pid)
		if err != nil || raw == nil {
			continue // not a pledge this box holds: nothing it could be late for
		}
		pm, err := share.Parse(raw)
		if err != nil {
			continue
		}
		pc, err := pm.Decode()
		p, ok := pc.(*share.Pledge)
		if err != nil || !ok {
			continue
		}
		var slot int64
		switch {
		case m.Kind != share.KindCancel && pm.Author == self && m.Author == p.To:
			slot = p.ExpirySlot
		case m.Kind == share.KindCancel && (pm.Author == self && m.Author == p.To || p.To == self && m.Author == pm.Author):
			slot = p.FromSlot
		default:
			continue
		}
		deadline := n.manifest.SlotStartMs(slot)
		if m.CreatedMs >= deadline {
			continue // late by its own date already
		}
		got, ok, err := n.led.ReceivedMs(ctx, m.ID())
		if err != nil || !ok || got < deadline {
			continue
		}
		if written == nil {
			if written, err = n.ownSeens(ctx); err != nil {
				n.log.Warn("could not read this household's seen messages", "err", err)
				return
			}
		}
		key := seenKey{pid, slot}
		if written[key] {
			continue
		}
		held, err := n.led.HeldBefore(ctx, m.Author, deadline)
		if err != nil {
			n.log.Warn("could not note a late message", "message", m.ID().Short(), "err", err)
			continue
		}
		if held.Seq >= m.Seq {
			continue
		}
		if _, err := n.sign(ctx, &share.Seen{Pledge: pid, Slot: slot, Seq: held.Seq, Head: held.ID}); err != nil {
			n.log.Warn("could not note a late message", "message", m.ID().Short(), "err", err)
			continue
		}
		written[key] = true
		n.log.Info("a neighbour's message dated before its deadline arrived after it: noted as late",
			"message", m.ID().Short(), "kind", m.Kind.String(), "pledge", pid.Short(), "from", m.Author.Short(),
			"held_seq", held.Seq)
	}
}

// seenKey is a deadline of a pledge: its id and the deadline's slot.
type seenKey struct {
	pledge share.ID
	slot   int64
}

// ownSeens returns the (pledge, slot) pairs this household has written a
// seen message for.
func (n *Node) ownSeens(ctx context.Context) (map[seenKey]bool, error) {
	msgs, err := n.messagesOfKinds(ctx, share.KindSeen)
	if err != nil {
		return nil, err
	}
	out := map[seenKey]bool{}
	for _, m := range msgs {
		if m.Author != n.key.ID() {
			continue
		}
		if c, err := m.Decode(); err == nil {
			if s, ok := c.(*share.Seen); ok {
				out[seenKey{s.Pledge, s.Slot}] = true
			}
		}
	}
	return out, nil
}
