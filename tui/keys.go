package tui

import "github.com/charmbracelet/bubbles/key"

// keyMap holds every key binding; the help overlay is generated from it.
type keyMap struct {
	Quit, Help, Next, Prev                  key.Binding
	Overview, Charts, Neighbours, Ledger    key.Binding
	Up, Down, Top, Bottom, PageUp, PageDown key.Binding
	Left, Right, Enter, Back                key.Binding
	Pledge, Accept, Decline, Cancel         key.Binding
	Filter, LiveWindow                      key.Binding
	Yes, No                                 key.Binding
	FormNext, FormPrev, Submit              key.Binding
}

func defaultKeys() keyMap {
	b := func(keys []string, k, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(k, desc))
	}
	return keyMap{
		Quit:       b([]string{"q", "ctrl+c"}, "q", "quit"),
		Help:       b([]string{"?"}, "?", "help"),
		Next:       b([]string{"tab"}, "tab", "next view"),
		Prev:       b([]string{"shift+tab"}, "shift+tab", "previous view"),
		Overview:   b([]string{"1"}, "1", "overview"),
		Charts:     b([]string{"2"}, "2", "charts"),
		Neighbours: b([]string{"3"}, "3", "neighbours"),
		Ledger:     b([]string{"4"}, "4", "ledger"),
		Up:         b([]string{"up", "k"}, "↑/k", "up"),
		Down:       b([]string{"down", "j"}, "↓/j", "down"),
		Top:        b([]string{"home", "g"}, "g", "top"),
		Bottom:     b([]string{"end", "G"}, "G", "bottom"),
		PageUp:     b([]string{"pgup", "ctrl+u"}, "pgup", "page up"),
		PageDown:   b([]string{"pgdown", "ctrl+d"}, "pgdn", "page down"),
		Left:       b([]string{"left", "h"}, "←/h", "shorter span"),
		Right:      b([]string{"right", "l"}, "→/l", "longer span"),
		Enter:      b([]string{"enter"}, "enter", "details"),
		Back:       b([]string{"esc"}, "esc", "back"),
		Pledge:     b([]string{"p"}, "p", "pledge"),
		Accept:     b([]string{"a"}, "a", "accept incoming"),
		Decline:    b([]string{"d"}, "d", "decline incoming"),
		Cancel:     b([]string{"c"}, "c", "cancel own pledge"),
		Filter:     b([]string{"f"}, "f", "filter neighbour"),
		LiveWindow: b([]string{"w"}, "w", "live window"),
		Yes:        b([]string{"y", "enter"}, "y", "yes"),
		No:         b([]string{"n", "esc"}, "n", "no"),
		FormNext:   b([]string{"tab", "down"}, "tab/↓", "next field"),
		FormPrev:   b([]string{"shift+tab", "up"}, "shift+tab/↑", "previous field"),
		Submit:     b([]string{"enter"}, "enter", "preview / confirm"),
	}
}

// helpMap adapts the key map to help.KeyMap for the current screen.
type helpMap struct {
	short []key.Binding
	full  [][]key.Binding
}

func (h helpMap) ShortHelp() []key.Binding  { return h.short }
func (h helpMap) FullHelp() [][]key.Binding { return h.full }
