package tui

import "github.com/charmbracelet/lipgloss"

// styles holds every style of the dashboard, built from one renderer so an
// SSH session gets its own colour profile and background. Colours are
// adaptive (light and dark backgrounds) and never the only carrier of
// meaning: signs, arrows and words say the same.
type styles struct {
	r *lipgloss.Renderer

	app       lipgloss.Style
	title     lipgloss.Style
	tab       lipgloss.Style
	tabActive lipgloss.Style
	muted     lipgloss.Style
	label     lipgloss.Style
	value     lipgloss.Style
	strong    lipgloss.Style
	importS   lipgloss.Style
	exportS   lipgloss.Style
	solarS    lipgloss.Style
	homeS     lipgloss.Style
	good      lipgloss.Style
	bad       lipgloss.Style
	warn      lipgloss.Style
	box       lipgloss.Style
	boxTitle  lipgloss.Style
	banner    lipgloss.Style
	errLine   lipgloss.Style
	barFill   lipgloss.Style
	barEmpty  lipgloss.Style
	barOver   lipgloss.Style
	axis      lipgloss.Style
	axisLabel lipgloss.Style
	zero      lipgloss.Style
	header    lipgloss.Style
	cell      lipgloss.Style
	selected  lipgloss.Style
	helpKey   lipgloss.Style
	helpDesc  lipgloss.Style
	helpSep   lipgloss.Style
	focus     lipgloss.Style
}

// The chart series' hues are far apart (CIEDE2000) and legible on the
// background in truecolor, 256 and 16 colours, dark and light: import is
// pink, not the amber that turns into solar's yellow in 256 and 16
// colours, and home use is cyan on dark, where 16-colour blue is too
// dark. TestSeriesColours checks it.
var (
	colImport = lipgloss.AdaptiveColor{Light: "#BE185D", Dark: "#F472B6"}
	colExport = lipgloss.AdaptiveColor{Light: "#047857", Dark: "#34D399"}
	colSolar  = lipgloss.AdaptiveColor{Light: "#A16207", Dark: "#FACC15"}
	colHome   = lipgloss.AdaptiveColor{Light: "#1D4ED8", Dark: "#22D3EE"}
	colMuted  = lipgloss.AdaptiveColor{Light: "#57606A", Dark: "#9CA3AF"}
	colBad    = lipgloss.AdaptiveColor{Light: "#B91C1C", Dark: "#F87171"}
	colWarn   = lipgloss.AdaptiveColor{Light: "#9A3412", Dark: "#FDBA74"}
	colAccent = lipgloss.AdaptiveColor{Light: "#6D28D9", Dark: "#A78BFA"}
	colBorder = lipgloss.AdaptiveColor{Light: "#8C959F", Dark: "#4B5563"}
)

func newStyles(r *lipgloss.Renderer) styles {
	n := r.NewStyle
	return styles{
		r:         r,
		app:       n(),
		title:     n().Bold(true).Foreground(colAccent),
		tab:       n().Foreground(colMuted),
		tabActive: n().Bold(true).Underline(true).Foreground(colAccent),
		muted:     n().Foreground(colMuted),
		label:     n().Foreground(colMuted),
		value:     n(),
		strong:    n().Bold(true),
		importS:   n().Bold(true).Foreground(colImport),
		exportS:   n().Bold(true).Foreground(colExport),
		solarS:    n().Bold(true).Foreground(colSolar),
		homeS:     n().Bold(true).Foreground(colHome),
		good:      n().Foreground(colExport),
		bad:       n().Bold(true).Foreground(colBad),
		warn:      n().Foreground(colWarn),
		box:       n().Border(lipgloss.RoundedBorder()).BorderForeground(colBorder).Padding(0, 1),
		boxTitle:  n().Bold(true),
		banner:    n().Bold(true).Foreground(colAccent),
		errLine:   n().Foreground(colBad),
		barFill:   n().Foreground(colImport),
		barEmpty:  n().Foreground(colBorder),
		barOver:   n().Foreground(colBad),
		axis:      n().Foreground(colBorder),
		axisLabel: n().Foreground(colMuted),
		zero:      n().Foreground(colBorder),
		header:    n().Bold(true).PaddingRight(1),
		cell:      n().PaddingRight(1),
		selected:  n().Bold(true).Reverse(true),
		helpKey:   n().Foreground(colAccent),
		helpDesc:  n().Foreground(colMuted),
		helpSep:   n().Foreground(colBorder),
		focus:     n().Bold(true).Foreground(colAccent),
	}
}
