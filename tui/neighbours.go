package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/table"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/input"
)

// neighbours is the neighbours view: the table of neighbours, and one
// neighbour's detail with the history of pledges between you.
type neighbours struct {
	common
	keys  neighbourKeys
	h     int // height of the view's area
	state household.State
	req   request

	list table.Model
	ids  []string // list row -> neighbour id

	detail    string // neighbour id shown in detail; "" for the list
	detailTbl table.Model
	detailIDs []string // detail row -> pledge id

	pledge pledgeDetail // a pledge of the neighbour's history, on enter
}

// neighbourKeys are the neighbours view's bindings; the tables' own are
// in tableKeys.
type neighbourKeys struct {
	Details, Back, Pledge, Cancel key.Binding
}

func newNeighbours(c common) neighbours {
	k := neighbourKeys{
		Details: bind([]string{"enter"}, "enter", "details"),
		Back:    bind([]string{"esc"}, "esc", "back"),
		Pledge:  bind([]string{"p"}, "p", "pledge to selected"),
		Cancel:  bind([]string{"c"}, "c", "cancel own pledge"),
	}
	k.Pledge.SetEnabled(!c.readOnly)
	k.Cancel.SetEnabled(!c.readOnly)
	m := neighbours{common: c, keys: k, list: newTable(c.st), detailTbl: newTable(c.st), pledge: newPledgeDetail(c)}
	// columns from the start: a row with more cells than there are
	// columns panics in bubbles' table
	m.setColumns()
	m.detailTbl.SetColumns(ledgerColumns(c.width))
	return m
}

// SetSize sets the view's area and lays the tables out for it.
func (m *neighbours) SetSize(w, h int) {
	m.width, m.h = w, h
	m.list.SetWidth(w)
	m.list.SetHeight(h - 2)
	m.detailTbl.SetWidth(w)
	m.detailTbl.SetHeight(max(h-9, 3))
	m.setTables()
	m.pledge.common = m.common
	m.pledge.SetSize(w, h)
}

// SetState shows the household's neighbours and pledges.
func (m *neighbours) SetState(st household.State) {
	m.state = st
	m.refresh(m.list.Cursor(), m.detailTbl.Cursor())
	m.pledge.common = m.common
	m.pledge.SetState(st)
}

// take returns and clears the request of the last Update.
func (m *neighbours) take() request {
	r := m.req
	m.req = request{}
	return r
}

// closeDetail goes back to the list (when the view is left).
func (m *neighbours) closeDetail() {
	m.detail = ""
	m.pledge.Close()
}

// Update handles the view's keys.
func (m neighbours) Update(msg tea.Msg) (neighbours, tea.Cmd) {
	km, ok := msg.(tea.KeyMsg)
	if !ok {
		return m, nil
	}
	k := m.keys
	if m.pledge.IsOpen() {
		var cmd tea.Cmd
		m.pledge.common = m.common
		m.pledge, cmd = m.pledge.Update(km)
		m.req = m.pledge.take()
		return m, cmd
	}
	if m.detail != "" {
		switch {
		case key.Matches(km, k.Details):
			if id := m.SelectedPledge(); id != "" {
				m.pledge.common = m.common
				m.pledge.Open(id)
			}
		case key.Matches(km, k.Back):
			m.detail = ""
		case key.Matches(km, k.Pledge):
			to := m.detail
			m.req.pledgeTo = &to
		case key.Matches(km, k.Cancel):
			m.req = askCancel(m.common, m.state, m.SelectedPledge())
		default:
			tableKey(&m.detailTbl, km)
		}
		return m, nil
	}
	switch {
	case key.Matches(km, k.Details):
		if id := m.selected(); id != "" {
			m.detail = id
			m.detailTbl.SetCursor(0)
			m.refreshDetail(0)
		}
	case key.Matches(km, k.Pledge):
		to := m.selected()
		m.req.pledgeTo = &to
	default:
		tableKey(&m.list, km)
	}
	return m, nil
}

// ShortHelp is the view's bindings for the hint line.
func (m neighbours) ShortHelp() []key.Binding {
	k := m.keys
	if m.pledge.IsOpen() {
		return m.pledge.ShortHelp()
	}
	if m.detail != "" {
		p := k.Pledge
		p.SetHelp("p", "pledge to them")
		d := k.Details
		d.SetHelp("enter", "pledge details")
		return []key.Binding{k.Back, p, k.Cancel, d}
	}
	return []key.Binding{k.Details, k.Pledge}
}

// FullHelp is the view's bindings for the help overlay, with the keys the
// table under them takes.
func (m neighbours) FullHelp() [][]key.Binding {
	if m.pledge.IsOpen() {
		return m.pledge.FullHelp()
	}
	t := m.list
	if m.detail != "" {
		t = m.detailTbl
	}
	return append([][]key.Binding{m.ShortHelp()}, t.KeyMap.FullHelp()...)
}

// SelectedPledge is the pledge under the cursor in a neighbour's history;
// "" in the list.
func (m neighbours) SelectedPledge() string {
	if m.pledge.IsOpen() {
		return m.pledge.SelectedPledge()
	}
	if m.detail == "" {
		return ""
	}
	if c := m.detailTbl.Cursor(); c >= 0 && c < len(m.detailIDs) {
		return m.detailIDs[c]
	}
	return ""
}

// selected is the neighbour under the cursor.
func (m neighbours) selected() string {
	c := m.list.Cursor()
	if c >= 0 && c < len(m.ids) {
		return m.ids[c]
	}
	return ""
}

// setTables sets the tables' columns for the current width and rebuilds
// their rows to match. A bubbles table renders its rows against its columns
// inside SetColumns and SetRows, and a row with more cells than there are
// columns panics (the wide layout has one column more): so the old rows go
// before the columns change, and rows built for the new columns come back
// after, with the cursors where they were.
func (m *neighbours) setTables() {
	cl, cd := m.list.Cursor(), m.detailTbl.Cursor()
	m.list.SetRows(nil)
	m.detailTbl.SetRows(nil)
	m.setColumns()
	m.detailTbl.SetColumns(ledgerColumns(m.width))
	m.refresh(cl, cd)
}

func (m *neighbours) refresh(listCursor, detailCursor int) {
	var rows []table.Row
	m.ids = m.ids[:0]
	for _, n := range m.state.Neighbours {
		rows = append(rows, m.row(n))
		m.ids = append(m.ids, n.ID)
	}
	setRows(&m.list, rows, listCursor)
	m.refreshDetail(detailCursor)
}

func (m *neighbours) refreshDetail(cursor int) {
	var rows []table.Row
	m.detailIDs = m.detailIDs[:0]
	if m.detail != "" {
		for _, p := range m.state.Pledges {
			if p.From == m.detail || p.To == m.detail {
				rows = append(rows, m.pledgeRow(p))
				m.detailIDs = append(m.detailIDs, p.ID)
			}
		}
	}
	setRows(&m.detailTbl, rows, cursor)
}

func (m *neighbours) setColumns() {
	wide := m.width >= 120
	cols := []table.Column{
		{Title: " ", Width: 1},
		{Title: "Neighbour", Width: 8},
		{Title: "Now", Width: 14},
		{Title: "Age", Width: 7},
		{Title: "Open", Width: 4},
		{Title: "Month g/r", Width: 13},
		{Title: "Total g/r", Width: 13},
		{Title: "Last seen", Width: 9},
	}
	if wide {
		cols = append(cols, table.Column{Title: "Problem", Width: 30})
	}
	// spare cells: the name grows up to 24, then the problem column takes
	// the rest; when short, the problem column and then the name shrink
	spare := m.width - 1
	for _, c := range cols {
		spare -= c.Width + 1
	}
	grow := min(max(spare, 0), 16)
	cols[1].Width += grow
	spare -= grow
	if wide {
		last := len(cols) - 1
		cols[last].Width = max(cols[last].Width+spare, 10)
		spare = min(spare+30-cols[last].Width, 0) // what is still missing
	}
	if spare < 0 {
		cols[1].Width = max(cols[1].Width+spare, 6)
	}
	m.list.SetColumns(cols)
}

func (m neighbours) row(n household.Neighbour) table.Row {
	name := nameOr(n.Name, n.ID)
	if n.Frozen || n.VerifyFailures > 0 {
		name = "! " + name
	}
	now, age := "no status", "-"
	if n.Status != nil {
		now = statusWords(n.Status.SurplusW)
		age = fmtAge(m.now, n.Status.Time)
		if m.statusOld(n.Status) {
			age = "old " + strings.ReplaceAll(strings.ReplaceAll(age, " min", "m"), " ", "")
		}
	}
	seen := "never"
	if n.LastSeen != nil {
		seen = fmtAge(m.now, *n.LastSeen) + " ago"
	}
	row := table.Row{" ", name, now, age, fmt.Sprint(n.OpenPledges),
		shortKWh(n.MonthGivenWh) + "/" + shortKWh(n.MonthReceivedWh),
		shortKWh(n.GivenWh) + "/" + shortKWh(n.ReceivedWh), seen}
	if m.width >= 120 {
		row = append(row, problemWords(n))
	}
	return row
}

// View is the list of neighbours, or one neighbour's detail.
func (m neighbours) View() string {
	st := m.st
	if m.pledge.IsOpen() {
		return m.pledge.View()
	}
	if m.detail != "" {
		return m.detailView()
	}
	if len(m.state.Neighbours) == 0 {
		return st.muted.Render("No neighbours yet. Add one with: commons neighbours add INVITE")
	}
	head := st.boxTitle.Render("Neighbours") + st.muted.Render(fmt.Sprintf(" · %d · g/r = kWh given/received", len(m.state.Neighbours)))
	title := fitTitle(m.width,
		head+st.muted.Render(" · ! = forked feed or failed verification · old = no status for "+fmtDur(statusOldAfter)),
		head+st.muted.Render(" · ! = fork or failed check · old = silent "+fmtDur(statusOldAfter)),
		head+st.muted.Render(" · ! = fork or failed check"))
	return lipgloss.JoinVertical(lipgloss.Left, title, m.list.View())
}

func (m neighbours) detailView() string {
	st := m.st
	n, ok := neighbourByID(m.state, m.detail)
	if !ok {
		return st.muted.Render("This neighbour is no longer in the list. esc: back")
	}
	row := func(label, v string) string { return st.label.Render(fmt.Sprintf("%-14s", label)) + v }
	status := st.muted.Render("no signed status yet")
	if n.Status != nil {
		s := st.importS
		if n.Status.SurplusW > 0 {
			s = st.exportS
		}
		status = s.Render(statusWords(n.Status.SurplusW)) + st.muted.Render(" · signed "+fmtAge(m.now, n.Status.Time)+" ago")
		if m.statusOld(n.Status) {
			status = st.muted.Render(statusWords(n.Status.SurplusW)+" · signed "+fmtAge(m.now, n.Status.Time)+" ago, at "+
				n.Status.Time.In(m.loc).Format("Jan 2 15:04")) + st.warn.Render(" · old: may have changed")
		}
	}
	seen := "never"
	if n.LastSeen != nil {
		seen = fmtAge(m.now, *n.LastSeen) + " ago (" + n.LastSeen.In(m.loc).Format("Jan 2 15:04") + ")"
	}
	lines := []string{
		st.boxTitle.Render(nameOr(n.Name, n.ID)) + st.muted.Render("  "+n.ID),
		row("Now", status),
		row("Last seen", seen),
		row("Open pledges", fmt.Sprint(n.OpenPledges)),
		row("This month", "given "+input.FormatEnergy(n.MonthGivenWh)+" · received "+input.FormatEnergy(n.MonthReceivedWh)),
		row("All time", "given "+input.FormatEnergy(n.GivenWh)+" · received "+input.FormatEnergy(n.ReceivedWh)),
	}
	if p := problemWords(n); p != "" {
		lines = append(lines, row("Problem", st.bad.Render("! "+p)))
	} else {
		lines = append(lines, row("Feed", st.good.Render("no fork, no rejected messages")))
	}
	hist := st.muted.Render("No pledges with " + nameOr(n.Name, n.ID) + " yet. p: pledge")
	if len(m.detailTbl.Rows()) > 0 {
		hist = m.detailTbl.View()
	}
	return lipgloss.JoinVertical(lipgloss.Left, append(lines, "", st.boxTitle.Render("History")+st.muted.Render(" · pledges and settlements between you"), hist)...)
}
