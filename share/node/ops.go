package node

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/commons-energy/commons/ledger"
	"github.com/commons-energy/commons/share"
	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/input"
	"github.com/commons-energy/commons/share/relay"
)

// MaxImportMessages bounds one import block.
const MaxImportMessages = 100_000

// AddNeighbour implements household.Household: it verifies the invite's signature,
// checks it is for this community and not this household's own, and adds
// the neighbour under alias (or the invite's name).
func (n *Node) AddNeighbour(ctx context.Context, invite, alias string) (household.Neighbour, error) {
	if err := n.writable("add neighbour"); err != nil {
		return household.Neighbour{}, err
	}
	iv, err := share.ParseInvite(invite)
	if err != nil {
		return household.Neighbour{}, fmt.Errorf("%w: %w", household.ErrInvalid, err)
	}
	if iv.Household == n.key.ID() {
		return household.Neighbour{}, fmt.Errorf("%w: that is this household's own invite; paste the neighbour's (from 'commons id' on their box)", household.ErrInvalid)
	}
	if iv.CommunityID() != n.manifest.ID() && iv.Community.Genesis == "" && n.manifest.Genesis != "" {
		// docs/PROTOCOL.md §13: version 1 and version 2 communities do
		// not mix, and a version 1 program cannot read this one's invites.
		return household.Neighbour{}, fmt.Errorf("%w: %s's invite is for a version 1 community (%s, made by commons before version 2), this household is in a version 2 community (%s): they cannot mix; %s can upgrade commons and join this one with commons init --join INVITE (your invite, from commons id), or this box can join theirs the same way",
			household.ErrInvalid, iv.Name, describeCommunity(iv.Community), describeCommunity(n.manifest), iv.Name)
	}
	if iv.CommunityID() != n.manifest.ID() {
		return household.Neighbour{}, fmt.Errorf("%w: the invite is for community %s, this household is in community %s: a household belongs to one community; create it with commons init --join INVITE to join the inviter's",
			household.ErrInvalid, describeCommunity(iv.Community), describeCommunity(n.manifest))
	}
	name := iv.Name
	if alias != "" {
		if err := ValidateName(alias); err != nil {
			return household.Neighbour{}, fmt.Errorf("%w: --name: %w", household.ErrInvalid, err)
		}
		name = alias
	}
	if other, err := n.led.FindNeighbour(ctx, name); err == nil && other.ID != iv.Household {
		return household.Neighbour{}, fmt.Errorf("%w: the name %q is taken by neighbour %s; add this one with --name OTHER", household.ErrInvalid, name, other.ID.Short())
	}
	nb := ledger.Neighbour{ID: iv.Household, Name: name, Addresses: iv.Addrs, Invite: invite}
	if err := n.led.AddNeighbour(ctx, nb); err != nil {
		return household.Neighbour{}, err
	}
	return household.Neighbour{ID: iv.Household.String(), Name: name, Addresses: iv.Addrs}, nil
}

// describeCommunity names a community for a message: its name, settings
// and the start of its id, which tells two communities with the same
// settings apart.
func describeCommunity(m share.Manifest) string {
	return fmt.Sprintf("%q (%d s slots, %s, id %s)", m.Name, m.SlotLen, m.Key, m.ID().Short())
}

// findNeighbour resolves a name, id or id prefix.
func (n *Node) findNeighbour(ctx context.Context, nameOrID string) (ledger.Neighbour, error) {
	nb, err := n.led.FindNeighbour(ctx, nameOrID)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return nb, fmt.Errorf("%w: no neighbour called %q; see 'commons neighbours list' or add one with 'commons neighbours add INVITE'", household.ErrNotFound, nameOrID)
	case errors.Is(err, ledger.ErrAmbiguous):
		return nb, fmt.Errorf("%w: %w", household.ErrInvalid, err)
	}
	return nb, err
}

// RemoveNeighbour implements household.Household.
func (n *Node) RemoveNeighbour(ctx context.Context, nameOrID string) (household.Neighbour, error) {
	if err := n.writable("remove neighbour"); err != nil {
		return household.Neighbour{}, err
	}
	nb, err := n.findNeighbour(ctx, nameOrID)
	if err != nil {
		return household.Neighbour{}, err
	}
	if err := n.led.RemoveNeighbour(ctx, nb.ID); err != nil {
		return household.Neighbour{}, err
	}
	return household.Neighbour{ID: nb.ID.String(), Name: nb.Name, Addresses: nb.Addresses}, nil
}

// Neighbours implements household.Household: every neighbour with its
// latest status, storage use, fork state and what passed between us.
func (n *Node) Neighbours(ctx context.Context) ([]household.Neighbour, error) {
	ns, err := n.led.Neighbours(ctx)
	if err != nil {
		return nil, err
	}
	statuses, err := n.statuses(ctx)
	if err != nil {
		return nil, err
	}
	usage, err := n.led.Usage(ctx)
	if err != nil {
		return nil, err
	}
	bal, err := n.led.Balances(ctx, n.loc)
	if err != nil {
		return nil, err
	}
	byID := map[share.HouseholdID]ledger.Balance{}
	for _, x := range bal {
		byID[x.Neighbour] = x
	}
	acks, err := n.led.Acks(ctx)
	if err != nil {
		return nil, err
	}
	var links map[share.HouseholdID]household.Link
	if r, ok := n.opts.Transport.(LinkReporter); ok {
		links = r.Links()
	}
	out := make([]household.Neighbour, 0, len(ns))
	for _, nb := range ns {
		v := household.Neighbour{ID: nb.ID.String(), Name: nb.Name, Addresses: nb.Addresses, Status: statuses[nb.ID],
			StoredBytes: usage[nb.ID].StoredBytes, Refused: usage[nb.ID].Refused,
			Frozen: nb.Frozen(), ForkSeq: nb.ForkSeq}
		if v.Refused == nil {
			v.Refused = map[string]int64{}
		}
		x := byID[nb.ID]
		v.OpenPledges, v.GivenWh, v.ReceivedWh, v.MonthGivenWh, v.MonthReceivedWh =
			x.OpenPledges, x.GivenWh, x.ReceivedWh, x.MonthGivenWh, x.MonthReceivedWh
		switch {
		case n.speaksVersion2(ctx, nb.ID):
			v.Protocol = 2
		case v.StoredBytes > 0:
			v.Protocol = 1
		}
		if v.Frozen {
			v.Problem = fmt.Sprintf("signed two different messages with sequence number %d: its feed is frozen", v.ForkSeq)
		}
		if !nb.LastSeen.IsZero() {
			t := nb.LastSeen
			v.LastSeen = &t
		}
		v.Acknowledged = acks[nb.ID].Seq
		if l, ok := links[nb.ID]; ok {
			if !l.LastContact.IsZero() {
				t := l.LastContact
				v.LastContact = &t
			}
			if !l.UnreachableSince.IsZero() {
				t := l.UnreachableSince
				v.UnreachableSince, v.LinkError = &t, l.LastError
			}
		}
		out = append(out, v)
	}
	return out, nil
}

// statuses returns the latest signed status of each author.
func (n *Node) statuses(ctx context.Context) (map[share.HouseholdID]*household.NeighbourStatus, error) {
	ms, err := n.led.Statuses(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[share.HouseholdID]*household.NeighbourStatus, len(ms))
	for author, m := range ms {
		c, err := m.Decode()
		if err != nil {
			continue // stored statuses were verified; ledger verify reports a damaged one
		}
		if st, ok := c.(*share.Status); ok {
			out[author] = &household.NeighbourStatus{SurplusW: st.SurplusW - st.NeedW, Time: m.Created()}
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

// pledge signs a pledge of req.EnergyWh over the
// slots covering [req.Start, req.End) to the neighbour req.To and stores
// it durably before returning.
func (n *Node) pledge(ctx context.Context, req household.PledgeRequest) (household.Pledge, error) {
	if err := n.writable("pledge"); err != nil {
		return household.Pledge{}, err
	}
	if req.EnergyWh < 1 || req.EnergyWh > input.MaxPledgeWh {
		return household.Pledge{}, fmt.Errorf("%w: energy %d Wh is out of range; pledge 1 Wh to %d Wh", household.ErrInvalid, req.EnergyWh, input.MaxPledgeWh)
	}
	nb, err := n.findNeighbour(ctx, req.To)
	if errors.Is(err, household.ErrNotFound) {
		if yerr := n.notYou(req.To); yerr != nil {
			return household.Pledge{}, yerr
		}
	}
	if err != nil {
		return household.Pledge{}, err
	}
	r, err := n.manifest.Align(req.Start, req.End)
	if err != nil {
		return household.Pledge{}, fmt.Errorf("%w: %w", household.ErrInvalid, err)
	}
	start, end := n.manifest.Times(r)
	params := fmt.Sprintf("to=%s energy_wh=%d slots=%d-%d", nb.ID, req.EnergyWh, r.From, r.To)
	if req.IdempotencyKey != "" {
		if p, done, err := n.idempotent(ctx, req.IdempotencyKey, params); done || err != nil {
			return p, err
		}
	}
	now := n.opts.Now()
	if !req.Force {
		if err := n.checkPlausible(req.EnergyWh, start, end); err != nil {
			return household.Pledge{}, err
		}
	}
	if !start.After(now) {
		next := n.manifest.SlotStart(n.manifest.SlotOf(now) + 1).In(n.loc)
		return household.Pledge{}, fmt.Errorf("%w: the window starts at %s, which is not in the future; a pledge must be made before its window (next slot starts %s)",
			household.ErrInvalid, start.In(n.loc).Format("2006-01-02 15:04"), next.Format("15:04"))
	}
	var nonce [4]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return household.Pledge{}, fmt.Errorf("pledge nonce: %w", err)
	}
	c := &share.Pledge{To: nb.ID, FromSlot: r.From, ToSlot: r.To, EnergyWh: req.EnergyWh, ExpirySlot: r.From, Nonce: binary.BigEndian.Uint32(nonce[:])}
	m, err := n.sign(ctx, c)
	if err != nil {
		return household.Pledge{}, err
	}
	if req.IdempotencyKey != "" {
		if err := n.led.PutIdempotencyKey(ctx, req.IdempotencyKey, ledger.Idempotent{Request: params, Message: m.ID().String()}); err != nil {
			return household.Pledge{}, err
		}
	}
	return n.FindPledge(ctx, m.ID().String())
}

// MaxIdempotencyKey bounds the length of a pledge's idempotency key.
const MaxIdempotencyKey = 200

// idempotent looks key up: done is true when key was already used for a
// pledge with the same params, which is returned; a key used for other
// params is ErrInvalid naming the first pledge.
func (n *Node) idempotent(ctx context.Context, key, params string) (p household.Pledge, done bool, err error) {
	if len(key) > MaxIdempotencyKey {
		return household.Pledge{}, false, fmt.Errorf("%w: --idempotency-key is %d bytes long; use at most %d", household.ErrInvalid, len(key), MaxIdempotencyKey)
	}
	first, ok, err := n.led.IdempotencyKey(ctx, key)
	if err != nil || !ok {
		return household.Pledge{}, false, err
	}
	p, err = n.FindPledge(ctx, first.Message)
	if err != nil {
		return household.Pledge{}, false, fmt.Errorf("idempotency key %q: its pledge %s: %w", key, first.Message, err)
	}
	if first.Request != params {
		return household.Pledge{}, false, fmt.Errorf("%w: idempotency key %q was already used for pledge %s (%s to %s, %s); use a new key for a different pledge",
			household.ErrInvalid, key, p.ID, input.FormatEnergy(p.EnergyWh), p.ToName, p.Window.Start.Format("2006-01-02 15:04")+"-"+p.Window.End.Format("15:04"))
	}
	return p, true, nil
}

// pledgeJSON converts a ledger pledge view into the CLI's shape.
func (n *Node) pledgeJSON(p ledger.Pledge) household.Pledge {
	out := household.Pledge{
		ID: p.ID.String(), From: p.From.String(), To: p.To.String(),
		FromName: n.nameOr(p.FromName, p.From), ToName: n.nameOr(p.ToName, p.To),
		EnergyWh: p.PledgedWh,
		Window:   household.PledgeWindow{Start: p.Start.In(n.loc), End: p.End.In(n.loc), FromSlot: p.Window.From, ToSlot: p.Window.To},
		State:    household.PledgeState(p.State),
		Verified: household.VerifyOK, // the ledger stores verified messages only
		Outgoing: p.Outgoing,
		Created:  p.Created.In(n.loc),
	}
	// A cancelled pledge shows no accepted amount: nothing of it stands.
	if !p.Accept.IsZero() && p.State != share.StateCancelled {
		a := p.AcceptedWh
		out.AcceptedWh = &a
	}
	if p.DeliveredWh.OK {
		d := p.DeliveredWh.V
		out.DeliveredWh = &d
	}
	out.Delivered = p.Delivered
	if p.State == share.StateDisputed {
		reasons := make([]string, len(p.Disputes))
		for i, e := range p.Disputes {
			reasons[i] = e.Error()
		}
		out.Dispute = strings.Join(reasons, "; ")
	}
	if p.LimitedBy != "" {
		l := string(p.LimitedBy)
		out.LimitedBy = &l
		for _, sl := range p.SlotLimits {
			out.SlotLimits = append(out.SlotLimits, string(sl))
		}
	}
	if p.Settlement != nil {
		out.SlotWh = slices.Clone(p.Settlement.AllocatedWh)
	}
	return out
}

// Acknowledged records that neighbour's box holds this household's feed
// up to seq (it answered a push, or reported that head), and tells the
// front ends when that delivered something new.
func (n *Node) Acknowledged(ctx context.Context, neighbour share.HouseholdID, seq uint64) error {
	changed, err := n.led.RecordAck(ctx, neighbour, seq)
	if err != nil {
		return err
	}
	if changed {
		n.publish(household.Event{Kind: household.EventState})
	}
	return nil
}

// nameOr returns name, or this household's name, or a short id.
func (n *Node) nameOr(name string, id share.HouseholdID) string {
	switch {
	case name != "":
		return name
	case id == n.key.ID():
		return n.cfg.Name
	}
	return id.Short()
}

// Pledges implements household.Household: every pledge to or from this household,
// newest first; openOnly keeps pledged and accepted ones.
func (n *Node) Pledges(ctx context.Context, openOnly bool) ([]household.Pledge, error) {
	ps, err := n.led.Pledges(ctx, ledger.PledgeFilter{OpenOnly: openOnly, Involving: n.key.ID()})
	if err != nil {
		return nil, err
	}
	out := make([]household.Pledge, len(ps))
	for i, p := range ps {
		out[i] = n.pledgeJSON(p)
	}
	return out, nil
}

// findPledge resolves a full pledge id or a unique prefix of at least 4
// hex digits.
func (n *Node) findPledge(ctx context.Context, id string) (ledger.Pledge, error) {
	s := strings.ToLower(strings.TrimSpace(id))
	if len(s) < 4 || strings.Trim(s, "0123456789abcdef") != "" || len(s) > 64 {
		return ledger.Pledge{}, fmt.Errorf("%w: pledge id %q: give the hex id (at least 4 digits) that 'commons pledges' shows", household.ErrInvalid, id)
	}
	p, err := n.led.FindPledge(ctx, s)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return p, fmt.Errorf("%w: no pledge %s is stored here; see 'commons pledges' (a neighbour's pledge needs 'commons import' first)", household.ErrNotFound, s)
	case errors.Is(err, ledger.ErrAmbiguous):
		return p, fmt.Errorf("%w: %w", household.ErrInvalid, err)
	}
	return p, err
}

// FindPledge implements household.Household.
func (n *Node) FindPledge(ctx context.Context, id string) (household.Pledge, error) {
	p, err := n.findPledge(ctx, id)
	if err != nil {
		return household.Pledge{}, err
	}
	return n.pledgeJSON(p), nil
}

// Accept implements household.Household: the recipient accepts the whole pledge.
func (n *Node) Accept(ctx context.Context, id string) (household.Pledge, error) {
	return n.answer(ctx, "accept", id, func(v *share.PledgeView) (share.Content, error) {
		if v.To != n.key.ID() {
			return nil, fmt.Errorf("%w: pledge %s is from this household; only its recipient can accept it", household.ErrInvalid, v.ID.Short())
		}
		if v.State != share.StatePledged {
			return nil, fmt.Errorf("%w: pledge %s is %s; only a pledged (unanswered) pledge can be accepted", household.ErrInvalid, v.ID.Short(), v.State)
		}
		return &share.Accept{Pledge: v.ID, EnergyWh: v.PledgedWh}, nil
	})
}

// Decline implements household.Household.
func (n *Node) Decline(ctx context.Context, id string) (household.Pledge, error) {
	return n.answer(ctx, "decline", id, func(v *share.PledgeView) (share.Content, error) {
		if v.To != n.key.ID() {
			return nil, fmt.Errorf("%w: pledge %s is from this household; only its recipient can decline it (use cancel)", household.ErrInvalid, v.ID.Short())
		}
		if v.State != share.StatePledged {
			return nil, fmt.Errorf("%w: pledge %s is %s; only a pledged (unanswered) pledge can be declined", household.ErrInvalid, v.ID.Short(), v.State)
		}
		return &share.Decline{Pledge: v.ID}, nil
	})
}

// Cancel implements household.Household: either party withdraws before the window.
func (n *Node) Cancel(ctx context.Context, id string) (household.Pledge, error) {
	return n.answer(ctx, "cancel", id, func(v *share.PledgeView) (share.Content, error) {
		if v.State != share.StatePledged && v.State != share.StateAccepted {
			return nil, fmt.Errorf("%w: pledge %s is %s; only a pledged or accepted pledge can be cancelled", household.ErrInvalid, v.ID.Short(), v.State)
		}
		if start := n.manifest.SlotStart(v.Window.From); !n.opts.Now().Before(start) {
			return nil, fmt.Errorf("%w: pledge %s's window started at %s; a pledge can be cancelled only before its window", household.ErrInvalid, v.ID.Short(), start.In(n.loc).Format("2006-01-02 15:04"))
		}
		return &share.Cancel{Pledge: v.ID}, nil
	})
}

// answer signs the lifecycle message build returns for pledge id and
// returns the pledge's new state.
func (n *Node) answer(ctx context.Context, verb, id string, build func(*share.PledgeView) (share.Content, error)) (household.Pledge, error) {
	if err := n.writable(verb); err != nil {
		return household.Pledge{}, err
	}
	p, err := n.findPledge(ctx, id)
	if err != nil {
		return household.Pledge{}, err
	}
	v := &p.PledgeView
	if v.From != n.key.ID() && v.To != n.key.ID() {
		return household.Pledge{}, fmt.Errorf("%w: pledge %s is not to or from this household", household.ErrInvalid, v.ID.Short())
	}
	if v.State == share.StatePledged && !n.opts.Now().Before(n.manifest.SlotStart(v.ExpirySlot)) {
		v.State = share.StateExpired
	}
	c, err := build(v)
	if err != nil {
		return household.Pledge{}, err
	}
	if _, err := n.sign(ctx, c); err != nil {
		return household.Pledge{}, err
	}
	return n.FindPledge(ctx, v.ID.String())
}

// ExportMessages implements household.Household: this household's own messages
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

// Import implements household.Household: it reads one armored block, verifies each
// message and stores the good ones durably; each bad one is reported with
// its reason and stored nowhere.
func (n *Node) Import(ctx context.Context, r io.Reader) (household.ImportReport, error) {
	if err := n.writable("import"); err != nil {
		return household.ImportReport{}, err
	}
	raws, err := share.Dearmor(r, MaxImportMessages)
	if err != nil {
		return household.ImportReport{}, fmt.Errorf("%w: %w; nothing was imported", household.ErrIntegrity, err)
	}
	res, err := n.led.Append(ctx, raws...)
	if err != nil {
		return household.ImportReport{}, err
	}
	var rep household.ImportReport
	var stored []*share.Message
	defer func() { n.Stored(ctx, stored) }()
	for i, r := range res {
		switch r.Outcome {
		case ledger.Stored, ledger.Latest:
			rep.Added++
			stored = append(stored, r.Message)
		case ledger.Duplicate, ledger.Older:
			rep.Duplicates++
		default:
			rj := household.Rejection{Index: i + 1, Reason: reasonText(r)}
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

// Status implements household.Household.
func (n *Node) Status(ctx context.Context) (household.Status, error) {
	now := n.opts.Now()
	tot, err := n.todayTotals(ctx)
	if err != nil {
		return household.Status{}, err
	}
	ns, err := n.led.Neighbours(ctx)
	if err != nil {
		return household.Status{}, err
	}
	ps, err := n.Pledges(ctx, true)
	if err != nil {
		return household.Status{}, err
	}
	st := household.Status{
		Meter:       household.MeterState{Port: n.cfg.Meter.Port, Protocol: n.cfg.Meter.Protocol, ClockOK: true},
		Today:       household.Today{ImportWh: tot.ImportWh, ExportWh: tot.ExportWh},
		Neighbours:  len(ns),
		OpenPledges: len(ps),
	}
	if r, ok, h, running := n.Latest(); running {
		if ok {
			st.Reading = &r
		}
		st.Meter.Online = h.Online
		if !h.LastTelegram.IsZero() {
			t := h.LastTelegram.In(n.loc)
			st.Meter.LastTelegram = &t
		}
		if h.Protocol != "" {
			st.Meter.Protocol = h.Protocol
		}
		st.Meter.ClockSkewS, st.Meter.ClockOK = n.meterClock()
	} else if t, ok := n.lastAggregated(ctx); ok {
		st.Meter.LastTelegram = &t
		st.Meter.Online = now.Sub(t) < meterOfflineAfter
	}
	st.Relay = n.relayState()
	if pm := n.cfg.ProductionMeter; pm != nil {
		proto := pm.Protocol
		if proto == "" {
			proto = "modbus"
		}
		ps := &household.ProductionState{MeterState: household.MeterState{Port: pm.Port, Protocol: proto, ClockOK: true}}
		_, w, _, h, ok := n.Production()
		ps.Online = h.Online && ok
		if !h.LastTelegram.IsZero() {
			t := h.LastTelegram.In(n.loc)
			ps.LastTelegram = &t
		}
		if ok && w.OK && st.Reading != nil {
			b := NewBalance(w.V, st.Reading.PowerImportW.V, st.Reading.PowerExportW.V)
			ps.PowerW, ps.ConsumptionW = &b.Production, &b.Consumption
		}
		if tot.ProductionWh.OK {
			b := NewBalance(tot.ProductionWh.V, tot.ImportWh, tot.ExportWh)
			st.Today.ProductionWh, st.Today.ConsumptionWh = &b.Production, &b.Consumption
			ps.SelfConsumptionPct, ps.SelfSufficiencyPct = optPtr(b.SelfConsumptionPct), optPtr(b.SelfSufficiencyPct)
		}
		st.Production = ps
	}
	return st, nil
}

// meterOfflineAfter is how old the last aggregated reading may be for the
// meter to count as online (aggregates are written about once a minute).
const meterOfflineAfter = 3 * time.Minute

// lastAggregated returns the time of the last meter reading the
// aggregates hold.
func (n *Node) lastAggregated(ctx context.Context) (time.Time, bool) {
	t, ok, err := n.led.LastSample(ctx)
	if err != nil || !ok {
		return time.Time{}, false
	}
	return t.In(n.loc), true
}

// relayState is the community hub link: the running transport's, or, when
// the household is not running, what the home knows; nil without a relay.
func (n *Node) relayState() *household.RelayState {
	if r, ok := n.opts.Transport.(RelayReporter); ok {
		if st := r.RelayState(); st != nil {
			return st
		}
	}
	if n.cfg.Relay == "" {
		return nil
	}
	st := &household.RelayState{URL: relay.Redact(n.cfg.Relay)}
	st.Cursor, _ = relay.ReadCursor(n.home.RelayCursorPath(), relay.StreamName(n.manifest.ID()))
	return st
}
