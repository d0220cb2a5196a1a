package tui

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/commons-energy/commons/share/household"
)

// ledgerOn is the ledger component alone on f's state at w x h, after keys.
func ledgerOn(t *testing.T, f *fakeBackend, w, h int, keys ...string) ledger {
	t.Helper()
	st, _ := f.State(context.Background())
	l := newLedger(testCommon(f, w, h))
	l.SetState(st)
	l.SetSize(w, h-3)
	for _, k := range keys {
		l, _ = l.Update(press(k))
	}
	return l
}

// TestLedgerStateFilter: s cycles through the groups of states, shows only
// the pledges in the group and names it in the title line; esc clears it.
func TestLedgerStateFilter(t *testing.T) {
	cases := []struct {
		presses int
		label   string
		ids     []string // "" is the folded expired offers
	}{
		{0, "all states", []string{"p2anna0001", "p1bob00001", "p3dev00001", "p4anna0001", "p5bob00001", "", "p7eve00001"}},
		{1, "open", []string{"p2anna0001", "p1bob00001"}},
		{2, "settled", []string{"p3dev00001", "p4anna0001"}},
		{3, "declined or cancelled", []string{"p5bob00001", "p7eve00001"}},
		{4, "expired", []string{"p6carla001"}}, // asked for: not folded
		{5, "all states", []string{"p2anna0001", "p1bob00001", "p3dev00001", "p4anna0001", "p5bob00001", "", "p7eve00001"}},
	}
	f := newFake()
	f.state.Pledges = append(f.state.Pledges, household.Pledge{ID: "p7eve00001", From: "h-alice-0001", To: "h-bob-00003",
		ToName: "Bob", Outgoing: true, EnergyWh: 100, Window: household.PledgeWindow{Start: testNow.Add(-3 * time.Hour), End: testNow.Add(-2 * time.Hour)},
		State: household.StateCancelled, Delivered: true})
	for _, c := range cases {
		t.Run(c.label, func(t *testing.T) {
			keys := slices.Repeat([]string{"s"}, c.presses)
			l := ledgerOn(t, f, 160, 48, keys...)
			if !slices.Equal(l.ids, c.ids) {
				t.Errorf("rows %q, want %q", l.ids, c.ids)
			}
			if want := c.label + " (s)"; !strings.Contains(l.View(), want) {
				t.Errorf("title lacks %q:\n%s", want, l.View())
			}
			l, _ = l.Update(press("esc"))
			if l.states != allStates {
				t.Errorf("esc left the state filter at %v", l.states)
			}
		})
	}
}

// TestLedgerEmptyState: when the filters leave no row, the view says which
// filter hides what and how to lift it, never an empty table.
func TestLedgerEmptyState(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(*fakeBackend)
		keys  []string
		want  string
		lines int // at most this many lines at 80 columns
	}{
		{"state and neighbour", nil, []string{"f", "f", "s", "s"},
			"No settled pledges with Bob — s: all states, f: all neighbours (6 pledges hidden by the filters)", 2},
		{"open with Dev", nil, []string{"f", "f", "f", "f", "s"},
			"No open pledges with Dev — s: all states, f: all neighbours (6 pledges hidden by the filters)", 2},
		{"state only", func(f *fakeBackend) { f.state.Pledges = slices.Delete(f.state.Pledges, 4, 5) }, []string{"s", "s", "s"},
			"No declined or cancelled pledges — s: all states (5 pledges hidden by the filter)", 2},
		{"neighbour only", func(f *fakeBackend) {
			f.state.Neighbours = append(f.state.Neighbours, household.Neighbour{ID: "h-eve-00006", Name: "Eve"})
		}, []string{"f", "f", "f", "f", "f"},
			"No pledges with Eve — f: all neighbours (6 pledges hidden by the filter)", 1},
		{"one pledge", func(f *fakeBackend) { f.state.Pledges = f.state.Pledges[:1] }, []string{"s", "s"},
			"No settled pledges — s: all states (1 pledge hidden by the filter)", 1},
		{"no pledges", func(f *fakeBackend) { f.state.Pledges = nil }, []string{"s", "s"}, "No pledges yet. p: pledge", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFake()
			if c.edit != nil {
				c.edit(f)
			}
			for _, w := range []int{80, 160} {
				l := ledgerOn(t, f, w, 24, c.keys...)
				v := l.View()
				body := strings.SplitN(v, "\n", 2)[1]
				if got := strings.Join(strings.Fields(body), " "); got != c.want {
					t.Errorf("%d columns: empty state %q, want %q", w, got, c.want)
				}
				if strings.Contains(v, "Window") {
					t.Errorf("%d columns: an empty table:\n%s", w, v)
				}
				for _, line := range strings.Split(v, "\n") {
					if strings.HasSuffix(strings.TrimRight(line, " "), "…") {
						t.Errorf("%d columns: line cut: %q", w, line)
					}
				}
				if n := strings.Count(body, "\n") + 1; w == 80 && n > c.lines {
					t.Errorf("%d columns: %d lines, want at most %d:\n%s", w, n, c.lines, v)
				}
			}
		})
	}
}

// TestLedgerExpiredOffersFold: offers that expired unanswered are one row
// where the first of them was, until e (or enter on that row) shows them;
// an expired pledge that was accepted stays a row of its own.
func TestLedgerExpiredOffersFold(t *testing.T) {
	f := newFake()
	expired := func(id string, accepted *int64, hoursAgo int) household.Pledge {
		s := testNow.Add(-time.Duration(hoursAgo) * time.Hour).Truncate(time.Hour)
		return household.Pledge{ID: id, From: "h-carla-004", To: "h-alice-0001", FromName: "Carla", EnergyWh: 400,
			Window: household.PledgeWindow{Start: s, End: s.Add(time.Hour)}, State: household.StateExpired, AcceptedWh: accepted, Delivered: true}
	}
	// newest first: an offer, an accepted one, then the fake's own and one more offer
	ps := f.state.Pledges
	f.state.Pledges = append(append(slices.Clone(ps[:5]), expired("x1offer001", nil, 3), expired("x2accept01", ptr(int64(400)), 4)),
		ps[5], expired("x3offer001", nil, 72))
	folded := []string{"p2anna0001", "p1bob00001", "p3dev00001", "p4anna0001", "p5bob00001", "", "x2accept01"}
	shown := []string{"p2anna0001", "p1bob00001", "p3dev00001", "p4anna0001", "p5bob00001", "x1offer001", "x2accept01", "p6carla001", "x3offer001"}
	cases := []struct {
		name string
		keys []string
		ids  []string
		want []string // in the view
		not  []string
	}{
		{"folded", nil, folded, []string{"3 expired offers", "e to show"}, []string{"Jun 13"}},
		{"e shows", []string{"e"}, shown, []string{"Jun 13 08:00-09:00", "Jun 12"}, []string{"expired offers"}},
		{"e again folds", []string{"e", "e"}, folded, []string{"3 expired offers"}, nil},
		{"enter on the row shows", []string{"G", "k", "enter"}, shown, []string{"Jun 12"}, []string{"Pledge "}},
		{"with Carla", []string{"f", "f", "f"}, []string{"", "x2accept01"}, []string{"3 expired offers"}, nil},
		{"filtered to expired", []string{"s", "s", "s", "s"}, []string{"x1offer001", "x2accept01", "p6carla001", "x3offer001"}, nil, []string{"expired offers"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := ledgerOn(t, f, 160, 48, c.keys...)
			if !slices.Equal(l.ids, c.ids) {
				t.Errorf("rows %q, want %q", l.ids, c.ids)
			}
			v := l.View()
			for _, w := range c.want {
				if !strings.Contains(v, w) {
					t.Errorf("view lacks %q:\n%s", w, v)
				}
			}
			for _, w := range c.not {
				if strings.Contains(v, w) {
					t.Errorf("view has %q:\n%s", w, v)
				}
			}
		})
	}
	// c on the folded row asks for a pledge, it cancels nothing
	l := ledgerOn(t, f, 160, 48, "G", "k", "c")
	if r := l.take(); r.confirm != nil || !strings.Contains(r.notice, "Select one of your pledges") {
		t.Errorf("c on the folded row: %+v", r)
	}
}

// TestPledgeDetail: enter on a settled pledge shows it in full, with the
// term that limited it overall and in each slot; esc goes back to the row.
func TestPledgeDetail(t *testing.T) {
	f := newFake()
	var tm tea.Model = loaded(t, f, 80, 24)
	for _, k := range []string{"4", "j", "j", "enter"} {
		tm, _ = tm.Update(press(k))
	}
	v := tm.View()
	for _, want := range []string{
		"Pledge p3dev00001", "Window      11:00-12:00", "With        → Dev (you give)",
		"Pledged     2 kWh", "Accepted    2 kWh", "Delivered   1.74 kWh", "State       settled",
		"Reached     yes", "Limited by  import: Dev imported less than the pledge claimed",
		"Slots · 4 × 15 min",
	} {
		if !strings.Contains(v, want) {
			t.Errorf("detail lacks %q:\n%s", want, v)
		}
	}
	slots := []struct{ window, wh, term string }{
		{"11:00-11:15", "500 Wh", "pledged"}, {"11:15-11:30", "500 Wh", "pledged"},
		{"11:30-11:45", "370 Wh", "import (Dev)"}, {"11:45-12:00", "370 Wh", "import (Dev)"},
	}
	lines := strings.Split(v, "\n")
	for _, s := range slots {
		i := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, s.window) })
		if i < 0 || !strings.Contains(lines[i], " "+s.wh+" ") || !strings.Contains(lines[i], s.term) {
			t.Errorf("slot %s not %s limited by %q:\n%s", s.window, s.wh, s.term, v)
		}
	}
	if m := tm.(Model); m.selectedPledge() != "p3dev00001" {
		t.Errorf("selected pledge in detail %q", m.selectedPledge())
	}
	tm, _ = tm.Update(press("esc"))
	m := tm.(Model)
	if m.ledger.detail.IsOpen() || !strings.Contains(m.View(), "Delivered State") || m.selectedPledge() != "p3dev00001" {
		t.Errorf("esc did not go back to the row:\n%s", m.View())
	}
	// leaving the view closes it
	for _, k := range []string{"enter", "1", "4"} {
		tm, _ = tm.Update(press(k))
	}
	if tm.(Model).ledger.detail.IsOpen() {
		t.Error("detail still open after leaving the view")
	}
}

// TestPledgeDetailStates: the lines that depend on the pledge's state.
func TestPledgeDetailStates(t *testing.T) {
	cases := []struct {
		name string
		edit func(*fakeBackend)
		keys []string
		want []string
	}{
		{"incoming open", nil, []string{"enter"}, []string{"State       pledged, waiting for your answer", "Limited by  - (only a settled pledge has a limit)"}},
		{"not yet reached", nil, []string{"j", "enter"}, []string{"Reached     not yet: your latest message about it has not reached Bob's box"}},
		{"settled in full", nil, []string{"j", "j", "j", "enter"}, []string{"Limited by  pledged: the whole pledged amount was settled", "Slots · 1 × 15 min"}},
		{"back", nil, []string{"j", "enter", "esc"}, []string{"Delivered State"}},
		// from a household whose contract has no per-slot Wh
		{"no slot Wh", func(f *fakeBackend) { f.state.Pledges[3].SlotWh = nil }, []string{"j", "j", "j", "enter"},
			[]string{"Jun 14 09:00-09:15 -          pledged"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFake()
			if c.edit != nil {
				c.edit(f)
			}
			v := ledgerOn(t, f, 80, 24, c.keys...).View()
			for _, w := range c.want {
				if !strings.Contains(v, w) {
					t.Errorf("lacks %q:\n%s", w, v)
				}
			}
		})
	}
}

// TestAnswersInPledgeDetail: a and d answer the pledge in detail, in the
// ledger and in a neighbour's history.
func TestAnswersInPledgeDetail(t *testing.T) {
	f := newFake()
	tm := start(t, loaded(t, f, 80, 24), 80, 24)
	send(tm, "4", "enter")
	waitOutput(t, tm, "Pledge p2anna0001")
	send(tm, "d")
	waitCalls(t, f, "decline p2anna0001")
	waitOutput(t, tm, "declined.")
	final(t, tm)

	f = newFake()
	var m tea.Model = loaded(t, f, 80, 24)
	for _, k := range []string{"3", "j", "enter", "enter"} {
		m, _ = m.Update(press(k))
	}
	if !strings.Contains(m.View(), "Pledge p1bob00001") || m.(Model).selectedPledge() != "p1bob00001" {
		t.Fatalf("neighbour's pledge detail:\n%s", m.View())
	}
	m, _ = m.Update(press("c"))
	if !m.(Model).confirm.open {
		t.Errorf("c in the pledge detail did not ask to cancel:\n%s", m.View())
	}
	m, _ = m.Update(press("n"))
	m, _ = m.Update(press("esc"))
	if v := m.View(); !strings.Contains(v, "pledges and settlements between you") {
		t.Errorf("esc did not go back to the neighbour:\n%s", v)
	}
}
