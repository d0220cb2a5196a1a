package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/table"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/input"
)

// cursorMark is the first cell of the selected row, so the selection shows
// without colour or reverse video (NO_COLOR, Ascii profile).
const cursorMark = "›"

// fit gives the flexible columns the width left after the fixed ones.
// Every column takes one cell of padding.
func fit(cols []table.Column, width, flex int) []table.Column {
	used := 0
	for i, c := range cols {
		if i != flex {
			used += c.Width
		}
		used++
	}
	if w := min(width-used, max(24, cols[flex].Width)); w > cols[flex].Width {
		cols[flex].Width = w
	}
	return cols
}

func (m *Model) setNeighbourColumns() {
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
	m.neigh.SetColumns(cols)
}

func ledgerColumns(width int) []table.Column {
	cols := []table.Column{
		{Title: " ", Width: 1},
		{Title: "Window", Width: 18},
		{Title: "With", Width: 9},
		{Title: "Pledged", Width: 8},
		{Title: "Accepted", Width: 8},
		{Title: "Delivered", Width: 9},
		{Title: "State", Width: 10},
		{Title: "Verified", Width: 8},
	}
	if width >= 120 {
		cols = append(cols, table.Column{Title: "Id", Width: 8})
	}
	return fit(cols, width-1, 2)
}

func (m *Model) setLedgerColumns() { m.ledger.SetColumns(ledgerColumns(m.width)) }
func (m *Model) setDetailColumns() { m.detailTbl.SetColumns(ledgerColumns(m.width)) }

// setTables sets the tables' columns for the current width and rebuilds
// their rows to match. A bubbles table renders its rows against its columns
// inside SetColumns and SetRows, and a row with more cells than there are
// columns panics (the wide layout has one column more): so the old rows go
// before the columns change, and rows built for the new columns come back
// after, with the cursors where they were.
func (m *Model) setTables() {
	cursors := [3]int{m.neigh.Cursor(), m.ledger.Cursor(), m.detailTbl.Cursor()}
	for _, t := range []*table.Model{&m.neigh, &m.ledger, &m.detailTbl} {
		t.SetRows(nil)
	}
	m.setNeighbourColumns()
	m.setLedgerColumns()
	m.setDetailColumns()
	m.refreshNeighbours(cursors[0])
	m.refreshLedgerAt(cursors[1])
	m.refreshDetailAt(cursors[2])
}

// refreshTables rebuilds the table rows from the state.
func (m *Model) refreshTables() { m.layout() }

func (m *Model) refreshNeighbours(cursor int) {
	var rows []table.Row
	m.neighIDs = m.neighIDs[:0]
	for _, n := range m.state.Neighbours {
		rows = append(rows, m.neighbourRow(n))
		m.neighIDs = append(m.neighIDs, n.ID)
	}
	setRows(&m.neigh, rows, cursor)
}

func (m *Model) refreshLedger() { m.refreshLedgerAt(m.ledger.Cursor()) }

func (m *Model) refreshLedgerAt(cursor int) {
	var rows []table.Row
	m.ledgerIDs = m.ledgerIDs[:0]
	for _, p := range m.state.Pledges {
		if m.filter != "" && p.From != m.filter && p.To != m.filter {
			continue
		}
		rows = append(rows, m.pledgeRow(p))
		m.ledgerIDs = append(m.ledgerIDs, p.ID)
	}
	setRows(&m.ledger, rows, cursor)
}

func (m *Model) refreshDetail() { m.refreshDetailAt(m.detailTbl.Cursor()) }

func (m *Model) refreshDetailAt(cursor int) {
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

// setRows replaces the rows, puts the cursor at c within range and marks it.
func setRows(t *table.Model, rows []table.Row, c int) {
	if c >= len(rows) {
		c = len(rows) - 1
	}
	if c < 0 {
		c = 0
	}
	t.SetRows(rows)
	t.SetCursor(c)
	markCursor(t)
}

// markCursor puts the cursor mark in the first cell of the selected row.
func markCursor(t *table.Model) {
	rows := t.Rows()
	c := t.Cursor()
	changed := false
	for i, r := range rows {
		want := " "
		if i == c {
			want = cursorMark
		}
		if len(r) > 0 && r[0] != want {
			r[0] = want
			changed = true
		}
	}
	if changed {
		t.SetRows(rows)
	}
}

func (m Model) neighbourRow(n household.Neighbour) table.Row {
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

// statusOldAfter is the age from which a neighbour's status is marked
// old: a box signs a new status on every meaningful change and at least
// every 5 minutes, so three missed ones mean its surplus or need may have
// changed unseen (the box, or the link to it, is down).
const statusOldAfter = 15 * time.Minute

// statusOld reports whether s is too old to be taken as the neighbour's
// state now, by the model's clock.
func (m Model) statusOld(s *household.NeighbourStatus) bool {
	return s != nil && m.now.Sub(s.Time) > statusOldAfter
}

func problemWords(n household.Neighbour) string {
	switch {
	case n.Problem != "":
		return n.Problem
	case n.Frozen:
		return "feed forked"
	case n.VerifyFailures > 0:
		return fmt.Sprintf("%d failed verification", n.VerifyFailures)
	}
	return ""
}

// shortKWh is energy in kWh with three decimals, without the unit.
func shortKWh(wh int64) string {
	s := fmtKWh(wh)
	return strings.TrimSuffix(s, " kWh")
}

func (m Model) pledgeRow(p household.Pledge) table.Row {
	with := "→ " + nameOr(p.ToName, p.To)
	if !p.Outgoing {
		with = "← " + nameOr(p.FromName, p.From)
	}
	opt := func(wh *int64) string {
		if wh == nil {
			return "-"
		}
		return shortKWh(*wh)
	}
	verified := "-"
	switch p.Verified {
	case household.VerifyOK:
		verified = "ok"
	case household.VerifyFailed:
		verified = "FAILED"
	}
	state := string(p.State)
	if !p.Outgoing && p.State == household.StatePledged {
		state = "answer?"
	}
	// "…" after the state: the counterparty's box has not acknowledged
	// this household's latest message about the pledge yet.
	if !p.Delivered {
		state += "…"
	}
	row := table.Row{" ", fmtWindow(m.now, p.Window.Start, p.Window.End, m.loc), with, shortKWh(p.EnergyWh),
		opt(p.AcceptedWh), opt(p.DeliveredWh), state, verified}
	if m.width >= 120 {
		row = append(row, shortID(p.ID))
	}
	return row
}

func (m Model) selectedNeighbour() string {
	c := m.neigh.Cursor()
	if c >= 0 && c < len(m.neighIDs) {
		return m.neighIDs[c]
	}
	return ""
}

// selectedPledgeID is the pledge under the cursor in the ledger or in a
// neighbour's history; "" elsewhere.
func (m Model) selectedPledgeID() string {
	t, ids := m.ledger, m.ledgerIDs
	switch {
	case m.view == viewNeighbours && m.detail != "":
		t, ids = m.detailTbl, m.detailIDs
	case m.view != viewLedger:
		return ""
	}
	if c := t.Cursor(); c >= 0 && c < len(ids) {
		return ids[c]
	}
	return ""
}

// tableKey moves a table's cursor and keeps the mark on it.
func tableKey(t *table.Model, msg tea.KeyMsg) {
	before := t.Cursor()
	*t, _ = t.Update(msg)
	if t.Cursor() != before {
		markCursor(t)
	}
}

func (m *Model) neighboursKey(msg tea.KeyMsg) tea.Cmd {
	k := m.keys
	if m.detail != "" {
		switch {
		case key.Matches(msg, k.Back):
			m.detail = ""
		case key.Matches(msg, k.Cancel):
			m.askCancel()
		default:
			tableKey(&m.detailTbl, msg)
		}
		return nil
	}
	if key.Matches(msg, k.Enter) {
		if id := m.selectedNeighbour(); id != "" {
			m.detail = id
			m.detailTbl.SetCursor(0)
			m.refreshDetail()
		}
		return nil
	}
	tableKey(&m.neigh, msg)
	return nil
}

// askCancel opens the confirmation for cancelling the selected pledge, or
// says why it cannot be cancelled.
func (m *Model) askCancel() {
	p, ok := m.pledgeByID(m.selectedPledgeID())
	switch {
	case !ok:
		m.setNotice(true, "Select one of your pledges to cancel.")
	case !p.Outgoing:
		m.setNotice(true, "Pledge %s is a neighbour's: decline it with d instead.", shortID(p.ID))
	case !p.State.Open():
		m.setNotice(true, "Pledge %s is %s and can no longer be cancelled.", shortID(p.ID), p.State)
	case !p.Window.Start.After(m.now):
		m.setNotice(true, "Pledge %s: its window has started, so it can no longer be cancelled.", shortID(p.ID))
	default:
		m.confirm = confirmation{open: true, id: p.ID, question: fmt.Sprintf("Cancel your pledge of %s to %s for %s?",
			input.FormatEnergy(p.EnergyWh), nameOr(p.ToName, p.To), fmtWindow(m.now, p.Window.Start, p.Window.End, m.loc))}
	}
}

func (m *Model) ledgerKey(msg tea.KeyMsg) tea.Cmd {
	k := m.keys
	switch {
	case key.Matches(msg, k.Filter):
		ids := append([]string{""}, m.neighIDs...)
		m.filter = ids[(indexOf(ids, m.filter)+1)%len(ids)]
		m.ledger.SetCursor(0)
		m.refreshLedger()
		return nil
	case key.Matches(msg, k.Back):
		if m.filter != "" {
			m.filter = ""
			m.refreshLedger()
		}
		return nil
	case key.Matches(msg, k.Cancel):
		m.askCancel()
		return nil
	}
	tableKey(&m.ledger, msg)
	return nil
}

func (m Model) neighboursView() string {
	st := m.st
	if m.detail != "" {
		return m.detailView()
	}
	if len(m.state.Neighbours) == 0 {
		return st.muted.Render("No neighbours yet. Add one with: commons neighbours add INVITE")
	}
	title := st.boxTitle.Render("Neighbours") + st.muted.Render(fmt.Sprintf(" · %d · g/r = kWh given/received · ! = forked feed or failed verification · old = no status for %s", len(m.state.Neighbours), fmtDur(statusOldAfter)))
	return lipgloss.JoinVertical(lipgloss.Left, clip(title, m.width), m.neigh.View())
}

func (m Model) detailView() string {
	st := m.st
	n, ok := m.neighbourByID(m.detail)
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

func (m Model) ledgerView() string {
	st := m.st
	filter := "all neighbours"
	if m.filter != "" {
		filter = m.neighbourName(m.filter)
	}
	title := st.boxTitle.Render("Ledger") + st.muted.Render(fmt.Sprintf(" · %d rows · kWh · filter: ", len(m.ledgerIDs))) +
		st.strong.Render(filter) + st.muted.Render(" (f) · → you give, ← you receive, … not yet reached them")
	if len(m.ledgerIDs) == 0 {
		return lipgloss.JoinVertical(lipgloss.Left, clip(title, m.width), st.muted.Render("No pledges yet. p: pledge"))
	}
	return lipgloss.JoinVertical(lipgloss.Left, clip(title, m.width), m.ledger.View())
}
