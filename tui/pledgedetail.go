package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/table"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/input"
)

// pledgeDetail is one pledge in full: its id, window, counterparty,
// amounts, state and whether it reached the counterparty, and for a
// settled pledge what each slot of its window allocated and which term of
// min(pledged, accepted, export, import) limited it, and overall. A view that lists
// pledges (the ledger, a neighbour's history) holds one and opens it on
// enter; esc closes it.
type pledgeDetail struct {
	common
	keys  pledgeDetailKeys
	h     int // height of the component's area
	state household.State
	req   request

	id    string      // the pledge shown; "" when closed
	slots table.Model // the settled pledge's slots
	head  string      // the lines above the slot table, built by refresh
}

// pledgeDetailKeys are the detail's bindings; the slot table's own are
// in tableKeys.
type pledgeDetailKeys struct {
	Back, Cancel key.Binding
}

// detailLabelWidth is the width of the labels left of the values.
const detailLabelWidth = 12

func newPledgeDetail(c common) pledgeDetail {
	k := pledgeDetailKeys{
		Back:   bind([]string{"esc"}, "esc", "back"),
		Cancel: bind([]string{"c"}, "c", "cancel own pledge"),
	}
	k.Cancel.SetEnabled(!c.readOnly)
	m := pledgeDetail{common: c, keys: k, slots: newTable(c.st)}
	// columns from the start: a row with more cells than there are
	// columns panics in bubbles' table
	m.slots.SetColumns(slotColumns(c.width))
	return m
}

// Open shows the pledge id (from the state last set).
func (m *pledgeDetail) Open(id string) {
	m.id = id
	m.slots.SetCursor(0)
	m.refresh(0)
}

// Close closes the detail.
func (m *pledgeDetail) Close() { m.id = "" }

// IsOpen reports whether the detail shows a pledge.
func (m pledgeDetail) IsOpen() bool { return m.id != "" }

// SelectedPledge is the pledge shown, for the answers and c.
func (m pledgeDetail) SelectedPledge() string { return m.id }

// SetSize sets the component's area.
func (m *pledgeDetail) SetSize(w, h int) {
	m.width, m.h = w, h
	m.slots.SetWidth(w)
	c := m.slots.Cursor()
	m.slots.SetRows(nil) // see neighbours.setTables
	m.slots.SetColumns(slotColumns(w))
	m.refresh(c)
}

// SetState shows the pledge as it stands in st.
func (m *pledgeDetail) SetState(st household.State) {
	m.state = st
	m.refresh(m.slots.Cursor())
}

// take returns and clears the request of the last Update.
func (m *pledgeDetail) take() request {
	r := m.req
	m.req = request{}
	return r
}

// Update handles the detail's keys.
func (m pledgeDetail) Update(msg tea.Msg) (pledgeDetail, tea.Cmd) {
	km, ok := msg.(tea.KeyMsg)
	if !ok {
		return m, nil
	}
	switch {
	case key.Matches(km, m.keys.Back):
		m.Close()
	case key.Matches(km, m.keys.Cancel):
		m.req = askCancel(m.common, m.state, m.id)
	default:
		tableKey(&m.slots, km)
	}
	return m, nil
}

// ShortHelp is the detail's bindings for the hint line.
func (m pledgeDetail) ShortHelp() []key.Binding {
	return []key.Binding{m.keys.Back, m.keys.Cancel}
}

// FullHelp is the detail's bindings for the help overlay, with the keys
// the slot table takes.
func (m pledgeDetail) FullHelp() [][]key.Binding {
	return append([][]key.Binding{m.ShortHelp()}, m.slots.KeyMap.FullHelp()...)
}

func slotColumns(width int) []table.Column {
	cols := []table.Column{
		{Title: " ", Width: 1},
		{Title: "Slot", Width: 18},
		{Title: "Allocated", Width: 10},
		{Title: "Limited by", Width: 16},
		{Title: "Meaning", Width: 27},
	}
	return fit(cols, width-1, 4)
}

// limitTerm is a term of min(pledged, accepted, export, import) with
// whose measurement it is: "export (you)", "import (Dev)".
func limitTerm(p household.Pledge, limit string) string {
	switch limit {
	case "export":
		return "export (" + giverName(p) + ")"
	case "import":
		return "import (" + receiverName(p) + ")"
	}
	return limit
}

// limitMeaning says in a few words what a term limiting a slot means.
func limitMeaning(limit string) string {
	switch limit {
	case "pledged":
		return "the whole pledged amount"
	case "accepted":
		return "all that was accepted"
	case "export":
		return "the giver exported less"
	case "import":
		return "the receiver imported less"
	}
	return "unknown term"
}

// limitSentence says which term decided the settled total.
func limitSentence(p household.Pledge, limit string) string {
	switch limit {
	case "pledged":
		return "pledged: the whole pledged amount was settled"
	case "accepted":
		return "accepted: " + receiverName(p) + " accepted less than was pledged, and all of it was settled"
	case "export":
		return "export: " + giverName(p) + " exported less than the pledges claimed (measured export, shared among the giver's pledges)"
	case "import":
		return "import: " + receiverName(p) + " imported less than the pledge claimed (reported import)"
	}
	return limit
}

func giverName(p household.Pledge) string {
	if p.Outgoing {
		return "you"
	}
	return nameOr(p.FromName, p.From)
}

func receiverName(p household.Pledge) string {
	if !p.Outgoing {
		return "you"
	}
	return nameOr(p.ToName, p.To)
}

// refresh builds the lines above the slot table and the table's rows.
func (m *pledgeDetail) refresh(cursor int) {
	if m.id == "" {
		return
	}
	st := m.st
	p, ok := pledgeByID(m.state, m.id)
	if !ok {
		m.head = st.muted.Render(ansi.Wordwrap("This pledge is no longer in the ledger. esc: back", max(m.width, 1), ""))
		setRows(&m.slots, nil, 0)
		return
	}
	valueW := max(m.width-detailLabelWidth, 10)
	indent := strings.Repeat(" ", detailLabelWidth)
	row := func(label, v string) string {
		v = ansi.Wordwrap(v, valueW, "")
		v = strings.ReplaceAll(v, "\n", "\n"+indent)
		return st.label.Render(fmt.Sprintf("%-*s", detailLabelWidth, label)) + v
	}
	opt := func(wh *int64) string {
		if wh == nil {
			return "-"
		}
		return input.FormatEnergy(*wh)
	}
	other := nameOr(p.ToName, p.To)
	with := "→ " + other + " (you give)"
	if !p.Outgoing {
		other = nameOr(p.FromName, p.From)
		with = "← " + other + " (you receive)"
	}
	state := string(p.State)
	if !p.Outgoing && p.State == household.StatePledged {
		state = "pledged, waiting for your answer"
	}
	reached := "yes: nothing of yours about it waits to reach " + other
	if !p.Delivered {
		reached = "not yet: your latest message about it has not reached " + other + "'s box"
	}
	check := "-"
	switch p.Verified {
	case household.VerifyOK:
		check = "signatures verified"
	case household.VerifyFailed:
		check = "FAILED verification"
	}
	lines := []string{
		st.boxTitle.Render("Pledge "+household.ShortID(p.ID)) + st.muted.Render(" · esc: back"),
		row("Window", m.window(p.Window.Start, p.Window.End)),
		row("With", with),
		row("Pledged", input.FormatEnergy(p.EnergyWh)),
		row("Accepted", opt(p.AcceptedWh)),
		row("Delivered", opt(p.DeliveredWh)),
		row("State", state),
		row("Reached", reached),
		row("Check", check),
	}
	var rows []table.Row
	switch {
	case p.State != household.StateSettled:
		lines = append(lines, row("Limited by", "- (only a settled pledge has a limit)"))
	case p.LimitedBy == nil:
		lines = append(lines, row("Limited by", "not recorded for this pledge"))
	default:
		lines = append(lines, row("Limited by", limitSentence(p, *p.LimitedBy)))
		n := len(p.SlotLimits)
		if n > 0 {
			slot := p.Window.End.Sub(p.Window.Start) / time.Duration(n)
			for i, l := range p.SlotLimits {
				s := p.Window.Start.Add(time.Duration(i) * slot)
				wh := "-" // not known to this household's version of the contract
				if len(p.SlotWh) == n {
					wh = input.FormatEnergy(p.SlotWh[i])
				}
				rows = append(rows, table.Row{" ", m.window(s, s.Add(slot)), wh, limitTerm(p, l), limitMeaning(l)})
			}
			head := st.boxTitle.Render("Slots") + st.muted.Render(fmt.Sprintf(" · %d × %s", n, fmtDur(slot)))
			lines = append(lines, "", fitTitle(m.width,
				head+st.muted.Render(" · the term of min(pledged, accepted, export, import) that limited each"),
				head+st.muted.Render(" · the term that limited each"), head))
		}
	}
	m.head = lipgloss.JoinVertical(lipgloss.Left, lines...)
	m.slots.SetHeight(max(m.h-lipgloss.Height(m.head), 3))
	setRows(&m.slots, rows, cursor)
}

// View is the pledge's lines, and the slot table of a settled one.
func (m pledgeDetail) View() string {
	if len(m.slots.Rows()) == 0 {
		return m.head
	}
	return m.head + "\n" + m.slots.View()
}
