package tui

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/input"
)

type formStep int

const (
	stepEdit       formStep = iota // filling in the fields
	stepPreviewing                 // waiting for Household.Preview
	stepPreview                    // showing the preview, enter confirms
	stepSending                    // waiting for Household.Pledge
	stepResult                     // showing the result
)

// Form fields.
const (
	fieldTo = iota
	fieldAmount
	fieldWindow
	fieldRange
	fieldCount
)

// Window choices.
const (
	winNextSlot = iota
	winNextHour
	winRange
	winCount
)

var winNames = [winCount]string{"next slot", "next hour", "range"}

// pledgeForm is the pledge dialog: the fields, the preview against the
// forecast, the confirmation and the result. While open it takes every key.
type pledgeForm struct {
	common
	keys  formKeys
	state household.State
	req   request

	open   bool
	step   formStep
	field  int
	to     string   // neighbour id
	choice []string // neighbour ids the form cycles through
	amount textinput.Model
	window int
	rng    textinput.Model
	err    string

	planned household.PledgeRequest // what the preview was asked for
	preview household.Preview
	// outlook is the forecast for the window the fields describe, shown
	// beside the amount while editing; outlookFor is its window.
	outlook    household.Preview
	outlookFor [2]time.Time
	outlookOK  bool
	result     household.PledgeResult
	seq        int // guards against answers for a form that was closed
}

type (
	// outlookMsg answers the forecast asked for the window start-end.
	outlookMsg struct {
		seq        int
		start, end time.Time
		preview    household.Preview
		err        error
	}
	previewMsg struct {
		seq     int
		preview household.Preview
		err     error
	}
	pledgeResultMsg struct {
		seq    int
		result household.PledgeResult
		err    error
		now    time.Time
	}
)

// formKeys are the pledge dialog's bindings.
type formKeys struct {
	Next, Prev, Choose, Submit, Sign, Done, Close key.Binding
}

func newFormKeys() formKeys {
	return formKeys{
		Next:   bind([]string{"tab", "down"}, "tab/↓", "next field"),
		Prev:   bind([]string{"shift+tab", "up"}, "shift+tab/↑", "previous field"),
		Choose: bind([]string{"left", "h", "right", "l", " "}, "←/→", "choose"),
		Submit: bind([]string{"enter"}, "enter", "preview"),
		Sign:   bind([]string{"enter", "y"}, "enter/y", "sign and send"),
		Done:   bind([]string{"enter", "q"}, "enter", "close"),
		Close:  bind([]string{"esc"}, "esc", "close"),
	}
}

func newPledgeForm(c common) pledgeForm {
	return pledgeForm{common: c, keys: newFormKeys()}.reset()
}

// reset empties the fields.
func (m pledgeForm) reset() pledgeForm {
	st := m.st
	mk := func(placeholder string, limit int) textinput.Model {
		t := textinput.New()
		t.Prompt = ""
		t.Placeholder = placeholder
		t.CharLimit = limit
		t.Width = 16
		t.PromptStyle = st.label
		t.TextStyle = st.value
		t.PlaceholderStyle = st.muted
		t.Cursor.Style = st.focus
		t.Cursor.TextStyle = st.value
		t.Cursor.SetMode(cursor.CursorStatic) // no blink timer: no redraws while idle
		return t
	}
	m.amount, m.rng = mk("1.5 kWh", 16), mk("14:00-16:00", 11)
	m.step, m.field, m.window, m.err = stepEdit, fieldTo, winNextSlot, ""
	m.planned, m.preview, m.result = household.PledgeRequest{}, household.Preview{}, household.PledgeResult{}
	m.outlook, m.outlookFor, m.outlookOK = household.Preview{}, [2]time.Time{}, false
	return m
}

// neighboursByNeed orders neighbour ids: the largest need first, then the
// ones without a status.
func (m pledgeForm) neighboursByNeed() []string {
	ns := append([]household.Neighbour(nil), m.state.Neighbours...)
	sort.SliceStable(ns, func(i, j int) bool {
		a, b := ns[i].Status, ns[j].Status
		switch {
		case a == nil:
			return false
		case b == nil:
			return true
		}
		return a.SurplusW < b.SurplusW
	})
	ids := make([]string, len(ns))
	for i, n := range ns {
		ids[i] = n.ID
	}
	return ids
}

// Open opens the form, to a neighbour when to is set; with no neighbour
// to pledge to it stays closed and says so.
func (m pledgeForm) Open(to string) (pledgeForm, tea.Cmd) {
	if len(m.state.Neighbours) == 0 {
		m.req = noticef(true, "No neighbours yet: add one with commons neighbours add INVITE.")
		return m, nil
	}
	seq := m.seq + 1
	m = m.reset()
	m.open = true
	m.seq = seq
	m.choice = m.neighboursByNeed()
	m.to = to
	m.field = fieldAmount
	if m.to == "" {
		m.to = m.choice[0]
		m.field = fieldTo
	}
	return m, tea.Batch(m.focusField(), m.askOutlook())
}

// askOutlook asks for the forecast of the window the fields describe,
// unless it is already shown or the window does not parse yet.
func (m pledgeForm) askOutlook() tea.Cmd {
	start, end, err := m.formWindow()
	if err != nil || m.outlookOK && m.outlookFor == [2]time.Time{start, end} {
		return nil
	}
	b, ctx, seq, to := m.b, m.ctx, m.seq, m.to
	return func() tea.Msg {
		p, err := b.Preview(ctx, household.PledgeRequest{To: to, Start: start, End: end})
		return outlookMsg{seq: seq, start: start, end: end, preview: p, err: err}
	}
}

// SetState shows the household's neighbours and slot length.
func (m *pledgeForm) SetState(st household.State) { m.state = st }

// SetSize sets the dialog's width.
func (m *pledgeForm) SetSize(w, _ int) { m.width = w }

// take returns and clears the request of the last Update.
func (m *pledgeForm) take() request {
	r := m.req
	m.req = request{}
	return r
}

// textFocused reports whether keys go to a text field.
func (m pledgeForm) textFocused() bool {
	return m.open && m.step == stepEdit && (m.field == fieldAmount || m.field == fieldRange)
}

func (m *pledgeForm) focusField() tea.Cmd {
	m.amount.Blur()
	m.rng.Blur()
	switch m.field {
	case fieldAmount:
		return m.amount.Focus()
	case fieldRange:
		return m.rng.Focus()
	}
	return nil
}

// close closes the dialog.
func (m *pledgeForm) close() {
	m.open = false
	m.amount.Blur()
	m.rng.Blur()
}

// Update handles the dialog's keys and the answers to its preview and
// pledge.
func (m pledgeForm) Update(msg tea.Msg) (pledgeForm, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		return m.key(msg)
	case outlookMsg:
		if msg.seq != m.seq || !m.open || msg.err != nil {
			return m, nil
		}
		if start, end, err := m.formWindow(); err == nil && start.Equal(msg.start) && end.Equal(msg.end) {
			m.outlook, m.outlookFor, m.outlookOK = msg.preview, [2]time.Time{start, end}, true
		}
	case previewMsg:
		if msg.seq != m.seq || !m.open || m.step != stepPreviewing {
			return m, nil
		}
		if msg.err != nil {
			m.step = stepEdit
			m.err = "preview failed: " + msg.err.Error()
			return m, m.focusField()
		}
		m.preview = msg.preview
		if !msg.preview.Start.IsZero() {
			m.planned.Start, m.planned.End = msg.preview.Start, msg.preview.End
		}
		m.step = stepPreview
	case pledgeResultMsg:
		if msg.seq != m.seq {
			return m, nil
		}
		if msg.err != nil {
			m.step = stepEdit
			m.err = "the pledge was not made: " + msg.err.Error()
			m.req = noticef(true, "Pledge failed: %v", msg.err)
			return m, m.focusField()
		}
		m.result = msg.result
		m.step = stepResult
		m.req = noticef(false, "%s", m.resultLine(msg.result))
		m.req.reload = true
	}
	return m, nil
}

// key handles a key while the dialog is open.
func (m pledgeForm) key(msg tea.KeyMsg) (pledgeForm, tea.Cmd) {
	k := m.keys
	if key.Matches(msg, k.Close) {
		if m.step == stepPreview {
			m.step = stepEdit
			return m, m.focusField()
		}
		m.close()
		return m, nil
	}
	switch m.step {
	case stepPreviewing, stepSending:
		return m, nil
	case stepResult:
		// the result only waits to be read: enter or q closes it too
		if key.Matches(msg, k.Done) {
			m.close()
		}
		return m, nil
	case stepPreview:
		if key.Matches(msg, k.Sign) {
			m.step = stepSending
			return m, m.sendPledge(m.planned, m.seq)
		}
		return m, nil
	}
	last := fieldWindow
	if m.window == winRange {
		last = fieldRange
	}
	switch {
	case key.Matches(msg, k.Submit):
		req, err := m.buildRequest()
		if err != nil {
			m.err = err.Error()
			return m, nil
		}
		m.err = ""
		m.planned = req
		m.step = stepPreviewing
		return m, m.previewPledge(req, m.seq)
	case key.Matches(msg, k.Next):
		if m.field < last {
			m.field++
		} else {
			m.field = fieldTo
		}
		return m, m.focusField()
	case key.Matches(msg, k.Prev):
		if m.field > fieldTo {
			m.field--
		} else {
			m.field = last
		}
		return m, m.focusField()
	}
	switch m.field {
	case fieldTo, fieldWindow:
		if !key.Matches(msg, k.Choose) {
			return m, nil
		}
		delta := 1
		if s := msg.String(); s == "left" || s == "h" {
			delta = -1
		}
		if m.field == fieldTo {
			i := indexOf(m.choice, m.to)
			m.to = m.choice[(i+delta+len(m.choice))%len(m.choice)]
		} else {
			m.window = (m.window + delta + winCount) % winCount
			return m, m.askOutlook()
		}
		return m, nil
	case fieldAmount:
		var cmd tea.Cmd
		m.amount, cmd = m.amount.Update(msg)
		return m, cmd
	case fieldRange:
		var cmd tea.Cmd
		m.rng, cmd = m.rng.Update(msg)
		return m, tea.Batch(cmd, m.askOutlook())
	}
	return m, nil
}

// ShortHelp is the bindings of the dialog's current step.
func (m pledgeForm) ShortHelp() []key.Binding {
	k := m.keys
	switch m.step {
	case stepPreview:
		back := k.Close
		back.SetHelp("esc", "change")
		return []key.Binding{k.Sign, back}
	case stepResult:
		return []key.Binding{k.Done, k.Close}
	case stepPreviewing, stepSending:
		return []key.Binding{k.Close}
	}
	// the most useful first: the hint line drops from the end
	return []key.Binding{k.Submit, k.Next, k.Prev, k.Choose, k.Close}
}

// FullHelp is the bindings of the dialog's current step.
func (m pledgeForm) FullHelp() [][]key.Binding { return [][]key.Binding{m.ShortHelp()} }

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return 0
}

// window returns the window the form currently describes.
func (m pledgeForm) formWindow() (time.Time, time.Time, error) {
	switch m.window {
	case winNextSlot:
		s, e := nextSlot(m.now, m.state.Home.SlotLength)
		return s, e, nil
	case winNextHour:
		s, e := nextHour(m.now, m.loc)
		return s, e, nil
	}
	return input.ParseWindow(m.rng.Value(), m.now, m.loc, m.state.Home.SlotLength)
}

func (m pledgeForm) buildRequest() (household.PledgeRequest, error) {
	wh, err := input.ParseEnergy(m.amount.Value())
	if err != nil {
		return household.PledgeRequest{}, errors.New(input.Message(err))
	}
	start, end, err := m.formWindow()
	if err != nil {
		return household.PledgeRequest{}, errors.New(input.Message(err))
	}
	return household.PledgeRequest{To: m.to, EnergyWh: wh, Start: start, End: end}, nil
}

func (m pledgeForm) previewPledge(req household.PledgeRequest, seq int) tea.Cmd {
	b, ctx := m.b, m.ctx
	return func() tea.Msg {
		p, err := b.Preview(ctx, req)
		return previewMsg{seq: seq, preview: p, err: err}
	}
}

func (m pledgeForm) sendPledge(req household.PledgeRequest, seq int) tea.Cmd {
	b, ctx, clock := m.b, m.ctx, m.clock
	return func() tea.Msg {
		r, err := b.Pledge(ctx, req)
		return pledgeResultMsg{seq: seq, result: r, err: err, now: clock()}
	}
}

// resultLine is the notice after a pledge was made.
func (m pledgeForm) resultLine(r household.PledgeResult) string {
	p := r.Pledge
	who := neighbourName(m.state, p.To)
	s := fmt.Sprintf("Pledge %s signed and stored: %s to %s for %s", household.ShortID(p.ID), input.FormatEnergy(p.EnergyWh), who, fmtWindow(m.now, p.Window.Start, p.Window.End, m.loc))
	if r.Delivery == household.Delivered {
		return s + "; delivered."
	}
	if r.Note != "" {
		return s + "; queued: " + r.Note + "."
	}
	return s + "; queued for delivery."
}

// View renders the pledge flow.
func (m pledgeForm) View() string {
	st := m.st
	f := m
	n, _ := neighbourByID(m.state, f.to)
	var b strings.Builder
	b.WriteString(st.boxTitle.Render("Pledge energy") + "\n\n")
	row := func(field int, label, value string) {
		marker := "  "
		lab := st.label.Render(fmt.Sprintf("%-8s", label))
		if f.step == stepEdit && f.field == field {
			marker = st.focus.Render("> ")
			lab = st.focus.Render(fmt.Sprintf("%-8s", label))
		}
		b.WriteString(marker + lab + " " + value + "\n")
	}
	toVal := st.strong.Render(nameOr(n.Name, n.ID))
	if n.Status != nil {
		toVal += st.muted.Render("  " + statusWords(n.Status.SurplusW) + " · " + fmtAge(m.now, n.Status.Time) + " ago")
		if m.statusOld(n.Status) {
			toVal += st.warn.Render(" · old")
		}
	}
	if len(f.choice) > 1 {
		toVal = "‹ " + toVal + " ›"
	}
	row(fieldTo, "To", toVal)
	row(fieldAmount, "Amount", f.amount.View()+st.muted.Render("  Wh or kWh, e.g. 1500 or 1.5 kWh"))
	b.WriteString("  " + m.outlookLine() + "\n")
	var wins []string
	for i := 0; i < winCount; i++ {
		mark := "( )"
		if i == f.window {
			mark = "(•)"
		}
		label := winNames[i]
		switch i {
		case winNextSlot:
			s, e := nextSlot(m.now, m.state.Home.SlotLength)
			label += " " + fmtWindow(m.now, s, e, m.loc)
		case winNextHour:
			s, e := nextHour(m.now, m.loc)
			label += " " + fmtWindow(m.now, s, e, m.loc)
		}
		wins = append(wins, mark+" "+label)
	}
	row(fieldWindow, "Window", strings.Join(wins, "  "))
	if f.window == winRange {
		row(fieldRange, "Range", f.rng.View()+st.muted.Render("  HH:MM-HH:MM, today or tomorrow"))
	}
	b.WriteString("\n")
	switch f.step {
	case stepEdit:
		if f.err != "" {
			b.WriteString(st.errLine.Render(f.err) + "\n")
		}
		b.WriteString(st.muted.Render("enter: preview · tab/↑/↓: field · ←/→: choose · esc: close"))
	case stepPreviewing:
		b.WriteString(st.muted.Render("Checking the forecast…"))
	case stepPreview:
		b.WriteString(m.previewText())
		b.WriteString("\n" + st.strong.Render("enter/y: sign and send · esc: change"))
	case stepSending:
		b.WriteString(st.muted.Render("Signing, storing and delivering…"))
	case stepResult:
		r := f.result
		line := "Signed and stored."
		if r.Delivery == household.Delivered {
			line += " " + st.good.Render("Delivered to "+neighbourName(m.state, r.Pledge.To)+".")
		} else {
			q := "Queued: it will be delivered when " + neighbourName(m.state, r.Pledge.To) + " is reachable."
			if r.Note != "" {
				q = "Queued: " + r.Note + "."
			}
			line += " " + st.warn.Render(q)
		}
		b.WriteString(st.strong.Render("Pledge "+household.ShortID(r.Pledge.ID)) + "  " + line + "\n")
		b.WriteString(st.muted.Render("enter/esc: close"))
	}
	return st.box.Width(min(m.width-2, 96)).Render(b.String())
}

// outlookLine is what the household has to give beside the amount: its
// surplus now and, for the chosen window, the forecast and what is
// already pledged.
func (m pledgeForm) outlookLine() string {
	st := m.st
	now := "surplus now unknown"
	if l := m.state.Live; l.HasReading {
		if w, ok := l.Reading.NetPowerW(); ok {
			now = statusWords(-w) + " now"
		}
	}
	start, end, err := m.formWindow()
	switch {
	case err != nil:
		return st.muted.Render("You: " + now)
	case !m.outlookOK || m.outlookFor != [2]time.Time{start, end}:
		return st.muted.Render("You: " + now + " · checking the window's forecast…")
	}
	// the longest wording that fits the dialog, never wrapped mid-line
	fc, short := "no forecast (no data yesterday)", "no forecast"
	if o := m.outlook; o.ForecastSurplusWh.OK {
		fc = "window forecast " + input.FormatEnergy(o.ForecastSurplusWh.V)
		short = "forecast " + input.FormatEnergy(o.ForecastSurplusWh.V)
	}
	pledged := ""
	if m.outlook.PledgedWh > 0 {
		pledged = ", " + input.FormatEnergy(m.outlook.PledgedWh) + " pledged"
	}
	avail := min(m.width-2, 96) - 4 // the box's border and padding, the indent
	for _, line := range []string{"You: " + now + " · " + fc + pledged, "You: " + now + " · " + short + pledged, now + " · " + short + pledged} {
		if lipgloss.Width(line) <= avail {
			return st.muted.Render(line)
		}
	}
	return st.muted.Render(clip(now+" · "+short+pledged, avail))
}

// previewText explains the planned pledge against the forecast.
func (m pledgeForm) previewText() string {
	st := m.st
	p := m.preview
	r := m.planned
	lines := []string{
		fmt.Sprintf("%s %s to %s, %s (%s)", st.strong.Render("Pledge"), st.strong.Render(input.FormatEnergy(r.EnergyWh)),
			neighbourName(m.state, r.To), fmtWindow(m.now, r.Start, r.End, m.loc), fmtDur(r.End.Sub(r.Start))),
	}
	row := func(label, v string) string { return st.label.Render(fmt.Sprintf("%-18s", label)) + v }
	if p.ForecastSurplusWh.OK {
		spare := p.ForecastSurplusWh.V - p.PledgedWh - r.EnergyWh
		left := input.FormatEnergy(spare)
		if spare < 0 {
			left = st.warn.Render(left + "  more than the forecast surplus")
		}
		lines = append(lines,
			row("Forecast surplus", input.FormatEnergy(p.ForecastSurplusWh.V)),
			row("Already pledged", input.FormatEnergy(p.PledgedWh)),
			row("Left after this", left))
	} else {
		lines = append(lines,
			row("Forecast surplus", st.muted.Render("no forecast for this window")),
			row("Already pledged", input.FormatEnergy(p.PledgedWh)))
	}
	if p.Warning != "" {
		lines = append(lines, st.warn.Render("! "+p.Warning))
	}
	return lipgloss.JoinVertical(lipgloss.Left, lines...) + "\n"
}

// statusWords says a neighbour's surplus or need in words.
func statusWords(surplusW int64) string {
	switch {
	case surplusW > 0:
		return "surplus " + input.FormatPower(surplusW)
	case surplusW < 0:
		return "needs " + input.FormatPower(-surplusW)
	}
	return "balanced"
}
