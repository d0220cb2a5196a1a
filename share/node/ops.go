package node

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/commons-energy/commons/ledger"
	"github.com/commons-energy/commons/share"
)

// MaxImportMessages bounds one import block.
const MaxImportMessages = 100_000

// AddNeighbour implements Household: it verifies the invite's signature,
// checks it is for this community and not this household's own, and adds
// the neighbour under alias (or the invite's name).
func (n *Node) AddNeighbour(ctx context.Context, invite, alias string) (Neighbour, error) {
	if err := n.writable("add neighbour"); err != nil {
		return Neighbour{}, err
	}
	iv, err := share.ParseInvite(invite)
	if err != nil {
		return Neighbour{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if iv.Household == n.key.ID() {
		return Neighbour{}, fmt.Errorf("%w: that is this household's own invite; paste the neighbour's (from 'commons id' on their box)", ErrInvalid)
	}
	if iv.CommunityID() != n.manifest.ID() {
		return Neighbour{}, fmt.Errorf("%w: the invite is for community %q (%d s slots, %s), this household is in %q (%d s slots, %s): both must use the same community settings",
			ErrInvalid, iv.Community.Name, iv.Community.SlotLen, iv.Community.Key, n.manifest.Name, n.manifest.SlotLen, n.manifest.Key)
	}
	name := iv.Name
	if alias != "" {
		if err := ValidateName(alias); err != nil {
			return Neighbour{}, fmt.Errorf("%w: --name: %w", ErrInvalid, err)
		}
		name = alias
	}
	if other, err := n.led.FindNeighbour(ctx, name); err == nil && other.ID != iv.Household {
		return Neighbour{}, fmt.Errorf("%w: the name %q is taken by neighbour %s; add this one with --name OTHER", ErrInvalid, name, other.ID.Short())
	}
	nb := ledger.Neighbour{ID: iv.Household, Name: name, Addresses: iv.Addrs, Invite: invite}
	if err := n.led.AddNeighbour(ctx, nb); err != nil {
		return Neighbour{}, err
	}
	return Neighbour{ID: iv.Household.String(), Name: name, Addresses: iv.Addrs}, nil
}

// findNeighbour resolves a name, id or id prefix.
func (n *Node) findNeighbour(ctx context.Context, nameOrID string) (ledger.Neighbour, error) {
	nb, err := n.led.FindNeighbour(ctx, nameOrID)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return nb, fmt.Errorf("%w: no neighbour called %q; see 'commons neighbours list' or add one with 'commons neighbours add INVITE'", ErrNotFound, nameOrID)
	case errors.Is(err, ledger.ErrAmbiguous):
		return nb, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nb, err
}

// RemoveNeighbour implements Household.
func (n *Node) RemoveNeighbour(ctx context.Context, nameOrID string) (Neighbour, error) {
	if err := n.writable("remove neighbour"); err != nil {
		return Neighbour{}, err
	}
	nb, err := n.findNeighbour(ctx, nameOrID)
	if err != nil {
		return Neighbour{}, err
	}
	if err := n.led.RemoveNeighbour(ctx, nb.ID); err != nil {
		return Neighbour{}, err
	}
	return Neighbour{ID: nb.ID.String(), Name: nb.Name, Addresses: nb.Addresses}, nil
}

// Neighbours implements Household.
func (n *Node) Neighbours(ctx context.Context) ([]Neighbour, error) {
	ns, err := n.led.Neighbours(ctx)
	if err != nil {
		return nil, err
	}
	statuses, err := n.statuses(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Neighbour, 0, len(ns))
	for _, nb := range ns {
		v := Neighbour{ID: nb.ID.String(), Name: nb.Name, Addresses: nb.Addresses, Status: statuses[nb.ID]}
		if !nb.LastSeen.IsZero() {
			t := nb.LastSeen
			v.LastSeen = &t
		}
		out = append(out, v)
	}
	return out, nil
}

// statuses returns the latest signed status of each author.
func (n *Node) statuses(ctx context.Context) (map[share.HouseholdID]*NeighbourStatus, error) {
	ms, err := n.led.Statuses(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[share.HouseholdID]*NeighbourStatus, len(ms))
	for author, m := range ms {
		c, err := m.Decode()
		if err != nil {
			continue // stored statuses were verified; ledger verify reports a damaged one
		}
		if st, ok := c.(*share.Status); ok {
			out[author] = &NeighbourStatus{SurplusW: st.SurplusW - st.NeedW, Time: m.Created()}
		}
	}
	return out, nil
}

// names maps household ids to display names: neighbours (also removed
// ones) and this household.
func (n *Node) names(ctx context.Context) (map[share.HouseholdID]string, error) {
	ns, err := n.led.AllNeighbours(ctx)
	if err != nil {
		return nil, err
	}
	m := map[share.HouseholdID]string{n.key.ID(): n.cfg.Name}
	for _, nb := range ns {
		m[nb.ID] = nb.Name
	}
	return m, nil
}

// Pledge implements Household: it signs a pledge of req.EnergyWh over the
// slots covering [req.Start, req.End) to the neighbour req.To and stores
// it durably before returning.
func (n *Node) Pledge(ctx context.Context, req PledgeRequest) (Pledge, error) {
	if err := n.writable("pledge"); err != nil {
		return Pledge{}, err
	}
	if req.EnergyWh < 1 || req.EnergyWh > MaxPledgeWh {
		return Pledge{}, fmt.Errorf("%w: energy %d Wh is out of range; pledge 1 Wh to %d Wh", ErrInvalid, req.EnergyWh, MaxPledgeWh)
	}
	nb, err := n.findNeighbour(ctx, req.To)
	if err != nil {
		return Pledge{}, err
	}
	r, err := n.manifest.Align(req.Start, req.End)
	if err != nil {
		return Pledge{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	now := n.opts.Now()
	start, end := n.manifest.Times(r)
	if !start.After(now) {
		next := n.manifest.SlotStart(n.manifest.SlotOf(now) + 1).In(n.loc)
		return Pledge{}, fmt.Errorf("%w: the window starts at %s, which is not in the future; a pledge must be made before its window (next slot starts %s)",
			ErrInvalid, start.In(n.loc).Format("2006-01-02 15:04"), next.Format("15:04"))
	}
	var nonce [4]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return Pledge{}, fmt.Errorf("pledge nonce: %w", err)
	}
	c := &share.Pledge{To: nb.ID, FromSlot: r.From, ToSlot: r.To, EnergyWh: req.EnergyWh, ExpirySlot: r.From, Nonce: binary.BigEndian.Uint32(nonce[:])}
	m, err := n.sign(ctx, c)
	if err != nil {
		return Pledge{}, err
	}
	v, err := share.FoldPledge(n.manifest, m, nil, now)
	if err != nil {
		return Pledge{}, err
	}
	_ = end
	return n.pledgeJSON(v, m, map[share.HouseholdID]string{n.key.ID(): n.cfg.Name, nb.ID: nb.Name}), nil
}

// pledgeJSON converts a folded view into the CLI's shape.
func (n *Node) pledgeJSON(v *share.PledgeView, m *share.Message, names map[share.HouseholdID]string) Pledge {
	start, end := n.manifest.Times(v.Window)
	p := Pledge{
		ID: v.ID.String(), From: v.From.String(), To: v.To.String(),
		FromName: nameOf(names, v.From), ToName: nameOf(names, v.To),
		EnergyWh: v.PledgedWh,
		Window:   PledgeWindow{Start: start.In(n.loc), End: end.In(n.loc)},
		State:    string(v.State),
		Outgoing: v.From == n.key.ID(),
		Created:  m.Created().In(n.loc),
	}
	if v.State == share.StateAccepted || v.State == share.StateSettled || (v.AcceptedWh > 0) {
		a := v.AcceptedWh
		p.AcceptedWh = &a
	}
	if v.Settlement != nil {
		d := v.Settlement.TotalWh
		p.DeliveredWh = &d
	}
	return p
}

func nameOf(names map[share.HouseholdID]string, id share.HouseholdID) string {
	if s, ok := names[id]; ok {
		return s
	}
	return id.Short()
}

// pledgeViews folds every stored pledge this household is a party to,
// newest first, with the pledge messages.
func (n *Node) pledgeViews(ctx context.Context) ([]*share.PledgeView, map[share.ID]*share.Message, error) {
	msgs, err := n.messagesOfKinds(ctx, share.KindPledge, share.KindAccept, share.KindDecline, share.KindCancel, share.KindSettle)
	if err != nil {
		return nil, nil, err
	}
	self := n.key.ID()
	pledges := map[share.ID]*share.Message{}
	var order []share.ID
	related := map[share.ID][]*share.Message{}
	for _, m := range msgs {
		c, err := m.Decode()
		if err != nil {
			continue // stored messages were verified; an undecodable one shows in ledger verify
		}
		if p, ok := c.(*share.Pledge); ok {
			if m.Author == self || p.To == self {
				pledges[m.ID()] = m
				order = append(order, m.ID())
			}
			continue
		}
		ref := share.RefersTo(c)
		related[ref] = append(related[ref], m)
	}
	now := n.opts.Now()
	views := make([]*share.PledgeView, 0, len(order))
	for i := len(order) - 1; i >= 0; i-- {
		v, err := share.FoldPledge(n.manifest, pledges[order[i]], related[order[i]], now)
		if err != nil {
			continue
		}
		views = append(views, v)
	}
	return views, pledges, nil
}

// Pledges implements Household: every pledge to or from this household,
// newest first; openOnly keeps pledged and accepted ones.
func (n *Node) Pledges(ctx context.Context, openOnly bool) ([]Pledge, error) {
	views, msgs, err := n.pledgeViews(ctx)
	if err != nil {
		return nil, err
	}
	names, err := n.names(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Pledge, 0, len(views))
	for _, v := range views {
		if openOnly && v.State.Final() {
			continue
		}
		out = append(out, n.pledgeJSON(v, msgs[v.ID], names))
	}
	return out, nil
}

// findView resolves a full pledge id or a unique prefix of at least 4 hex
// digits.
func (n *Node) findView(ctx context.Context, id string) (*share.PledgeView, *share.Message, error) {
	s := strings.ToLower(strings.TrimSpace(id))
	if len(s) < 4 || strings.Trim(s, "0123456789abcdef") != "" || len(s) > 64 {
		return nil, nil, fmt.Errorf("%w: pledge id %q: give the hex id (at least 4 digits) that 'commons pledges' shows", ErrInvalid, id)
	}
	views, msgs, err := n.pledgeViews(ctx)
	if err != nil {
		return nil, nil, err
	}
	var found []*share.PledgeView
	for _, v := range views {
		if strings.HasPrefix(v.ID.String(), s) {
			found = append(found, v)
		}
	}
	switch len(found) {
	case 0:
		return nil, nil, fmt.Errorf("%w: no pledge %s to or from this household; see 'commons pledges' (messages from a neighbour may need 'commons import' first)", ErrNotFound, s)
	case 1:
		return found[0], msgs[found[0].ID], nil
	}
	return nil, nil, fmt.Errorf("%w: pledge id %s matches %d pledges; give more digits", ErrInvalid, s, len(found))
}

// FindPledge implements Household.
func (n *Node) FindPledge(ctx context.Context, id string) (Pledge, error) {
	v, m, err := n.findView(ctx, id)
	if err != nil {
		return Pledge{}, err
	}
	names, err := n.names(ctx)
	if err != nil {
		return Pledge{}, err
	}
	return n.pledgeJSON(v, m, names), nil
}

// Accept implements Household: the recipient accepts the whole pledge.
func (n *Node) Accept(ctx context.Context, id string) (Pledge, error) {
	return n.answer(ctx, "accept", id, func(v *share.PledgeView) (share.Content, error) {
		if v.To != n.key.ID() {
			return nil, fmt.Errorf("%w: pledge %s is from this household; only its recipient can accept it", ErrInvalid, v.ID.Short())
		}
		if v.State != share.StatePledged {
			return nil, fmt.Errorf("%w: pledge %s is %s; only a pledged (unanswered) pledge can be accepted", ErrInvalid, v.ID.Short(), v.State)
		}
		return &share.Accept{Pledge: v.ID, EnergyWh: v.PledgedWh}, nil
	})
}

// Decline implements Household.
func (n *Node) Decline(ctx context.Context, id string) (Pledge, error) {
	return n.answer(ctx, "decline", id, func(v *share.PledgeView) (share.Content, error) {
		if v.To != n.key.ID() {
			return nil, fmt.Errorf("%w: pledge %s is from this household; only its recipient can decline it (use cancel)", ErrInvalid, v.ID.Short())
		}
		if v.State != share.StatePledged {
			return nil, fmt.Errorf("%w: pledge %s is %s; only a pledged (unanswered) pledge can be declined", ErrInvalid, v.ID.Short(), v.State)
		}
		return &share.Decline{Pledge: v.ID}, nil
	})
}

// Cancel implements Household: either party withdraws before the window.
func (n *Node) Cancel(ctx context.Context, id string) (Pledge, error) {
	return n.answer(ctx, "cancel", id, func(v *share.PledgeView) (share.Content, error) {
		if v.State != share.StatePledged && v.State != share.StateAccepted {
			return nil, fmt.Errorf("%w: pledge %s is %s; only a pledged or accepted pledge can be cancelled", ErrInvalid, v.ID.Short(), v.State)
		}
		if start := n.manifest.SlotStart(v.Window.From); !n.opts.Now().Before(start) {
			return nil, fmt.Errorf("%w: pledge %s's window started at %s; a pledge can be cancelled only before its window", ErrInvalid, v.ID.Short(), start.In(n.loc).Format("2006-01-02 15:04"))
		}
		return &share.Cancel{Pledge: v.ID}, nil
	})
}

// answer signs the lifecycle message build returns for pledge id and
// returns the pledge's new state.
func (n *Node) answer(ctx context.Context, verb, id string, build func(*share.PledgeView) (share.Content, error)) (Pledge, error) {
	if err := n.writable(verb); err != nil {
		return Pledge{}, err
	}
	v, _, err := n.findView(ctx, id)
	if err != nil {
		return Pledge{}, err
	}
	if v.From != n.key.ID() && v.To != n.key.ID() {
		return Pledge{}, fmt.Errorf("%w: pledge %s is not to or from this household", ErrInvalid, v.ID.Short())
	}
	if v.State == share.StatePledged && !n.opts.Now().Before(n.manifest.SlotStart(v.ExpirySlot)) {
		v.State = share.StateExpired
	}
	c, err := build(v)
	if err != nil {
		return Pledge{}, err
	}
	if _, err := n.sign(ctx, c); err != nil {
		return Pledge{}, err
	}
	return n.FindPledge(ctx, v.ID.String())
}

// ExportMessages implements Household: this household's own messages
// after since ("" = all) as one armored block.
func (n *Node) ExportMessages(ctx context.Context, w io.Writer, since string) (int, error) {
	raws, err := n.ownMessages(ctx, since)
	if err != nil {
		return 0, err
	}
	if err := share.Armor(w, raws); err != nil {
		return 0, fmt.Errorf("write messages: %w", err)
	}
	return len(raws), nil
}

// Import implements Household: it reads one armored block, verifies each
// message and stores the good ones durably; each bad one is reported with
// its reason and stored nowhere.
func (n *Node) Import(ctx context.Context, r io.Reader) (ImportReport, error) {
	if err := n.writable("import"); err != nil {
		return ImportReport{}, err
	}
	raws, err := share.Dearmor(r, MaxImportMessages)
	if err != nil {
		return ImportReport{}, fmt.Errorf("%w: %w; nothing was imported", ErrIntegrity, err)
	}
	res, err := n.led.Append(ctx, raws...)
	if err != nil {
		return ImportReport{}, err
	}
	var rep ImportReport
	for i, r := range res {
		switch r.Outcome {
		case ledger.Stored, ledger.Latest:
			rep.Added++
		case ledger.Duplicate, ledger.Older:
			rep.Duplicates++
		default:
			rj := Rejection{Index: i + 1, Reason: reasonText(r)}
			if r.Message != nil {
				rj.ID = r.Message.ID().String()
			}
			rep.Rejected = append(rep.Rejected, rj)
		}
	}
	return rep, nil
}

func reasonText(r ledger.Result) string {
	msg := "rejected"
	if r.Err != nil {
		msg = r.Err.Error()
	}
	if r.Outcome == ledger.Forked {
		msg = "fork: " + msg + " (kept as proof; the author's feed is frozen)"
	}
	return fmt.Sprintf("%s [%s]", msg, ledger.Reason(r.Err))
}

// Status implements Household.
func (n *Node) Status(ctx context.Context) (Status, error) {
	now := n.opts.Now()
	tot, err := n.led.Today(ctx, now, n.loc)
	if err != nil {
		return Status{}, err
	}
	ns, err := n.led.Neighbours(ctx)
	if err != nil {
		return Status{}, err
	}
	ps, err := n.Pledges(ctx, true)
	if err != nil {
		return Status{}, err
	}
	st := Status{
		Meter:       MeterState{Port: n.cfg.Meter.Port, Protocol: n.cfg.Meter.Protocol},
		Today:       Today{ImportWh: tot.ImportWh, ExportWh: tot.ExportWh},
		Neighbours:  len(ns),
		OpenPledges: len(ps),
	}
	if t, ok := n.lastAggregated(ctx); ok {
		st.Meter.LastTelegram = &t
		st.Meter.Online = now.Sub(t) < meterOfflineAfter
	}
	return st, nil
}

// meterOfflineAfter is how old the last aggregated reading may be for the
// meter to count as online (aggregates are written about once a minute).
const meterOfflineAfter = 3 * time.Minute

// lastAggregated returns the time of the last meter reading the
// aggregates hold.
func (n *Node) lastAggregated(ctx context.Context) (time.Time, bool) {
	var ms int64
	if err := n.led.DB().QueryRowContext(ctx, `SELECT time_ms FROM meter_baseline WHERE id = 1`).Scan(&ms); err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms).In(n.loc), true
}
