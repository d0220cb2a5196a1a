package node

import (
	"context"
	"fmt"

	"github.com/commons-energy/commons/share"
)

// openSealed opens the sealed reports among msgs that name this household
// among their readers and records the plain report each carries in the
// ledger (docs/PROTOCOL.md §8.15), so settles naming them are recomputed
// from the figures. Others' and unreadable sealed reports are skipped: a
// sealed report that does not open is a neighbour's bad message, counted
// and logged, never an error of this household.
func (n *Node) openSealed(ctx context.Context, msgs []*share.Message) (opened int) {
	self := n.key.ID()
	for _, m := range msgs {
		if m.Kind != share.KindSealedReport {
			continue
		}
		c, err := m.Decode()
		if err != nil {
			continue // stored messages were verified; nothing to open
		}
		s, ok := c.(*share.SealedReport)
		if !ok || !s.Readable(self) {
			continue
		}
		r, err := s.Open(n.key)
		if err != nil {
			n.sealedFailures.Add(1)
			n.log.Warn("sealed report does not open: its figures cannot be used here", "id", m.ID().String(), "author", m.Author.String(), "reason", share.Reason(err), "err", err)
			continue
		}
		if err := n.led.PutOpenedReport(ctx, m.ID(), r); err != nil {
			n.log.Warn("record opened report", "id", m.ID().String(), "err", err)
			continue
		}
		opened++
	}
	return opened
}

// catchUpSealed opens every stored sealed report addressed to this
// household that is not opened yet: messages stored while the node was
// not running (by an import, or by an older program), or whose opening
// was interrupted.
func (n *Node) catchUpSealed(ctx context.Context) error {
	msgs, err := n.led.UnopenedSealed(ctx, n.key.ID())
	if err != nil {
		return err
	}
	if len(msgs) == 0 {
		return nil
	}
	got := n.openSealed(ctx, msgs)
	n.log.Info("opened stored sealed reports", "opened", got, "unopened", len(msgs)-got)
	return nil
}

// SealedFailures returns how many sealed reports addressed to this
// household did not open since Open (bad ciphertext, or a payload that
// disagrees with its commit or clear fields).
func (n *Node) SealedFailures() uint64 { return n.sealedFailures.Load() }

// sealOwnReport seals r to this household and the counterparties of every
// accepted (or settled, or disputed) pledge of views (this household's)
// whose window shares a slot with r, signs and stores it, and records the
// plain report as opened. When one of those counterparties may run a
// version 1 program (speaksVersion2), it signs r as a plain report
// instead, which that program can settle from.
func (n *Node) sealOwnReport(ctx context.Context, r *share.Report, views []*share.PledgeView) (*share.Message, error) {
	self := n.key.ID()
	w := share.SlotRange{From: r.FromSlot, To: r.FromSlot + int64(len(r.ExportWh))}
	var readers []share.HouseholdID
	for _, v := range views {
		switch v.State {
		case share.StateAccepted, share.StateSettled, share.StateDisputed:
		default:
			continue
		}
		if !overlaps(v.Window, w) {
			continue
		}
		for _, h := range []share.HouseholdID{v.From, v.To} {
			if h != self {
				readers = append(readers, h)
			}
		}
	}
	// A counterparty whose program may predate sealed reports could not
	// settle from one: report in clear for that window (§13.1).
	for _, h := range readers {
		if !n.speaksVersion2(ctx, h) {
			n.log.Info("reporting in clear: a counterparty has not said it reads sealed reports (an older commons)", "household", h.Short(), "from_slot", w.From, "to_slot", w.To)
			m, err := n.sign(ctx, r)
			if err != nil {
				return nil, err
			}
			return m, nil
		}
	}
	s, err := share.SealReport(n.key, readers, r)
	if err != nil {
		return nil, fmt.Errorf("report slots %d..%d: %w", w.From, w.To, err)
	}
	m, err := n.sign(ctx, s)
	if err != nil {
		return nil, err
	}
	if err := n.led.PutOpenedReport(ctx, m.ID(), r); err != nil {
		// Opened again at the next start (catchUpSealed).
		n.log.Warn("record own opened report", "id", m.ID().String(), "err", err)
	}
	return m, nil
}
