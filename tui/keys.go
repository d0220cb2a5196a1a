package tui

import (
	"slices"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/table"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
)

// globalKeys are the bindings that work on every view, matched by the root
// Model (model.go handleKey). Each component declares its own bindings
// next to the handler that matches them; the hint line and the help
// overlay are generated from the active component's bindings and these.
type globalKeys struct {
	Quit, Help, Next, Prev               key.Binding
	Overview, Charts, Neighbours, Ledger key.Binding
	Pledge                               key.Binding
}

func newGlobalKeys(readOnly bool) globalKeys {
	k := globalKeys{
		Quit:       bind([]string{"q", "ctrl+c"}, "q", "quit"),
		Help:       bind([]string{"?"}, "?", "help"),
		Next:       bind([]string{"tab"}, "tab", "next view"),
		Prev:       bind([]string{"shift+tab"}, "shift+tab", "previous view"),
		Overview:   bind([]string{"1"}, "1", "overview"),
		Charts:     bind([]string{"2"}, "2", "charts"),
		Neighbours: bind([]string{"3"}, "3", "neighbours"),
		Ledger:     bind([]string{"4"}, "4", "ledger"),
		Pledge:     bind([]string{"p"}, "p", "pledge"),
	}
	k.Pledge.SetEnabled(!readOnly)
	return k
}

// views are the bindings that switch views.
func (k globalKeys) views() []key.Binding {
	return []key.Binding{k.Next, k.Prev, k.Overview, k.Charts, k.Neighbours, k.Ledger}
}

// bind is a binding on keys, shown in help as k and desc.
func bind(keys []string, k, desc string) key.Binding {
	return key.NewBinding(key.WithKeys(keys...), key.WithHelp(k, desc))
}

// claims reports whether one of the enabled bindings in groups matches
// msg: a component's binding takes a key before a global one on the same
// key, so the help never lists two meanings for one key.
func claims(msg tea.KeyMsg, groups [][]key.Binding) bool {
	for _, g := range groups {
		if key.Matches(msg, g...) {
			return true
		}
	}
	return false
}

// shadowed reports whether an enabled binding in groups takes one of
// b's keys.
func shadowed(b key.Binding, groups [][]key.Binding) bool {
	for _, g := range groups {
		for _, o := range g {
			if !o.Enabled() {
				continue
			}
			for _, k := range b.Keys() {
				if slices.Contains(o.Keys(), k) {
					return true
				}
			}
		}
	}
	return false
}

// tableKeys are the keys the bubbles tables take, with help that names
// every key they accept. a, d, c, f, p and the view keys stay the
// dashboard's: bubbles' defaults would take b, f, u, d and space.
func tableKeys() table.KeyMap {
	return table.KeyMap{
		LineUp:       bind([]string{"up", "k"}, "↑/k", "up"),
		LineDown:     bind([]string{"down", "j"}, "↓/j", "down"),
		PageUp:       bind([]string{"pgup", "ctrl+b"}, "pgup/^b", "page up"),
		PageDown:     bind([]string{"pgdown", "ctrl+f"}, "pgdn/^f", "page down"),
		HalfPageUp:   bind([]string{"ctrl+u"}, "^u", "½ page up"),
		HalfPageDown: bind([]string{"ctrl+d"}, "^d", "½ page down"),
		GotoTop:      bind([]string{"home", "g"}, "g/home", "top"),
		GotoBottom:   bind([]string{"end", "G"}, "G/end", "bottom"),
	}
}

// newTable returns a bubbles table styled from st with tableKeys.
func newTable(st *styles) table.Model {
	t := table.New(table.WithKeyMap(tableKeys()), table.WithFocused(true))
	t.SetStyles(table.Styles{Header: st.header, Cell: st.cell, Selected: st.selected})
	return t
}

// hintLine is the one-line short help: the bindings in order, separated by
// " • ", within width. The last keep bindings (help and quit) are always
// shown; when the line is too long the others are dropped from the end
// first, never cut mid-word.
func hintLine(st *styles, bindings []key.Binding, keep int, width int) string {
	var items []string
	for _, b := range bindings {
		if b.Enabled() {
			items = append(items, st.helpKey.Render(b.Help().Key)+" "+st.helpDesc.Render(b.Help().Desc))
		}
	}
	keep = min(keep, len(items))
	sep := st.helpSep.Render(" • ")
	sepW := lipgloss.Width(sep)
	show := make([]bool, len(items))
	used := -sepW
	for i := len(items) - keep; i < len(items); i++ {
		show[i] = true
		used += lipgloss.Width(items[i]) + sepW
	}
	for i, it := range items[:len(items)-keep] {
		if w := lipgloss.Width(it) + sepW; used+w <= width {
			show[i] = true
			used += w
		}
	}
	var b strings.Builder
	for i, it := range items {
		if !show[i] {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(sep)
		}
		b.WriteString(it)
	}
	return clip(b.String(), width)
}
