// Package tui is the household's terminal dashboard: live power and today's
// energy, charts of the last minutes, hours and days, the neighbours and
// their surplus or need, pledging surplus energy, and the ledger of pledges
// and settlements.
//
// It is a Bubble Tea program built from components in the manner of
// soft-serve's ui/components: one per view (overview.go, charts.go,
// neighbours.go, ledger.go) and per dialog (pledgeform.go, confirm.go,
// incoming.go, help.go), each with its own state, Update, View, SetSize
// and key bindings, sharing one common value (common.go). The root Model
// (this file) only routes: the active view, the household's state and
// events, the size, and what to do while the household cannot be reached.
// Views use bubbles, lipgloss layout and ntcharts charts. It talks to the household only through the household.Household
// interface, so the same model runs in-process, attached to a daemon, or in
// an SSH session with that session's lipgloss renderer. Update does no I/O:
// every call to the backend runs inside a tea.Cmd, and the screen is redrawn
// only when a message arrives (a backend event, a key, a resize, or a slow
// clock tick for the "ago" labels).
package tui

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/input"
)

// Minimum terminal size; below it the dashboard shows a message instead.
const (
	MinWidth  = 80
	MinHeight = 24
)

// tickEvery is the slow clock that keeps "ago" labels and the live chart's
// time axis honest while no events arrive (meter offline).
const tickEvery = 5 * time.Second

// stateRefresh is how old the state may get before the slow tick reloads
// it even without an event.
const stateRefresh = 30 * time.Second

// liveCap bounds the live ring: one hour of 1 s samples.
const liveCap = 3600

// Options configure a dashboard. The zero value works.
type Options struct {
	// Context cancels the backend subscription and calls; default
	// context.Background().
	Context context.Context
	// Renderer is the lipgloss renderer of the terminal the dashboard
	// draws on (an SSH session passes its own); default
	// lipgloss.DefaultRenderer(). It decides the colour profile
	// (NO_COLOR, 16, 256, truecolor) and light or dark background.
	Renderer *lipgloss.Renderer
	// Now is the clock; default time.Now. Tests pass a fixed clock.
	Now func() time.Time
	// Location is the time zone for clock labels and windows; default
	// time.Local.
	Location *time.Location
	// Width and Height are the size before the first tea.WindowSizeMsg;
	// default 80x24.
	Width, Height int
	// ASCII draws charts with line runes instead of braille, for consoles
	// and fonts without braille (TERM=linux).
	ASCII bool
	// ReadOnly is a dashboard to look only (a viewer's): the pledge,
	// accept, decline and cancel keys are disabled, so neither the hint
	// line nor the help shows them. It hides; the backend of a viewer
	// must refuse those calls as well.
	ReadOnly bool
}

type view int

const (
	viewOverview view = iota
	viewCharts
	viewNeighbours
	viewLedger
	viewCount
)

var viewNames = [viewCount]string{"Overview", "Charts", "Neighbours", "Ledger"}

type span int

const (
	span1h span = iota
	span24h
	span7d
	spanCount
)

var (
	spanNames = [spanCount]string{"1 h", "24 h", "7 days"}
	spanDurs  = [spanCount]time.Duration{time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}
	liveWins  = []time.Duration{5 * time.Minute, 15 * time.Minute, time.Hour}
)

// Model is the dashboard. It implements tea.Model. It keeps the routing:
// the active view, the household's state and event stream, the size, and
// the retries while the household is gone; the views and dialogs are its
// components.
type Model struct {
	com     common
	view    view
	tickTag int
	laidOut int // body height the components were last sized for

	state      household.State
	haveState  bool
	stateSeq   int       // number of the last State request
	stateShown int       // number of the request whose answer is shown
	lives      int       // live events handled; a state asked for before the latest keeps its figures
	stateAt    time.Time // when the shown state was loaded
	loadErr    string    // last failed backend load
	notice     string    // result of the last action
	noticeBad  bool

	// gone is the backend's own words when the household cannot be reached
	// at all (ErrUnavailable: the daemon stopped); "" while it answers.
	// While gone the last state is not shown as current, and a retry with
	// backoff looks for the household's return.
	gone         string
	goneSince    time.Time
	retryIn      time.Duration // the next retry's delay
	retryTag     int           // drops retries scheduled before a return
	retryPending bool          // a retry is scheduled

	// live is the ring of live samples the charts draw; the root fills it
	// from the samples load and the live events.
	live        *household.Ring
	haveSamples bool
	events      <-chan household.Event

	// the components
	overview   overview
	charts     charts
	neighbours neighbours
	ledger     ledger
	incoming   incoming
	form       pledgeForm
	confirm    confirmation
	help       helpOverlay
}

// New returns a dashboard on the household b.
func New(b household.Household, opts Options) Model {
	if opts.Context == nil {
		opts.Context = context.Background()
	}
	if opts.Renderer == nil {
		opts.Renderer = lipgloss.DefaultRenderer()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	if opts.Width <= 0 || opts.Height <= 0 {
		opts.Width, opts.Height = 80, 24
	}
	c := newCommon(b, opts)
	ring := household.NewRing(liveCap)
	m := Model{
		com:        c,
		live:       ring,
		overview:   newOverview(c, ring),
		charts:     newCharts(c, ring),
		neighbours: newNeighbours(c),
		ledger:     newLedger(c),
		incoming:   newIncoming(c),
		form:       newPledgeForm(c),
		confirm:    newConfirmation(c),
		help:       newHelpOverlay(c),
	}
	m.layout()
	m.refresh()
	return m
}

// activeView, activeShortHelp and activeFullHelp are the active view's
// View, ShortHelp and FullHelp. A switch rather than an interface: boxing
// a component copies it to the heap, on every frame.
func (m *Model) activeView() string {
	switch m.view {
	case viewCharts:
		return m.charts.View()
	case viewNeighbours:
		return m.neighbours.View()
	case viewLedger:
		return m.ledger.View()
	}
	return m.overview.View()
}

func (m *Model) activeShortHelp() []key.Binding {
	switch m.view {
	case viewCharts:
		return m.charts.ShortHelp()
	case viewNeighbours:
		return m.neighbours.ShortHelp()
	case viewLedger:
		return m.ledger.ShortHelp()
	}
	return m.overview.ShortHelp()
}

func (m *Model) activeFullHelp() [][]key.Binding {
	switch m.view {
	case viewCharts:
		return m.charts.FullHelp()
	case viewNeighbours:
		return m.neighbours.FullHelp()
	case viewLedger:
		return m.ledger.FullHelp()
	}
	return m.overview.FullHelp()
}

// Messages of the root. Each carries the clock's time as read inside its
// command, so Update itself never reads the clock.
type (
	stateMsg struct {
		seq   int
		lives int // live events seen when the state was asked for
		state household.State
		err   error
		now   time.Time
	}
	samplesMsg struct {
		samples []household.Sample
		err     error
	}
	subscribedMsg struct{ ch <-chan household.Event }
	eventMsg      struct {
		ev  household.Event
		now time.Time
	}
	eventsClosedMsg struct{}
	tickMsg         struct {
		tag int
		now time.Time
	}
	retryMsg struct{ tag int }
)

// Init starts loading the state, the live samples and the aggregates, and
// subscribes to changes.
func (m Model) Init() tea.Cmd {
	return tea.Batch(m.loadState(), m.loadSamples(), m.charts.load(), m.subscribe(), m.tick())
}

// loadState asks for the state. Answers can overtake each other, so each
// request is numbered and an answer older than the one shown is dropped.
func (m *Model) loadState() tea.Cmd {
	m.stateSeq++
	b, ctx, clock, seq, lives := m.com.b, m.com.ctx, m.com.clock, m.stateSeq, m.lives
	return func() tea.Msg {
		s, err := b.State(ctx)
		return stateMsg{seq: seq, lives: lives, state: s, err: err, now: clock()}
	}
}

func (m Model) loadSamples() tea.Cmd {
	b, ctx, since := m.com.b, m.com.ctx, m.com.now.Add(-time.Hour)
	return func() tea.Msg {
		s, err := b.Samples(ctx, since)
		return samplesMsg{samples: s, err: err}
	}
}

func (m Model) subscribe() tea.Cmd {
	b, ctx := m.com.b, m.com.ctx
	return func() tea.Msg { return subscribedMsg{ch: b.Subscribe(ctx)} }
}

func waitEvent(ch <-chan household.Event, clock func() time.Time) tea.Cmd {
	return func() tea.Msg {
		ev, ok := <-ch
		if !ok {
			return eventsClosedMsg{}
		}
		return eventMsg{ev: ev, now: clock()}
	}
}

func (m Model) tick() tea.Cmd {
	tag, clock := m.tickTag, m.com.clock
	return tea.Tick(tickEvery, func(time.Time) tea.Msg { return tickMsg{tag: tag, now: clock()} })
}

// Update handles one message.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	var cmds []tea.Cmd
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.com.width, m.com.height = msg.Width, msg.Height
		m.sync()
		m.layout()
	case tea.KeyMsg:
		// Keys typed fast, or batched by a slow SSH link or tmux, arrive
		// as one message with several runes: outside a text field each
		// rune is a key of its own.
		keys := []tea.KeyMsg{msg}
		if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 && !msg.Paste && !m.form.textFocused() {
			keys = keys[:0]
			for _, r := range msg.Runes {
				keys = append(keys, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}, Alt: msg.Alt})
			}
		}
		for i := 0; i < len(keys); i++ {
			k := keys[i]
			last := false
			if i > 0 && m.form.textFocused() {
				// the rest goes to the text field a key just opened
				k, last = tea.KeyMsg{Type: tea.KeyRunes, Runes: msg.Runes[i:]}, true
			}
			var cmd tea.Cmd
			var quit bool
			m, cmd, quit = m.handleKey(k)
			if quit {
				return m, tea.Quit
			}
			cmds = append(cmds, cmd)
			if last {
				break
			}
		}
	case stateMsg:
		m.com.now = msg.now
		if msg.seq < m.stateShown {
			break // an older answer that was overtaken
		}
		m.stateShown = msg.seq
		if msg.err != nil {
			if m.unreachable(msg.err) {
				cmds = append(cmds, m.retry())
				break
			}
			m.loadErr = "could not load the household state: " + msg.err.Error()
			break
		}
		m.loadErr = ""
		if m.gone != "" {
			// the household is back: catch up on what was missed
			m.gone, m.retryIn, m.retryPending = "", 0, false
			m.retryTag++
			cmds = append(cmds, m.loadSamples(), m.charts.load())
			if m.events == nil {
				cmds = append(cmds, m.subscribe())
			}
		}
		live := m.state.Live
		m.state = msg.state
		if m.lives > msg.lives {
			// a live event came after the question: its figures are newer
			m.state.Live = live
		}
		m.stateAt = msg.now
		m.haveState = true
		m.liveChanged()
		m.setState()
	case samplesMsg:
		if msg.err != nil {
			if m.unreachable(msg.err) {
				cmds = append(cmds, m.retry())
			} else {
				m.loadErr = "could not load the live samples: " + msg.err.Error()
			}
			break
		}
		m.live.Merge(msg.samples)
		m.haveSamples = true
		m.liveChanged()
	case aggMsg:
		m.com.now = msg.now
		if msg.err != nil {
			if m.unreachable(msg.err) {
				cmds = append(cmds, m.retry())
			} else {
				m.loadErr = "could not load the " + spanNames[msg.span] + " history: " + msg.err.Error()
			}
			break
		}
		m.sync()
		m.charts, _ = m.charts.Update(msg)
	case subscribedMsg:
		m.events = msg.ch
		cmds = append(cmds, waitEvent(msg.ch, m.com.clock))
	case eventMsg:
		m.com.now = msg.now
		cmds = append(cmds, waitEvent(m.events, m.com.clock), m.handleEvent(msg.ev))
	case eventsClosedMsg:
		m.events = nil
		// The stream ends when the household stops: ask at once rather
		// than at the next slow tick, so the dashboard says so promptly.
		cmds = append(cmds, m.loadState())
	case retryMsg:
		if msg.tag == m.retryTag {
			m.retryPending = false
			if m.gone != "" {
				cmds = append(cmds, m.loadState())
			}
		}
	case tickMsg:
		if msg.tag != m.tickTag {
			break
		}
		m.com.now = msg.now
		cmds = append(cmds, m.tick())
		if !m.haveState || m.com.now.Sub(m.stateAt) >= stateRefresh {
			// the first load failed, or no event asked for a reload for a
			// while: statuses age and a lost event must not freeze the screen
			cmds = append(cmds, m.loadState())
			m.stateAt = m.com.now
		}
	case actionMsg:
		m.com.now = msg.now
		if msg.err != nil && m.unreachable(msg.err) {
			m.setNotice(true, "Could not %s pledge %s: %v.", verbBase(msg.verb), household.ShortID(msg.id), msg.err)
			cmds = append(cmds, m.retry())
		} else if msg.err != nil {
			m.setNotice(true, "Could not %s pledge %s: %v", verbBase(msg.verb), household.ShortID(msg.id), msg.err)
		} else {
			m.setNotice(false, "Pledge %s %s.", household.ShortID(msg.id), msg.verb)
			cmds = append(cmds, m.loadState())
		}
	case pledgeResultMsg:
		m.com.now = msg.now
		m.sync()
		var cmd tea.Cmd
		m.form, cmd = m.form.Update(msg)
		cmds = append(cmds, cmd, m.apply(m.form.take()))
	case previewMsg, outlookMsg:
		m.sync()
		var cmd tea.Cmd
		m.form, cmd = m.form.Update(msg)
		cmds = append(cmds, cmd, m.apply(m.form.take()))
	}
	m.sync()
	if m.bodyHeight() != m.laidOut {
		// a banner or status line came or went: the views have another
		// height
		m.layout()
	}
	m.refresh()
	return m, tea.Batch(cmds...)
}

// sync hands the common value (the clock's time, the terminal size) and
// the live state to the components. It is cheap: the tables are rebuilt
// only by setState and layout.
func (m *Model) sync() {
	c := m.com
	m.overview.common, m.charts.common, m.neighbours.common, m.ledger.common = c, c, c, c
	m.incoming.common, m.form.common, m.confirm.common, m.help.common = c, c, c, c
	if m.haveState {
		m.overview.SetState(m.state)
	}
	m.overview.SetGone(m.gone, m.goneSince)
	m.charts.SetState(m.state)
	m.incoming.SetState(m.state)
	m.form.SetState(m.state)
	// the live window is the charts view's; the overview shows the same
	if m.overview.live.win != m.charts.live.win {
		m.overview.live.win, m.overview.live.dirty = m.charts.live.win, true
	}
}

// setState hands a newly loaded state to the components that build
// tables from it.
func (m *Model) setState() {
	m.sync()
	m.neighbours.SetState(m.state)
	m.ledger.SetState(m.state)
}

// liveChanged marks the live charts for a redraw: new samples, a state
// (production meter or not) or the household gone or back.
func (m *Model) liveChanged() {
	m.overview.live.have, m.charts.live.have = m.haveSamples, m.haveSamples
	m.overview.live.dirty, m.charts.live.dirty = true, true
}

// refresh rebuilds the cached parts of the visible view (the charts, the
// overview's text); View only joins cached strings.
func (m *Model) refresh() {
	if m.tooSmall() {
		return
	}
	switch m.view {
	case viewOverview:
		m.overview.refresh()
	case viewCharts:
		m.charts.refresh()
	}
}

// apply carries out what a component asked for (see request).
func (m *Model) apply(r request) tea.Cmd {
	var cmds []tea.Cmd
	if r.notice != "" {
		m.notice, m.noticeBad = r.notice, r.noticeBad
	}
	if r.confirm != nil {
		m.confirm.ask(*r.confirm)
	}
	if r.pledgeTo != nil {
		var cmd tea.Cmd
		m.form, cmd = m.form.Open(*r.pledgeTo)
		cmds = append(cmds, cmd, m.apply(m.form.take()))
	}
	if r.reload {
		cmds = append(cmds, m.loadState())
	}
	return tea.Batch(cmds...)
}

// Retry delays while the household cannot be reached.
const (
	retryFirst = 500 * time.Millisecond
	retryMax   = 5 * time.Second
)

// unreachable reports whether err, from a backend call, leaves the
// household unreachable: it says so itself (ErrUnavailable, recorded in
// the backend's words, with since when), or the household was already
// unreachable (a daemon that is starting may fail differently at first).
func (m *Model) unreachable(err error) bool {
	if errors.Is(err, household.ErrUnavailable) {
		if m.gone == "" {
			m.goneSince = m.com.now
		}
		m.gone = err.Error()
		m.loadErr = ""
		m.liveChanged()
	}
	return m.gone != ""
}

// retry schedules the next attempt to reach the household, a tea.Tick
// after a delay that doubles from retryFirst up to retryMax; nil when one
// is already pending, so several failed loads advance the backoff once.
func (m *Model) retry() tea.Cmd {
	if m.retryPending {
		return nil
	}
	switch {
	case m.retryIn == 0:
		m.retryIn = retryFirst
	case m.retryIn < retryMax:
		m.retryIn = min(2*m.retryIn, retryMax)
	}
	m.retryPending = true
	m.retryTag++
	tag := m.retryTag
	return tea.Tick(m.retryIn, func(time.Time) tea.Msg { return retryMsg{tag: tag} })
}

func verbBase(v string) string {
	switch v {
	case "accepted":
		return "accept"
	case "declined":
		return "decline"
	case "cancelled":
		return "cancel"
	}
	return v
}

func (m *Model) setNotice(bad bool, format string, args ...any) {
	m.notice = sprintf(format, args...)
	m.noticeBad = bad
}

// handleEvent applies a backend event and returns the loads it calls for.
func (m *Model) handleEvent(ev household.Event) tea.Cmd {
	switch ev.Kind {
	case household.EventLive:
		m.lives++
		m.state.Live = ev.Live
		if !ev.Sample.Time.IsZero() {
			m.live.Push(ev.Sample)
			m.haveSamples = true // draw what arrives even if the history load failed
			m.overview.live.have, m.charts.live.have = true, true
		}
	case household.EventState:
		return m.loadState()
	case household.EventAggregates:
		return m.charts.load()
	case household.EventIncoming:
		if ev.Pledge != nil {
			p := ev.Pledge
			m.setNotice(false, "%s pledged you %s for %s: a accept, d decline.",
				nameOr(p.FromName, p.From), input.FormatEnergy(p.EnergyWh), m.com.window(p.Window.Start, p.Window.End))
		}
		return m.loadState()
	}
	return nil
}

// handleKey routes a key press; quit reports that the program should end.
// An open dialog (help, confirmation, pledge form) takes every key; else
// the active view takes the keys it has bindings for, then the global
// keys apply, then the answers to an incoming pledge.
func (m Model) handleKey(msg tea.KeyMsg) (Model, tea.Cmd, bool) {
	k := m.com.keys
	if msg.String() == "ctrl+c" {
		return m, nil, true
	}
	if m.tooSmall() {
		return m, nil, key.Matches(msg, k.Quit)
	}
	m.sync()
	var cmd tea.Cmd
	switch {
	case m.help.open:
		if key.Matches(msg, k.Quit) {
			return m, nil, true
		}
		m.help, cmd = m.help.Update(msg)
		return m, cmd, false
	case m.confirm.open:
		m.confirm, cmd = m.confirm.Update(msg)
		return m, tea.Batch(cmd, m.apply(m.confirm.take())), false
	case m.form.open:
		m.form, cmd = m.form.Update(msg)
		return m, tea.Batch(cmd, m.apply(m.form.take())), false
	}
	if claims(msg, m.activeFullHelp()) {
		switch m.view {
		case viewCharts:
			m.charts, cmd = m.charts.Update(msg)
		case viewNeighbours:
			m.neighbours, cmd = m.neighbours.Update(msg)
			cmd = tea.Batch(cmd, m.apply(m.neighbours.take()))
		case viewLedger:
			m.ledger, cmd = m.ledger.Update(msg)
			cmd = tea.Batch(cmd, m.apply(m.ledger.take()))
		}
		return m, cmd, false
	}
	switch {
	case key.Matches(msg, k.Quit):
		return m, nil, true
	case key.Matches(msg, k.Help):
		m.help.Show(m.fullHelp())
	case key.Matches(msg, k.Next):
		m.setView((m.view + 1) % viewCount)
	case key.Matches(msg, k.Prev):
		m.setView((m.view + viewCount - 1) % viewCount)
	case key.Matches(msg, k.Overview):
		m.setView(viewOverview)
	case key.Matches(msg, k.Charts):
		m.setView(viewCharts)
	case key.Matches(msg, k.Neighbours):
		m.setView(viewNeighbours)
	case key.Matches(msg, k.Ledger):
		m.setView(viewLedger)
	case key.Matches(msg, k.Pledge):
		to := ""
		return m, m.apply(request{pledgeTo: &to}), false
	case claims(msg, m.incoming.FullHelp()):
		m.incoming.selected = m.selectedPledge()
		m.incoming, cmd = m.incoming.Update(msg)
		return m, tea.Batch(cmd, m.apply(m.incoming.take())), false
	}
	return m, nil, false
}

// selectedPledge is the pledge under the cursor of the active view, if it
// has one.
func (m Model) selectedPledge() string {
	switch m.view {
	case viewLedger:
		return m.ledger.SelectedPledge()
	case viewNeighbours:
		return m.neighbours.SelectedPledge()
	}
	return ""
}

func (m *Model) setView(v view) {
	m.view = v
	m.neighbours.closeDetail()
	m.ledger.closeDetail()
	m.layout()
}

func (m Model) tooSmall() bool { return m.com.width < MinWidth || m.com.height < MinHeight }

// bodyHeight is the height left for the current view.
func (m Model) bodyHeight() int {
	h := m.com.height - 2 // header and help line
	if m.incoming.View() != "" {
		h--
	}
	if m.statusText() != "" {
		h--
	}
	if h < 1 {
		h = 1
	}
	return h
}

// layout sizes the components for the current terminal size.
func (m *Model) layout() {
	w, bh := m.com.width, m.bodyHeight()
	m.laidOut = bh
	m.overview.SetSize(w, bh)
	m.charts.SetSize(w, bh)
	m.neighbours.SetSize(w, bh)
	m.ledger.SetSize(w, bh)
	m.incoming.SetSize(w, 1)
	m.form.SetSize(w, bh)
	m.help.SetSize(w, bh)
	m.confirm.SetSize(w, bh)
}

// View renders the dashboard.
func (m Model) View() string {
	if m.tooSmall() {
		return m.tooSmallView()
	}
	var body string
	switch {
	case m.help.open:
		body = m.help.View()
	case m.form.open:
		body = m.form.View()
	case m.confirm.open:
		body = m.confirm.View()
	default:
		body = m.activeView()
	}
	banner := m.incoming.View()
	status := m.statusText()
	var b strings.Builder
	b.Grow(m.com.width * m.com.height * 2)
	b.WriteString(m.headerView())
	b.WriteByte('\n')
	if banner != "" {
		b.WriteString(banner)
		b.WriteByte('\n')
	}
	writeLines(&b, body, m.bodyHeight())
	if status != "" {
		b.WriteString(status)
		b.WriteByte('\n')
	}
	b.WriteString(m.footerView())
	return b.String()
}

// writeLines writes exactly n lines of s, each ended by a newline: extra
// lines are dropped and missing ones left empty. The views keep their
// lines within the width, so no line is measured here: this runs on every
// frame.
func writeLines(b *strings.Builder, s string, n int) {
	for i := 0; i < n; i++ {
		line := s
		if j := strings.IndexByte(s, '\n'); j >= 0 {
			line, s = s[:j], s[j+1:]
		} else {
			s = ""
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
}

func (m Model) tooSmallView() string {
	msg := sprintf("Terminal too small: %dx%d.\nThe dashboard needs at least %dx%d.\nEnlarge the window, or press q to quit.",
		m.com.width, m.com.height, MinWidth, MinHeight)
	v := m.com.st.r.Place(max(m.com.width, 1), max(m.com.height, 1), lipgloss.Center, lipgloss.Center,
		m.com.st.r.NewStyle().MaxWidth(max(m.com.width, 1)).Render(msg))
	// Place does not cut: in a window lower than the message, keep the
	// lines that fit
	if lines := strings.Split(v, "\n"); len(lines) > max(m.com.height, 1) {
		v = strings.Join(lines[:max(m.com.height, 1)], "\n")
	}
	return v
}
