package tui

import (
	"fmt"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/input"
)

// incoming is the incoming-pledge banner above every view and the keys
// that answer a pledge: a accepts and d declines the selected row (in the
// ledger or a neighbour's history) when it is an incoming open pledge,
// else the newest incoming pledge waiting for an answer.
type incoming struct {
	common
	keys  incomingKeys
	state household.State
	req   request
	// selected is the pledge selected in the active view, set by the root
	// before a key reaches Update.
	selected string
}

// incomingKeys are the answers to an incoming pledge.
type incomingKeys struct {
	Accept, Decline key.Binding
}

func newIncoming(c common) incoming {
	k := incomingKeys{
		Accept:  bind([]string{"a"}, "a", "accept incoming"),
		Decline: bind([]string{"d"}, "d", "decline incoming"),
	}
	k.Accept.SetEnabled(!c.readOnly)
	k.Decline.SetEnabled(!c.readOnly)
	return incoming{common: c, keys: k}
}

// SetState shows the household's pledges.
func (m *incoming) SetState(st household.State) { m.state = st }

// SetSize sets the banner's width; it is one line high.
func (m *incoming) SetSize(w, _ int) { m.width = w }

// take returns and clears the request of the last Update.
func (m *incoming) take() request {
	r := m.req
	m.req = request{}
	return r
}

// target is the incoming pledge that a or d answers.
func (m incoming) target() string {
	if p, ok := pledgeByID(m.state, m.selected); ok && !p.Outgoing && p.State == household.StatePledged {
		return p.ID
	}
	if p, ok := firstIncoming(m.state, m.now); ok {
		return p.ID
	}
	return ""
}

// Update handles a and d.
func (m incoming) Update(msg tea.Msg) (incoming, tea.Cmd) {
	km, ok := msg.(tea.KeyMsg)
	if !ok || !key.Matches(km, m.keys.Accept, m.keys.Decline) {
		return m, nil
	}
	id := m.target()
	if id == "" {
		m.req = noticef(true, "No incoming pledge waits for an answer.")
		return m, nil
	}
	if key.Matches(km, m.keys.Accept) {
		m.req = noticef(false, "Accepting pledge %s…", household.ShortID(id))
		return m, action(m.common, "accepted", id, m.b.Accept)
	}
	m.req = noticef(false, "Declining pledge %s…", household.ShortID(id))
	return m, action(m.common, "declined", id, m.b.Decline)
}

// ShortHelp is the answers, for the hint line.
func (m incoming) ShortHelp() []key.Binding { return []key.Binding{m.keys.Accept, m.keys.Decline} }

// answerHelp is a and d as one hint, for a view whose selected row they
// answer.
func (m incoming) answerHelp() key.Binding {
	b := key.NewBinding(key.WithKeys(append(m.keys.Accept.Keys(), m.keys.Decline.Keys()...)...),
		key.WithHelp(m.keys.Accept.Help().Key+"/"+m.keys.Decline.Help().Key, "answer selected"))
	b.SetEnabled(m.keys.Accept.Enabled())
	return b
}

// FullHelp is the answers, for the help overlay.
func (m incoming) FullHelp() [][]key.Binding { return [][]key.Binding{m.ShortHelp()} }

// View is the incoming-pledge banner, or "" when no pledge waits.
func (m incoming) View() string {
	p, ok := firstIncoming(m.state, m.now)
	if !ok {
		return ""
	}
	n := 0
	for _, q := range m.state.Pledges {
		if !q.Outgoing && q.State == household.StatePledged && q.Window.End.After(m.now) {
			n++
		}
	}
	more := ""
	if n > 1 {
		more = fmt.Sprintf(" (+%d more in the ledger)", n-1)
	}
	answer := ""
	if m.keys.Accept.Enabled() {
		answer = fmt.Sprintf(" · %s accept · %s decline", m.keys.Accept.Help().Key, m.keys.Decline.Help().Key)
	}
	s := fmt.Sprintf("! Incoming: %s pledges you %s for %s%s%s",
		nameOr(p.FromName, p.From), input.FormatEnergy(p.EnergyWh), m.window(p.Window.Start, p.Window.End), answer, more)
	return m.st.banner.Render(clip(s, m.width))
}
