package tui

import (
	"fmt"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/table"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/commons-energy/commons/share/household"
)

// ledger is the ledger view: every pledge and settlement, optionally only
// those with one neighbour.
type ledger struct {
	common
	keys  ledgerKeys
	h     int // height of the view's area
	state household.State
	req   request

	table  table.Model
	ids    []string // row -> pledge id
	filter string   // neighbour id the ledger is filtered by; "" all
}

// ledgerKeys are the ledger's bindings; the table's own are in tableKeys.
type ledgerKeys struct {
	Filter, Clear, Cancel key.Binding
}

func newLedger(c common) ledger {
	k := ledgerKeys{
		Filter: bind([]string{"f"}, "f", "filter neighbour"),
		Clear:  bind([]string{"esc"}, "esc", "clear filter"),
		Cancel: bind([]string{"c"}, "c", "cancel own pledge"),
	}
	k.Cancel.SetEnabled(!c.readOnly)
	m := ledger{common: c, keys: k, table: newTable(c.st)}
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
}

// SetState shows the household's pledges.
func (m *ledger) SetState(st household.State) {
	m.state = st
	m.refresh(m.table.Cursor())
}

// take returns and clears the request of the last Update.
func (m *ledger) take() request {
	r := m.req
	m.req = request{}
	return r
}

// Update handles the view's keys.
func (m ledger) Update(msg tea.Msg) (ledger, tea.Cmd) {
	km, ok := msg.(tea.KeyMsg)
	if !ok {
		return m, nil
	}
	k := m.keys
	switch {
	case key.Matches(km, k.Filter):
		ids := []string{""}
		for _, n := range m.state.Neighbours {
			ids = append(ids, n.ID)
		}
		m.filter = ids[(indexOf(ids, m.filter)+1)%len(ids)]
		m.table.SetCursor(0)
		m.refresh(0)
	case key.Matches(km, k.Clear):
		if m.filter != "" {
			m.filter = ""
			m.refresh(m.table.Cursor())
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
	b := []key.Binding{m.keys.Filter}
	if m.filter != "" {
		b = append(b, m.keys.Clear)
	}
	return append(b, m.keys.Cancel)
}

// FullHelp is the view's bindings for the help overlay, with the keys the
// table takes.
func (m ledger) FullHelp() [][]key.Binding {
	return append([][]key.Binding{{m.keys.Filter, m.keys.Clear, m.keys.Cancel}}, m.table.KeyMap.FullHelp()...)
}

// SelectedPledge is the pledge under the cursor.
func (m ledger) SelectedPledge() string {
	if c := m.table.Cursor(); c >= 0 && c < len(m.ids) {
		return m.ids[c]
	}
	return ""
}

func (m *ledger) refresh(cursor int) {
	var rows []table.Row
	m.ids = m.ids[:0]
	for _, p := range m.state.Pledges {
		if m.filter != "" && p.From != m.filter && p.To != m.filter {
			continue
		}
		rows = append(rows, m.pledgeRow(p))
		m.ids = append(m.ids, p.ID)
	}
	setRows(&m.table, rows, cursor)
}

// View is the ledger table under its title.
func (m ledger) View() string {
	st := m.st
	filter := "all neighbours"
	if m.filter != "" {
		filter = neighbourName(m.state, m.filter)
	}
	head := st.boxTitle.Render("Ledger") + st.muted.Render(fmt.Sprintf(" · %d rows · filter: ", len(m.ids))) +
		st.strong.Render(filter) + st.muted.Render(" (f)")
	title := fitTitle(m.width,
		head+st.muted.Render(" · → you give, ← you receive, … not yet reached them"),
		head+st.muted.Render(" · → give, ← get, … en route"))
	if len(m.ids) == 0 {
		return lipgloss.JoinVertical(lipgloss.Left, title, st.muted.Render("No pledges yet. p: pledge"))
	}
	return lipgloss.JoinVertical(lipgloss.Left, title, m.table.View())
}
