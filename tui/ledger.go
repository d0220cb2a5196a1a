package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/table"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/commons-energy/commons/share/household"
)

// ledger is the ledger view: every pledge and settlement, optionally only
// those with one neighbour or in one group of states, with the offers
// that expired unanswered folded into one row, and one pledge's detail.
type ledger struct {
	common
	keys  ledgerKeys
	h     int // height of the view's area
	state household.State
	req   request

	table  table.Model
	ids    []string    // row -> pledge id; "" for the folded expired offers
	filter string      // neighbour id the ledger is filtered by; "" all
	states stateFilter // the group of states shown
	// showExpired unfolds the expired offers; folded is how many the
	// summary row stands for, matched how many pledges the filters select.
	showExpired     bool
	folded, matched int
	// title and empty are the title line and the empty state, built by
	// refresh: View only joins them.
	title, empty string

	detail pledgeDetail
}

// ledgerKeys are the ledger's bindings; the table's own are in tableKeys,
// the detail's in pledgeDetailKeys.
type ledgerKeys struct {
	Filter, States, Clear, Expired, Details, Cancel key.Binding
}

// stateFilter is a group of pledge states the ledger can be filtered to,
// in the order s cycles through them.
type stateFilter int

const (
	allStates     stateFilter = iota
	openStates                // pledged or accepted: still waiting for an answer or the window
	settledStates             // settled
	refusedStates             // declined or cancelled
	expiredStates             // expired
	stateFilters              // the number of filters
)

// String is the filter as the title line and the empty state name it.
func (f stateFilter) String() string {
	return [...]string{"all states", "open", "settled", "declined or cancelled", "expired"}[f]
}

// matches reports whether a pledge in state s is in the group.
func (f stateFilter) matches(s household.PledgeState) bool {
	switch f {
	case openStates:
		return s.Open()
	case settledStates:
		return s == household.StateSettled
	case refusedStates:
		return s == household.StateDeclined || s == household.StateCancelled
	case expiredStates:
		return s == household.StateExpired
	}
	return true
}

// expiredOffer reports whether p expired without an answer: the ledger
// folds those into one row.
func expiredOffer(p household.Pledge) bool {
	return p.State == household.StateExpired && p.AcceptedWh == nil
}

func newLedger(c common) ledger {
	k := ledgerKeys{
		Filter:  bind([]string{"f"}, "f", "filter neighbour"),
		States:  bind([]string{"s"}, "s", "filter state"),
		Clear:   bind([]string{"esc"}, "esc", "clear filters"),
		Expired: bind([]string{"e"}, "e", "show expired offers"),
		Details: bind([]string{"enter"}, "enter", "details"),
		Cancel:  bind([]string{"c"}, "c", "cancel own pledge"),
	}
	k.Cancel.SetEnabled(!c.readOnly)
	m := ledger{common: c, keys: k, table: newTable(c.st), detail: newPledgeDetail(c)}
	// columns from the start: a row with more cells than there are
	// columns panics in bubbles' table
	m.table.SetColumns(ledgerColumns(c.width))
	return m
}

// SetSize sets the view's area and lays the table out for it.
func (m *ledger) SetSize(w, h int) {
	m.width, m.h = w, h
	m.table.SetWidth(w)
	m.table.SetHeight(h - 2)
	c := m.table.Cursor()
	m.table.SetRows(nil) // see neighbours.setTables
	m.table.SetColumns(ledgerColumns(w))
	m.refresh(c)
	m.detail.common = m.common
	m.detail.SetSize(w, h)
}

// SetState shows the household's pledges.
func (m *ledger) SetState(st household.State) {
	m.state = st
	m.refresh(m.table.Cursor())
	m.detail.common = m.common
	m.detail.SetState(st)
}

// take returns and clears the request of the last Update.
func (m *ledger) take() request {
	r := m.req
	m.req = request{}
	return r
}

// closeDetail goes back to the table (when the view is left).
func (m *ledger) closeDetail() { m.detail.Close() }

// Update handles the view's keys, or the open detail's.
func (m ledger) Update(msg tea.Msg) (ledger, tea.Cmd) {
	km, ok := msg.(tea.KeyMsg)
	if !ok {
		return m, nil
	}
	if m.detail.IsOpen() {
		var cmd tea.Cmd
		m.detail.common = m.common
		m.detail, cmd = m.detail.Update(km)
		m.req = m.detail.take()
		return m, cmd
	}
	k := m.keys
	switch {
	case key.Matches(km, k.Filter):
		ids := []string{""}
		for _, n := range m.state.Neighbours {
			ids = append(ids, n.ID)
		}
		m.filter = ids[(indexOf(ids, m.filter)+1)%len(ids)]
		m.refresh(0)
	case key.Matches(km, k.States):
		m.states = (m.states + 1) % stateFilters
		m.refresh(0)
	case key.Matches(km, k.Clear):
		if m.filter != "" || m.states != allStates {
			m.filter, m.states = "", allStates
			m.refresh(0)
		}
	case key.Matches(km, k.Expired):
		m.showExpired = !m.showExpired
		m.refresh(m.table.Cursor())
	case key.Matches(km, k.Details):
		if id := m.SelectedPledge(); id != "" {
			m.detail.common = m.common
			m.detail.Open(id)
		} else if c := m.table.Cursor(); c >= 0 && c < len(m.ids) && m.keys.Expired.Enabled() {
			// enter on the folded row unfolds it
			m.showExpired = true
			m.refresh(c)
		}
	case key.Matches(km, k.Cancel):
		m.req = askCancel(m.common, m.state, m.SelectedPledge())
	default:
		tableKey(&m.table, km)
	}
	return m, nil
}

// ShortHelp is the view's bindings for the hint line.
func (m ledger) ShortHelp() []key.Binding {
	if m.detail.IsOpen() {
		return m.detail.ShortHelp()
	}
	k := m.keys
	b := []key.Binding{k.Filter, k.States}
	if m.filter != "" || m.states != allStates {
		b = append(b, k.Clear)
	}
	return append(b, k.Details, k.Expired, k.Cancel)
}

// FullHelp is the view's bindings for the help overlay, with the keys the
// table takes.
func (m ledger) FullHelp() [][]key.Binding {
	if m.detail.IsOpen() {
		return m.detail.FullHelp()
	}
	k := m.keys
	return append([][]key.Binding{{k.Filter, k.States, k.Clear, k.Expired, k.Details, k.Cancel}}, m.table.KeyMap.FullHelp()...)
}

// SelectedPledge is the pledge under the cursor, or the one in detail.
func (m ledger) SelectedPledge() string {
	if m.detail.IsOpen() {
		return m.detail.SelectedPledge()
	}
	if c := m.table.Cursor(); c >= 0 && c < len(m.ids) {
		return m.ids[c]
	}
	return ""
}

// refresh rebuilds the rows the filters select, the expired offers folded
// into one row where the first of them would be, unless they are shown or
// are what the state filter asks for.
func (m *ledger) refresh(cursor int) {
	var rows []table.Row
	m.ids = m.ids[:0]
	m.folded, m.matched = 0, 0
	fold := !m.showExpired && m.states != expiredStates
	summary := -1
	offers := 0
	for _, p := range m.state.Pledges {
		if m.filter != "" && p.From != m.filter && p.To != m.filter || !m.states.matches(p.State) {
			continue
		}
		m.matched++
		if expiredOffer(p) {
			offers++
			if fold {
				m.folded++
				if summary < 0 {
					summary = len(rows)
					rows = append(rows, nil)
					m.ids = append(m.ids, "")
				}
				continue
			}
		}
		rows = append(rows, m.pledgeRow(p))
		m.ids = append(m.ids, p.ID)
	}
	if summary >= 0 {
		rows[summary] = m.foldedRow(m.folded)
	}
	// e applies when there are expired offers to fold or show
	m.keys.Expired.SetEnabled(offers > 0 && m.states != expiredStates)
	if m.showExpired {
		m.keys.Expired.SetHelp("e", "fold expired offers")
	} else {
		m.keys.Expired.SetHelp("e", "show expired offers")
	}
	setRows(&m.table, rows, cursor)
	m.title = m.titleLine()
	m.empty = ""
	if len(m.ids) == 0 {
		m.empty = m.st.muted.Render(ansi.Wordwrap(m.emptyText(), max(m.width, 1), ""))
	}
}

// foldedRow is the one row that stands for n expired offers.
func (m common) foldedRow(n int) table.Row {
	what := "1 expired offer"
	if n != 1 {
		what = fmt.Sprintf("%d expired offers", n)
	}
	row := table.Row{" ", what, "e to show", "", "", "", "expired", ""}
	if m.width >= 120 {
		row = append(row, "")
	}
	return row
}

// emptyText says which filter hides what when the filters leave no row,
// and the keys that lift them.
func (m ledger) emptyText() string {
	if len(m.state.Pledges) == 0 {
		return "No pledges yet. p: pledge"
	}
	var what, keys []string
	what = append(what, "No")
	if m.states != allStates {
		what = append(what, m.states.String())
		keys = append(keys, "s: all states")
	}
	what = append(what, "pledges")
	if m.filter != "" {
		what = append(what, "with", neighbourName(m.state, m.filter))
		keys = append(keys, "f: all neighbours")
	}
	hidden := fmt.Sprintf("%d pledges", len(m.state.Pledges))
	if len(m.state.Pledges) == 1 {
		hidden = "1 pledge"
	}
	filters := "the filter"
	if len(keys) > 1 {
		filters = "the filters"
	}
	return fmt.Sprintf("%s — %s (%s hidden by %s)",
		strings.Join(what, " "), strings.Join(keys, ", "), hidden, filters)
}

// titleLine is the title with the count and both filters, and as much
// of the legend as fits.
func (m ledger) titleLine() string {
	st := m.st
	filter := "all neighbours"
	if m.filter != "" {
		filter = neighbourName(m.state, m.filter)
	}
	count := fmt.Sprintf(" · %d pledges", m.matched)
	if m.matched == 1 {
		count = " · 1 pledge"
	}
	head := st.boxTitle.Render("Ledger") + st.muted.Render(count+" · filter: ") +
		st.strong.Render(filter) + st.muted.Render(" (f), ") + st.strong.Render(m.states.String()) + st.muted.Render(" (s)")
	compact := st.boxTitle.Render("Ledger") + st.muted.Render(fmt.Sprintf(" (%d) · ", m.matched)) +
		st.strong.Render(filter) + st.muted.Render(" (f) · ") + st.strong.Render(m.states.String()) + st.muted.Render(" (s)")
	return fitTitle(m.width,
		head+st.muted.Render(" · → you give, ← you receive, … not yet reached them"),
		head+st.muted.Render(" · → give, ← get, … en route"),
		compact+st.muted.Render(" · → give, ← get, … en route"),
		head, compact)
}

// View is the ledger table under its title, or the pledge in detail.
func (m ledger) View() string {
	if m.detail.IsOpen() {
		return m.detail.View()
	}
	if len(m.ids) == 0 {
		return lipgloss.JoinVertical(lipgloss.Left, m.title, m.empty)
	}
	return lipgloss.JoinVertical(lipgloss.Left, m.title, m.table.View())
}
