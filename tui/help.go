package tui

import (
	"strings"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
)

// helpOverlay is the ? overlay: every key the view under it accepts, in
// groups (the view switches, the global keys, the view's own, the table's
// navigation), laid out to fit the terminal: groups that do not fit side
// by side go on the next row, so no group is ever dropped.
type helpOverlay struct {
	common
	keys   helpKeys
	help   help.Model
	h      int // height of the overlay's area
	open   bool
	groups [][]key.Binding
}

// helpKeys are the overlay's bindings.
type helpKeys struct {
	Close key.Binding
}

func newHelpOverlay(c common) helpOverlay {
	h := help.New()
	st := c.st
	h.Styles = help.Styles{
		Ellipsis: st.helpSep, ShortKey: st.helpKey, ShortDesc: st.helpDesc, ShortSeparator: st.helpSep,
		FullKey: st.helpKey, FullDesc: st.helpDesc, FullSeparator: st.helpSep,
	}
	h.ShowAll = true
	return helpOverlay{common: c, help: h, keys: helpKeys{
		Close: bind([]string{"esc", "?"}, "esc/?", "close help"),
	}}
}

// Show opens the overlay on the bindings in groups.
func (m *helpOverlay) Show(groups [][]key.Binding) {
	m.open = true
	m.groups = groups
}

// SetSize sets the overlay's area.
func (m *helpOverlay) SetSize(w, h int) { m.width, m.h = w, h }

// Update closes the overlay on esc or ?.
func (m helpOverlay) Update(msg tea.Msg) (helpOverlay, tea.Cmd) {
	if km, ok := msg.(tea.KeyMsg); ok && key.Matches(km, m.keys.Close) {
		m.open = false
	}
	return m, nil
}

// ShortHelp is the overlay's own binding.
func (m helpOverlay) ShortHelp() []key.Binding { return []key.Binding{m.keys.Close} }

// FullHelp is the overlay's own binding.
func (m helpOverlay) FullHelp() [][]key.Binding { return [][]key.Binding{m.ShortHelp()} }

// helpNotes explain the signs; they wrap to the box.
const helpNotes = "Import from the grid is shown as + and ▲ (above 0 in charts), export to the grid as - and ▼ (below 0).\n" +
	"Values marked 'derived' are computed, not measured."

// View is the overlay: the groups in rows that fit the box, then the notes.
// When the rows do not fit the height with a blank line between them, they
// go without; then the notes go.
func (m helpOverlay) View() string {
	w := min(m.width-2, 100)
	inner := w - 2 // the box's padding
	rows := m.rows(inner)
	title := m.st.boxTitle.Render("Keys")
	// wrapped here rather than by the box: lipgloss can leave a trailing
	// space on a wrapped line that makes the box a cell wider than asked
	notes := m.st.muted.Render(wrap(helpNotes, inner))
	box := func(body string, withNotes bool) string {
		parts := []string{title, "", body}
		if withNotes {
			parts = append(parts, "", notes)
		}
		return m.st.box.Width(w).Render(lipgloss.JoinVertical(lipgloss.Left, parts...))
	}
	out := box(strings.Join(rows, "\n\n"), true)
	if lipgloss.Height(out) > m.h {
		out = box(strings.Join(rows, "\n"), true)
	}
	if lipgloss.Height(out) > m.h {
		out = box(strings.Join(rows, "\n"), false)
	}
	return out
}

// rows lays the groups out in rows of columns at most width wide, in
// order: a group goes on the current row when it fits beside the others,
// else it starts the next.
func (m helpOverlay) rows(width int) []string {
	sepW := lipgloss.Width(m.help.FullSeparator)
	var rows []string
	var row [][]key.Binding
	used := 0
	for _, g := range m.groups {
		var on []key.Binding
		for _, b := range g {
			if b.Enabled() {
				on = append(on, b)
			}
		}
		if len(on) == 0 {
			continue
		}
		gw := lipgloss.Width(m.help.FullHelpView([][]key.Binding{on}))
		if len(row) > 0 && used+sepW+gw > width {
			rows = append(rows, m.help.FullHelpView(row))
			row, used = nil, 0
		}
		if len(row) > 0 {
			used += sepW
		}
		row = append(row, on)
		used += gw
	}
	if len(row) > 0 {
		rows = append(rows, m.help.FullHelpView(row))
	}
	return rows
}
