package tui

import (
	"context"
	"fmt"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/input"
)

// confirmation is the yes/no dialog before an irreversible action: the
// cancelling of one of this household's pledges. While open it takes every
// key.
type confirmation struct {
	common
	keys     confirmKeys
	req      request
	open     bool
	question string
	id       string // the pledge to cancel
}

// confirmKeys are the dialog's bindings.
type confirmKeys struct {
	Yes, No key.Binding
}

func newConfirmation(c common) confirmation {
	return confirmation{common: c, keys: confirmKeys{
		Yes: bind([]string{"y", "enter"}, "y", "confirm"),
		No:  bind([]string{"n", "esc"}, "n", "keep it"),
	}}
}

// askCancel is the request that a c on the selected pledge id makes: the
// confirmation to cancel it, or a notice that says why it cannot be
// cancelled.
func askCancel(c common, st household.State, id string) request {
	p, ok := pledgeByID(st, id)
	switch {
	case !ok:
		return noticef(true, "Select one of your pledges to cancel.")
	case !p.Outgoing:
		return noticef(true, "Pledge %s is a neighbour's: decline it with d instead.", household.ShortID(p.ID))
	case !p.State.Open():
		return noticef(true, "Pledge %s is %s and can no longer be cancelled.", household.ShortID(p.ID), p.State)
	case !p.Window.Start.After(c.now):
		return noticef(true, "Pledge %s: its window has started, so it can no longer be cancelled.", household.ShortID(p.ID))
	}
	return request{confirm: &confirmation{open: true, id: p.ID, question: fmt.Sprintf("Cancel your pledge of %s to %s for %s?",
		input.FormatEnergy(p.EnergyWh), nameOr(p.ToName, p.To), c.window(p.Window.Start, p.Window.End))}}
}

// SetSize sets the dialog's width; the question wraps to it.
func (m *confirmation) SetSize(w, _ int) { m.width = w }

// ask opens the dialog with q's question about q's pledge.
func (m *confirmation) ask(q confirmation) {
	m.open, m.question, m.id = true, q.question, q.id
}

// take returns and clears the request of the last Update.
func (m *confirmation) take() request {
	r := m.req
	m.req = request{}
	return r
}

// Update handles the dialog's keys: yes cancels the pledge, no closes.
func (m confirmation) Update(msg tea.Msg) (confirmation, tea.Cmd) {
	km, ok := msg.(tea.KeyMsg)
	if !ok {
		return m, nil
	}
	switch {
	case key.Matches(km, m.keys.Yes):
		id := m.id
		m.open, m.question, m.id = false, "", ""
		m.req = noticef(false, "Cancelling pledge %s…", household.ShortID(id))
		return m, action(m.common, "cancelled", id, m.b.Cancel)
	case key.Matches(km, m.keys.No):
		m.open, m.question, m.id = false, "", ""
	}
	return m, nil
}

// ShortHelp is the dialog's bindings for the hint line.
func (m confirmation) ShortHelp() []key.Binding { return []key.Binding{m.keys.Yes, m.keys.No} }

// FullHelp is the dialog's bindings.
func (m confirmation) FullHelp() [][]key.Binding { return [][]key.Binding{m.ShortHelp()} }

// View is the question in a box, with its keys.
func (m confirmation) View() string {
	q := m.st.strong.Render(wrap(m.question, m.width-4)) // within the box's border and padding
	y, n := m.keys.Yes.Help(), m.keys.No.Help()
	return m.st.box.Render(q + "\n\n" + m.st.muted.Render(y.Key+" "+y.Desc+" · "+n.Key+" "+n.Desc))
}

// actionMsg is the answer to accepting, declining or cancelling a pledge.
type actionMsg struct {
	verb string // "accepted", "declined", "cancelled"
	id   string
	err  error
	now  time.Time
}

// action calls the household's accept, decline or cancel on pledge id in a
// command.
func action(c common, verb, id string, call func(context.Context, string) (household.Pledge, error)) tea.Cmd {
	ctx, clock := c.ctx, c.clock
	return func() tea.Msg {
		_, err := call(ctx, id)
		return actionMsg{verb: verb, id: id, err: err, now: clock()}
	}
}
