package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/commons-energy/commons/meter"
	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/input"
)

// bigGlyphs is a three-row font for the power figure, in block characters
// that every terminal font has.
var bigGlyphs = map[rune][3]string{
	'0': {"▄▄▄", "█ █", "█▄█"},
	'1': {"  ▄", "  █", "  █"},
	'2': {"▄▄▄", "▄▄█", "█▄▄"},
	'3': {"▄▄▄", " ▄█", "▄▄█"},
	'4': {"▄ ▄", "█▄█", "  █"},
	'5': {"▄▄▄", "█▄▄", "▄▄█"},
	'6': {"▄▄▄", "█▄▄", "█▄█"},
	'7': {"▄▄▄", "  █", "  █"},
	'8': {"▄▄▄", "█▄█", "█▄█"},
	'9': {"▄▄▄", "█▄█", "▄▄█"},
	'+': {"   ", "▄█▄", " ▀ "},
	'-': {"   ", "▄▄▄", "   "},
	'.': {" ", " ", "▄"},
}

// bigText renders s in the three-row font; unknown runes are skipped.
func bigText(s string) string {
	var rows [3]strings.Builder
	for _, r := range s {
		g, ok := bigGlyphs[r]
		if !ok {
			continue
		}
		for i := range rows {
			rows[i].WriteString(g[i] + " ")
		}
	}
	return rows[0].String() + "\n" + rows[1].String() + "\n" + rows[2].String()
}

// overview is the glanceable view: power now, today, phases, the meter
// and hub links, and the live chart when there is room. It has no keys of
// its own.
type overview struct {
	common
	h     int // height of the view's area
	state household.State
	// gone and goneSince: the household cannot be reached (SetGone), so
	// the last figures are not current.
	gone      string
	goneSince time.Time
	live      liveChart
	haveState bool

	top  string // the text part, built in refresh
	rows int    // its height: the live chart takes the rest
}

func newOverview(c common, ring *household.Ring) overview {
	return overview{common: c, live: newLiveChart(ring)}
}

// SetSize sets the view's area.
func (m *overview) SetSize(w, h int) {
	m.width, m.h = w, h
	m.live.dirty = true
}

// SetState shows the household's state; until the first, the overview
// says it is loading. Live events change it often and it costs nothing
// here: refresh builds the text once per message.
func (m *overview) SetState(st household.State) { m.state, m.haveState = st, true }

// SetGone says the household cannot be reached (gone is the backend's
// words, "" while it answers) and since when: the last figures are then
// not shown as current.
func (m *overview) SetGone(gone string, since time.Time) { m.gone, m.goneSince = gone, since }

// Update handles a message. The overview takes no keys and loads nothing.
func (m overview) Update(tea.Msg) (overview, tea.Cmd) { return m, nil }

// ShortHelp is empty: the overview has no keys of its own.
func (m overview) ShortHelp() []key.Binding { return nil }

// FullHelp is empty: the overview has no keys of its own.
func (m overview) FullHelp() [][]key.Binding { return nil }

// useBig reports whether there is room for the big figures.
func (m overview) useBig() bool { return m.width >= 100 && m.height >= 34 }

// chartSize is the live chart's size under the text; zero when it does
// not fit.
func (m overview) chartSize() (w, h int) {
	if h := m.h - m.rows; h >= 8 {
		return m.width, h - 2
	}
	return 0, 0
}

// refresh builds the text and, when out of date, the live chart. View
// only joins the cached strings.
func (m *overview) refresh() {
	m.top = m.overviewTop()
	m.rows = lipgloss.Height(m.top)
	w, h := m.chartSize()
	m.live.refresh(m.common, m.state, w, h)
}

// View is the glanceable screen: power now, today, phases, meter, and the
// live chart when there is room.
func (m overview) View() string {
	top := m.top
	lw, lh := m.chartSize()
	if lw == 0 || lh == 0 || m.live.chart == "" || !m.live.have {
		return top
	}
	title := m.st.boxTitle.Render("Live") + m.st.muted.Render(" · last "+fmtDur(liveWins[m.live.win])+" · ") + legend(m.common, m.state.Home.Production)
	return top + "\n" + clip(title, m.width) + "\n" + m.live.chart // no re-measuring of the chart's lines per frame
}

func (m overview) overviewTop() string {
	if !m.haveState {
		return m.st.muted.Render("Loading the household…")
	}
	power := m.powerBlock()
	today := m.todayBlock()
	if m.width >= 100 {
		lw := m.width / 2
		top := lipgloss.JoinHorizontal(lipgloss.Top,
			m.st.r.NewStyle().Width(lw).Render(power), m.st.r.NewStyle().Width(m.width-lw).Render(today))
		return lipgloss.JoinVertical(lipgloss.Left, top, "", m.phasesBlock(), "", m.meterBlock())
	}
	// one column, with blank lines between the blocks when they fit
	blocks := []string{power, today, m.phasesBlock(), m.meterBlock()}
	spaced := lipgloss.JoinVertical(lipgloss.Left, blocks[0], "", blocks[1], "", blocks[2], "", blocks[3])
	if lipgloss.Height(spaced) <= m.h {
		return spaced
	}
	return lipgloss.JoinVertical(lipgloss.Left, blocks...)
}

// minStale is the shortest silence after which the meter's last figures
// are no longer shown as current.
const minStale = 10 * time.Second

// telegramInterval is how often the grid meter sends: every second for
// DSMR 5 and SML, every ten seconds for DSMR 2.2 to 4 and, as the safe
// guess, for the other protocols.
func telegramInterval(protocol, version string) time.Duration {
	switch {
	case protocol == "sml", protocol == "dsmr" && version >= "50":
		return time.Second
	}
	return 10 * time.Second
}

// meterStale reports whether the grid meter's last reading is too old to
// show as the power now, and when it arrived. It is stale when the meter
// link says offline, or when nothing arrived for three telegram intervals
// (at least minStale), by the model's clock: the daemon may not have
// noticed yet, and a dashboard attached to it must not show an old figure
// as current.
func (m overview) meterStale() (time.Time, bool) {
	live := m.state.Live
	if !live.HasReading {
		return time.Time{}, false
	}
	if m.gone != "" {
		return m.goneSince, true
	}
	// the arrival time by the household's clock, never the reading's own
	// timestamp: a meter's clock can be off by minutes
	last := timeOf(live.Meter.LastTelegram)
	if !live.Meter.Online && !timeOf(live.Meter.OfflineSince).IsZero() {
		if last.IsZero() {
			last = timeOf(live.Meter.OfflineSince)
		}
		return last, true
	}
	if last.IsZero() {
		return last, false
	}
	after := max(3*telegramInterval(live.Meter.Protocol, live.Reading.Version), minStale)
	return last, m.now.Sub(last) > after
}

// staleSince says since when the meter is silent, in the household's zone.
func (m overview) staleSince(last time.Time) string {
	if m.gone != "" {
		return "household not reachable since " + last.In(m.loc).Format("15:04")
	}
	if last.IsZero() {
		return "meter offline"
	}
	return "meter offline since " + last.In(m.loc).Format("15:04")
}

// powerBlock shows grid power now with sign, arrow, colour and words, and
// what is measured versus derived. When the meter has gone silent it says
// so in place of the figure, and shows the last figure dimmed with its
// time.
func (m overview) powerBlock() string {
	st := m.st
	live := m.state.Live
	title := st.boxTitle.Render("Power now")
	if !live.HasReading {
		return lipgloss.JoinVertical(lipgloss.Left, title, st.muted.Render("no reading yet"))
	}
	r := live.Reading
	net, ok := r.NetPowerW()
	if !ok {
		return lipgloss.JoinVertical(lipgloss.Left, title, st.muted.Render("the meter sends no power values"))
	}
	if last, stale := m.meterStale(); stale {
		was := fmt.Sprintf("%+d W", net)
		switch {
		case net > 0:
			was += " importing"
		case net < 0:
			was += " exporting"
		}
		if m.state.Home.Production && live.ProductionW.OK {
			was += ", solar " + input.FormatPower(live.ProductionW.V)
		}
		at := ""
		if t := timeOf(live.Meter.LastTelegram); !t.IsZero() {
			at = " at " + t.In(m.loc).Format("15:04:05")
		} else if !last.IsZero() {
			at = " at " + last.In(m.loc).Format("15:04:05")
		}
		return lipgloss.JoinVertical(lipgloss.Left, title,
			st.bad.Render(clip("○ "+m.staleSince(last)+": power now unknown", m.width)),
			st.muted.Render(clip("last reading "+was+at, m.width)),
			st.muted.Render(clip("solar and home use unknown until the meter answers", m.width)))
	}
	var figure, words string
	var style lipgloss.Style
	switch {
	case net > 0:
		style, figure, words = st.importS, fmt.Sprintf("+%d", net), "▲ importing from the grid"
	case net < 0:
		style, figure, words = st.exportS, fmt.Sprintf("-%d", -net), "▼ exporting to the grid"
	default:
		style, figure, words = st.strong, "0", "= nothing flows to or from the grid"
	}
	var head string
	if m.useBig() {
		head = lipgloss.JoinVertical(lipgloss.Left, style.Render(bigText(figure)), style.Render("W  "+words))
	} else {
		head = style.Render(figure+" W") + "  " + style.Render(words)
	}
	lines := []string{title, head, st.muted.Render("measured by the grid meter")}
	prodKnown := m.state.Home.Production && live.ProductionW.OK
	prodSilent := m.state.Home.Production && !live.ProductionW.OK
	imp, exp := r.PowerImportW.V, r.PowerExportW.V
	row := func(label, value, note string) string {
		return st.label.Render(fmt.Sprintf("%-9s", label)) + " " + value + st.muted.Render(note)
	}
	if prodKnown {
		p := live.ProductionW.V
		lines = append(lines,
			row("Solar", st.solarS.Render(input.FormatPower(p)), "  measured"),
			row("Home use", st.homeS.Render(input.FormatPower(imp-exp+p)), "  derived: import - export + solar"))
	} else {
		solar := st.muted.Render("not measured")
		use := st.muted.Render("unknown")
		note := "  no production meter"
		if prodSilent {
			note = "" // there is one; it is silent, said below
		}
		if exp > 0 {
			solar = st.solarS.Render("at least " + input.FormatPower(exp))
			lines = append(lines, row("Solar", solar, "  derived: what you export is produced here"))
		} else {
			lines = append(lines, row("Solar", solar, note))
		}
		if imp > 0 {
			use = st.homeS.Render("at least " + input.FormatPower(imp))
			lines = append(lines, row("Home use", use, "  derived: the import; solar unknown"))
		} else {
			lines = append(lines, row("Home use", use, note))
		}
		if prodSilent {
			since := ""
			if t, ok := m.lastProduction(); ok {
				since = " since " + t.In(m.loc).Format("15:04")
			}
			lines = append(lines, st.bad.Render(clip("○ production meter offline"+since, m.width)))
		}
	}
	if peak := m.demandPeakLine(); peak != "" {
		lines = append(lines, peak)
	}
	return lipgloss.JoinVertical(lipgloss.Left, lines...)
}

// lastProduction is the time of the newest live sample that carries a
// production value: the production meter's last answer within the hour
// the live ring holds.
func (m overview) lastProduction() (time.Time, bool) {
	for i := m.live.ring.Len() - 1; i >= 0; i-- {
		if s := m.live.ring.At(i); s.ProductionW.OK {
			return s.Time, true
		}
	}
	return time.Time{}, false
}

// todayBlock shows today's energy and, with production, the shares.
func (m overview) todayBlock() string {
	st := m.st
	t := m.state.Live.Today
	row := func(label string, s lipgloss.Style, v string) string {
		return st.label.Render(fmt.Sprintf("%-18s", label)) + s.Render(fmt.Sprintf("%14s", v))
	}
	lines := []string{
		st.boxTitle.Render("Today") + st.muted.Render(" since 00:00 "+m.now.In(m.loc).Format("MST")),
		row("▲ imported", st.importS, input.FormatKWh(t.ImportWh)),
		row("▼ exported", st.exportS, input.FormatKWh(t.ExportWh)),
	}
	if m.state.Home.Production && t.ProductionWh != nil {
		p := *t.ProductionWh
		self := p - t.ExportWh
		use := t.ImportWh + self
		lines = append(lines, row("solar produced", st.solarS, input.FormatKWh(p)), row("home used", st.homeS, input.FormatKWh(use)))
		if v, ok := pct(self, p); ok {
			lines = append(lines, row("self-consumption", st.strong, fmt.Sprintf("%d %%", v))+st.muted.Render("  of solar used at home"))
		}
		if v, ok := pct(self, use); ok {
			lines = append(lines, row("self-sufficiency", st.strong, fmt.Sprintf("%d %%", v))+st.muted.Render("  of home use from own solar"))
		}
	} else {
		lines = append(lines, st.muted.Render("self-consumption and self-sufficiency need a production meter"))
	}
	// open pledges always show; a small screen with the production rows
	// saves the blank line above them instead
	if m.width >= 100 || m.height >= 30 || !m.state.Home.Production {
		lines = append(lines, "")
	}
	lines = append(lines, st.label.Render(fmt.Sprintf("%-18s", "open pledges"))+st.strong.Render(fmt.Sprintf("%14d", m.openPledges())))
	return lipgloss.JoinVertical(lipgloss.Left, lines...)
}

func (m overview) openPledges() int {
	n := 0
	for _, p := range m.state.Pledges {
		if p.State.Open() {
			n++
		}
	}
	return n
}

// phasesBlock draws one bar per phase: current against the fuse.
func (m overview) phasesBlock() string {
	st := m.st
	r := m.state.Live.Reading
	fuse := m.state.Home.FuseA
	title := st.boxTitle.Render("Phases")
	scaleA := int64(fuse) * 1000
	if fuse > 0 {
		title += st.muted.Render(fmt.Sprintf(" · bars show current against the %d A fuse", fuse))
	} else {
		scaleA = 32000
		title += st.muted.Render(" · fuse not configured, bars scaled to 32 A")
	}
	barW := 20
	if m.width >= 120 {
		barW = 40
	}
	if last, stale := m.meterStale(); stale {
		return lipgloss.JoinVertical(lipgloss.Left, title, st.muted.Render(clip("no current values: "+m.staleSince(last), m.width)))
	}
	lines := []string{title}
	any := false
	for i, ph := range r.Phases {
		if !m.state.Live.HasReading || !ph.Present() {
			continue
		}
		any = true
		lines = append(lines, m.phaseLine(i+1, ph, scaleA, barW))
	}
	if !any {
		lines = append(lines, st.muted.Render("no per-phase values from this meter"))
	}
	return lipgloss.JoinVertical(lipgloss.Left, lines...)
}

func (m overview) phaseLine(n int, ph meter.Phase, scaleMA int64, barW int) string {
	st := m.st
	full, empty := "█", "░"
	if m.ascii {
		full, empty = "#", "."
	}
	cur := st.muted.Render("      -  ") // no current from the meter: none is shown
	bar := strings.Repeat(" ", barW+2)
	if ph.CurrentMA.OK {
		ma := ph.CurrentMA.V
		fill := int(ma * int64(barW) / scaleMA)
		fill = max(0, min(fill, barW))
		// The bar is current, which has no direction: colour it by where
		// the phase's power flows, so an exporting phase does not look
		// like an importing one.
		fillStyle := st.barFill
		if ph.PowerExportW.OK && ph.PowerExportW.V > 0 {
			fillStyle = st.exportS
		}
		if ma*10 >= scaleMA*9 {
			fillStyle = st.barOver
		}
		bar = "[" + fillStyle.Render(strings.Repeat(full, fill)) + st.barEmpty.Render(strings.Repeat(empty, barW-fill)) + "]"
		cur = fmt.Sprintf("%7s", fmtAmps(ma))
		if ma*10 >= scaleMA*9 {
			cur = st.barOver.Render(cur + " !")
		} else {
			cur += "  "
		}
	}
	pw := ""
	switch {
	case ph.PowerImportW.OK && ph.PowerImportW.V > 0:
		pw = st.importS.Render(fmt.Sprintf("%+7d W", ph.PowerImportW.V))
	case ph.PowerExportW.OK && ph.PowerExportW.V > 0:
		pw = st.exportS.Render(fmt.Sprintf("%7d W", -ph.PowerExportW.V))
	case ph.PowerImportW.OK || ph.PowerExportW.OK:
		pw = fmt.Sprintf("%7d W", 0)
	}
	volt := ""
	if ph.VoltageMV.OK {
		volt = st.muted.Render(fmt.Sprintf("  %d.%d V", ph.VoltageMV.V/1000, (ph.VoltageMV.V%1000)/100))
	}
	return fmt.Sprintf("L%d %s %s  %s%s", n, bar, cur, pw, volt)
}

// fmtAmps is a current as the meter gives it: DSMR sends whole amperes and
// gets no invented decimals ("10 A"); meters with finer values keep theirs,
// up to milliamperes ("10.24 A").
func fmtAmps(ma int64) string {
	sign := ""
	if ma < 0 {
		sign, ma = "-", -ma
	}
	if ma%1000 == 0 {
		return fmt.Sprintf("%s%d A", sign, ma/1000)
	}
	frac := strings.TrimRight(fmt.Sprintf("%03d", ma%1000), "0")
	return fmt.Sprintf("%s%d.%s A", sign, ma/1000, frac)
}

// meterBlock is the health of the link to the grid meter.
func (m overview) meterBlock() string {
	st := m.st
	h := m.state.Live.Meter
	r := m.state.Live.Reading
	if h.Port == "" && !m.state.Live.HasReading && m.gone == "" {
		return m.noMeterBlock()
	}
	proto := h.Protocol
	switch proto {
	case "":
		proto = "protocol unknown"
	case "auto":
		proto = "detecting the protocol"
	}
	if m.state.Live.HasReading && r.Version != "" {
		proto += " " + r.Version
	}
	port := h.Port
	if port == "" {
		port = "no port"
	}
	var state string
	last, stale := m.meterStale()
	switch {
	case m.gone != "":
		state = st.bad.Render("○ not known: the household is not reachable")
	case h.Online && stale:
		// the link has not noticed yet, the clock has
		state = st.bad.Render("○ " + m.staleSince(last))
		if !last.IsZero() {
			state += " · last telegram " + fmtAge(m.now, last) + " ago"
		}
	case h.Online:
		state = st.good.Render("● online")
		if !timeOf(h.LastTelegram).IsZero() {
			state += " · last telegram " + fmtAge(m.now, timeOf(h.LastTelegram)) + " ago"
		}
	case !timeOf(h.OfflineSince).IsZero():
		state = st.bad.Render("○ OFFLINE since "+timeOf(h.OfflineSince).In(m.loc).Format("15:04")) +
			st.bad.Render(" ("+fmtAge(m.now, timeOf(h.OfflineSince))+")")
		if !timeOf(h.LastTelegram).IsZero() {
			state += " · last telegram " + fmtAge(m.now, timeOf(h.LastTelegram)) + " ago"
		}
	default:
		state = st.warn.Render("○ waiting for the first telegram")
	}
	crc := fmt.Sprintf("CRC errors today %d", h.CRCErrors)
	if h.CRCErrors > 0 {
		crc = st.warn.Render(crc)
	}
	var lines []string
	if line := st.boxTitle.Render("Meter") + " " + proto + " · " + port + " · " + state + " · " + crc; lipgloss.Width(line) <= m.width {
		lines = append(lines, line)
	} else {
		lines = append(lines, clip(st.boxTitle.Render("Meter")+" "+proto+" · "+port+" · "+crc, m.width), clip("      "+state, m.width))
	}
	if h.LastError != "" && !h.Online {
		lines = append(lines, st.errLine.Render(clip("last error: "+h.LastError, m.width)))
	}
	if w := m.meterClockWarning(); w != "" {
		lines = append(lines, w)
	}
	if r := m.state.Relay; r != nil {
		lines = append(lines, clip(m.hubLine(r), m.width))
	}
	return lipgloss.JoinVertical(lipgloss.Left, lines...)
}

// noMeterBlock tells a household without a meter what it misses and how
// to add one.
func (m overview) noMeterBlock() string {
	st := m.st
	lines := []string{
		st.boxTitle.Render("Meter") + " " + st.warn.Render("no meter configured") + st.muted.Render(": no live power, and nothing to settle pledges with"),
		st.muted.Render("      find its port with `commons meter ports`, set \"meter\": {\"port\": ...} in the home's config.json, restart"),
	}
	for i, l := range lines {
		lines[i] = clip(l, m.width)
	}
	return lipgloss.JoinVertical(lipgloss.Left, lines...)
}

// hubLine is the community hub link, for a household with a relay.
func (m overview) hubLine(r *household.RelayState) string {
	st := m.st
	line := st.boxTitle.Render("Hub") + "   " + r.URL + " · "
	switch {
	case r.Connected:
		line += st.good.Render("● connected")
		if r.LastMessage != nil {
			line += " · last message " + fmtAge(m.now, *r.LastMessage) + " ago"
		}
	case !r.Running:
		line += st.warn.Render("○ not linked: no daemon is running")
	default:
		line += st.bad.Render("○ not connected, retrying")
		if r.LastError != nil {
			line += " · " + *r.LastError
		}
	}
	if r.Refused > 0 {
		line += " · " + st.warn.Render(fmt.Sprintf("%d refused", r.Refused))
	}
	return line
}
