package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/input"
)

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// wrap breaks s into lines of at most n cells, at spaces where it can,
// without the trailing spaces that would make a line wider than n.
func wrap(s string, n int) string {
	// Wordwrap, then Hardwrap for a word longer than a line: ansi.Wrap
	// lets a line run over n at a lone "-"
	lines := strings.Split(ansi.Hardwrap(ansi.Wordwrap(s, max(n, 1), ""), max(n, 1), true), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

// clip cuts s to n cells.
func clip(s string, n int) string { return ansi.Truncate(s, max(n, 0), "…") }

// headerView is the title, the view tabs and the clock.
func (m Model) headerView() string {
	st := m.st
	name := "commons"
	if m.state.Home.Name != "" {
		name = "commons · " + m.state.Home.Name
	}
	left := st.title.Render(name)
	var tabs []string
	for i := view(0); i < viewCount; i++ {
		label := fmt.Sprintf("%d %s", i+1, viewNames[i])
		if i == m.view {
			tabs = append(tabs, st.tabActive.Render("["+label+"]"))
		} else {
			tabs = append(tabs, st.tab.Render(" "+label+" "))
		}
	}
	clock := st.muted.Render(m.now.In(m.loc).Format("15:04"))
	mid := strings.Join(tabs, " ")
	gap := m.width - lipgloss.Width(left) - lipgloss.Width(mid) - lipgloss.Width(clock) - 2
	if gap < 1 {
		// compact: drop the household name
		left = st.title.Render("commons")
		gap = m.width - lipgloss.Width(left) - lipgloss.Width(mid) - lipgloss.Width(clock) - 2
	}
	if gap < 1 {
		return clip(left+" "+mid, m.width)
	}
	return left + " " + mid + strings.Repeat(" ", gap) + " " + clock
}

// bannerText is the incoming-pledge notification, or "".
func (m Model) bannerText() string {
	p, ok := m.firstIncoming()
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
		nameOr(p.FromName, p.From), input.FormatEnergy(p.EnergyWh), fmtWindow(m.now, p.Window.Start, p.Window.End, m.loc), answer, more)
	return m.st.banner.Render(clip(s, m.width))
}

// statusText is the last notice or load error, or "". That the household
// cannot be reached comes first: nothing else on the screen is current.
func (m Model) statusText() string {
	switch {
	case m.gone != "":
		return m.st.errLine.Render(clip("○ "+m.gone+" · waiting for it to return · q quits", m.width))
	case m.notice != "":
		st := m.st.good
		if m.noticeBad {
			st = m.st.errLine
		}
		return st.Render(clip(m.notice, m.width))
	case m.loadErr != "":
		return m.st.errLine.Render(clip(m.loadErr, m.width))
	}
	return ""
}

// footerView is the one-line short help.
func (m Model) footerView() string {
	return clip(m.help.ShortHelpView(m.helpMap().short), m.width)
}

// helpMap returns the bindings that apply on the current screen.
func (m Model) helpMap() helpMap {
	k := m.keys
	views := []key.Binding{k.Next, k.Prev, k.Overview, k.Charts, k.Neighbours, k.Ledger}
	global := []key.Binding{k.Help, k.Quit, k.Pledge, k.Accept, k.Decline}
	switch {
	case m.showHelp:
		return helpMap{short: []key.Binding{withHelp(k.Back, "esc/?", "close help"), k.Quit}}
	case m.form.open:
		f := []key.Binding{k.FormNext, k.FormPrev, withHelp(k.Left, "←/→", "choose"), k.Submit, withHelp(k.Back, "esc", "close")}
		return helpMap{short: f, full: [][]key.Binding{f}}
	case m.confirm.open:
		return helpMap{short: []key.Binding{k.Yes, k.No}}
	}
	nav := []key.Binding{k.Up, k.Down, k.Top, k.Bottom, k.PageUp, k.PageDown}
	var here []key.Binding
	switch m.view {
	case viewCharts:
		here = []key.Binding{k.Left, k.Right, k.LiveWindow}
		nav = nil
	case viewNeighbours:
		if m.detail != "" {
			here = []key.Binding{k.Back, withHelp(k.Pledge, "p", "pledge to them"), k.Cancel}
		} else {
			here = []key.Binding{k.Enter, withHelp(k.Pledge, "p", "pledge to selected")}
		}
	case viewLedger:
		here = []key.Binding{k.Filter, k.Cancel, withHelp(k.Accept, "a/d", "answer selected")}
	default:
		nav = nil
	}
	short := append([]key.Binding{}, here...)
	if m.view != viewNeighbours {
		short = append(short, k.Pledge)
	}
	short = append(short, k.Next, k.Help, k.Quit)
	full := [][]key.Binding{views, global}
	if len(here) > 0 {
		full = append(full, here)
	}
	if len(nav) > 0 {
		full = append(full, nav)
	}
	return helpMap{short: short, full: full}
}

func withHelp(b key.Binding, k, desc string) key.Binding {
	b.SetHelp(k, desc)
	return b
}

// helpView is the full help overlay.
func (m Model) helpView() string {
	h := m.help
	h.ShowAll = true
	title := m.st.boxTitle.Render("Keys")
	body := h.FullHelpView(m.helpMapFor().full)
	w := min(m.width-2, 100)
	// wrapped here rather than by the box: lipgloss can leave a trailing
	// space on a wrapped line that makes the box a cell wider than asked
	notes := m.st.muted.Render(wrap("Import from the grid is shown as + and ▲ (above 0 in charts), export to the grid as - and ▼ (below 0).\n"+
		"Values marked 'derived' are computed, not measured.", w-2))
	return m.st.box.Width(w).Render(lipgloss.JoinVertical(lipgloss.Left, title, "", body, "", notes))
}

// helpMapFor is the key map of the screen under the help overlay.
func (m Model) helpMapFor() helpMap {
	m.showHelp = false
	return m.helpMap()
}

func (m Model) confirmView() string {
	q := m.st.strong.Render(wrap(m.confirm.question, m.width-4)) // within the box's border and padding
	return m.st.box.Render(q + "\n\n" + m.st.muted.Render("y confirm · n keep it"))
}
