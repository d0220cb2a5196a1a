package share

import (
	"errors"
	"fmt"
	"math/rand"
	"testing"
)

func pid(n byte) ID { return ID{n} }

func hh(n byte) HouseholdID { return HouseholdID{n} }

func TestProRataShare(t *testing.T) {
	claims := func(whs ...int64) []Claim {
		var cs []Claim
		for i, w := range whs {
			cs = append(cs, Claim{Pledge: pid(byte(i + 1)), Wh: w})
		}
		return cs
	}
	for _, tc := range []struct {
		name  string
		avail int64
		cl    []Claim
		want  []int64
	}{
		{"enough", 100, claims(30, 20), []int64{30, 20}},
		{"exact halves", 100, claims(100, 100), []int64{50, 50}},
		{"pro rata", 90, claims(100, 50), []int64{60, 30}},
		// 10 * 1/3 each = 3.33: one Wh left goes to the smallest pledge id.
		{"tie to smaller id", 10, claims(5, 5, 5), []int64{4, 3, 3}},
		// 4*3/5 = 2.4, 4*2/5 = 1.6: the larger remainder gets the Wh.
		{"largest remainder", 4, claims(3, 2), []int64{2, 2}},
		{"nothing", 0, claims(3, 2), []int64{0, 0}},
		{"zero claims", 5, claims(0, 0), []int64{0, 0}},
		{"huge", 1 << 40, claims(1<<40, 1<<40, 1), []int64{549755813888, 549755813888, 0}},
	} {
		got := ProRata{}.Share(tc.avail, tc.cl)
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
				break
			}
		}
	}
	// The tie-break follows pledge ids, not slice order.
	cl := []Claim{{Pledge: pid(9), Wh: 5}, {Pledge: pid(2), Wh: 5}}
	if got := (ProRata{}).Share(5, cl); got[0] != 2 || got[1] != 3 {
		t.Fatalf("tie-break by id: %v", got)
	}
}

func TestAllocateCaps(t *testing.T) {
	a, b, c := hh(1), hh(2), hh(3)
	w := SlotRange{From: 100, To: 102}
	tests := []struct {
		name  string
		terms []Terms
		meter func(MeterTable)
		want  map[ID][]int64
		// which term decided each slot, and the pledge's total
		limits map[ID][]Limit
		pledge map[ID]Limit
	}{
		{
			"capped by pledged",
			[]Terms{{Pledge: pid(1), From: a, To: b, Window: w, PledgedWh: 200, AcceptedWh: 200}},
			func(m MeterTable) {
				m.Set(a, 100, 1000, 0)
				m.Set(a, 101, 1000, 0)
				m.Set(b, 100, 0, 1000)
				m.Set(b, 101, 0, 1000)
			},
			map[ID][]int64{pid(1): {100, 100}},
			map[ID][]Limit{pid(1): {LimitPledged, LimitPledged}},
			map[ID]Limit{pid(1): LimitPledged},
		},
		{
			"capped by accepted",
			[]Terms{{Pledge: pid(1), From: a, To: b, Window: w, PledgedWh: 200, AcceptedWh: 51}},
			func(m MeterTable) {
				m.Set(a, 100, 1000, 0)
				m.Set(a, 101, 1000, 0)
				m.Set(b, 100, 0, 1000)
				m.Set(b, 101, 0, 1000)
			},
			map[ID][]int64{pid(1): {26, 25}},
			map[ID][]Limit{pid(1): {LimitAccepted, LimitAccepted}},
			map[ID]Limit{pid(1): LimitAccepted},
		},
		{
			"capped by export",
			[]Terms{{Pledge: pid(1), From: a, To: b, Window: w, PledgedWh: 200, AcceptedWh: 200}},
			func(m MeterTable) {
				m.Set(a, 100, 40, 0)
				m.Set(a, 101, 0, 300)
				m.Set(b, 100, 0, 1000)
				m.Set(b, 101, 0, 1000)
			},
			map[ID][]int64{pid(1): {40, 0}},
			map[ID][]Limit{pid(1): {LimitExport, LimitExport}},
			map[ID]Limit{pid(1): LimitExport},
		},
		{
			"capped by import",
			[]Terms{{Pledge: pid(1), From: a, To: b, Window: w, PledgedWh: 200, AcceptedWh: 200}},
			func(m MeterTable) {
				m.Set(a, 100, 1000, 0)
				m.Set(a, 101, 1000, 0)
				m.Set(b, 100, 0, 7)
				m.Set(b, 101, 0, 1000)
			},
			map[ID][]int64{pid(1): {7, 100}},
			map[ID][]Limit{pid(1): {LimitImport, LimitPledged}},
			map[ID]Limit{pid(1): LimitImport},
		},
		{
			"two recipients share export pro rata",
			[]Terms{
				{Pledge: pid(1), From: a, To: b, Window: w, PledgedWh: 200, AcceptedWh: 200},
				{Pledge: pid(2), From: a, To: c, Window: w, PledgedWh: 100, AcceptedWh: 100},
			},
			func(m MeterTable) {
				m.Set(a, 100, 90, 0)
				m.Set(a, 101, 100, 0)
				m.Set(b, 100, 0, 1000)
				m.Set(b, 101, 0, 1000)
				m.Set(c, 100, 0, 1000)
				m.Set(c, 101, 0, 1000)
			},
			// slot 100: claims 100 and 50 share 90 → 60/30; slot 101: 100 for 100+50 → 67/33 (66.67 + 33.33 rounded by remainder)
			map[ID][]int64{pid(1): {60, 67}, pid(2): {30, 33}},
			map[ID][]Limit{pid(1): {LimitExport, LimitExport}, pid(2): {LimitExport, LimitExport}},
			map[ID]Limit{pid(1): LimitExport, pid(2): LimitExport},
		},
		{
			"two exporters share one import",
			[]Terms{
				{Pledge: pid(1), From: a, To: c, Window: w, PledgedWh: 200, AcceptedWh: 200},
				{Pledge: pid(2), From: b, To: c, Window: w, PledgedWh: 200, AcceptedWh: 200},
			},
			func(m MeterTable) {
				m.Set(a, 100, 1000, 0)
				m.Set(a, 101, 1000, 0)
				m.Set(b, 100, 1000, 0)
				m.Set(b, 101, 1000, 0)
				m.Set(c, 100, 0, 101)
				m.Set(c, 101, 0, 0)
			},
			map[ID][]int64{pid(1): {51, 0}, pid(2): {50, 0}},
			map[ID][]Limit{pid(1): {LimitImport, LimitImport}, pid(2): {LimitImport, LimitImport}},
			map[ID]Limit{pid(1): LimitImport, pid(2): LimitImport},
		},
		{
			"export cut more than import",
			[]Terms{{Pledge: pid(1), From: a, To: b, Window: w, PledgedWh: 200, AcceptedWh: 200}},
			func(m MeterTable) {
				m.Set(a, 100, 30, 0)
				m.Set(a, 101, 1000, 0)
				m.Set(b, 100, 0, 1000)
				m.Set(b, 101, 0, 90)
			},
			map[ID][]int64{pid(1): {30, 90}},
			map[ID][]Limit{pid(1): {LimitExport, LimitImport}},
			map[ID]Limit{pid(1): LimitExport},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := MeterTable{}
			tc.meter(m)
			allocs, err := Allocate(tc.terms, m, ProRata{})
			if err != nil {
				t.Fatal(err)
			}
			got := map[ID][]int64{}
			for _, al := range allocs {
				got[al.Pledge] = append(got[al.Pledge], al.Wh)
			}
			for id, want := range tc.want {
				if len(got[id]) != len(want) {
					t.Fatalf("pledge %s: %v, want %v", id.Short(), got[id], want)
				}
				for i := range want {
					if got[id][i] != want[i] {
						t.Fatalf("pledge %s: %v, want %v", id.Short(), got[id], want)
					}
				}
			}
			gotLimits := map[ID][]Limit{}
			for _, al := range allocs {
				gotLimits[al.Pledge] = append(gotLimits[al.Pledge], al.LimitedBy)
			}
			for id, want := range tc.limits {
				if fmt.Sprint(gotLimits[id]) != fmt.Sprint(want) {
					t.Errorf("pledge %s slots limited by %v, want %v", id.Short(), gotLimits[id], want)
				}
				if got := PledgeLimit(id, allocs); got != tc.pledge[id] {
					t.Errorf("pledge %s limited by %q, want %q", id.Short(), got, tc.pledge[id])
				}
			}
			if got := PledgeLimit(pid(99), allocs); got != "" {
				t.Errorf("a pledge without allocations is limited by %q, want none", got)
			}
			for _, tm := range tc.terms {
				s, err := SettleContent(tm, allocs, ProRata{})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := EncodeContent(s); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestAllocateMissing(t *testing.T) {
	a, b := hh(1), hh(2)
	terms := []Terms{{Pledge: pid(1), From: a, To: b, Window: SlotRange{From: 5, To: 7}, PledgedWh: 10, AcceptedWh: 10}}
	m := MeterTable{}
	m.Set(a, 5, 10, 0)
	m.Set(a, 6, 10, 0)
	m.Set(b, 5, 0, 10)
	_, err := Allocate(terms, m, ProRata{})
	var me *MissingError
	if !errors.As(err, &me) || !errors.Is(err, ErrMissingMeasure) || len(me.Missing) != 1 || me.Missing[0].Slot != 6 || !me.Missing[0].Import {
		t.Fatalf("got %v", err)
	}
	m.AddReport(b, &Report{FromSlot: 6, ExportWh: []int64{0}, ImportWh: []int64{3}})
	allocs, err := Allocate(terms, m, ProRata{})
	if err != nil || allocs[1].Wh != 3 {
		t.Fatalf("%v %+v", err, allocs)
	}
}

// badKey gives more than claimed; Allocate must refuse it.
type badKey struct{}

func (badKey) Name() string { return "bad" }
func (badKey) Share(avail int64, cl []Claim) []int64 {
	out := make([]int64, len(cl))
	out[0] = avail + 1
	return out
}

func TestAllocateRefusesBrokenKey(t *testing.T) {
	a, b, c := hh(1), hh(2), hh(3)
	terms := []Terms{
		{Pledge: pid(1), From: a, To: b, Window: SlotRange{From: 5, To: 6}, PledgedWh: 10, AcceptedWh: 10},
		{Pledge: pid(2), From: a, To: c, Window: SlotRange{From: 5, To: 6}, PledgedWh: 10, AcceptedWh: 10},
	}
	m := MeterTable{}
	m.Set(a, 5, 5, 0)
	m.Set(b, 5, 0, 50)
	m.Set(c, 5, 0, 50)
	if _, err := Allocate(terms, m, badKey{}); err == nil {
		t.Fatal("broken key accepted")
	}
	dup := append(terms, terms[0])
	if _, err := Allocate(dup, m, ProRata{}); err == nil {
		t.Fatal("duplicate pledge accepted")
	}
}

// TestAllocateProperties checks, on random communities, that settlement
// never allocates more than any exporter's export or recipient's import in
// a slot, nor more than pledged or accepted; that pro rata sharing hands
// out exactly the contested quantity; and that the result does not depend
// on the order of the terms.
func TestAllocateProperties(t *testing.T) {
	seed := int64(20250601)
	rng := rand.New(rand.NewSource(seed))
	for iter := 0; iter < 2000; iter++ {
		nh := 2 + rng.Intn(5)
		var terms []Terms
		np := 1 + rng.Intn(8)
		for i := 0; i < np; i++ {
			from := hh(byte(rng.Intn(nh)))
			to := hh(byte(rng.Intn(nh)))
			start := int64(rng.Intn(6))
			n := int64(1 + rng.Intn(4))
			pledged := int64(rng.Intn(5000))
			terms = append(terms, Terms{
				Pledge: ID{byte(i), byte(rng.Intn(256))}, From: from, To: to,
				Window: SlotRange{From: start, To: start + n}, PledgedWh: pledged, AcceptedWh: rng.Int63n(pledged + 1),
			})
		}
		m := MeterTable{}
		for h := 0; h < nh; h++ {
			for s := int64(0); s < 10; s++ {
				m.Set(hh(byte(h)), s, int64(rng.Intn(3000)), int64(rng.Intn(3000)))
			}
		}
		allocs, err := Allocate(terms, m, ProRata{})
		if err != nil {
			t.Fatalf("seed %d iter %d: %v", seed, iter, err)
		}
		type key struct {
			h HouseholdID
			s int64
		}
		given, got := map[key]int64{}, map[key]int64{}
		claimsFrom := map[key]int64{}
		byID := map[ID]Terms{}
		for _, tm := range terms {
			byID[tm.Pledge] = tm
		}
		for _, al := range allocs {
			tm := byID[al.Pledge]
			p, acc := tm.SlotWh(al.Slot)
			if al.Wh < 0 || al.Wh > p || al.Wh > acc {
				t.Fatalf("iter %d: pledge %s slot %d allocated %d > pledged %d / accepted %d", iter, al.Pledge.Short(), al.Slot, al.Wh, p, acc)
			}
			// the named term is the one that decided the slot
			switch claim := min(p, acc); {
			case al.Wh == claim && al.LimitedBy != LimitPledged && al.LimitedBy != LimitAccepted,
				al.Wh < claim && al.LimitedBy != LimitExport && al.LimitedBy != LimitImport,
				al.LimitedBy == LimitAccepted && acc >= p:
				t.Fatalf("iter %d: pledge %s slot %d: %d of claim %d (pledged %d, accepted %d) said to be limited by %q", iter, al.Pledge.Short(), al.Slot, al.Wh, claim, p, acc, al.LimitedBy)
			}
			given[key{tm.From, al.Slot}] += al.Wh
			got[key{tm.To, al.Slot}] += al.Wh
			claimsFrom[key{tm.From, al.Slot}] += min(p, acc)
		}
		for k, v := range given {
			if exp, _ := m.ExportWh(k.h, k.s); v > exp {
				t.Fatalf("iter %d: %s gives %d Wh in slot %d, exported %d", iter, k.h.Short(), v, k.s, exp)
			}
		}
		for k, v := range got {
			if imp, _ := m.ImportWh(k.h, k.s); v > imp {
				t.Fatalf("iter %d: %s receives %d Wh in slot %d, imported %d", iter, k.h.Short(), v, k.s, imp)
			}
		}
		// Reversed input gives the same result.
		rev := make([]Terms, len(terms))
		for i := range terms {
			rev[len(terms)-1-i] = terms[i]
		}
		allocs2, err := Allocate(rev, m, ProRata{})
		if err != nil || len(allocs2) != len(allocs) {
			t.Fatalf("iter %d: reversed: %v", iter, err)
		}
		for i := range allocs {
			if allocs[i] != allocs2[i] {
				t.Fatalf("iter %d: order-dependent result", iter)
			}
		}
	}
}

// TestProRataProperties: shares never exceed claims, and sum to exactly
// min(available, Σclaims).
func TestProRataProperties(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for iter := 0; iter < 5000; iter++ {
		n := 1 + rng.Intn(10)
		cl := make([]Claim, n)
		var total int64
		for i := range cl {
			cl[i] = Claim{Pledge: ID{byte(rng.Intn(4)), byte(i)}, Wh: rng.Int63n(1 << uint(1+rng.Intn(40)))}
			total += cl[i].Wh
		}
		avail := rng.Int63n(total + 2)
		sh := ProRata{}.Share(avail, cl)
		var sum int64
		for i, s := range sh {
			if s < 0 || s > cl[i].Wh {
				t.Fatalf("iter %d: share %d of claim %d", iter, s, cl[i].Wh)
			}
			sum += s
		}
		if sum != min(avail, total) {
			t.Fatalf("iter %d: shares sum to %d, want %d", iter, sum, min(avail, total))
		}
	}
}

// TestAllocateSumPreserving: with no import cap binding, every exporter's
// slot hands out exactly min(export, Σclaims) — no Wh lost to rounding.
func TestAllocateSumPreserving(t *testing.T) {
	rng := rand.New(rand.NewSource(99))
	for iter := 0; iter < 1000; iter++ {
		nh := 2 + rng.Intn(5)
		var terms []Terms
		for i := 0; i < 1+rng.Intn(8); i++ {
			start := int64(rng.Intn(4))
			pledged := 1 + rng.Int63n(4000)
			terms = append(terms, Terms{
				Pledge: ID{byte(i), byte(rng.Intn(256))}, From: hh(byte(rng.Intn(nh))), To: hh(byte(100 + rng.Intn(nh))),
				Window: SlotRange{From: start, To: start + 1 + int64(rng.Intn(3))}, PledgedWh: pledged, AcceptedWh: 1 + rng.Int63n(pledged),
			})
		}
		m := MeterTable{}
		for h := 0; h < nh; h++ {
			for s := int64(0); s < 8; s++ {
				m.Set(hh(byte(h)), s, int64(rng.Intn(2000)), 0)
				m.Set(hh(byte(100+h)), s, 0, MaxEnergyWh)
			}
		}
		allocs, err := Allocate(terms, m, ProRata{})
		if err != nil {
			t.Fatal(err)
		}
		type key struct {
			h HouseholdID
			s int64
		}
		given, claims := map[key]int64{}, map[key]int64{}
		byID := map[ID]Terms{}
		for _, tm := range terms {
			byID[tm.Pledge] = tm
		}
		for _, al := range allocs {
			tm := byID[al.Pledge]
			p, a := tm.SlotWh(al.Slot)
			given[key{tm.From, al.Slot}] += al.Wh
			claims[key{tm.From, al.Slot}] += min(p, a)
		}
		for k, c := range claims {
			exp, _ := m.ExportWh(k.h, k.s)
			if given[k] != min(exp, c) {
				t.Fatalf("iter %d: exporter %s slot %d gives %d, want min(export %d, claims %d)", iter, k.h.Short(), k.s, given[k], exp, c)
			}
		}
	}
}

// TestExplainSettled: a reader recomputing an exporter's settles from
// their own figures names the same deciding term per slot as the settler's
// Allocate did, on random streets of one exporter; a settle whose amounts
// were not computed from its figures is explained from them alone.
func TestExplainSettled(t *testing.T) {
	rng := rand.New(rand.NewSource(20261202))
	from := hh(0)
	for iter := 0; iter < 500; iter++ {
		var terms []Terms
		for i := 0; i < 1+rng.Intn(6); i++ {
			start := int64(rng.Intn(4))
			pledged := int64(1 + rng.Intn(3000))
			terms = append(terms, Terms{
				Pledge: ID{byte(i), 7}, From: from, To: hh(byte(1 + rng.Intn(3))),
				Window: SlotRange{From: start, To: start + int64(1+rng.Intn(3))}, PledgedWh: pledged, AcceptedWh: rng.Int63n(pledged + 1),
			})
		}
		m := MeterTable{}
		for h := 0; h < 4; h++ {
			for s := int64(0); s < 8; s++ {
				m.Set(hh(byte(h)), s, int64(rng.Intn(2500)), int64(rng.Intn(2500)))
			}
		}
		allocs, err := Allocate(terms, m, ProRata{})
		if err != nil {
			t.Fatal(err)
		}
		want := map[ID][]Limit{}
		for _, a := range allocs {
			want[a.Pledge] = append(want[a.Pledge], a.LimitedBy)
		}
		var views []*PledgeView
		for _, tm := range terms {
			s, err := SettleContent(tm, allocs, ProRata{})
			if err != nil {
				t.Fatal(err)
			}
			views = append(views, &PledgeView{ID: tm.Pledge, From: tm.From, To: tm.To, Window: tm.Window,
				PledgedWh: tm.PledgedWh, AcceptedWh: tm.AcceptedWh, State: StateSettled, Settlement: s})
		}
		// a pledge not settled is not explained
		views = append(views, &PledgeView{ID: ID{99}, From: from, To: hh(1), Window: SlotRange{From: 0, To: 1}, PledgedWh: 5, State: StatePledged})
		got := ExplainSettled(views)
		if len(got) != len(terms) {
			t.Fatalf("iter %d: explained %d pledges, want %d", iter, len(got), len(terms))
		}
		for id, w := range want {
			var g []Limit
			for _, a := range got[id] {
				g = append(g, a.LimitedBy)
			}
			if fmt.Sprint(g) != fmt.Sprint(w) {
				t.Fatalf("iter %d: pledge %s explained as %v, the settler's allocation said %v", iter, id.Short(), g, w)
			}
		}
	}

	// Amounts not computed from the settle's own figures: explained
	// from the figures of each slot.
	s := &Settle{Pledge: ID{1}, FromSlot: 0, ToSlot: 4, Key: "pro-rata",
		AllocatedWh: []int64{100, 40, 30, 10}, ExportWh: []int64{500, 40, 900, 20}, ImportWh: []int64{500, 900, 30, 50}, TotalWh: 180}
	v := &PledgeView{ID: ID{1}, From: hh(0), To: hh(1), Window: SlotRange{From: 0, To: 4}, PledgedWh: 400, AcceptedWh: 400, State: StateSettled, Settlement: s}
	// slot 3: 10 of a 100 claim with export 20 < import 50 (shared out)
	wantFig := []Limit{LimitPledged, LimitExport, LimitImport, LimitExport}
	var g []Limit
	for _, a := range ExplainSettled([]*PledgeView{v})[v.ID] {
		g = append(g, a.LimitedBy)
	}
	if fmt.Sprint(g) != fmt.Sprint(wantFig) {
		t.Errorf("settle with its own figures explained as %v, want %v", g, wantFig)
	}
}
