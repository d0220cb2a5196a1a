package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/commons-energy/commons/ledger"
	"github.com/commons-energy/commons/share"
	"github.com/commons-energy/commons/share/household"
)

// Settle runs one settlement round. For every accepted pledge this
// household is a party to whose window has closed, it first reports its
// own measured export and import per slot from the ledger's slot
// aggregates (a signed report message), once the aggregates cover the
// whole window. Then, as the exporter, it settles each closed pledge with
// share.Allocate: per slot, allocated = min(pledged, accepted, its own
// reported export, the recipient's reported import), competing pledges
// sharing by the community's allocation key, and appends a settle2
// message naming the reports, accepts and feed heads it used, which every
// receiver recomputes. A pledge whose recipient has not reported yet
// waits (deliver messages, then run Settle again); so does one
// overlapping another accepted pledge of this household whose window is
// still open. A disputed pledge is settled again when the evidence (say a
// report the recipient corrected) gives something other than this
// household's latest settle2 of it; otherwise it waits, with the
// dispute's reason.
func (n *Node) Settle(ctx context.Context) (household.SettleReport, error) {
	var rep household.SettleReport
	if err := n.writable("settle"); err != nil {
		return rep, err
	}
	ps, err := n.led.Pledges(ctx, ledger.PledgeFilter{Involving: n.key.ID()})
	if err != nil {
		return rep, err
	}
	views := make([]*share.PledgeView, len(ps))
	for i := range ps {
		views[i] = &ps[i].PledgeView
	}
	now := n.opts.Now()
	self := n.key.ID()
	slotLen := n.manifest.SlotDuration()
	table, refs, own, err := n.reports(ctx)
	if err != nil {
		return rep, err
	}
	lastReading, haveReading := n.lastAggregated(ctx)
	closed := func(v *share.PledgeView) bool { return !now.Before(n.manifest.SlotStart(v.Window.To)) }

	// 1. Report our own metered slots of every closed, accepted pledge.
	for _, v := range views {
		if v.State != share.StateAccepted || !closed(v) {
			continue
		}
		if own.covers(v.Window, counterparty(v, self)) {
			continue
		}
		end := n.manifest.SlotStart(v.Window.To)
		if !haveReading || lastReading.Before(end) {
			rep.Waiting = append(rep.Waiting, household.Problem{ID: v.ID.String(), Reason: fmt.Sprintf("this household's meter data up to %s is not stored yet (is the meter read?)", end.In(n.loc).Format("2006-01-02 15:04"))})
			continue
		}
		imp, exp, measured, err := n.led.SlotEnergy(ctx, slotLen, v.Window.From, v.Window.To)
		if err != nil {
			return rep, err
		}
		// A slot without a stored aggregate had no reading at all (the
		// meter was away): wait rather than report an invented zero.
		if i := indexFalse(measured); i >= 0 {
			rep.Waiting = append(rep.Waiting, household.Problem{ID: v.ID.String(), Reason: fmt.Sprintf("no meter data stored for slot starting %s", n.manifest.SlotStart(v.Window.From+int64(i)).In(n.loc).Format("2006-01-02 15:04"))})
			continue
		}
		// Sealed to the parties of the pledges it is evidence for
		// (docs/PROTOCOL.md §8.15): other neighbours see only its window.
		r := &share.Report{FromSlot: v.Window.From, ExportWh: exp, ImportWh: imp}
		rm, err := n.sealOwnReport(ctx, r, views)
		if err != nil {
			return rep, err
		}
		table.AddReport(self, r)
		refs.add(rm, r)
		own.add(v.Window, readersOf(rm)...)
		rep.Reported = append(rep.Reported, v.ID.String())
	}

	// 2. As the exporter, settle closed accepted pledges, in groups of
	// overlapping windows (they compete for the same export). A disputed
	// one is settled again when the evidence now gives something else
	// than this household's latest settle2 of it (a corrected report).
	var open, ready []*share.PledgeView
	for _, v := range views {
		if v.From != self || (v.State != share.StateAccepted && v.State != share.StateDisputed) {
			continue
		}
		if closed(v) {
			ready = append(ready, v)
		} else {
			open = append(open, v)
		}
	}
	key, err := share.KeyByName(n.manifest.Key)
	if err != nil {
		return rep, err
	}
	names, err := n.names(ctx)
	if err != nil {
		return rep, err
	}
	mine, err := n.ownSettles2(ctx)
	if err != nil {
		return rep, err
	}
	for _, group := range overlapGroups(ready) {
		if o := firstOverlap(group, open); o != nil {
			for _, v := range group {
				rep.Waiting = append(rep.Waiting, household.Problem{ID: v.ID.String(), Reason: fmt.Sprintf("shares slots with pledge %s, whose window is still open", o.ID.Short())})
			}
			continue
		}
		terms := make([]share.Terms, len(group))
		for i, v := range group {
			terms[i] = v.Terms()
		}
		allocs, err := share.Allocate(terms, table, key)
		var missing *share.MissingError
		if errors.As(err, &missing) {
			for _, v := range group {
				rep.Waiting = append(rep.Waiting, household.Problem{ID: v.ID.String(), Reason: n.missingText(missing, names)})
			}
			continue
		}
		if err != nil {
			return rep, err
		}
		for i, v := range group {
			var c share.Content
			if n.speaksVersion2(ctx, v.To) {
				c2, err := n.settle2(ctx, terms[i], group, allocs, key, refs)
				if err != nil {
					return rep, err
				}
				if old := mine[v.ID]; v.State == share.StateDisputed && old != nil && sameSettle(old, c2) {
					rep.Waiting = append(rep.Waiting, household.Problem{ID: v.ID.String(), Reason: "disputed, and this household's settle already names the latest reports: " + disputeText(v)})
					continue
				}
				c = c2
			} else {
				// The recipient may run a version 1 program, which reads
				// version 1 settles only (docs/PROTOCOL.md §13.1).
				if v.State == share.StateDisputed {
					rep.Waiting = append(rep.Waiting, household.Problem{ID: v.ID.String(), Reason: "disputed, and the recipient's older commons reads only the first settle: " + disputeText(v)})
					continue
				}
				c = settle1(terms[i], allocs, key)
			}
			m, err := n.sign(ctx, c)
			if err != nil {
				return rep, err
			}
			p, err := n.FindPledge(ctx, v.ID.String())
			if err != nil {
				return rep, err
			}
			switch {
			case p.State == household.StateSettled:
				rep.Settled = append(rep.Settled, p)
			case p.State == household.StateDisputed && v.State == share.StateDisputed:
				rep.Waiting = append(rep.Waiting, household.Problem{ID: v.ID.String(), Reason: "still disputed after settling again: " + p.Dispute})
			default:
				return rep, fmt.Errorf("settle %s: the stored settle message %s did not settle the pledge (state %s)", v.ID.Short(), m.ID().Short(), p.State)
			}
		}
	}
	return rep, nil
}

// settle2 builds the settle2 of t, one of the pledges of group allocated
// together in allocs, naming its evidence (docs/PROTOCOL.md §10.4): the
// reports that gave the exporter's export and the recipient's import in
// its window, the group's pledges sharing a slot with it with their
// accepts, and the heads of both feeds as stored now.
func (n *Node) settle2(ctx context.Context, t share.Terms, group []*share.PledgeView, allocs []share.Allocation, key share.AllocationKey, refs reportRefs) (*share.Settle2, error) {
	reports := append(refs.ids(t.From, t.Window), refs.ids(t.To, t.Window)...)
	var (
		competing []share.Terms
		accepts   []share.ID
	)
	for _, v := range group {
		if overlaps(v.Window, t.Window) {
			competing = append(competing, v.Terms())
			accepts = append(accepts, v.Accept)
		}
	}
	exporter, err := n.led.Head(ctx, t.From)
	if err != nil {
		return nil, err
	}
	recipient, err := n.led.Head(ctx, t.To)
	if err != nil {
		return nil, err
	}
	return share.Settle2Content(t, allocs, key, reports, competing, accepts, exporter, recipient)
}

// settle1 builds the version 1 settle (kind 30) of t from allocs: the
// allocation with the export and import figures it was computed from, for
// a recipient whose program predates settle2. Readers of version 2 check
// it against the reports they hold (§10.4).
func settle1(t share.Terms, allocs []share.Allocation, key share.AllocationKey) *share.Settle {
	s := &share.Settle{Pledge: t.Pledge, FromSlot: t.Window.From, ToSlot: t.Window.To, Key: key.Name()}
	for slot := t.Window.From; slot < t.Window.To; slot++ {
		var a share.Allocation
		for _, x := range allocs {
			if x.Pledge == t.Pledge && x.Slot == slot {
				a = x
				break
			}
		}
		s.AllocatedWh = append(s.AllocatedWh, a.Wh)
		s.ExportWh = append(s.ExportWh, a.ExportWh)
		s.ImportWh = append(s.ImportWh, a.ImportWh)
		s.TotalWh += a.Wh
	}
	return s
}

// ownSettles2 returns this household's latest settle2 of each pledge.
func (n *Node) ownSettles2(ctx context.Context) (map[share.ID]*share.Settle2, error) {
	msgs, err := n.messagesOfKinds(ctx, share.KindSettle2)
	if err != nil {
		return nil, err
	}
	out := map[share.ID]*share.Settle2{}
	seqs := map[share.ID]uint64{}
	for _, m := range msgs {
		if m.Author != n.key.ID() {
			continue
		}
		c, err := m.Decode()
		if err != nil {
			continue
		}
		s := c.(*share.Settle2)
		if m.Seq > seqs[s.Pledge] {
			out[s.Pledge], seqs[s.Pledge] = s, m.Seq
		}
	}
	return out, nil
}

// sameSettle reports whether two settle2 contents allocate the same from
// the same reports and pledges (their heads may differ).
func sameSettle(a, b *share.Settle2) bool {
	return slices.Equal(a.AllocatedWh, b.AllocatedWh) && slices.Equal(a.Reports, b.Reports) &&
		slices.Equal(a.Pledges, b.Pledges) && slices.Equal(a.AcceptedWh, b.AcceptedWh)
}

func disputeText(v *share.PledgeView) string {
	if len(v.Disputes) == 0 {
		return "no reason recorded"
	}
	return v.Disputes[len(v.Disputes)-1].Error()
}

func (n *Node) missingText(e *share.MissingError, names map[share.HouseholdID]string) string {
	m := e.Missing[0]
	what := "export"
	if m.Import {
		what = "import"
	}
	return fmt.Sprintf("waiting for %s's report of its %s in the slot starting %s (%d measurement(s) missing): deliver its messages, then settle again",
		nameOf(names, m.Household), what, n.manifest.SlotStart(m.Slot).In(n.loc).Format("2006-01-02 15:04"), len(e.Missing))
}

// ownReports records which slots this household has reported, and to
// whom: a plain report is readable by everyone (the zero id stands for
// them), a sealed report by its readers.
type ownReports map[share.HouseholdID]map[int64]bool

// covers reports whether every slot of r is in a report reader can read.
func (s ownReports) covers(r share.SlotRange, reader share.HouseholdID) bool {
	for x := r.From; x < r.To; x++ {
		if !s[share.HouseholdID{}][x] && !s[reader][x] {
			return false
		}
	}
	return true
}

// add records r as reported to readers (none: to everyone).
func (s ownReports) add(r share.SlotRange, readers ...share.HouseholdID) {
	if len(readers) == 0 {
		readers = []share.HouseholdID{{}}
	}
	for _, h := range readers {
		if s[h] == nil {
			s[h] = map[int64]bool{}
		}
		for x := r.From; x < r.To; x++ {
			s[h][x] = true
		}
	}
}

// readersOf returns the readers of a sealed report message (none for
// anything else).
func readersOf(m *share.Message) []share.HouseholdID {
	if c, err := m.Decode(); err == nil {
		if s, ok := c.(*share.SealedReport); ok {
			return s.To
		}
	}
	return nil
}

func counterparty(v *share.PledgeView, self share.HouseholdID) share.HouseholdID {
	if v.From == self {
		return v.To
	}
	return v.From
}

// reportRefs records, per household and slot, the report message a
// settle2 names as its evidence: the latest (highest seq) covering the
// slot, the one whose figures the measurement table holds (§8.6).
type reportRefs map[share.HouseholdID]map[int64]reportRef

type reportRef struct {
	id  share.ID
	seq uint64
}

func (r reportRefs) add(m *share.Message, rep *share.Report) {
	if r[m.Author] == nil {
		r[m.Author] = map[int64]reportRef{}
	}
	for i := range rep.ExportWh {
		slot := rep.FromSlot + int64(i)
		if old, ok := r[m.Author][slot]; ok && old.seq > m.Seq {
			continue
		}
		r[m.Author][slot] = reportRef{m.ID(), m.Seq}
	}
}

// ids returns the reports of h covering w.
func (r reportRefs) ids(h share.HouseholdID, w share.SlotRange) []share.ID {
	var out []share.ID
	for s := w.From; s < w.To; s++ {
		if ref, ok := r[h][s]; ok {
			out = append(out, ref.id)
		}
	}
	return out
}

// reports gathers every stored report, and every sealed report this
// household opened, into a measurement table (a later report of an author
// replacing an earlier one slot by slot), which report gave each figure,
// and the slots this household reported itself and to whom. A sealed
// report this household cannot read gives nothing.
func (n *Node) reports(ctx context.Context) (share.MeterTable, reportRefs, ownReports, error) {
	msgs, err := n.messagesOfKinds(ctx, share.KindReport, share.KindSealedReport)
	if err != nil {
		return nil, nil, nil, err
	}
	opened, err := n.led.OpenedReports(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	sort.SliceStable(msgs, func(i, j int) bool { return msgs[i].Seq < msgs[j].Seq })
	table, refs, own := share.MeterTable{}, reportRefs{}, ownReports{}
	for _, m := range msgs {
		c, err := m.Decode()
		if err != nil {
			continue
		}
		var readers []share.HouseholdID
		r, ok := c.(*share.Report)
		if s, sealed := c.(*share.SealedReport); sealed {
			r, ok, readers = opened[m.ID()], opened[m.ID()] != nil, s.To
		}
		if !ok {
			continue
		}
		table.AddReport(m.Author, r)
		refs.add(m, r)
		if m.Author == n.key.ID() {
			own.add(share.SlotRange{From: r.FromSlot, To: r.FromSlot + int64(len(r.ExportWh))}, readers...)
		}
	}
	return table, refs, own, nil
}

func indexFalse(b []bool) int {
	for i, v := range b {
		if !v {
			return i
		}
	}
	return -1
}

func overlaps(a, b share.SlotRange) bool { return a.From < b.To && b.From < a.To }

// overlapGroups partitions views into groups whose windows overlap
// transitively, each group and the groups in window order.
func overlapGroups(vs []*share.PledgeView) [][]*share.PledgeView {
	s := append([]*share.PledgeView(nil), vs...)
	sort.Slice(s, func(i, j int) bool { return s[i].Window.From < s[j].Window.From })
	var out [][]*share.PledgeView
	var end int64
	for _, v := range s {
		if len(out) > 0 && v.Window.From < end {
			out[len(out)-1] = append(out[len(out)-1], v)
			end = max(end, v.Window.To)
			continue
		}
		out = append(out, []*share.PledgeView{v})
		end = v.Window.To
	}
	return out
}

func firstOverlap(group, others []*share.PledgeView) *share.PledgeView {
	for _, o := range others {
		for _, v := range group {
			if overlaps(v.Window, o.Window) {
				return o
			}
		}
	}
	return nil
}

func nameOf(names map[share.HouseholdID]string, id share.HouseholdID) string {
	if s, ok := names[id]; ok {
		return s
	}
	return id.Short()
}
