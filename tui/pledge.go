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

// pledgeForm is the pledge flow: fields, preview, confirmation, result.
type pledgeForm struct {
	open   bool
	step   formStep
	field  int
	to     string   // neighbour id
	choice []string // neighbour ids the form cycles through
	amount textinput.Model
	window int
	rng    textinput.Model
	err    string

	req     household.PledgeRequest
	preview household.Preview
	result  household.PledgeResult
	seq     int // guards against answers for a form that was closed
}

type (
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

func newPledgeForm(st styles) pledgeForm {
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
	return pledgeForm{amount: mk("1.5 kWh", 16), rng: mk("14:00-16:00", 11)}
}

// neighboursByNeed orders neighbour ids: the largest need first, then the
// ones without a status.
func (m Model) neighboursByNeed() []string {
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

// openForm opens the pledge form, to a neighbour when to is set.
func (m *Model) openForm(to string) tea.Cmd {
	if len(m.state.Neighbours) == 0 {
		m.setNotice(true, "No neighbours yet: add one with commons neighbours add INVITE.")
		return nil
	}
	f := newPledgeForm(m.st)
	f.open = true
	f.seq = m.form.seq + 1
	f.choice = m.neighboursByNeed()
	f.to = to
	f.field = fieldAmount
	if f.to == "" {
		f.to = f.choice[0]
		f.field = fieldTo
	}
	m.form = f
	return m.focusField()
}

func (m *Model) focusField() tea.Cmd {
	m.form.amount.Blur()
	m.form.rng.Blur()
	switch m.form.field {
	case fieldAmount:
		return m.form.amount.Focus()
	case fieldRange:
		return m.form.rng.Focus()
	}
	return nil
}

// formKey handles keys while the form is open.
func (m Model) formKey(msg tea.KeyMsg) (Model, tea.Cmd) {
	k := m.keys
	f := &m.form
	if key.Matches(msg, k.Back) {
		if f.step == stepPreview {
			f.step = stepEdit
			return m, m.focusField()
		}
		m.form.open = false
		m.form.amount.Blur()
		m.form.rng.Blur()
		return m, nil
	}
	switch f.step {
	case stepPreviewing, stepSending:
		return m, nil
	case stepResult:
		if key.Matches(msg, k.Submit) || key.Matches(msg, k.Quit) {
			m.form.open = false
		}
		return m, nil
	case stepPreview:
		if key.Matches(msg, k.Submit) || msg.String() == "y" {
			f.step = stepSending
			return m, m.sendPledge(f.req, f.seq)
		}
		return m, nil
	}
	last := fieldWindow
	if f.window == winRange {
		last = fieldRange
	}
	switch {
	case key.Matches(msg, k.Submit):
		req, err := m.buildRequest()
		if err != nil {
			f.err = err.Error()
			return m, nil
		}
		f.err = ""
		f.req = req
		f.step = stepPreviewing
		return m, m.previewPledge(req, f.seq)
	case key.Matches(msg, k.FormNext):
		if f.field < last {
			f.field++
		} else {
			f.field = fieldTo
		}
		return m, m.focusField()
	case key.Matches(msg, k.FormPrev):
		if f.field > fieldTo {
			f.field--
		} else {
			f.field = last
		}
		return m, m.focusField()
	}
	switch f.field {
	case fieldTo, fieldWindow:
		delta := 0
		switch msg.String() {
		case "left", "h":
			delta = -1
		case "right", "l", " ":
			delta = 1
		}
		if delta == 0 {
			return m, nil
		}
		if f.field == fieldTo {
			i := indexOf(f.choice, f.to)
			f.to = f.choice[(i+delta+len(f.choice))%len(f.choice)]
		} else {
			f.window = (f.window + delta + winCount) % winCount
		}
		return m, nil
	case fieldAmount:
		var cmd tea.Cmd
		f.amount, cmd = f.amount.Update(msg)
		return m, cmd
	case fieldRange:
		var cmd tea.Cmd
		f.rng, cmd = f.rng.Update(msg)
		return m, cmd
	}
	return m, nil
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return 0
}

// window returns the window the form currently describes.
func (m Model) formWindow() (time.Time, time.Time, error) {
	switch m.form.window {
	case winNextSlot:
		s, e := nextSlot(m.now, m.state.Home.SlotLength)
		return s, e, nil
	case winNextHour:
		s, e := nextHour(m.now, m.loc)
		return s, e, nil
	}
	return input.ParseWindow(m.form.rng.Value(), m.now, m.loc, m.state.Home.SlotLength)
}

func (m Model) buildRequest() (household.PledgeRequest, error) {
	wh, err := input.ParseEnergy(m.form.amount.Value())
	if err != nil {
		return household.PledgeRequest{}, errors.New(input.Message(err))
	}
	start, end, err := m.formWindow()
	if err != nil {
		return household.PledgeRequest{}, errors.New(input.Message(err))
	}
	return household.PledgeRequest{To: m.form.to, EnergyWh: wh, Start: start, End: end}, nil
}

func (m Model) previewPledge(req household.PledgeRequest, seq int) tea.Cmd {
	b, ctx := m.b, m.ctx
	return func() tea.Msg {
		p, err := b.Preview(ctx, req)
		return previewMsg{seq: seq, preview: p, err: err}
	}
}

func (m Model) sendPledge(req household.PledgeRequest, seq int) tea.Cmd {
	b, ctx, clock := m.b, m.ctx, m.clock
	return func() tea.Msg {
		r, err := b.Pledge(ctx, req)
		return pledgeResultMsg{seq: seq, result: r, err: err, now: clock()}
	}
}

// updateForm applies a preview or pledge answer.
func (m Model) updateForm(msg tea.Msg) (Model, tea.Cmd) {
	f := &m.form
	switch msg := msg.(type) {
	case previewMsg:
		if msg.seq != f.seq || !f.open || f.step != stepPreviewing {
			return m, nil
		}
		if msg.err != nil {
			f.step = stepEdit
			f.err = "preview failed: " + msg.err.Error()
			return m, m.focusField()
		}
		f.preview = msg.preview
		if !msg.preview.Start.IsZero() {
			f.req.Start, f.req.End = msg.preview.Start, msg.preview.End
		}
		f.step = stepPreview
	case pledgeResultMsg:
		m.now = msg.now
		if msg.seq != f.seq {
			return m, nil
		}
		if msg.err != nil {
			f.step = stepEdit
			f.err = "the pledge was not made: " + msg.err.Error()
			m.setNotice(true, "Pledge failed: %v", msg.err)
			return m, m.focusField()
		}
		f.result = msg.result
		f.step = stepResult
		m.setNotice(false, "%s", resultLine(m, msg.result))
		return m, m.loadState()
	}
	return m, nil
}

func resultLine(m Model, r household.PledgeResult) string {
	p := r.Pledge
	who := m.neighbourName(p.To)
	s := fmt.Sprintf("Pledge %s signed and stored: %s to %s for %s", shortID(p.ID), input.FormatEnergy(p.EnergyWh), who, fmtWindow(m.now, p.Window.Start, p.Window.End, m.loc))
	if r.Delivery == household.Delivered {
		return s + "; delivered."
	}
	if r.Note != "" {
		return s + "; queued: " + r.Note + "."
	}
	return s + "; queued for delivery."
}

func (m Model) neighbourName(id string) string {
	if n, ok := m.neighbourByID(id); ok && n.Name != "" {
		return n.Name
	}
	return shortID(id)
}

// formView renders the pledge flow.
func (m Model) formView() string {
	st := m.st
	f := m.form
	n, _ := m.neighbourByID(f.to)
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
			line += " " + st.good.Render("Delivered to "+m.neighbourName(r.Pledge.To)+".")
		} else {
			q := "Queued: it will be delivered when " + m.neighbourName(r.Pledge.To) + " is reachable."
			if r.Note != "" {
				q = "Queued: " + r.Note + "."
			}
			line += " " + st.warn.Render(q)
		}
		b.WriteString(st.strong.Render("Pledge "+shortID(r.Pledge.ID)) + "  " + line + "\n")
		b.WriteString(st.muted.Render("enter/esc: close"))
	}
	return st.box.Width(min(m.width-2, 96)).Render(b.String())
}

// previewText explains the planned pledge against the forecast.
func (m Model) previewText() string {
	st := m.st
	f := m.form
	p := f.preview
	r := f.req
	lines := []string{
		fmt.Sprintf("%s %s to %s, %s (%s)", st.strong.Render("Pledge"), st.strong.Render(input.FormatEnergy(r.EnergyWh)),
			m.neighbourName(r.To), fmtWindow(m.now, r.Start, r.End, m.loc), fmtDur(r.End.Sub(r.Start))),
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
		return "surplus " + fmtW(surplusW)
	case surplusW < 0:
		return "needs " + fmtW(-surplusW)
	}
	return "balanced"
}
