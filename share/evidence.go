package share

import (
	"bytes"
	"fmt"
	"sort"
	"time"
)

// Limits of a settle2's references. See docs/PROTOCOL.md, "settle2 (31)".
const (
	MaxSettleReports = 16 // report ids of both parties
	MaxSettleAccepts = 64 // pledges allocated together (with their accepts)
)

// Settle2 is the allocation of one accepted pledge over its window, bound
// to the evidence it was computed from (kind 31): the report messages of
// both parties that give the export and import of every slot, the
// exporter's pledges that competed for them (the settled pledge among
// them) with the accept of each and the Wh it accepted, and the heads of
// both parties' feeds it read. Every receiver holding that evidence
// recomputes AllocatedWh exactly (CheckSettle2) and applies the settle
// only when it matches. Pledges, Accepts and AcceptedWh are parallel,
// ordered by pledge id.
type Settle2 struct {
	Pledge        ID      `json:"pledge"`
	FromSlot      int64   `json:"from_slot"`
	ToSlot        int64   `json:"to_slot"`
	AllocatedWh   []int64 `json:"allocated_wh"`
	TotalWh       int64   `json:"total_wh"`
	Key           string  `json:"key"`
	Reports       []ID    `json:"reports"`        // ascending, no duplicates
	Pledges       []ID    `json:"pledges"`        // ascending, no duplicates
	Accepts       []ID    `json:"accepts"`        // the accept of each pledge
	AcceptedWh    []int64 `json:"accepted_wh"`    // the Wh each accept accepted
	ExporterSeq   int64   `json:"exporter_seq"`   // head of the exporter's feed read
	ExporterHead  ID      `json:"exporter_head"`  // its id
	RecipientSeq  int64   `json:"recipient_seq"`  // head of the recipient's feed read
	RecipientHead ID      `json:"recipient_head"` // its id
}

// Kind returns KindSettle2.
func (*Settle2) Kind() Kind { return KindSettle2 }

func (c *Settle2) validate() error {
	if c.Pledge.IsZero() {
		return fmt.Errorf("pledge is missing")
	}
	if err := checkSlots(c.FromSlot, c.ToSlot); err != nil {
		return err
	}
	if err := checkWhs("allocated_wh", c.AllocatedWh, int(c.ToSlot-c.FromSlot)); err != nil {
		return err
	}
	var sum int64
	for _, a := range c.AllocatedWh {
		sum += a
	}
	if sum != c.TotalWh {
		return fmt.Errorf("total_wh is %d, allocated_wh sums to %d", c.TotalWh, sum)
	}
	if err := checkKeyName(c.Key); err != nil {
		return err
	}
	if err := checkIDSet("reports", c.Reports, 2, MaxSettleReports); err != nil {
		return err
	}
	if err := checkIDSet("pledges", c.Pledges, 1, MaxSettleAccepts); err != nil {
		return err
	}
	if len(c.Accepts) != len(c.Pledges) || len(c.AcceptedWh) != len(c.Pledges) {
		return fmt.Errorf("pledges, accepts and accepted_wh have %d, %d and %d entries: want one each per pledge", len(c.Pledges), len(c.Accepts), len(c.AcceptedWh))
	}
	for i, a := range c.Accepts {
		if a.IsZero() {
			return fmt.Errorf("accepts[%d] is the zero id", i)
		}
		if err := checkInt(fmt.Sprintf("accepted_wh[%d]", i), c.AcceptedWh[i], 1, MaxEnergyWh); err != nil {
			return err
		}
	}
	for _, h := range []struct {
		name string
		seq  int64
		id   ID
	}{{"exporter", c.ExporterSeq, c.ExporterHead}, {"recipient", c.RecipientSeq, c.RecipientHead}} {
		if err := checkInt(h.name+"_seq", h.seq, 1, MaxSafeInt); err != nil {
			return err
		}
		if h.id.IsZero() {
			return fmt.Errorf("%s_head is missing", h.name)
		}
	}
	return nil
}

// checkIDSet requires lo..hi non-zero ids in strictly ascending order (a
// set has one canonical form).
func checkIDSet(field string, ids []ID, lo, hi int) error {
	if len(ids) < lo || len(ids) > hi {
		return fmt.Errorf("%s has %d entries, want %d..%d", field, len(ids), lo, hi)
	}
	for i, id := range ids {
		if id.IsZero() {
			return fmt.Errorf("%s[%d] is the zero id", field, i)
		}
		if i > 0 && bytes.Compare(ids[i-1][:], id[:]) >= 0 {
			return fmt.Errorf("%s must be in ascending order without duplicates (entry %d)", field, i)
		}
	}
	return nil
}

// readSettle2 reads the canonical content of a settle2.
func readSettle2(r *canonReader) Content {
	x := &Settle2{}
	r.field("pledge", true)
	x.Pledge = r.id()
	r.field("from_slot", false)
	x.FromSlot = r.int()
	r.field("to_slot", false)
	x.ToSlot = r.int()
	r.field("allocated_wh", false)
	x.AllocatedWh = r.ints()
	r.field("total_wh", false)
	x.TotalWh = r.int()
	r.field("key", false)
	x.Key = r.str()
	r.field("reports", false)
	x.Reports = r.ids("reports", MaxSettleReports)
	r.field("pledges", false)
	x.Pledges = r.ids("pledges", MaxSettleAccepts)
	r.field("accepts", false)
	x.Accepts = r.ids("accepts", MaxSettleAccepts)
	r.field("accepted_wh", false)
	x.AcceptedWh = r.ints()
	r.field("exporter_seq", false)
	x.ExporterSeq = r.int()
	r.field("exporter_head", false)
	x.ExporterHead = r.id()
	r.field("recipient_seq", false)
	x.RecipientSeq = r.int()
	r.field("recipient_head", false)
	x.RecipientHead = r.id()
	return x
}

// ids reads an array of at most limit message ids.
func (r *canonReader) ids(field string, limit int) []ID { return readArray(r, field, limit, r.id) }

// Evidence is what a receiver holds to check a settle2 against: stored,
// verified messages.
type Evidence interface {
	// Message returns the stored message with id, or nil when not held.
	Message(id ID) *Message
	// At returns author's chain message at seq, or nil when not held.
	At(author HouseholdID, seq uint64) *Message
	// Reports returns every stored report and sealed report of author.
	Reports(author HouseholdID) []*Message
	// Opened returns the plain report a sealed report with id carries,
	// when this reader opened it (it is one of its readers), else nil.
	Opened(id ID) *Report
	// Pledges returns the stored pledges from exporter to recipient
	// whose window shares a slot with w.
	Pledges(exporter, recipient HouseholdID, w SlotRange) []*Message
	// Related returns the stored accept, decline, cancel and seen
	// messages naming pledge.
	Related(pledge ID) []*Message
}

// evidenceResult is the outcome of checking one settle2: exactly one of
// figures (it recomputes), pending (evidence not held yet, wrapping
// ErrMissingEvidence) and dispute (wrapping ErrDisputed) is set.
type evidenceResult struct {
	msg     *Message
	s       *Settle2
	figures *Settle // the allocation with the export and import it used
	// sealed: a named sealed report was not readable here, so the
	// settle was checked for consistency only (figures' export and
	// import are then lower bounds where not known).
	sealed  bool
	pending error
	dispute error
}

// partySlots is one party's reported figures per slot, from the
// referenced reports (a later report of the party replaces an earlier
// one for the slots both cover, §8.6).
type partySlots map[int64]struct {
	seq      uint64
	exp, imp int64
}

func (p partySlots) add(m *Message, r *Report) {
	for i := range r.ExportWh {
		s := r.FromSlot + int64(i)
		if old, ok := p[s]; ok && old.seq > m.Seq {
			continue
		}
		p[s] = struct {
			seq      uint64
			exp, imp int64
		}{m.Seq, r.ExportWh[i], r.ImportWh[i]}
	}
}

// evidenceMeter gives the exporter's export and the recipient's import
// in the settled window from the referenced reports, and no limit
// anywhere else: other slots and other households' figures cannot change
// the settled pledge's allocation (§10.2 is slot by slot, and the only
// competitors are the exporter's pledges).
type evidenceMeter struct {
	exporter, recipient HouseholdID
	window              SlotRange
	exp, imp            partySlots
}

func (e evidenceMeter) ExportWh(h HouseholdID, slot int64) (int64, bool) {
	if h == e.exporter && e.window.Contains(slot) {
		return e.exp[slot].exp, true
	}
	return MaxEnergyWh, true
}

func (e evidenceMeter) ImportWh(h HouseholdID, slot int64) (int64, bool) {
	if h == e.recipient && e.window.Contains(slot) {
		return e.imp[slot].imp, true
	}
	return MaxEnergyWh, true
}

// CheckSettle2 checks settle2 message msg of pledge view v (accepted by
// the accept v.Accept) against the evidence ev holds, in the community
// m. It returns the figures the settle applies (allocation, export and
// import per slot) when every referenced message is held and the
// allocation recomputes exactly; an error wrapping ErrMissingEvidence
// when a referenced message is not held yet (wait and check again); or an
// error wrapping ErrDisputed saying why the settle does not hold.
func CheckSettle2(m Manifest, v *PledgeView, msg *Message, ev Evidence) (*Settle, error) {
	c, err := msg.Decode()
	if err != nil {
		return nil, err
	}
	s, ok := c.(*Settle2)
	if !ok {
		return nil, reject(ErrInvalidTransfer, "message %s is a %s, not a settle2", msg.id.Short(), msg.Kind)
	}
	r := checkSettle2(m, v, msg, s, ev)
	if r.pending != nil {
		return nil, r.pending
	}
	if r.dispute != nil {
		return nil, r.dispute
	}
	return r.figures, nil
}

func checkSettle2(m Manifest, v *PledgeView, msg *Message, s *Settle2, ev Evidence) (res evidenceResult) {
	res.msg, res.s = msg, s
	pfx := fmt.Sprintf("settle2 %s of pledge %s", msg.id.Short(), v.ID.Short())
	wait := func(format string, args ...any) evidenceResult {
		res.pending = reject(ErrMissingEvidence, pfx+": waiting for "+format, args...)
		return res
	}
	dispute := func(format string, args ...any) evidenceResult {
		res.dispute = reject(ErrDisputed, pfx+": "+format, args...)
		return res
	}
	if ev == nil {
		return wait("its evidence (this reader holds no messages to check it against)")
	}
	E, R := v.From, v.To
	heads := [2]struct {
		who  HouseholdID
		role string
		seq  uint64
		id   ID
	}{{E, "exporter", uint64(s.ExporterSeq), s.ExporterHead}, {R, "recipient", uint64(s.RecipientSeq), s.RecipientHead}}
	for _, h := range heads {
		if msg.Author == h.who && h.seq >= msg.Seq {
			return dispute("names seq %d of its own author's feed as the head it read, but it is itself seq %d", h.seq, msg.Seq)
		}
		got := ev.At(h.who, h.seq)
		if got == nil {
			return wait("the %s %s's message at seq %d", h.role, h.who.Short(), h.seq)
		}
		if got.id != h.id {
			return dispute("names %s as the %s's message at seq %d, but that message is %s", h.id.Short(), h.role, h.seq, got.id.Short())
		}
	}
	if s.Key != m.Key {
		return dispute("uses allocation key %q, the community's is %q", s.Key, m.Key)
	}
	key, err := KeyByName(s.Key)
	if err != nil {
		return dispute("%v", err)
	}
	within := func(author HouseholdID, seq uint64) bool {
		switch author {
		case E:
			return seq <= uint64(s.ExporterSeq)
		case R:
			return seq <= uint64(s.RecipientSeq)
		}
		return false
	}

	// Reports: the exporter's export and the recipient's import. A
	// sealed report this reader cannot open gives no figures, only the
	// slots it covers (§8.15): the settle is then checked for
	// consistency, not recomputed.
	exp, imp := partySlots{}, partySlots{}
	closedExp, closedImp := map[int64]bool{}, map[int64]bool{}
	for _, id := range s.Reports {
		rm := ev.Message(id)
		if rm == nil {
			return wait("report %s", id.Short())
		}
		if (rm.Kind != KindReport && rm.Kind != KindSealedReport) || (rm.Author != E && rm.Author != R) {
			return dispute("references %s (%s by %s), not a report of the exporter or the recipient", id.Short(), rm.Kind, rm.Author.Short())
		}
		if !within(rm.Author, rm.Seq) {
			return dispute("references report %s at seq %d, after the head of %s's feed it names", id.Short(), rm.Seq, rm.Author.Short())
		}
		rc, err := rm.Decode()
		if err != nil {
			return dispute("%v", err)
		}
		r, ok := rc.(*Report)
		if sr, sealed := rc.(*SealedReport); sealed {
			if r, ok = ev.Opened(id), true; r == nil {
				res.sealed = true
				cover := closedImp
				if rm.Author == E {
					cover = closedExp
				}
				for slot := sr.FromSlot; slot < sr.FromSlot+sr.Slots; slot++ {
					cover[slot] = true
				}
				continue
			}
		}
		if !ok {
			return dispute("references %s, which does not decode as a report", id.Short())
		}
		if rm.Author == E {
			exp.add(rm, r)
		} else {
			imp.add(rm, r)
		}
	}
	for slot := v.Window.From; slot < v.Window.To; slot++ {
		if _, ok := exp[slot]; !ok && !closedExp[slot] {
			return dispute("no referenced report of the exporter %s covers slot %d", E.Short(), slot)
		}
		if _, ok := imp[slot]; !ok && !closedImp[slot] {
			return dispute("no referenced report of the recipient %s covers slot %d", R.Short(), slot)
		}
	}

	// Competing pledges: the referenced accepts, each folded from the
	// two parties' feeds up to the named heads.
	fold := func(pm *Message, extra *Message) (*PledgeView, []*Message) {
		var rel []*Message
		for _, x := range ev.Related(pm.id) {
			if within(x.Author, x.Seq) && x.Kind != KindSettle && x.Kind != KindSettle2 {
				rel = append(rel, x)
			}
		}
		if extra != nil && extra.Author != E && extra.Author != R {
			rel = append(rel, extra) // a third party's accept, outside both feeds
		}
		pv, err := FoldPledge(m, pm, rel, time.UnixMilli(msg.CreatedMs))
		if err != nil {
			return nil, rel
		}
		return pv, rel
	}
	listed := map[ID]bool{}
	var terms []Terms
	for i, pid := range s.Pledges {
		aid, wh := s.Accepts[i], s.AcceptedWh[i]
		pm := ev.Message(pid)
		if pm == nil {
			return wait("pledge %s", pid.Short())
		}
		if pm.Kind != KindPledge || pm.Author != E || pm.Seq > uint64(s.ExporterSeq) {
			return dispute("lists %s, not a pledge of the exporter up to the head it names", pid.Short())
		}
		pc, err := pm.Decode()
		if err != nil {
			return dispute("%v", err)
		}
		p := pc.(*Pledge)
		am := ev.Message(aid)
		if am == nil && p.To == R {
			return wait("accept %s of pledge %s", aid.Short(), pid.Short())
		}
		var pv *PledgeView
		if am != nil {
			// Held: the accept must be the one that accepted the pledge
			// (in the parties' feeds up to the heads), for wh.
			if am.Author == R && !within(am.Author, am.Seq) {
				return dispute("lists accept %s at seq %d, after the head of the recipient's feed it names", aid.Short(), am.Seq)
			}
			pv, _ = fold(pm, am)
			if pv == nil || pv.State != StateAccepted || pv.Accept != aid || pv.AcceptedWh != wh {
				state := "unreadable"
				if pv != nil {
					state = fmt.Sprintf("%s (%d Wh)", pv.State, pv.AcceptedWh)
				}
				return dispute("lists pledge %s as accepted by %s for %d Wh, but in the parties' feeds with that accept it is %s", pid.Short(), aid.Short(), wh, state)
			}
		} else {
			// A third household's accept this box does not hold (it stores
			// only its neighbours' feeds): what the two feeds show must
			// allow it.
			pv, _ = fold(pm, nil)
			if pv == nil || (pv.State != StatePledged && pv.State != StateExpired) || wh > pv.PledgedWh {
				state := "unreadable"
				if pv != nil {
					state = string(pv.State)
				}
				return dispute("lists pledge %s as accepted for %d Wh, but in the exporter's feed it is %s (pledged %d Wh)", pid.Short(), wh, state, p.EnergyWh)
			}
			pv.AcceptedWh = wh
		}
		listed[pid] = true
		terms = append(terms, pv.Terms())
	}
	if !listed[v.ID] {
		return dispute("does not list the settled pledge")
	}
	for i, pid := range s.Pledges {
		if pid == v.ID && (s.Accepts[i] != v.Accept || s.AcceptedWh[i] != v.AcceptedWh) {
			return dispute("lists the settled pledge as accepted by %s for %d Wh, not by %s for %d Wh", s.Accepts[i].Short(), s.AcceptedWh[i], v.Accept.Short(), v.AcceptedWh)
		}
	}
	// Every accepted pledge from the exporter to the recipient in the two
	// feeds up to the heads shares the recipient's import: none may be
	// left out.
	for _, pm := range ev.Pledges(E, R, v.Window) {
		if listed[pm.id] || pm.Seq > uint64(s.ExporterSeq) {
			continue
		}
		pv, _ := fold(pm, nil)
		if pv != nil && pv.State == StateAccepted && overlapsRange(pv.Window, v.Window) {
			return dispute("leaves out pledge %s, accepted in the recipient's feed up to seq %d, which shares slots with it", pm.id.Short(), s.RecipientSeq)
		}
	}

	if res.sealed {
		return checkSealedSettle2(res, v, s, exp, imp, dispute)
	}

	// Recompute.
	meas := evidenceMeter{exporter: E, recipient: R, window: v.Window, exp: exp, imp: imp}
	allocs, err := Allocate(terms, meas, key)
	if err != nil {
		return dispute("the allocation cannot be recomputed: %v", err)
	}
	fig := &Settle{Pledge: v.ID, FromSlot: v.Window.From, ToSlot: v.Window.To, Key: s.Key, TotalWh: s.TotalWh,
		AllocatedWh: append([]int64(nil), s.AllocatedWh...)}
	for _, a := range allocs {
		if a.Pledge != v.ID {
			continue
		}
		i := a.Slot - v.Window.From
		if a.Wh != s.AllocatedWh[i] {
			return dispute("allocates %d Wh in slot %d, but its evidence gives %d Wh (export %d, import %d, pledged %d, accepted %d)",
				s.AllocatedWh[i], a.Slot, a.Wh, a.ExportWh, a.ImportWh, a.PledgedWh, a.AcceptedWh)
		}
		fig.ExportWh = append(fig.ExportWh, a.ExportWh)
		fig.ImportWh = append(fig.ImportWh, a.ImportWh)
	}
	res.figures = fig
	return res
}

func overlapsRange(a, b SlotRange) bool { return a.From < b.To && b.From < a.To }

// checkSealedSettle2 is the last step of checking a settle2 that names a
// sealed report this reader cannot open (§10.4, "Sealed evidence"): the
// allocation cannot be recomputed, so each slot's allocation must stay
// within the settled pledge's pledged and accepted share of the slot and
// within whatever figures the reader can read. The figures it returns
// carry those readable figures, and the allocation itself, a lower bound
// of both, where a figure is sealed.
func checkSealedSettle2(res evidenceResult, v *PledgeView, s *Settle2, exp, imp partySlots, dispute func(string, ...any) evidenceResult) evidenceResult {
	t := v.Terms()
	fig := &Settle{Pledge: v.ID, FromSlot: v.Window.From, ToSlot: v.Window.To, Key: s.Key, TotalWh: s.TotalWh,
		AllocatedWh: append([]int64(nil), s.AllocatedWh...)}
	for i, a := range s.AllocatedWh {
		slot := v.Window.From + int64(i)
		p, acc := t.SlotWh(slot)
		if a > p || a > acc {
			return dispute("allocates %d Wh in slot %d, more than the pledged %d or accepted %d Wh of the slot", a, slot, p, acc)
		}
		e, im := a, a
		if x, ok := exp[slot]; ok {
			if a > x.exp {
				return dispute("allocates %d Wh in slot %d, more than the exporter's reported export of %d Wh", a, slot, x.exp)
			}
			e = x.exp
		}
		if x, ok := imp[slot]; ok {
			if a > x.imp {
				return dispute("allocates %d Wh in slot %d, more than the recipient's reported import of %d Wh", a, slot, x.imp)
			}
			im = x.imp
		}
		fig.ExportWh = append(fig.ExportWh, e)
		fig.ImportWh = append(fig.ImportWh, im)
	}
	res.figures = fig
	return res
}

// checkSettle1Reports checks a version 1 settle's allocation against the
// reports ev holds: in no slot may it allocate more than the largest
// import the recipient reported, or, when the exporter reported the slot,
// the largest export the exporter reported (any report version: a settle
// signed before a correction used an earlier one). A version 1 settle
// carries its own figures, so this is the most a receiver can check.
func checkSettle1Reports(v *PledgeView, msg *Message, s *Settle, ev Evidence) error {
	if ev == nil {
		return nil
	}
	most := func(h HouseholdID, export bool) map[int64]int64 {
		out := map[int64]int64{}
		for _, rm := range ev.Reports(h) {
			c, err := rm.Decode()
			if err != nil {
				continue
			}
			r, ok := c.(*Report)
			if _, sealed := c.(*SealedReport); sealed {
				r, ok = ev.Opened(rm.id), ev.Opened(rm.id) != nil
			}
			if !ok {
				continue
			}
			for i := range r.ExportWh {
				x := r.ImportWh[i]
				if export {
					x = r.ExportWh[i]
				}
				slot := r.FromSlot + int64(i)
				if old, ok := out[slot]; !ok || x > old {
					out[slot] = x
				}
			}
		}
		return out
	}
	imp, exp := most(v.To, false), most(v.From, true)
	for i, a := range s.AllocatedWh {
		slot := s.FromSlot + int64(i)
		if x, ok := imp[slot]; ok && a > x {
			return reject(ErrDisputed, "settle %s of pledge %s allocates %d Wh in slot %d, but the recipient %s reported an import of %d Wh (the settle claims %d)",
				msg.id.Short(), v.ID.Short(), a, slot, v.To.Short(), x, s.ImportWh[i])
		}
		if x, ok := exp[slot]; ok && a > x {
			return reject(ErrDisputed, "settle %s of pledge %s allocates %d Wh in slot %d, but the exporter %s reported an export of %d Wh (the settle claims %d)",
				msg.id.Short(), v.ID.Short(), a, slot, v.From.Short(), x, s.ExportWh[i])
		}
	}
	return nil
}

// resolveSettles2 applies the settle2 candidates of an accepted (or, by a
// version 1 settle, disputed) pledge: each party's latest settle that
// recomputes counts; a settle that does not is a dispute; one whose
// evidence is not held yet is pending. One party's valid settle settles
// the pledge; both parties' valid settles settle it when they allocate
// the same, and otherwise the pledge is disputed. With no valid settle, a
// disputing one makes the pledge disputed.
func (v *PledgeView) resolveSettles2(m Manifest, cands []*Message, ev Evidence) {
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].Seq < cands[j].Seq })
	var valid [2]*evidenceResult // exporter's, recipient's
	var firstDispute ID
	for _, msg := range cands {
		c, _ := msg.Decode() // decoded before
		r := checkSettle2(m, v, msg, c.(*Settle2), ev)
		switch {
		case r.pending != nil:
			v.Pending = append(v.Pending, r.pending)
		case r.dispute != nil:
			v.Disputes = append(v.Disputes, r.dispute)
			if firstDispute.IsZero() {
				firstDispute = msg.id
			}
		default:
			side := 0
			if msg.Author == v.To {
				side = 1
			}
			if prev := valid[side]; prev != nil {
				if r.s.ExporterSeq < prev.s.ExporterSeq || r.s.RecipientSeq < prev.s.RecipientSeq {
					v.ignore(msg, "names older heads than the same party's settle %s it would replace", prev.msg.id.Short())
					continue
				}
			}
			valid[side] = &r
		}
	}
	e, r := valid[0], valid[1]
	switch {
	case e != nil && r != nil && !equalWh(e.s.AllocatedWh, r.s.AllocatedWh):
		v.State, v.Closing, v.Settlement = StateDisputed, r.msg.id, nil
		v.Disputes = append(v.Disputes, reject(ErrDisputed,
			"pledge %s: the parties settled differently: the exporter's settle %s allocates %d Wh (reports %s), the recipient's settle %s allocates %d Wh (reports %s)",
			v.ID.Short(), e.msg.id.Short(), e.s.TotalWh, shortIDs(e.s.Reports), r.msg.id.Short(), r.s.TotalWh, shortIDs(r.s.Reports)))
	case e != nil || r != nil:
		w := e
		if w == nil {
			w = r
		}
		v.State, v.Closing, v.Settlement, v.Sealed = StateSettled, w.msg.id, w.figures, w.sealed
	case !firstDispute.IsZero():
		v.State, v.Closing = StateDisputed, firstDispute
	}
}

func equalWh(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func shortIDs(ids []ID) string {
	var b bytes.Buffer
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(id.Short())
	}
	return b.String()
}

// EvidenceSet is an in-memory Evidence over the messages added to it.
// At falls back to AtFunc, when set, for chain positions not added.
type EvidenceSet struct {
	AtFunc func(author HouseholdID, seq uint64) *Message

	byID    map[ID]*Message
	at      map[feedPos]*Message
	reports map[HouseholdID][]*Message
	opened  map[ID]*Report
	pledges map[[2]HouseholdID][]windowed
	related map[ID][]*Message
}

type windowed struct {
	m *Message
	w SlotRange
}

type feedPos struct {
	author HouseholdID
	seq    uint64
}

// NewEvidenceSet returns an EvidenceSet holding msgs.
func NewEvidenceSet(msgs ...*Message) *EvidenceSet {
	e := &EvidenceSet{byID: map[ID]*Message{}, at: map[feedPos]*Message{}, reports: map[HouseholdID][]*Message{},
		opened: map[ID]*Report{}, pledges: map[[2]HouseholdID][]windowed{}, related: map[ID][]*Message{}}
	for _, m := range msgs {
		e.Add(m)
	}
	return e
}

// Add adds a verified message. Adding one twice is harmless.
func (e *EvidenceSet) Add(m *Message) {
	if _, ok := e.byID[m.id]; ok {
		return
	}
	e.byID[m.id] = m
	if !m.Kind.Ephemeral() {
		e.at[feedPos{m.Author, m.Seq}] = m
	}
	switch m.Kind {
	case KindReport, KindSealedReport:
		e.reports[m.Author] = append(e.reports[m.Author], m)
	case KindPledge:
		if c, err := m.Decode(); err == nil {
			p := c.(*Pledge)
			k := [2]HouseholdID{m.Author, p.To}
			e.pledges[k] = append(e.pledges[k], windowed{m, SlotRange{From: p.FromSlot, To: p.ToSlot}})
		}
	case KindAccept, KindDecline, KindCancel, KindSeen:
		if c, err := m.Decode(); err == nil {
			ref := refersTo(c)
			e.related[ref] = append(e.related[ref], m)
		}
	}
}

// Message implements Evidence.
func (e *EvidenceSet) Message(id ID) *Message { return e.byID[id] }

// At implements Evidence.
func (e *EvidenceSet) At(author HouseholdID, seq uint64) *Message {
	if m := e.at[feedPos{author, seq}]; m != nil {
		return m
	}
	if e.AtFunc != nil {
		return e.AtFunc(author, seq)
	}
	return nil
}

// Reports implements Evidence.
func (e *EvidenceSet) Reports(author HouseholdID) []*Message { return e.reports[author] }

// AddOpened records r as the plain report the sealed report with id
// carries, as this reader opened it (SealedReport.Open): settles naming
// that id are then recomputed from r, like a plain report's.
func (e *EvidenceSet) AddOpened(id ID, r *Report) { e.opened[id] = r }

// Opened implements Evidence.
func (e *EvidenceSet) Opened(id ID) *Report { return e.opened[id] }

// Pledges implements Evidence.
func (e *EvidenceSet) Pledges(exporter, recipient HouseholdID, w SlotRange) []*Message {
	var out []*Message
	for _, x := range e.pledges[[2]HouseholdID{exporter, recipient}] {
		if overlapsRange(x.w, w) {
			out = append(out, x.m)
		}
	}
	return out
}

// Related implements Evidence.
func (e *EvidenceSet) Related(pledge ID) []*Message { return e.related[pledge] }

// Settle2Content builds the settle2 content of pledge t from allocations
// (those of other pledges are ignored) made with key, naming its
// evidence: the reports used (any order, duplicates dropped), the
// pledges allocated together with it (their terms and accept ids, the
// settled pledge's own among them) and the heads of the exporter's and
// the recipient's feeds read.
func Settle2Content(t Terms, allocs []Allocation, key AllocationKey, reports []ID, competing []Terms, accepts []ID, exporter, recipient Head) (*Settle2, error) {
	v1, err := SettleContent(t, allocs, key)
	if err != nil {
		return nil, err
	}
	if len(accepts) != len(competing) {
		return nil, fmt.Errorf("settle2 content for pledge %s: %d pledges, %d accepts", t.Pledge.Short(), len(competing), len(accepts))
	}
	s := &Settle2{Pledge: t.Pledge, FromSlot: v1.FromSlot, ToSlot: v1.ToSlot, AllocatedWh: v1.AllocatedWh, TotalWh: v1.TotalWh, Key: v1.Key,
		Reports:     idSet(reports),
		ExporterSeq: int64(exporter.Seq), ExporterHead: exporter.ID, RecipientSeq: int64(recipient.Seq), RecipientHead: recipient.ID}
	order := make([]int, len(competing))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool {
		return bytes.Compare(competing[order[a]].Pledge[:], competing[order[b]].Pledge[:]) < 0
	})
	for _, i := range order {
		s.Pledges = append(s.Pledges, competing[i].Pledge)
		s.Accepts = append(s.Accepts, accepts[i])
		s.AcceptedWh = append(s.AcceptedWh, competing[i].AcceptedWh)
	}
	if err := s.validate(); err != nil {
		return nil, reject(ErrBadContent, "settle2 content for pledge %s: %v", t.Pledge.Short(), err)
	}
	return s, nil
}

func idSet(ids []ID) []ID {
	out := append([]ID(nil), ids...)
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i][:], out[j][:]) < 0 })
	k := 0
	for i, id := range out {
		if i == 0 || id != out[k-1] {
			out[k] = id
			k++
		}
	}
	return out[:k]
}
