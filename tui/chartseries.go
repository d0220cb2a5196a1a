package tui

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/NimbleMarkets/ntcharts/canvas"
	"github.com/NimbleMarkets/ntcharts/canvas/graph"
	"github.com/NimbleMarkets/ntcharts/canvas/runes"
	"github.com/NimbleMarkets/ntcharts/linechart/timeserieslinechart"
	"github.com/charmbracelet/lipgloss"

	"github.com/commons-energy/commons/share/household"
)

// This file holds the Charts tab's pure steps: from samples or buckets to
// chart columns, from columns to series split at missing data, and the
// markers that tell the series apart without colour. They take their
// inputs explicitly and keep no state of their own.

// seriesKind is one of the charts' series, in drawing order.
type seriesKind int

// The series kinds; a later kind is drawn over an earlier one.
const (
	kindImport seriesKind = iota
	kindExport
	kindSolar
	kindHome
	kindCount
)

// seriesName is the name of a kind's first segment.
func seriesName(k seriesKind) string {
	switch k {
	case kindImport:
		return setImport
	case kindExport:
		return setExport
	case kindSolar:
		return setSolar
	}
	return setHome
}

// seriesMark is the marker rune a kind's line carries and its legend
// shows, so the series read without colour: single-width shapes, or plain
// ASCII on consoles without them (Options.ASCII).
func seriesMark(k seriesKind, ascii bool) rune {
	if ascii {
		return [...]rune{'*', 'o', '+', 'x'}[k]
	}
	return [...]rune{'▲', '▼', '◆', '×'}[k]
}

// seriesStyle is a kind's chart style (its legend uses the bold version).
func seriesStyle(st *styles, k seriesKind) lipgloss.Style {
	switch k {
	case kindImport:
		return st.importS
	case kindExport:
		return st.exportS
	case kindSolar:
		return st.solarS
	}
	return st.homeS
}

// markEvery is the distance in cells between two markers of one series.
// Each kind starts at its own offset, so markers of overlapping series
// fall in different cells.
const markEvery = 12

// column is the average power of one chart column (a braille dot column,
// or a cell in ASCII mode).
type column struct {
	imp, exp, prod int64 // W
	has            bool  // grid data falls in the column
	hasProd        bool  // production data falls in the column
	// covered: data spans the column even if no sample or bucket starts
	// in it (a 1 min bucket over 11 s columns, 10 s telegrams over 1 s
	// columns). A column neither has nor covered is a gap in the lines.
	covered bool
}

// liveGap is how long the live ring may be silent before the chart shows
// a gap: the same three telegram intervals (at least minStale) after
// which the overview calls the meter offline.
func liveGap(protocol, version string) time.Duration {
	return max(3*telegramInterval(protocol, version), minStale)
}

// liveColumns downsamples the ring's samples in [start, end) to at most n
// columns of average power and returns them with the column length. Two
// samples further apart than gap and than three times the spacing of the
// samples before them (the meter was offline) leave the columns between
// them uncovered. Its cost depends on the window and n,
// not on how much the ring holds.
func liveColumns(r *household.Ring, start, end time.Time, n int, gap time.Duration) ([]column, time.Duration) {
	if n < 2 {
		n = 2
	}
	step := end.Sub(start) / time.Duration(n)
	if step < time.Second {
		step = time.Second
		n = int(end.Sub(start) / step)
	}
	cols := make([]column, n)
	var sums [5]int64 // per column being filled: import, export, production, samples, production samples
	at := func(t time.Time) int {
		if t.Before(start) {
			return 0
		}
		return min(int(t.Sub(start)/step), n-1)
	}
	flush := func(k int) {
		c := &cols[k]
		if sums[3] > 0 {
			c.imp, c.exp, c.has = sums[0]/sums[3], sums[1]/sums[3], true
		}
		if sums[4] > 0 {
			c.prod, c.hasProd = sums[2]/sums[4], true
		}
		sums = [5]int64{}
	}
	i := r.From(start)
	var prev time.Time
	if i > 0 {
		prev = r.At(i - 1).Time
	}
	cur := -1
	var cadence time.Duration // spacing of the last two samples
	for ; i < r.Len(); i++ {
		s := r.At(i)
		if !s.Time.Before(end) {
			break
		}
		k := at(s.Time)
		if k != cur {
			if cur >= 0 {
				flush(cur)
			}
			cur = k
		}
		sums[0] += s.ImportW
		sums[1] += s.ExportW
		sums[3]++
		if s.ProductionW.OK {
			sums[2] += s.ProductionW.V
			sums[4]++
		}
		from := k
		if !prev.IsZero() {
			// a gap is silence well beyond the line's own cadence: the
			// meter's telegram interval, or the spacing of the samples so
			// far when they come slower (a sped-up demo clock, a meter
			// that sends less often than its protocol says)
			d := s.Time.Sub(prev)
			if d <= max(gap, 3*cadence) {
				from = at(prev)
			}
			cadence = d
		}
		for j := from; j <= k; j++ {
			cols[j].covered = true
		}
		prev = s.Time
	}
	if cur >= 0 {
		flush(cur)
	}
	return cols, step
}

// histColumns downsamples energy buckets starting in [start, end) to at
// most n columns of average power and returns them with the column
// length. A bucket covers the columns it spans; columns no bucket spans
// (days the household was down) are gaps. The bucket that contains now is
// still filling: its energy is averaged over its elapsed time, not its
// full length, so the last point is not drawn as a dip.
func histColumns(buckets []household.Bucket, start, end, now time.Time, n int) ([]column, time.Duration) {
	if n < 2 {
		n = 2
	}
	step := end.Sub(start) / time.Duration(n)
	type acc struct{ imp, exp, prod, secs, prodSecs int64 }
	sums := make([]acc, n)
	cols := make([]column, n)
	for _, b := range buckets {
		if b.Start.Before(start) || !b.Start.Before(end) {
			continue
		}
		length := b.Length
		if !now.Before(b.Start) && now.Before(b.Start.Add(b.Length)) {
			length = max(now.Sub(b.Start), time.Second) // the open bucket: elapsed time only
		}
		secs := int64(length / time.Second)
		if secs <= 0 {
			continue
		}
		k := min(int(b.Start.Sub(start)/step), n-1)
		a := &sums[k]
		a.imp += b.ImportWh
		a.exp += b.ExportWh
		a.secs += secs
		if b.ProductionWh.OK {
			a.prod += b.ProductionWh.V
			a.prodSecs += secs
		}
		last := min(int((b.Start.Add(length).Sub(start)-1)/step), n-1)
		for j := k; j <= last; j++ {
			cols[j].covered = true
		}
	}
	// average power over the covered seconds: W = Wh * 3600 / s
	for k, a := range sums {
		c := &cols[k]
		if a.secs > 0 {
			c.imp, c.exp, c.has = a.imp*3600/a.secs, a.exp*3600/a.secs, true
		}
		if a.prodSecs > 0 {
			c.prod, c.hasProd = a.prod*3600/a.prodSecs, true
		}
	}
	return cols, step
}

// columnSeries turns columns into chart series: import above zero, export
// below zero, and with a production meter (production true) solar
// production and home use above zero. Each series is split into segments
// at gaps, one series value per segment with the kind's style and marker,
// as the drawing joins every point of a segment to the next and none
// across segments. A kind's first segment is named after the kind
// (setImport...), later ones get a number. Kinds without points, and so
// empty segments, are left out.
func columnSeries(cols []column, start time.Time, step time.Duration, production bool, st *styles, ascii bool) []series {
	var out []series
	kinds := kindCount
	if !production {
		kinds = kindSolar
	}
	for k := kindImport; k < kinds; k++ {
		style := seriesStyle(st, k).UnsetBold()
		mark := seriesMark(k, ascii)
		var seg []timeserieslinechart.TimePoint
		end := func() {
			if len(seg) == 0 {
				return
			}
			name := seriesName(k)
			if nth := countKind(out, mark); nth > 0 {
				name += "#" + strconv.Itoa(nth)
			}
			out = append(out, series{name: name, style: style, mark: mark, pts: seg})
			seg = nil
		}
		for i, c := range cols {
			ok := c.has
			if k >= kindSolar {
				ok = c.has && c.hasProd
			}
			if !ok {
				if !c.covered || (c.has && k >= kindSolar) {
					end() // no data here: a gap, not a line across it
				}
				continue
			}
			t := start.Add(time.Duration(i)*step + step/2)
			var v int64
			switch k {
			case kindImport:
				v = c.imp
			case kindExport:
				v = -c.exp
			case kindSolar:
				v = c.prod
			default:
				v = c.imp - c.exp + c.prod
			}
			seg = append(seg, timeserieslinechart.TimePoint{Time: t, Value: float64(v)})
		}
		end()
	}
	return out
}

// countKind counts the sets that carry mark.
func countKind(sets []series, mark rune) int {
	n := 0
	for _, s := range sets {
		if s.mark == mark {
			n++
		}
	}
	return n
}

// chartCell is the canvas cell where drawBrailleSets (ntcharts' braille
// arithmetic) or, in ASCII mode, drawLineSets draws the point (t, v) of a
// chart whose ranges are set. ok is false outside the graph.
func chartCell(c *timeserieslinechart.Model, t time.Time, v float64, ascii bool) (canvas.Point, bool) {
	gw, gh := c.GraphWidth(), c.GraphHeight()
	if gw <= 0 || gh <= 0 || c.ViewMaxX() <= c.ViewMinX() || c.ViewMaxY() <= c.ViewMinY() {
		return canvas.Point{}, false
	}
	f := scaled(c, t, v)
	sx, sy := f.X, f.Y
	if sx < 0 || sx > float64(gw) {
		return canvas.Point{}, false
	}
	x0 := c.Origin().X + 1
	if ascii {
		x := min(int(math.Round(sx)), gw-1)
		y := c.Origin().Y - int(math.Round(sy))
		return canvas.Point{X: x0 + x, Y: min(max(y, 0), c.Origin().Y)}, true
	}
	// the same arithmetic as ntcharts' braille grid (graph.BrailleGrid)
	gx := int(math.Round(sx * float64(2*gw-1) / float64(gw)))
	gy := 4*gh - 1 - int(math.Round(sy*float64(4*gh-1)/float64(gh)))
	return canvas.Point{X: x0 + gx/2, Y: gy / 4}, true
}

// scaled is the point (t, v) in graph units, as ntcharts scales the
// points of its data sets: X from 0 to the graph width, Y from 0 to the
// X axis row.
func scaled(c *timeserieslinechart.Model, t time.Time, v float64) canvas.Float64Point {
	return canvas.Float64Point{
		X: (float64(t.Unix()) - c.ViewMinX()) * float64(c.GraphWidth()) / (c.ViewMaxX() - c.ViewMinX()),
		Y: (v - c.ViewMinY()) * float64(c.Origin().Y) / (c.ViewMaxY() - c.ViewMinY()),
	}
}

// drawBrailleSets draws sets in braille as ntcharts' DrawBrailleDataSets
// does (the same grid arithmetic and runes), but with one braille grid per
// kind rather than per set: a series split into many segments costs one
// grid, not one per segment (a meter dropping out every few seconds gave
// 130 segments, 28 ms and 15 MB per live chart rebuild with a data set
// each). The zero line, when zero is true, goes first; a later kind is
// drawn over an earlier one. The chart's ranges must be set.
func drawBrailleSets(c *timeserieslinechart.Model, sets []series, zero bool, zeroStyle lipgloss.Style) {
	c.Clear()
	c.DrawXYAxisAndLabel()
	gw, gh := c.GraphWidth(), c.GraphHeight()
	if gw <= 0 || gh <= 0 || c.ViewMaxX() <= c.ViewMinX() || c.ViewMaxY() <= c.ViewMinY() {
		return
	}
	origin := canvas.Point{X: c.Origin().X + 1}
	newGrid := func() *graph.BrailleGrid {
		return graph.NewBrailleGrid(gw, gh, 0, float64(gw), 0, float64(gh))
	}
	line := func(g *graph.BrailleGrid, p1, p2 canvas.Float64Point) {
		if (p1.X < 0 && p2.X < 0) || (p1.X > float64(gw) && p2.X > float64(gw)) {
			return
		}
		for _, p := range graph.GetLinePoints(g.GridPoint(p1), g.GridPoint(p2)) {
			g.Set(p)
		}
	}
	if zero {
		g := newGrid()
		y := scaled(c, time.Unix(int64(c.ViewMinX()), 0), 0).Y
		line(g, canvas.Float64Point{X: 0, Y: y}, canvas.Float64Point{X: float64(gw), Y: y})
		graph.DrawBraillePatterns(&c.Canvas, origin, g.BraillePatterns(), zeroStyle)
	}
	for i := 0; i < len(sets); {
		g := newGrid()
		j := i
		for ; j < len(sets) && sets[j].mark == sets[i].mark; j++ {
			pts := sets[j].pts
			for k := range pts {
				p1 := scaled(c, pts[k].Time, pts[k].Value)
				p2 := p1
				if k+1 < len(pts) {
					p2 = scaled(c, pts[k+1].Time, pts[k+1].Value)
				}
				line(g, p1, p2)
			}
		}
		graph.DrawBraillePatterns(&c.Canvas, origin, g.BraillePatterns(), sets[i].style)
		i = j
	}
}

// drawLineSets draws sets with line runes, each segment only over its own
// columns. ntcharts' DrawDataSets spreads every set over the full width
// and draws the columns without points along the X axis, which would join
// segments across their gaps. The zero line, when zero is true, goes
// first. The chart's ranges must be set.
func drawLineSets(c *timeserieslinechart.Model, sets []series, zero bool, zeroStyle lipgloss.Style) {
	c.Clear()
	c.DrawXYAxisAndLabel()
	x0 := c.Origin().X + 1
	gw := c.GraphWidth()
	if gw <= 0 {
		return
	}
	if zero {
		p, ok := chartCell(c, time.Unix(int64(c.ViewMinX()), 0), 0, true)
		if ok {
			ys := make([]int, gw)
			for i := range ys {
				ys[i] = p.Y
			}
			graph.DrawLineSequence(&c.Canvas, false, x0, ys, runes.ThinLineStyle, zeroStyle)
		}
	}
	for _, s := range sets {
		if first, seq, _ := lineColumns(c, s); len(seq) > 0 {
			graph.DrawLineSequence(&c.Canvas, false, x0+first, seq, runes.ThinLineStyle, s.style)
		}
	}
}

// lineColumns is where drawLineSets draws a set: the canvas rows of the
// graph columns from first on, the points in one column averaged, the
// columns between two points on the straight line between them. has says
// which of them hold a point.
func lineColumns(c *timeserieslinechart.Model, s series) (first int, seq []int, has []bool) {
	x0, gw := c.Origin().X+1, c.GraphWidth()
	if gw <= 0 {
		return 0, nil, nil
	}
	first, last := -1, -1
	ys := make([]float64, gw)
	ns := make([]int, gw)
	for _, p := range s.pts {
		cell, ok := chartCell(c, p.Time, p.Value, true)
		if !ok {
			continue
		}
		x := cell.X - x0
		ys[x] += float64(cell.Y)
		ns[x]++
		if first < 0 || x < first {
			first = x
		}
		last = max(last, x)
	}
	if first < 0 {
		return 0, nil, nil
	}
	seq = make([]int, 0, last-first+1)
	has = make([]bool, 0, last-first+1)
	prevX, prevY := first, ys[first]/float64(ns[first])
	for x := first; x <= last; x++ {
		if ns[x] == 0 {
			continue
		}
		y := ys[x] / float64(ns[x])
		for j := prevX + 1; j < x; j++ {
			seq = append(seq, int(math.Round(prevY+(y-prevY)*float64(j-prevX)/float64(x-prevX))))
			has = append(has, false)
		}
		seq = append(seq, int(math.Round(y)))
		has = append(has, true)
		prevX, prevY = x, y
	}
	return first, seq, has
}

// placeMarkers puts each set's marker on its line every markEvery cells,
// at an offset of its own per kind, and on every segment that is too
// short to get one that way. Points at zero get none: they lie on the
// zero line. It runs after the lines are drawn, so a marker survives
// series drawn over it.
func placeMarkers(c *timeserieslinechart.Model, sets []series, ascii bool) {
	x0 := c.Origin().X + 1
	var order []rune // kinds in order of appearance: their offsets
	for _, s := range sets {
		if s.mark == 0 || len(s.pts) == 0 {
			continue
		}
		kind := slices.Index(order, s.mark)
		if kind < 0 {
			kind = len(order)
			order = append(order, s.mark)
		}
		offset := kind * markEvery / int(kindCount)
		// the cells of the line's points, not at zero
		var cells []canvas.Point
		if ascii {
			zero, _ := chartCell(c, time.Unix(int64(c.ViewMinX()), 0), 0, true)
			first, seq, has := lineColumns(c, s)
			for i, y := range seq {
				if has[i] && y != zero.Y {
					cells = append(cells, canvas.Point{X: x0 + first + i, Y: y})
				}
			}
		} else {
			for _, p := range s.pts {
				if cell, ok := chartCell(c, p.Time, p.Value, false); ok && p.Value != 0 {
					cells = append(cells, cell)
				}
			}
		}
		placed, lastX := false, -1
		for _, cell := range cells {
			if cell.X != lastX && (cell.X-x0)%markEvery == offset {
				c.Canvas.SetCell(cell, canvas.NewCellWithStyle(s.mark, s.style))
				placed, lastX = true, cell.X
			}
		}
		if !placed && len(cells) > 0 {
			c.Canvas.SetCell(cells[len(cells)/2], canvas.NewCellWithStyle(s.mark, s.style))
		}
	}
}

// legendLine explains the series in words and shows each one's marker,
// so it reads without colour.
func legendLine(st *styles, production, ascii bool) string {
	item := func(k seriesKind, text string) string {
		return seriesStyle(st, k).Render(string(seriesMark(k, ascii)) + " " + text)
	}
	parts := []string{item(kindImport, "import (+, above 0)"), item(kindExport, "export (-, below 0)")}
	if production {
		parts = append(parts, item(kindSolar, "solar"), item(kindHome, "home use"))
	}
	return strings.Join(parts, "  ") + st.muted.Render("  W")
}
