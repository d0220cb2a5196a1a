package tui

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/NimbleMarkets/ntcharts/canvas"
	"github.com/NimbleMarkets/ntcharts/canvas/runes"
	"github.com/NimbleMarkets/ntcharts/linechart/timeserieslinechart"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/commons-energy/commons/share/household"
)

// charts is the charts view: the live chart of the last minutes above the
// history chart of the last hour, day or week. It owns the history span
// and its aggregates, and the live window.
type charts struct {
	common
	keys  chartKeys
	h     int // height of the view's area
	state household.State
	live  liveChart

	span      span
	buckets   []household.Bucket
	bucketsOf span      // the span the buckets are of
	bucketsAt time.Time // when the buckets were asked for: the open bucket holds energy up to then
	haveAgg   bool
	histChart string
	histModel *timeserieslinechart.Model
	histW     int
	histH     int
	histDirty bool
}

// chartKeys are the charts view's bindings.
type chartKeys struct {
	Shorter, Longer, LiveWindow key.Binding
}

func newCharts(c common, ring *household.Ring) charts {
	return charts{
		common: c,
		live:   newLiveChart(ring),
		span:   span24h,
		keys: chartKeys{
			Shorter:    bind([]string{"left", "h"}, "←/h", "shorter span"),
			Longer:     bind([]string{"right", "l"}, "→/l", "longer span"),
			LiveWindow: bind([]string{"w"}, "w", "live window"),
		},
	}
}

// Messages of the charts view.
type aggMsg struct {
	span    span
	buckets []household.Bucket
	err     error
	now     time.Time
}

// load asks for the aggregates of the current span.
func (m charts) load() tea.Cmd {
	b, ctx, clock, loc, sp := m.b, m.ctx, m.clock, m.loc, m.span
	return func() tea.Msg {
		now := clock()
		from, to := histWindowAt(now, sp, loc)
		bs, err := b.Aggregates(ctx, from, to)
		return aggMsg{span: sp, buckets: bs, err: err, now: now}
	}
}

// SetSize sets the view's area.
func (m *charts) SetSize(w, h int) {
	m.width, m.h = w, h
	m.live.dirty, m.histDirty = true, true
}

// SetState shows the household's state (whether it has a production
// meter decides the series).
func (m *charts) SetState(st household.State) {
	if st.Home.Production != m.state.Home.Production {
		m.live.dirty, m.histDirty = true, true
	}
	m.state = st
}

// Update handles the view's keys and the aggregates it asked for. A
// failed load is the root's (it decides whether the household is gone).
func (m charts) Update(msg tea.Msg) (charts, tea.Cmd) {
	switch msg := msg.(type) {
	case aggMsg:
		if msg.err == nil && msg.span == m.span {
			m.buckets, m.bucketsOf, m.bucketsAt, m.haveAgg, m.histDirty = msg.buckets, msg.span, msg.now, true, true
		}
	case tea.KeyMsg:
		k := m.keys
		switch {
		case key.Matches(msg, k.Shorter):
			if m.span > 0 {
				m.span--
				m.haveAgg, m.buckets, m.histDirty = false, nil, true
				return m, m.load()
			}
		case key.Matches(msg, k.Longer):
			if m.span < spanCount-1 {
				m.span++
				m.haveAgg, m.buckets, m.histDirty = false, nil, true
				return m, m.load()
			}
		case key.Matches(msg, k.LiveWindow):
			m.live.win = (m.live.win + 1) % len(liveWins)
			m.live.dirty = true
		}
	}
	return m, nil
}

// ShortHelp is the view's bindings for the hint line.
func (m charts) ShortHelp() []key.Binding {
	return []key.Binding{m.keys.Shorter, m.keys.Longer, m.keys.LiveWindow}
}

// FullHelp is the view's bindings for the help overlay.
func (m charts) FullHelp() [][]key.Binding { return [][]key.Binding{m.ShortHelp()} }

// sizes are the live and history charts' sizes.
func (m charts) sizes() (lw, lh, hw, hh int) {
	avail := m.h - 4 // two titles, two legends
	lh = avail / 2
	hh = avail - lh
	return m.width, lh, m.width, hh
}

// refresh rebuilds the chart strings that are out of date. View only
// returns the cached strings.
func (m *charts) refresh() {
	lw, lh, hw, hh := m.sizes()
	m.live.refresh(m.common, m.state, lw, lh)
	if hw != m.histW || hh != m.histH {
		m.histDirty = true
	}
	if m.histDirty && hw > 0 && hh > 0 {
		start, end := m.histWindow()
		n := hw * 2
		if m.ascii {
			n = hw
		}
		m.histChart = m.renderChart(&m.histModel, hw, hh, start, end, m.histSeries(start, end, n))
		m.histW, m.histH, m.histDirty = hw, hh, false
	}
}

// View shows the live chart above the history chart.
func (m charts) View() string {
	st := m.st
	win := liveWins[m.live.win]
	liveTitle := st.boxTitle.Render("Live") + st.muted.Render(fmt.Sprintf(" · last %s · 1 s samples · w: 5 min / 15 min / 1 h", fmtDur(win)))
	var tabs []string
	for i := span(0); i < spanCount; i++ {
		if i == m.span {
			tabs = append(tabs, st.tabActive.Render("["+spanNames[i]+"]"))
		} else {
			tabs = append(tabs, st.tab.Render(" "+spanNames[i]+" "))
		}
	}
	histTitle := st.boxTitle.Render("History ") + strings.Join(tabs, " ") + st.muted.Render(" · average power from stored energy · ←/→")
	live := m.live.chart
	if !m.live.have {
		live = st.muted.Render("loading live samples…")
	}
	hist := m.histChart
	if !m.haveAgg {
		hist = st.muted.Render("loading " + spanNames[m.span] + "…")
	}
	lg := clip(m.legend(), m.width)
	return strings.Join([]string{clip(liveTitle, m.width), live, lg, clip(histTitle, m.width), hist, lg}, "\n")
}

// legend is the legend under both charts.
func (m charts) legend() string { return legend(m.common, m.state.Home.Production) }

// liveWindow and liveSeries are the live chart's window and series at
// width w.
func (m charts) liveWindow(w int) (time.Time, time.Time, int) { return m.live.window(m.common, w) }

func (m charts) liveSeries(start, end time.Time, n int) []series {
	return m.live.series(m.common, m.state, start, end, n)
}

// liveChart is the chart of the live ring that the overview and the
// charts view both show, each with its own copy at its own size. The ring
// is the root's (it merges the samples and pushes the live events); the
// window is the charts view's w key.
type liveChart struct {
	ring  *household.Ring
	have  bool // samples arrived: draw, even if the history load failed
	win   int  // index into liveWins
	dirty bool

	chart string
	model *timeserieslinechart.Model
	w, h  int
	end   time.Time // end of the window the chart was drawn for
}

func newLiveChart(ring *household.Ring) liveChart {
	return liveChart{ring: ring, win: 1, dirty: true}
}

// refresh redraws the chart at w x h of st's samples when its data, size
// or window end changed; a zero size draws nothing.
func (lc *liveChart) refresh(c common, st household.State, w, h int) {
	if w != lc.w || h != lc.h {
		lc.dirty = true
	}
	if w <= 0 || h <= 0 {
		return
	}
	start, end, n := lc.window(c, w)
	if lc.dirty || !end.Equal(lc.end) {
		lc.chart = c.renderChart(&lc.model, w, h, start, end, lc.series(c, st, start, end, n))
		lc.w, lc.h, lc.end, lc.dirty = w, h, end, false
	}
}

// Series names (of each kind's first segment). The zero line is drawn
// first and a shared cell takes the style of the series drawn last.
const (
	setImport  = "import"
	setExport  = "export"
	setSolar   = "solar"
	setHome    = "use"
	chartYStep = 2
)

type series struct {
	name  string
	style lipgloss.Style
	mark  rune // the marker on the line and in the legend
	pts   []timeserieslinechart.TimePoint
}

// series downsamples the live ring over [start, end) to at most n
// points per series, split where the meter was silent. Its cost depends
// on the window and n, not on uptime.
func (lc liveChart) series(c common, st household.State, start, end time.Time, n int) []series {
	gap := liveGap(st.Live.Meter.Protocol, st.Live.Reading.Version)
	cols, step := liveColumns(lc.ring, start, end, n, gap)
	return columnSeries(cols, start, step, st.Home.Production, c.st, c.ascii)
}

// histSeries downsamples energy buckets over [start, end) to at most n
// points of average power, split where buckets are missing. The open
// bucket is averaged up to when the buckets were loaded: a redraw later
// (a resize) must not stretch its energy over time it does not hold.
func (m charts) histSeries(start, end time.Time, n int) []series {
	at := m.bucketsAt
	if at.IsZero() {
		at = m.now
	}
	cols, step := histColumns(m.buckets, start, end, at, n)
	return columnSeries(cols, start, step, m.state.Home.Production, m.st, m.ascii)
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (at least 100).
func niceCeil(v float64) float64 {
	if v <= 100 {
		return 100
	}
	p := 1.0
	for p*10 <= v {
		p *= 10
	}
	for _, f := range []float64{1, 2, 5, 10} {
		if f*p >= v {
			return f * p
		}
	}
	return 10 * p
}

// axisW labels the power axis in ASCII (ntcharts counts label bytes).
func axisW(_ int, v float64) string {
	a := v
	if a < 0 {
		a = -a
	}
	sign := ""
	if v < -0.5 {
		sign = "-"
	} else if v > 0.5 {
		sign = "+"
	}
	if a >= 1000 {
		return fmt.Sprintf("%s%.1fk", sign, a/1000)
	}
	return fmt.Sprintf("%s%.0f", sign, a)
}

// renderChart draws series into a w x h time chart over [start, end) with
// time labels in the dashboard's zone. Ranges are set explicitly on every
// build, so one spike does not flatten the chart forever, and zero always
// has its own labelled row.
func (m common) renderChart(slot **timeserieslinechart.Model, w, h int, start, end time.Time, sets []series) string {
	if w < 20 || h < 5 {
		return ""
	}
	var maxV, minV float64
	for _, s := range sets {
		for _, p := range s.pts {
			maxV = max(maxV, p.Value)
			minV = min(minV, p.Value)
		}
	}
	gh := h - 2 // rows of the graph: ntcharts keeps two for the X axis
	maxTicks := max(2, gh/2)
	u := niceCeil((maxV - minV) / float64(maxTicks))
	hi := math.Ceil(maxV/u) * u
	lo := -math.Ceil(-minV/u) * u
	if hi == 0 && lo == 0 {
		hi = u
	}
	// The label row of a value must match where ntcharts draws it: braille
	// maps the range onto 4 dots per row counted from the top, line runes
	// round to whole rows counted from the X axis (ntcharts' own labels are
	// a row off for braille).
	labelRow := func(t float64) int {
		frac := (t - lo) / (hi - lo)
		if m.ascii {
			return int(math.Round(frac * float64(gh)))
		}
		dots := 4*gh - 1
		return gh - (dots-int(math.Round(frac*float64(dots))))/4
	}
	yfmt := func(i int, _ float64) string {
		for t := lo; t <= hi+u/2; t += u {
			if labelRow(t) == i {
				if math.Abs(t) < u/2 {
					return "0"
				}
				return axisW(0, t)
			}
		}
		return ""
	}
	c := *slot
	if c == nil || c.Width() != w || c.Height() != h {
		nc := timeserieslinechart.New(w, h,
			timeserieslinechart.WithXYSteps(1, 1),
			timeserieslinechart.WithXLabelFormatter(func(int, float64) string { return "" }),
			timeserieslinechart.WithAxesStyles(m.st.axis, m.st.axisLabel),
			timeserieslinechart.WithStyle(m.st.muted),
			timeserieslinechart.WithLineStyle(runes.ThinLineStyle),
		)
		c = &nc
		*slot = c
	}
	// reuse the chart: ntcharts allocates a canvas of styled cells per
	// chart, so only the ranges change from one build to the next; the
	// lines are drawn on its canvas by drawBrailleSets or drawLineSets
	c.YLabelFormatter = yfmt
	c.SetTimeRange(start, end)
	c.SetViewTimeRange(start, end)
	c.SetYRange(lo, hi)
	c.SetViewYRange(lo, hi)
	c.UpdateGraphSizes()
	if m.ascii {
		drawLineSets(c, sets, lo < 0, m.st.zero)
	} else {
		drawBrailleSets(c, sets, lo < 0, m.st.zero)
	}
	placeMarkers(c, sets, m.ascii)
	return m.canvasView(&c.Canvas, w, h-1) + "\n" + m.timeAxis(w, c.Origin().X+1, c.GraphWidth(), start, end)
}

// styleKey identifies the few cell styles the charts use.
type styleKey struct {
	fg   lipgloss.TerminalColor
	bold bool
}

// canvasView renders the top h rows of a chart canvas. ntcharts renders
// every cell on its own (measured at over 1 ms for a 120x20 chart); this
// renders runs of cells that share a style at once, with styles from the
// dashboard's renderer rather than ntcharts' global one.
func (m common) canvasView(c *canvas.Model, w, h int) string {
	var b strings.Builder
	b.Grow(w * h * 4)
	var run strings.Builder
	cache := map[styleKey]lipgloss.Style{}
	flush := func(k styleKey) {
		if run.Len() == 0 {
			return
		}
		if k.fg == nil && !k.bold {
			b.WriteString(run.String())
		} else {
			st, ok := cache[k]
			if !ok {
				st = m.st.r.NewStyle().Bold(k.bold)
				if k.fg != nil {
					st = st.Foreground(k.fg)
				}
				cache[k] = st
			}
			b.WriteString(st.Render(run.String()))
		}
		run.Reset()
	}
	for y := 0; y < h; y++ {
		var cur styleKey
		for x := 0; x < w; x++ {
			cell := c.Cell(canvas.Point{X: x, Y: y})
			r := cell.Rune
			k := styleKey{bold: cell.Style.GetBold()}
			if fg := cell.Style.GetForeground(); !isNoColor(fg) {
				k.fg = fg
			}
			if r == 0 || r == ' ' {
				r, k = ' ', styleKey{}
			}
			if k != cur {
				flush(cur)
				cur = k
			}
			run.WriteRune(r)
		}
		flush(cur)
		if y < h-1 {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// tickSteps are the candidate intervals between time labels.
var tickSteps = []time.Duration{
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// timeAxis renders the label row under a chart: wall-clock times in the
// dashboard's zone at round intervals (ntcharts' own labels are UTC and
// not aligned).
func (m common) timeAxis(w, x0, gw int, start, end time.Time) string {
	span := end.Sub(start)
	if gw < 2 || span <= 0 {
		return strings.Repeat(" ", w)
	}
	layout := "15:04"
	labelW := len(layout) + 2
	step := tickSteps[len(tickSteps)-1]
	for _, s := range tickSteps {
		if int(span/s)*labelW <= gw {
			step = s
			break
		}
	}
	if span >= 48*time.Hour {
		step = 24 * time.Hour // days read better than times over a week
	}
	if step >= 24*time.Hour {
		layout = "Mon 02"
	}
	line := []rune(strings.Repeat(" ", w))
	s := start.In(m.loc)
	day := time.Date(s.Year(), s.Month(), s.Day(), 0, 0, 0, 0, m.loc)
	next := 0 // first free column
	for k := 0; ; k++ {
		var t time.Time
		if step >= 24*time.Hour {
			t = time.Date(day.Year(), day.Month(), day.Day()+k, 0, 0, 0, 0, m.loc)
		} else {
			t = time.Date(day.Year(), day.Month(), day.Day(), 0, k*int(step/time.Minute), 0, 0, m.loc)
		}
		if t.After(end) {
			break
		}
		if t.Before(start) {
			continue
		}
		col := x0 + int(int64(gw-1)*int64(t.Sub(start))/int64(span))
		label := t.Format(layout)
		if col < next || col+len(label) > w {
			continue
		}
		copy(line[col:], []rune(label))
		next = col + len(label) + 1
	}
	return m.st.axisLabel.Render(string(line))
}

// legend explains the series in words and markers, so it reads without
// colour.
func legend(c common, production bool) string {
	return legendLine(c.st, production, c.ascii)
}

// liveWindow is the time range of a live chart w cells wide and the number
// of points it shows. One point (a braille dot column, or a cell in ASCII
// mode) covers a whole number of seconds, and the window ends at the end
// of the current point: the chart only needs a rebuild when a new point
// starts, not on every telegram.
func (lc liveChart) window(m common, w int) (start, end time.Time, n int) {
	win := liveWins[lc.win]
	cols := max(w-7, 2) // less the Y labels and axis
	if !m.ascii {
		cols *= 2
	}
	dot := (win + time.Duration(cols) - 1) / time.Duration(cols) // ceil: whole chart fits the window
	dot = ((dot + time.Second - 1) / time.Second) * time.Second  // whole seconds
	if dot < time.Second {
		dot = time.Second
	}
	end = m.now.Truncate(dot).Add(dot)
	n = int(win / dot)
	return end.Add(-time.Duration(n) * dot), end, n
}

// histWindow is the time range of the history chart.
func (m charts) histWindow() (time.Time, time.Time) { return histWindowAt(m.now, m.span, m.loc) }

// histWindowAt is the time range of a history span at now: it ends at the
// next round wall-clock time (5 min, hour, midnight) so labels align.
func histWindowAt(now time.Time, sp span, loc *time.Location) (time.Time, time.Time) {
	n := now.In(loc)
	var end time.Time
	switch sp {
	case span1h:
		end = time.Date(n.Year(), n.Month(), n.Day(), n.Hour(), (n.Minute()/5+1)*5, 0, 0, loc)
	case span24h:
		end = time.Date(n.Year(), n.Month(), n.Day(), n.Hour()+1, 0, 0, 0, loc)
	default:
		end = time.Date(n.Year(), n.Month(), n.Day()+1, 0, 0, 0, 0, loc)
	}
	return end.Add(-spanDurs[sp]), end
}

func fmtDur(d time.Duration) string {
	if d >= time.Hour {
		return fmt.Sprintf("%d h", int(d/time.Hour))
	}
	return fmt.Sprintf("%d min", int(d/time.Minute))
}

// isNoColor reports whether c is lipgloss's "no colour" (a cell without a
// foreground of its own).
func isNoColor(c lipgloss.TerminalColor) bool {
	_, none := c.(lipgloss.NoColor)
	return none
}
