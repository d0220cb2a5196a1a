// Package tui is the household's terminal dashboard: live power and today's
// energy, charts of the last minutes, hours and days, the neighbours and
// their surplus or need, pledging surplus energy, and the ledger of pledges
// and settlements.
//
// It is a Bubble Tea program built from bubbles components, lipgloss layout
// and ntcharts charts. It talks to the household only through the household.Household
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

	"github.com/NimbleMarkets/ntcharts/linechart/timeserieslinechart"
	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/table"
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

// Model is the dashboard. It implements tea.Model.
type Model struct {
	b     household.Household
	ctx   context.Context
	clock func() time.Time
	loc   *time.Location
	ascii bool
	st    styles
	keys  keyMap
	help  help.Model

	now           time.Time
	width, height int
	view          view
	showHelp      bool
	tickTag       int

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

	live        *household.Ring
	haveSamples bool
	liveWin     int // index into liveWins
	span        span
	buckets     []household.Bucket
	bucketsOf   span
	bucketsAt   time.Time // when buckets were asked for: the open bucket holds energy up to then
	haveAgg     bool

	// cached chart renderings, rebuilt in Update when their input changes
	liveChart, histChart string
	liveDirty, histDirty bool
	liveEnd              time.Time // end of the window the live chart was drawn for
	ovTop                string    // the overview's text part, built in Update
	// the charts are kept between builds (a cache: only Update touches them)
	liveModel, histModel *timeserieslinechart.Model
	ovRows               int
	liveW, liveH         int
	histW, histH         int

	events <-chan household.Event

	neigh     table.Model
	neighIDs  []string // row -> neighbour id
	detail    string   // neighbour id shown in detail; "" for the list
	detailTbl table.Model
	detailIDs []string // detail row -> pledge id

	ledger    table.Model
	ledgerIDs []string // row -> pledge id
	filter    string   // neighbour id the ledger is filtered by; "" all

	form    pledgeForm
	confirm confirmation
}

// confirmation is a yes/no question before an irreversible action.
type confirmation struct {
	open     bool
	question string
	id       string
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
	st := newStyles(opts.Renderer)
	h := help.New()
	h.Styles = help.Styles{
		Ellipsis: st.helpSep, ShortKey: st.helpKey, ShortDesc: st.helpDesc, ShortSeparator: st.helpSep,
		FullKey: st.helpKey, FullDesc: st.helpDesc, FullSeparator: st.helpSep,
	}
	m := Model{
		b:       b,
		ctx:     opts.Context,
		clock:   opts.Now,
		loc:     opts.Location,
		ascii:   opts.ASCII,
		st:      st,
		keys:    defaultKeys(),
		help:    h,
		now:     opts.Now(),
		width:   opts.Width,
		height:  opts.Height,
		live:    household.NewRing(liveCap),
		liveWin: 1,
		span:    span24h,
	}
	if opts.ReadOnly {
		for _, b := range []*key.Binding{&m.keys.Pledge, &m.keys.Accept, &m.keys.Decline, &m.keys.Cancel} {
			b.SetEnabled(false)
		}
	}
	m.neigh = newTable(st)
	m.detailTbl = newTable(st)
	m.ledger = newTable(st)
	m.form = newPledgeForm(st)
	m.layout()
	m.refreshCharts()
	return m
}

// newTable returns a bubbles table styled from st, with keys that leave
// a, d, c, f, p and the view keys to the dashboard.
func newTable(st styles) table.Model {
	km := table.DefaultKeyMap()
	km.PageUp = key.NewBinding(key.WithKeys("pgup", "ctrl+b"))
	km.PageDown = key.NewBinding(key.WithKeys("pgdown", "ctrl+f"))
	km.HalfPageUp = key.NewBinding(key.WithKeys("ctrl+u"))
	km.HalfPageDown = key.NewBinding(key.WithKeys("ctrl+d"))
	t := table.New(table.WithKeyMap(km), table.WithFocused(true))
	t.SetStyles(table.Styles{Header: st.header, Cell: st.cell, Selected: st.selected})
	return t
}

// Messages. Each carries the clock's time as read inside its command, so
// Update itself never reads the clock.
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
	aggMsg struct {
		span    span
		buckets []household.Bucket
		err     error
		now     time.Time
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
	retryMsg  struct{ tag int }
	actionMsg struct {
		verb string // "accepted", "declined", "cancelled"
		id   string
		err  error
		now  time.Time
	}
)

// Init starts loading the state, the live samples and the aggregates, and
// subscribes to changes.
func (m Model) Init() tea.Cmd {
	return tea.Batch(m.loadState(), m.loadSamples(), m.loadAggregates(m.span), m.subscribe(), m.tick())
}

// loadState asks for the state. Answers can overtake each other, so each
// request is numbered and an answer older than the one shown is dropped.
func (m *Model) loadState() tea.Cmd {
	m.stateSeq++
	b, ctx, clock, seq, lives := m.b, m.ctx, m.clock, m.stateSeq, m.lives
	return func() tea.Msg {
		s, err := b.State(ctx)
		return stateMsg{seq: seq, lives: lives, state: s, err: err, now: clock()}
	}
}

func (m Model) loadSamples() tea.Cmd {
	b, ctx, since := m.b, m.ctx, m.now.Add(-time.Hour)
	return func() tea.Msg {
		s, err := b.Samples(ctx, since)
		return samplesMsg{samples: s, err: err}
	}
}

func (m Model) loadAggregates(sp span) tea.Cmd {
	b, ctx, clock, loc := m.b, m.ctx, m.clock, m.loc
	return func() tea.Msg {
		now := clock()
		from, to := histWindowAt(now, sp, loc)
		bs, err := b.Aggregates(ctx, from, to)
		return aggMsg{span: sp, buckets: bs, err: err, now: now}
	}
}

func (m Model) subscribe() tea.Cmd {
	b, ctx := m.b, m.ctx
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
	tag, clock := m.tickTag, m.clock
	return tea.Tick(tickEvery, func(time.Time) tea.Msg { return tickMsg{tag: tag, now: clock()} })
}

func (m Model) action(verb, id string, call func(context.Context, string) (household.Pledge, error)) tea.Cmd {
	ctx, clock := m.ctx, m.clock
	return func() tea.Msg {
		_, err := call(ctx, id)
		return actionMsg{verb: verb, id: id, err: err, now: clock()}
	}
}

// Update handles one message.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	var cmds []tea.Cmd
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.layout()
	case tea.KeyMsg:
		// Keys typed fast, or batched by a slow SSH link or tmux, arrive
		// as one message with several runes: outside a text field each
		// rune is a key of its own.
		keys := []tea.KeyMsg{msg}
		if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 && !msg.Paste && !m.textFocused() {
			keys = keys[:0]
			for _, r := range msg.Runes {
				keys = append(keys, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}, Alt: msg.Alt})
			}
		}
		for i := 0; i < len(keys); i++ {
			k := keys[i]
			last := false
			if i > 0 && m.textFocused() {
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
		m.now = msg.now
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
			cmds = append(cmds, m.loadSamples(), m.loadAggregates(m.span))
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
		m.liveDirty = true
		m.refreshTables()
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
		m.liveDirty = true
	case aggMsg:
		m.now = msg.now
		if msg.err != nil {
			if m.unreachable(msg.err) {
				cmds = append(cmds, m.retry())
			} else {
				m.loadErr = "could not load the " + spanNames[msg.span] + " history: " + msg.err.Error()
			}
			break
		}
		if msg.span == m.span {
			m.buckets, m.bucketsOf, m.bucketsAt, m.haveAgg = msg.buckets, msg.span, msg.now, true
			m.histDirty = true
		}
	case subscribedMsg:
		m.events = msg.ch
		cmds = append(cmds, waitEvent(msg.ch, m.clock))
	case eventMsg:
		m.now = msg.now
		cmds = append(cmds, waitEvent(m.events, m.clock), m.handleEvent(msg.ev))
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
		m.now = msg.now
		cmds = append(cmds, m.tick())
		if !m.haveState || m.now.Sub(m.stateAt) >= stateRefresh {
			// the first load failed, or no event asked for a reload for a
			// while: statuses age and a lost event must not freeze the screen
			cmds = append(cmds, m.loadState())
			m.stateAt = m.now
		}
	case actionMsg:
		m.now = msg.now
		if msg.err != nil && m.unreachable(msg.err) {
			m.setNotice(true, "Could not %s pledge %s: %v.", verbBase(msg.verb), shortID(msg.id), msg.err)
			cmds = append(cmds, m.retry())
		} else if msg.err != nil {
			m.setNotice(true, "Could not %s pledge %s: %v", verbBase(msg.verb), shortID(msg.id), msg.err)
		} else {
			m.setNotice(false, "Pledge %s %s.", shortID(msg.id), msg.verb)
			cmds = append(cmds, m.loadState())
		}
	case previewMsg, pledgeResultMsg:
		var cmd tea.Cmd
		m, cmd = m.updateForm(msg)
		cmds = append(cmds, cmd)
	}
	m.refreshCharts()
	return m, tea.Batch(cmds...)
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
			m.goneSince = m.now
		}
		m.gone = err.Error()
		m.loadErr = ""
		m.liveDirty = true
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
		}
	case household.EventState:
		return m.loadState()
	case household.EventAggregates:
		return m.loadAggregates(m.span)
	case household.EventIncoming:
		if ev.Pledge != nil {
			p := ev.Pledge
			m.setNotice(false, "%s pledged you %s for %s: a accept, d decline.",
				nameOr(p.FromName, p.From), input.FormatEnergy(p.EnergyWh), fmtWindow(m.now, p.Window.Start, p.Window.End, m.loc))
		}
		return m.loadState()
	}
	return nil
}

func nameOr(name, id string) string {
	if name != "" {
		return name
	}
	return shortID(id)
}

// handleKey routes a key press; quit reports that the program should end.
func (m Model) handleKey(msg tea.KeyMsg) (Model, tea.Cmd, bool) {
	k := m.keys
	if msg.String() == "ctrl+c" {
		return m, nil, true
	}
	if m.tooSmall() {
		return m, nil, key.Matches(msg, k.Quit)
	}
	if m.showHelp {
		switch {
		case key.Matches(msg, k.Help), key.Matches(msg, k.Back):
			m.showHelp = false
		case key.Matches(msg, k.Quit):
			return m, nil, true
		}
		return m, nil, false
	}
	if m.confirm.open {
		switch {
		case key.Matches(msg, k.Yes):
			id := m.confirm.id
			m.confirm = confirmation{}
			m.setNotice(false, "Cancelling pledge %s…", shortID(id))
			return m, m.action("cancelled", id, m.b.Cancel), false
		case key.Matches(msg, k.No):
			m.confirm = confirmation{}
		}
		return m, nil, false
	}
	if m.form.open {
		m, cmd := m.formKey(msg)
		return m, cmd, false
	}
	switch {
	case key.Matches(msg, k.Quit):
		return m, nil, true
	case key.Matches(msg, k.Help):
		m.showHelp = true
		return m, nil, false
	case key.Matches(msg, k.Next):
		m.setView((m.view + 1) % viewCount)
		return m, nil, false
	case key.Matches(msg, k.Prev):
		m.setView((m.view + viewCount - 1) % viewCount)
		return m, nil, false
	case key.Matches(msg, k.Overview):
		m.setView(viewOverview)
		return m, nil, false
	case key.Matches(msg, k.Charts):
		m.setView(viewCharts)
		return m, nil, false
	case key.Matches(msg, k.Neighbours):
		m.setView(viewNeighbours)
		return m, nil, false
	case key.Matches(msg, k.Ledger):
		m.setView(viewLedger)
		return m, nil, false
	case key.Matches(msg, k.Pledge):
		to := ""
		if m.view == viewNeighbours {
			to = m.detail
			if to == "" {
				to = m.selectedNeighbour()
			}
		}
		cmd := m.openForm(to)
		return m, cmd, false
	case key.Matches(msg, k.Accept), key.Matches(msg, k.Decline):
		id := m.actionTarget()
		if id == "" {
			m.setNotice(true, "No incoming pledge waits for an answer.")
			return m, nil, false
		}
		if key.Matches(msg, k.Accept) {
			m.setNotice(false, "Accepting pledge %s…", shortID(id))
			return m, m.action("accepted", id, m.b.Accept), false
		}
		m.setNotice(false, "Declining pledge %s…", shortID(id))
		return m, m.action("declined", id, m.b.Decline), false
	}
	var cmd tea.Cmd
	switch m.view {
	case viewCharts:
		cmd = m.chartsKey(msg)
	case viewNeighbours:
		cmd = m.neighboursKey(msg)
	case viewLedger:
		cmd = m.ledgerKey(msg)
	}
	return m, cmd, false
}

func (m *Model) setView(v view) {
	m.view = v
	m.detail = ""
	m.liveDirty, m.histDirty = true, true
	m.layout()
}

// actionTarget is the incoming pledge that a or d answers: the selected
// row (ledger or a neighbour's history) when it is an incoming open
// pledge, else the newest incoming pledge waiting for an answer.
func (m Model) actionTarget() string {
	if p, ok := m.pledgeByID(m.selectedPledgeID()); ok && !p.Outgoing && p.State == household.StatePledged {
		return p.ID
	}
	if p, ok := m.firstIncoming(); ok {
		return p.ID
	}
	return ""
}

// firstIncoming returns the newest incoming pledge waiting for an answer.
func (m Model) firstIncoming() (household.Pledge, bool) {
	for _, p := range m.state.Pledges {
		if !p.Outgoing && p.State == household.StatePledged && p.Window.End.After(m.now) {
			return p, true
		}
	}
	return household.Pledge{}, false
}

func (m Model) pledgeByID(id string) (household.Pledge, bool) {
	if id == "" {
		return household.Pledge{}, false
	}
	for _, p := range m.state.Pledges {
		if p.ID == id {
			return p, true
		}
	}
	return household.Pledge{}, false
}

func (m Model) neighbourByID(id string) (household.Neighbour, bool) {
	for _, n := range m.state.Neighbours {
		if n.ID == id {
			return n, true
		}
	}
	return household.Neighbour{}, false
}

// textFocused reports whether keys go to a text field of the pledge form.
func (m Model) textFocused() bool {
	return m.form.open && m.form.step == stepEdit && (m.form.field == fieldAmount || m.form.field == fieldRange)
}

func (m Model) tooSmall() bool { return m.width < MinWidth || m.height < MinHeight }

// bodyHeight is the height left for the current view.
func (m Model) bodyHeight() int {
	h := m.height - 2 // header and help line
	if m.bannerText() != "" {
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
	m.help.Width = m.width
	bh := m.bodyHeight()
	m.neigh.SetWidth(m.width)
	m.neigh.SetHeight(bh - 2)
	m.ledger.SetWidth(m.width)
	m.ledger.SetHeight(bh - 2)
	m.detailTbl.SetWidth(m.width)
	m.detailTbl.SetHeight(max(bh-9, 3))
	m.setTables()
	m.liveDirty, m.histDirty = true, true
}

// View renders the dashboard.
func (m Model) View() string {
	if m.tooSmall() {
		return m.tooSmallView()
	}
	var body string
	switch {
	case m.showHelp:
		body = m.helpView()
	case m.form.open:
		body = m.formView()
	case m.confirm.open:
		body = m.confirmView()
	default:
		switch m.view {
		case viewOverview:
			body = m.overviewView()
		case viewCharts:
			body = m.chartsView()
		case viewNeighbours:
			body = m.neighboursView()
		case viewLedger:
			body = m.ledgerView()
		}
	}
	var b strings.Builder
	b.Grow(m.width * m.height * 2)
	b.WriteString(m.headerView())
	b.WriteByte('\n')
	if s := m.bannerText(); s != "" {
		b.WriteString(s)
		b.WriteByte('\n')
	}
	writeLines(&b, body, m.bodyHeight())
	if s := m.statusText(); s != "" {
		b.WriteString(s)
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
		m.width, m.height, MinWidth, MinHeight)
	v := m.st.r.Place(max(m.width, 1), max(m.height, 1), lipgloss.Center, lipgloss.Center,
		m.st.r.NewStyle().MaxWidth(max(m.width, 1)).Render(msg))
	// Place does not cut: in a window lower than the message, keep the
	// lines that fit
	if lines := strings.Split(v, "\n"); len(lines) > max(m.height, 1) {
		v = strings.Join(lines[:max(m.height, 1)], "\n")
	}
	return v
}
