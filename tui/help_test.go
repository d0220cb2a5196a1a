package tui

import (
	"reflect"
	"strings"
	"testing"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
)

// bindingsOf returns the enabled key.Binding fields of a component's keys
// struct.
func bindingsOf(keys any) map[string]key.Binding {
	out := map[string]key.Binding{}
	v := reflect.ValueOf(keys)
	for i := 0; i < v.NumField(); i++ {
		if b, ok := v.Field(i).Interface().(key.Binding); ok && b.Enabled() {
			out[v.Type().Field(i).Name] = b
		}
	}
	return out
}

// inGroups reports whether a binding on the same keys is in groups.
func inGroups(b key.Binding, groups [][]key.Binding) bool {
	for _, g := range groups {
		for _, o := range g {
			if o.Enabled() && reflect.DeepEqual(o.Keys(), b.Keys()) {
				return true
			}
		}
	}
	return false
}

// TestHintAndHelpAt80x24: 80x24 is a first-class size. On every view the
// hint line keeps "? help" and "q quit" (other hints go first), the help
// overlay fits and shows every binding the view accepts, with none of its
// groups dropped, and every binding a view declares is in its help.
func TestHintAndHelpAt80x24(t *testing.T) {
	cases := []struct {
		name string
		keys []string
		own  func(Model) any // the view's keys struct
		skip string          // its bindings that do not apply in this mode
	}{
		{"overview", []string{"1"}, nil, ""},
		{"charts", []string{"2"}, func(m Model) any { return m.charts.keys }, ""},
		{"neighbours", []string{"3"}, func(m Model) any { return m.neighbours.keys }, "Back Cancel"},
		{"neighbour detail", []string{"3", "j", "enter"}, func(m Model) any { return m.neighbours.keys }, ""},
		{"neighbour pledge detail", []string{"3", "j", "enter", "enter"}, func(m Model) any { return m.neighbours.pledge.keys }, ""},
		{"ledger", []string{"4"}, func(m Model) any { return m.ledger.keys }, ""},
		{"ledger filtered", []string{"4", "f"}, func(m Model) any { return m.ledger.keys }, ""},
		{"ledger state filtered", []string{"4", "s", "s"}, func(m Model) any { return m.ledger.keys }, ""},
		{"ledger expired shown", []string{"4", "e"}, func(m Model) any { return m.ledger.keys }, ""},
		{"pledge detail", []string{"4", "j", "j", "enter"}, func(m Model) any { return m.ledger.detail.keys }, ""},
	}
	for _, readOnly := range []bool{false, true} {
		for _, c := range cases {
			t.Run(sprintf("%s/readonly=%v", c.name, readOnly), func(t *testing.T) {
				f := newFake()
				var tm tea.Model = loaded(t, f, 80, 24)
				if readOnly {
					o := testOptions(80, 24)
					o.ReadOnly = true
					tm = New(f, o)
					st, _ := f.State(t.Context())
					tm, _ = tm.Update(stateMsg{state: st, now: testNow})
				}
				for _, k := range c.keys {
					tm, _ = tm.Update(press(k))
				}
				m := tm.(Model)
				v := m.View()
				lines := strings.Split(v, "\n")
				hint := lines[len(lines)-1]
				if !strings.HasSuffix(hint, "? help • q quit") {
					t.Errorf("hint line does not end with ? help • q quit: %q", hint)
				}
				if strings.Contains(hint, "…") {
					t.Errorf("hint line cut: %q", hint)
				}
				groups := m.fullHelp()
				if c.own != nil {
					for name, b := range bindingsOf(c.own(m)) {
						if strings.Contains(c.skip, name) {
							continue
						}
						if !inGroups(b, groups) {
							t.Errorf("binding %s (%v) is handled but not in the help", name, b.Keys())
						}
					}
				}
				tm, _ = tm.Update(press("?"))
				help := tm.View()
				if w, h := lipgloss.Width(help), lipgloss.Height(help); w > 80 || h != 24 {
					t.Errorf("help is %dx%d at 80x24", w, h)
				}
				for _, g := range groups {
					for _, b := range g {
						if !b.Enabled() {
							continue
						}
						want := b.Help().Key + " " // key column, then its description
						if !strings.Contains(help, b.Help().Desc) || !strings.Contains(help, strings.TrimSpace(want)) {
							t.Errorf("help lacks %q %q:\n%s", b.Help().Key, b.Help().Desc, help)
						}
					}
				}
				// the table's navigation is there where there is a table
				if c.name == "ledger" || c.name == "neighbours" || c.name == "neighbour detail" || c.name == "pledge detail" {
					for _, want := range []string{"g/home", "G/end", "pgup/^b", "pgdn/^f", "^u", "^d", "½ page down"} {
						if !strings.Contains(help, want) {
							t.Errorf("help lacks the table key %q:\n%s", want, help)
						}
					}
				}
			})
		}
	}
}

// TestComponentsClaimTheirKeys: a view's binding takes its key before a
// global one, and the help lists the key once, with the view's meaning.
func TestComponentsClaimTheirKeys(t *testing.T) {
	f := newFake()
	var tm tea.Model = loaded(t, f, 160, 48)
	tm, _ = tm.Update(press("3"))
	tm, _ = tm.Update(press("?"))
	help := tm.View()
	if !strings.Contains(help, "pledge to selected") {
		t.Errorf("neighbours help lacks its own p:\n%s", help)
	}
	if strings.Count(help, "p ") > 1 && strings.Contains(help, " pledge\n") {
		t.Errorf("p is listed twice:\n%s", help)
	}
	for _, w := range []int{80, 100, 160} {
		st := newStyles(asciiRenderer())
		keep := []key.Binding{newGlobalKeys(false).Help, newGlobalKeys(false).Quit}
		long := []key.Binding{bind([]string{"x"}, "x", strings.Repeat("very long ", 10))}
		got := hintLine(&st, append(long, keep...), 2, w)
		if !strings.HasSuffix(got, "? help • q quit") || lipgloss.Width(got) > w {
			t.Errorf("width %d: %q", w, got)
		}
	}
}

// TestNothingCutMidWord: at the sizes people use, no line of any view is
// cut with an ellipsis; views abbreviate deliberately (fitTitle) and the
// hint line drops whole hints.
func TestNothingCutMidWord(t *testing.T) {
	f := newFake()
	for _, size := range [][2]int{{80, 24}, {100, 30}, {120, 40}, {160, 48}} {
		for _, keys := range [][]string{{"1"}, {"2"}, {"2", "l"}, {"3"}, {"3", "j", "enter"}, {"4"}, {"4", "f"}, {"4", "f", "f"}, {"4", "s", "s"}, {"4", "f", "f", "s", "s"}, {"4", "e"},
			{"4", "j", "j", "enter"}, {"4", "enter"}, {"4", "j", "enter"}, {"3", "j", "enter", "enter"}, {"4", "j", "j", "enter", "?"}, {"?"}, {"4", "?"}, {"3", "j", "p"}, {"4", "j", "c"}} {
			var tm tea.Model = loaded(t, f, size[0], size[1])
			for _, k := range keys {
				tm, _ = tm.Update(press(k))
			}
			for i, line := range strings.Split(tm.View(), "\n") {
				if l := strings.TrimRight(line, " "); strings.HasSuffix(l, "…") && !strings.HasPrefix(l, "loading ") {
					t.Errorf("%dx%d %v: line %d cut: %q", size[0], size[1], keys, i+1, line)
				}
			}
		}
	}
}

// TestDialogHints: a dialog's hint line is its own keys, the ones that
// act first, within 80 columns.
func TestDialogHints(t *testing.T) {
	cases := []struct {
		keys []string
		want []string
	}{
		{[]string{"3", "j", "p"}, []string{"enter preview", "esc close"}},
		{[]string{"3", "j", "p", "1.5kWh", "enter"}, []string{"enter/y sign and send", "esc change"}},
		{[]string{"4", "j", "c"}, []string{"y confirm", "n keep it"}},
	}
	for _, c := range cases {
		var tm tea.Model = loaded(t, newFake(), 80, 24)
		for _, k := range c.keys {
			var cmd tea.Cmd
			tm, cmd = tm.Update(press(k))
			if k == "enter" && cmd != nil {
				tm, _ = tm.Update(cmd()) // the preview's answer
			}
		}
		lines := strings.Split(tm.View(), "\n")
		hint := lines[len(lines)-1]
		for _, w := range c.want {
			if !strings.Contains(hint, w) {
				t.Errorf("%v: hint %q lacks %q", c.keys, hint, w)
			}
		}
	}
}
