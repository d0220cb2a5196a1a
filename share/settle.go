package share

import (
	"bytes"
	"fmt"
	"math/bits"
	"sort"
)

// SplitWh splits total Wh over n slots in integers: every slot gets
// total/n and the first total%n slots one Wh more. n must be >= 1.
func SplitWh(total int64, n int) []int64 {
	out := make([]int64, n)
	base, rem := total/int64(n), total%int64(n)
	for i := range out {
		out[i] = base
		if int64(i) < rem {
			out[i]++
		}
	}
	return out
}

// Terms are the agreed figures of one accepted pledge, as settlement needs
// them.
type Terms struct {
	Pledge     ID
	From, To   HouseholdID // exporter and recipient
	Window     SlotRange
	PledgedWh  int64 // total pledged over the window
	AcceptedWh int64 // total accepted, <= PledgedWh
}

// SlotWh returns the pledged and accepted Wh of slot (SplitWh of the
// totals), or zeros when slot is outside the window.
func (t Terms) SlotWh(slot int64) (pledged, accepted int64) {
	if !t.Window.Contains(slot) {
		return 0, 0
	}
	i := slot - t.Window.From
	n := t.Window.Len()
	split := func(total int64) int64 {
		v := total / n
		if i < total%n {
			v++
		}
		return v
	}
	return split(t.PledgedWh), split(t.AcceptedWh)
}

// Measurements gives measured energy per household and slot: the
// exporter's own export and the recipient's import as it reported it.
type Measurements interface {
	ExportWh(h HouseholdID, slot int64) (wh int64, ok bool)
	ImportWh(h HouseholdID, slot int64) (wh int64, ok bool)
}

// SlotMeter is one household's measured energy in one slot.
type SlotMeter struct {
	ExportWh int64
	ImportWh int64
}

// MeterTable is an in-memory Measurements: household → slot → figures.
type MeterTable map[HouseholdID]map[int64]SlotMeter

// Set records the figures of h in slot.
func (t MeterTable) Set(h HouseholdID, slot int64, export, imp int64) {
	if t[h] == nil {
		t[h] = make(map[int64]SlotMeter)
	}
	t[h][slot] = SlotMeter{ExportWh: export, ImportWh: imp}
}

// AddReport records a report's figures for its author.
func (t MeterTable) AddReport(author HouseholdID, r *Report) {
	for i := range r.ExportWh {
		t.Set(author, r.FromSlot+int64(i), r.ExportWh[i], r.ImportWh[i])
	}
}

// ExportWh implements Measurements.
func (t MeterTable) ExportWh(h HouseholdID, slot int64) (int64, bool) {
	v, ok := t[h][slot]
	return v.ExportWh, ok
}

// ImportWh implements Measurements.
func (t MeterTable) ImportWh(h HouseholdID, slot int64) (int64, bool) {
	v, ok := t[h][slot]
	return v.ImportWh, ok
}

// Claim is one pledge's claim on a shared quantity (an exporter's export
// or a recipient's import) in one slot.
type Claim struct {
	Pledge   ID
	From, To HouseholdID
	Slot     int64
	Wh       int64 // what the pledge would get without competition, >= 0
}

// AllocationKey divides a slot's available Wh among competing claims. It is
// only called when the claims together exceed what is available. Share
// must return one share per claim with 0 <= share[i] <= claims[i].Wh and
// a sum <= available; the result must depend only on its arguments.
type AllocationKey interface {
	Name() string
	Share(available int64, claims []Claim) []int64
}

// ProRata is the default allocation key ("pro-rata"): each claim gets
// available × claim / Σclaims rounded down, and the Wh left by rounding go
// one each to the largest remainders, ties to the smaller pledge id. The
// shares sum to exactly available.
type ProRata struct{}

// Name returns "pro-rata".
func (ProRata) Name() string { return "pro-rata" }

// Share implements AllocationKey.
func (ProRata) Share(available int64, claims []Claim) []int64 {
	out := make([]int64, len(claims))
	var total uint64
	for _, c := range claims {
		total += uint64(c.Wh)
	}
	if total == 0 || available <= 0 {
		return out
	}
	if uint64(available) >= total {
		for i, c := range claims {
			out[i] = c.Wh
		}
		return out
	}
	rems := make([]uint64, len(claims))
	var given int64
	for i, c := range claims {
		hi, lo := bits.Mul64(uint64(available), uint64(c.Wh))
		q, r := bits.Div64(hi, lo, total) // hi < total since available < total
		out[i] = int64(q)
		rems[i] = r
		given += int64(q)
	}
	order := make([]int, len(claims))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		ia, ib := order[a], order[b]
		if rems[ia] != rems[ib] {
			return rems[ia] > rems[ib]
		}
		return bytes.Compare(claims[ia].Pledge[:], claims[ib].Pledge[:]) < 0
	})
	for k := 0; given < available; k++ {
		out[order[k]]++
		given++
	}
	return out
}

// KeyByName returns the allocation key a manifest names.
func KeyByName(name string) (AllocationKey, error) {
	switch name {
	case "pro-rata":
		return ProRata{}, nil
	}
	return nil, reject(ErrBadContent, "allocation key %q is not known to this program (known: pro-rata): upgrade commons", name)
}

// Allocation is the settled figure of one pledge in one slot.
type Allocation struct {
	Pledge     ID
	Slot       int64
	PledgedWh  int64
	AcceptedWh int64
	ExportWh   int64 // exporter's measured export in the slot
	ImportWh   int64 // recipient's reported import in the slot
	Wh         int64 // allocated
	LimitedBy  Limit // the term of min(pledged, accepted, export, import) that decided Wh
}

// Limit names the term of min(pledged, accepted, export, import) that
// decided a settled amount.
type Limit string

// The terms of a settlement. Pledged and accepted limit a slot when the
// allocation is the whole claim (accepted when the recipient accepted
// less than was pledged); export when the exporter's measured export,
// shared among its pledges, cut the claim; import when the recipient's
// measured import cut it (last, as Allocate applies it last).
const (
	LimitPledged  Limit = "pledged"
	LimitAccepted Limit = "accepted"
	LimitExport   Limit = "export"
	LimitImport   Limit = "import"
)

// PledgeLimit says which term decided a pledge's settled total, from its
// allocations (those of other pledges are ignored): the measured term
// (export or import) that cut the most Wh from the claims, or, when no
// measurement cut anything, accepted if the recipient accepted less than
// was pledged in any slot, else pledged. It returns "" when allocs holds
// no slot of the pledge.
func PledgeLimit(pledge ID, allocs []Allocation) Limit {
	var cut [2]int64 // export, import
	seen, accepted := false, false
	for _, a := range allocs {
		if a.Pledge != pledge {
			continue
		}
		seen = true
		lost := min(a.PledgedWh, a.AcceptedWh) - a.Wh
		switch a.LimitedBy {
		case LimitExport:
			cut[0] += lost
		case LimitImport:
			cut[1] += lost
		case LimitAccepted:
			accepted = true
		}
	}
	switch {
	case !seen:
		return ""
	case cut[0] > 0 && cut[0] >= cut[1]:
		return LimitExport
	case cut[1] > 0:
		return LimitImport
	case accepted:
		return LimitAccepted
	}
	return LimitPledged
}

// MissingError lists the measurements settlement needs but lacks.
type MissingError struct {
	Missing []MissingMeasurement
}

// MissingMeasurement names one lacking measurement.
type MissingMeasurement struct {
	Household HouseholdID
	Slot      int64
	Import    bool // true: import of a recipient; false: export of an exporter
}

// Error names the first missing measurement and how many more.
func (e *MissingError) Error() string {
	m := e.Missing[0]
	what := "export"
	if m.Import {
		what = "import"
	}
	more := ""
	if len(e.Missing) > 1 {
		more = fmt.Sprintf(" and %d more", len(e.Missing)-1)
	}
	return fmt.Sprintf("settlement needs the %s of %s in slot %d%s: wait for its report", what, m.Household.Short(), m.Slot, more)
}

// Unwrap returns ErrMissingMeasure.
func (e *MissingError) Unwrap() error { return ErrMissingMeasure }

// Allocate allocates every slot of every accepted pledge in terms:
//
//	claim     = min(pledged_slot, accepted_slot)
//	pass 1    per exporter and slot: if Σclaim > export, key.Share(export, claims)
//	pass 2    per recipient and slot: if Σpass1 > import, key.Share(import, pass1)
//	allocated = pass 2
//
// so no pledge gets more than pledged or accepted, no exporter gives more
// than it exported and no recipient receives more than it imported in any
// slot. Allocations are returned ordered by pledge id then slot. A
// measurement missing for a slot is an error (*MissingError).
func Allocate(terms []Terms, meas Measurements, key AllocationKey) ([]Allocation, error) {
	sorted := append([]Terms(nil), terms...)
	sort.Slice(sorted, func(i, j int) bool { return bytes.Compare(sorted[i].Pledge[:], sorted[j].Pledge[:]) < 0 })
	for i, t := range sorted {
		if i > 0 && sorted[i-1].Pledge == t.Pledge {
			return nil, fmt.Errorf("settle: pledge %s listed twice", t.Pledge.Short())
		}
		if t.Window.Len() <= 0 || t.Window.Len() > MaxWindowSlots || t.AcceptedWh < 0 || t.AcceptedWh > t.PledgedWh {
			return nil, fmt.Errorf("settle: pledge %s has invalid terms (window %d..%d, pledged %d, accepted %d)", t.Pledge.Short(), t.Window.From, t.Window.To, t.PledgedWh, t.AcceptedWh)
		}
	}
	// Collect slots.
	type cell struct {
		t     int // index in sorted
		slot  int64
		alloc Allocation
	}
	var cells []cell
	var missing []MissingMeasurement
	seenMiss := map[MissingMeasurement]bool{}
	miss := func(m MissingMeasurement) {
		if !seenMiss[m] {
			seenMiss[m] = true
			missing = append(missing, m)
		}
	}
	for ti, t := range sorted {
		for s := t.Window.From; s < t.Window.To; s++ {
			p, a := t.SlotWh(s)
			exp, ok1 := meas.ExportWh(t.From, s)
			imp, ok2 := meas.ImportWh(t.To, s)
			if !ok1 {
				miss(MissingMeasurement{Household: t.From, Slot: s})
			}
			if !ok2 {
				miss(MissingMeasurement{Household: t.To, Slot: s, Import: true})
			}
			limit := LimitPledged
			if a < p {
				limit = LimitAccepted
			}
			cells = append(cells, cell{t: ti, slot: s, alloc: Allocation{
				Pledge: t.Pledge, Slot: s, PledgedWh: p, AcceptedWh: a, ExportWh: exp, ImportWh: imp, Wh: min(p, a), LimitedBy: limit,
			}})
		}
	}
	if len(missing) > 0 {
		return nil, &MissingError{Missing: missing}
	}
	type group struct {
		h    HouseholdID
		slot int64
	}
	pass := func(side func(t Terms) HouseholdID, avail func(a Allocation) int64, limit Limit) error {
		groups := map[group][]int{}
		var order []group
		for i, c := range cells {
			g := group{side(sorted[c.t]), c.slot}
			if _, ok := groups[g]; !ok {
				order = append(order, g)
			}
			groups[g] = append(groups[g], i)
		}
		for _, g := range order {
			idx := groups[g]
			available := avail(cells[idx[0]].alloc)
			var sum int64
			claims := make([]Claim, len(idx))
			for k, i := range idx {
				t := sorted[cells[i].t]
				claims[k] = Claim{Pledge: t.Pledge, From: t.From, To: t.To, Slot: g.slot, Wh: cells[i].alloc.Wh}
				sum += cells[i].alloc.Wh
			}
			if sum <= available {
				continue
			}
			shares := key.Share(available, claims)
			if len(shares) != len(claims) {
				return fmt.Errorf("settle: allocation key %s returned %d shares for %d claims", key.Name(), len(shares), len(claims))
			}
			var got int64
			for k, sh := range shares {
				if sh < 0 || sh > claims[k].Wh {
					return fmt.Errorf("settle: allocation key %s gave pledge %s %d Wh of a %d Wh claim", key.Name(), claims[k].Pledge.Short(), sh, claims[k].Wh)
				}
				got += sh
			}
			if got > available {
				return fmt.Errorf("settle: allocation key %s shared %d Wh of %d available", key.Name(), got, available)
			}
			for k, i := range idx {
				if shares[k] < cells[i].alloc.Wh {
					cells[i].alloc.LimitedBy = limit
				}
				cells[i].alloc.Wh = shares[k]
			}
		}
		return nil
	}
	if err := pass(func(t Terms) HouseholdID { return t.From }, func(a Allocation) int64 { return a.ExportWh }, LimitExport); err != nil {
		return nil, err
	}
	if err := pass(func(t Terms) HouseholdID { return t.To }, func(a Allocation) int64 { return a.ImportWh }, LimitImport); err != nil {
		return nil, err
	}
	out := make([]Allocation, len(cells))
	for i, c := range cells {
		out[i] = c.alloc
	}
	return out, nil
}

// SettleContent builds the settle content of pledge t from allocations
// (those of other pledges are ignored) made with key.
func SettleContent(t Terms, allocs []Allocation, key AllocationKey) (*Settle, error) {
	n := int(t.Window.Len())
	s := &Settle{
		Pledge: t.Pledge, FromSlot: t.Window.From, ToSlot: t.Window.To,
		AllocatedWh: make([]int64, n), ExportWh: make([]int64, n), ImportWh: make([]int64, n),
		Key: key.Name(),
	}
	seen := make([]bool, n)
	for _, a := range allocs {
		if a.Pledge != t.Pledge || !t.Window.Contains(a.Slot) {
			continue
		}
		i := a.Slot - t.Window.From
		s.AllocatedWh[i], s.ExportWh[i], s.ImportWh[i] = a.Wh, a.ExportWh, a.ImportWh
		s.TotalWh += a.Wh
		seen[i] = true
	}
	for i, ok := range seen {
		if !ok {
			return nil, fmt.Errorf("settle content for pledge %s: no allocation for slot %d", t.Pledge.Short(), t.Window.From+int64(i))
		}
	}
	if err := s.validate(); err != nil {
		return nil, reject(ErrBadContent, "settle content for pledge %s: %v", t.Pledge.Short(), err)
	}
	return s, nil
}

// ExplainSettled says, for every settled pledge among views, which term
// decided each slot. It recomputes each exporter's allocation from the
// figures in the settle messages themselves (the exporter's export and the
// recipients' import per slot) with the key they name; a slot whose
// recomputed amount differs from the settle's (a settle made from other
// figures) is explained from its own figures alone: the whole claim is
// pledged or accepted; otherwise export when the allocation used up the
// export, import when it used up the import, else the smaller of the two,
// the one that was shared out. The allocations carry the settles' own
// amounts, ordered by slot.
func ExplainSettled(views []*PledgeView) map[ID][]Allocation {
	byExporter := map[HouseholdID][]*PledgeView{}
	for _, v := range views {
		if v.Settlement != nil {
			byExporter[v.From] = append(byExporter[v.From], v)
		}
	}
	out := make(map[ID][]Allocation)
	for from, vs := range byExporter {
		meas := MeterTable{}
		exp := map[int64]int64{}
		imp := map[HouseholdID]map[int64]int64{}
		var terms []Terms
		for _, v := range vs {
			s := v.Settlement
			for i := range s.AllocatedWh {
				slot := s.FromSlot + int64(i)
				exp[slot] = s.ExportWh[i]
				if imp[v.To] == nil {
					imp[v.To] = map[int64]int64{}
				}
				imp[v.To][slot] = s.ImportWh[i]
			}
			terms = append(terms, v.Terms())
		}
		for slot, e := range exp {
			meas.Set(from, slot, e, 0)
		}
		var recomputed map[ID]map[int64]Allocation
		if key, err := KeyByName(vs[0].Settlement.Key); err == nil {
			// A recipient that is also the exporter would overwrite the
			// export set above; such a pledge is refused on signing.
			for to, slots := range imp {
				for slot, i := range slots {
					meas.Set(to, slot, meas[to][slot].ExportWh, i)
				}
			}
			if allocs, err := Allocate(terms, meas, key); err == nil {
				recomputed = map[ID]map[int64]Allocation{}
				for _, a := range allocs {
					if recomputed[a.Pledge] == nil {
						recomputed[a.Pledge] = map[int64]Allocation{}
					}
					recomputed[a.Pledge][a.Slot] = a
				}
			}
		}
		for _, v := range vs {
			s, t := v.Settlement, v.Terms()
			allocs := make([]Allocation, len(s.AllocatedWh))
			for i := range s.AllocatedWh {
				slot := s.FromSlot + int64(i)
				p, a := t.SlotWh(slot)
				al := Allocation{Pledge: v.ID, Slot: slot, PledgedWh: p, AcceptedWh: a,
					ExportWh: s.ExportWh[i], ImportWh: s.ImportWh[i], Wh: s.AllocatedWh[i]}
				if r, ok := recomputed[v.ID][slot]; ok && r.Wh == al.Wh {
					al.LimitedBy = r.LimitedBy
				} else {
					al.LimitedBy = limitFromFigures(al)
				}
				allocs[i] = al
			}
			out[v.ID] = allocs
		}
	}
	return out
}

// limitFromFigures names the deciding term of one slot from its own
// figures, when the allocation cannot be recomputed.
func limitFromFigures(a Allocation) Limit {
	switch claim := min(a.PledgedWh, a.AcceptedWh); {
	case a.Wh >= claim && a.AcceptedWh < a.PledgedWh:
		return LimitAccepted
	case a.Wh >= claim:
		return LimitPledged
	case a.Wh >= a.ExportWh:
		return LimitExport
	case a.Wh >= a.ImportWh:
		return LimitImport
	case a.ExportWh <= a.ImportWh:
		return LimitExport
	}
	return LimitImport
}
