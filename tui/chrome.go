package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
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

// fitTitle is the first of a view's titles, longest first, that fits in
// width: a view abbreviates its title deliberately rather than have it cut
// mid-word. The last is cut only when even it does not fit.
func fitTitle(width int, titles ...string) string {
	for _, t := range titles {
		if lipgloss.Width(t) <= width {
			return t
		}
	}
	return clip(titles[len(titles)-1], width)
}

// headerView is the title, the view tabs and the clock.
func (m Model) headerView() string {
	st := m.com.st
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
	clock := st.muted.Render(m.com.now.In(m.com.loc).Format("15:04"))
	mid := strings.Join(tabs, " ")
	gap := m.com.width - lipgloss.Width(left) - lipgloss.Width(mid) - lipgloss.Width(clock) - 2
	if gap < 1 {
		// compact: drop the household name
		left = st.title.Render("commons")
		gap = m.com.width - lipgloss.Width(left) - lipgloss.Width(mid) - lipgloss.Width(clock) - 2
	}
	if gap < 1 {
		return clip(left+" "+mid, m.com.width)
	}
	return left + " " + mid + strings.Repeat(" ", gap) + " " + clock
}

// statusText is the last notice or load error, or "". That the household
// cannot be reached comes first: nothing else on the screen is current.
func (m Model) statusText() string {
	switch {
	case m.gone != "":
		return m.com.st.errLine.Render(clip("○ "+m.gone+" · waiting for it to return · q quits", m.com.width))
	case m.notice != "":
		st := m.com.st.good
		if m.noticeBad {
			st = m.com.st.errLine
		}
		return st.Render(clip(m.notice, m.com.width))
	case m.loadErr != "":
		return m.com.st.errLine.Render(clip(m.loadErr, m.com.width))
	}
	return ""
}

// footerView is the hint line, generated from the bindings of what is on
// screen: a dialog's own, or the active view's and the global ones; ? help
// and q quit are never dropped.
func (m Model) footerView() string {
	k := m.com.keys
	switch {
	case m.help.open:
		return hintLine(m.com.st, m.withGlobals(m.help.ShortHelp(), k.Quit), 2, m.com.width)
	case m.form.open:
		// ctrl+c still quits; q and ? are text here
		return hintLine(m.com.st, m.form.ShortHelp(), 1, m.com.width)
	case m.confirm.open:
		return hintLine(m.com.st, m.confirm.ShortHelp(), 2, m.com.width)
	}
	local := m.activeShortHelp()
	if m.view == viewLedger || m.view == viewNeighbours && m.neighbours.detail != "" {
		// a and d answer the selected row here
		local = append(local, m.incoming.answerHelp())
	}
	return hintLine(m.com.st, m.withGlobals(local, k.Pledge, k.Next, k.Help, k.Quit), 2, m.com.width)
}

// withGlobals is local followed by the global bindings that no local one
// shadows.
func (m Model) withGlobals(local []key.Binding, global ...key.Binding) []key.Binding {
	out := append([]key.Binding{}, local...)
	for _, b := range global {
		if !shadowed(b, [][]key.Binding{local}) {
			out = append(out, b)
		}
	}
	return out
}

// fullHelp is every binding of the active view, in groups: the view
// switches, the global keys (less those the view shadows), and the view's
// own with its table's.
func (m Model) fullHelp() [][]key.Binding {
	k := m.com.keys
	own := m.activeFullHelp()
	var global []key.Binding
	for _, b := range append([]key.Binding{k.Help, k.Quit, k.Pledge}, m.incoming.ShortHelp()...) {
		if !shadowed(b, own) {
			global = append(global, b)
		}
	}
	return append([][]key.Binding{k.views(), global}, own...)
}
