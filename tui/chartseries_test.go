package tui

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/NimbleMarkets/ntcharts/canvas"
	"github.com/NimbleMarkets/ntcharts/linechart/timeserieslinechart"
	"github.com/charmbracelet/lipgloss"
	"github.com/lucasb-eyer/go-colorful"
	"github.com/muesli/termenv"

	"github.com/commons-energy/commons/meter"
	"github.com/commons-energy/commons/share/household"
)

// relLuminance is a colour's relative luminance (WCAG 2).
func relLuminance(c colorful.Color) float64 {
	f := func(v float64) float64 {
		if v <= 0.04045 {
			return v / 12.92
		}
		return math.Pow((v+0.055)/1.055, 2.4)
	}
	return 0.2126*f(c.R) + 0.7152*f(c.G) + 0.0722*f(c.B)
}

// contrastRatio is the WCAG 2 contrast ratio of two colours, 1 to 21.
func contrastRatio(a, b colorful.Color) float64 {
	x, y := relLuminance(a), relLuminance(b)
	if x < y {
		x, y = y, x
	}
	return (x + 0.05) / (y + 0.05)
}

// TestSeriesColours checks the series hues as a terminal shows them: the
// adaptive colour for the background, converted to the profile's nearest
// colour (xterm's palette for 256 and 16 colours). Import and solar must
// be clearly different hues, no two series may look alike, and each must
// stand out from the background.
func TestSeriesColours(t *testing.T) {
	const (
		minImportSolar = 30  // CIEDE2000 (x100): clearly different hues
		minAnyPair     = 15  // any two series: distinguishable side by side
		minContrast    = 3.0 // WCAG 2 for graphics (1.4.11)
	)
	series := []struct {
		name string
		c    lipgloss.AdaptiveColor
	}{{"import", colImport}, {"export", colExport}, {"solar", colSolar}, {"home", colHome}}
	for _, p := range []termenv.Profile{termenv.TrueColor, termenv.ANSI256, termenv.ANSI} {
		for _, bg := range []struct {
			name string
			dark bool
			hex  string
		}{{"dark", true, "#1E1E1E"}, {"black", true, "#000000"}, {"light", false, "#FFFFFF"}} {
			t.Run(fmt.Sprintf("%s/%s", profileName(p), bg.name), func(t *testing.T) {
				back, _ := colorful.Hex(bg.hex)
				got := make([]colorful.Color, len(series))
				for i, s := range series {
					hex := s.c.Light
					if bg.dark {
						hex = s.c.Dark
					}
					got[i] = termenv.ConvertToRGB(p.Color(hex))
					if r := contrastRatio(got[i], back); r < minContrast {
						t.Errorf("%s %s on %s: contrast %.2f, want at least %.1f", s.name, got[i].Hex(), bg.hex, r, minContrast)
					}
				}
				for i := range got {
					for j := i + 1; j < len(got); j++ {
						d := got[i].DistanceCIEDE2000(got[j]) * 100
						want := float64(minAnyPair)
						if series[i].name == "import" && series[j].name == "solar" {
							want = minImportSolar
						}
						if d < want {
							t.Errorf("%s %s and %s %s: ΔE00 %.1f, want at least %.0f", series[i].name, got[i].Hex(), series[j].name, got[j].Hex(), d, want)
						}
					}
				}
			})
		}
	}
}

func profileName(p termenv.Profile) string {
	switch p {
	case termenv.TrueColor:
		return "truecolor"
	case termenv.ANSI256:
		return "ansi256"
	case termenv.ANSI:
		return "ansi16"
	}
	return "ascii"
}

// chartModel is the charts view of a dashboard on the fake household with the given live
// samples and buckets, in braille or ASCII mode.
func chartModel(t testing.TB, samples []household.Sample, buckets []household.Bucket, production, ascii bool) charts {
	t.Helper()
	f := newFake()
	f.state.Home.Production = production
	opts := testOptions(160, 48)
	opts.ASCII = ascii
	m := New(f, opts).charts
	m.now = testNow
	m.state = f.state
	m.live.ring = household.NewRing(liveCap)
	m.live.ring.Merge(samples)
	m.buckets = buckets
	return m
}

// seriesColour reports whether a canvas cell is drawn in a series colour.
func seriesColour(c canvas.Cell) bool {
	fg := c.Style.GetForeground()
	return fg == lipgloss.TerminalColor(colImport) || fg == lipgloss.TerminalColor(colExport) ||
		fg == lipgloss.TerminalColor(colSolar) || fg == lipgloss.TerminalColor(colHome)
}

// cellCol is the canvas column of time t in a drawn chart.
func cellCol(c *timeserieslinechart.Model, t time.Time, ascii bool) int {
	p, _ := chartCell(c, t, c.ViewMinY(), ascii)
	return p.X
}

// seriesColumns reports per canvas column whether a series drew in it.
func seriesColumns(c *timeserieslinechart.Model) []bool {
	cols := make([]bool, c.Canvas.Width())
	for x := range cols {
		for y := 0; y < c.Origin().Y; y++ {
			cell := c.Canvas.Cell(canvas.Point{X: x, Y: y})
			if cell.Rune != 0 && cell.Rune != ' ' && seriesColour(cell) {
				cols[x] = true
			}
		}
	}
	return cols
}

func TestMarkersTellSeriesApart(t *testing.T) {
	// import and solar are the same, so their lines overlap everywhere
	var samples []household.Sample
	for tm := testNow.Add(-15 * time.Minute); !tm.After(testNow); tm = tm.Add(time.Second) {
		samples = append(samples, household.Sample{Time: tm, ImportW: 1000, ExportW: 500, ProductionW: meter.Some(1000)})
	}
	for _, ascii := range []bool{false, true} {
		t.Run(fmt.Sprintf("ascii=%v", ascii), func(t *testing.T) {
			m := chartModel(t, samples, nil, true, ascii)
			start, end, n := m.liveWindow(160)
			var slot *timeserieslinechart.Model
			out := m.renderChart(&slot, 160, 20, start, end, m.liveSeries(start, end, n))
			legend := m.legend()
			for k := kindImport; k < kindCount; k++ {
				mark := seriesMark(k, ascii)
				if ascii && mark > 127 {
					t.Errorf("ASCII marker %q is not ASCII", mark)
				}
				if n := strings.Count(out, string(mark)); n < 2 {
					t.Errorf("%s: marker %q drawn %d times, want it repeated along the line", seriesName(k), mark, n)
				}
				if !strings.Contains(legend, string(mark)+" ") {
					t.Errorf("legend %q lacks marker %q", legend, mark)
				}
				for j := k + 1; j < kindCount; j++ {
					if seriesMark(j, ascii) == mark {
						t.Errorf("%s and %s share marker %q", seriesName(k), seriesName(j), mark)
					}
				}
			}
			// every row of the chart is as wide as the chart: markers are
			// single-width
			for _, line := range strings.Split(out, "\n") {
				if w := lipgloss.Width(line); w != 160 {
					t.Fatalf("chart line %d wide, want 160: %q", w, line)
				}
			}
		})
	}
}

func TestOpenBucketIsNotADip(t *testing.T) {
	cases := []struct {
		name   string
		length time.Duration
		loadW  int64
		now    time.Time // inside the last bucket
	}{
		{"hours", time.Hour, 1000, time.Date(2026, 6, 15, 13, 30, 0, 0, testZone)},
		{"slots", 15 * time.Minute, 1000, time.Date(2026, 6, 15, 13, 24, 0, 0, testZone)},
		{"minutes", time.Minute, 1200, time.Date(2026, 6, 15, 13, 20, 36, 0, testZone)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start, end := histWindowAt(c.now, span24h, testZone)
			var bs []household.Bucket
			for b := start; b.Before(c.now); b = b.Add(c.length) {
				secs := int64(min(c.length, c.now.Sub(b)) / time.Second) // the open bucket holds what has elapsed
				bs = append(bs, household.Bucket{Start: b, Length: c.length, ImportWh: c.loadW * secs / 3600})
			}
			cols, _ := histColumns(bs, start, end, c.now, 320)
			last := -1
			for i, col := range cols {
				if !col.has {
					continue
				}
				last = i
				if col.imp != c.loadW {
					t.Errorf("column %d: %d W, want the steady %d W", i, col.imp, c.loadW)
				}
			}
			if want := int(bs[len(bs)-1].Start.Sub(start) * 320 / end.Sub(start)); last != want {
				t.Errorf("last column with data %d, want %d (the open bucket's)", last, want)
			}
			// drawn: the last point is at the same height as the others
			m := chartModel(t, nil, bs, false, false)
			m.now = c.now
			sets := m.histSeries(start, end, 320)
			var slot *timeserieslinechart.Model
			m.renderChart(&slot, 160, 20, start, end, sets)
			pts := sets[0].pts
			first, _ := chartCell(slot, pts[0].Time, pts[0].Value, false)
			lastP, _ := chartCell(slot, pts[len(pts)-1].Time, pts[len(pts)-1].Value, false)
			if first.Y != lastP.Y {
				t.Errorf("last point on row %d, the first on row %d", lastP.Y, first.Y)
			}
			// redrawn later (a resize, a tick) before new buckets arrive:
			// the open bucket still holds energy only up to when it was
			// loaded
			m, _ = m.Update(aggMsg{span: span24h, buckets: bs, now: c.now})
			m.now = c.now.Add(10 * time.Minute)
			later := m.histSeries(start, end, 320)[0].pts
			if v := later[len(later)-1].Value; v != float64(c.loadW) {
				t.Errorf("redrawn 10 min later: last point %v W, want %d W", v, c.loadW)
			}
		})
	}
}

func TestHistoryGapIsBlank(t *testing.T) {
	f := newFake()
	gapFrom := time.Date(2026, 6, 11, 0, 0, 0, 0, testZone)
	gapTo := gapFrom.Add(24 * time.Hour)
	var bs []household.Bucket
	for _, b := range f.buckets {
		if b.Start.Before(gapFrom) || !b.Start.Before(gapTo) {
			bs = append(bs, b)
		}
	}
	start, end := histWindowAt(testNow, span7d, testZone)
	for _, ascii := range []bool{false, true} {
		t.Run(fmt.Sprintf("ascii=%v", ascii), func(t *testing.T) {
			m := chartModel(t, nil, bs, false, ascii)
			n := 320
			if ascii {
				n = 160
			}
			var slot *timeserieslinechart.Model
			m.renderChart(&slot, 160, 20, start, end, m.histSeries(start, end, n))
			drawn := seriesColumns(slot)
			from, to := cellCol(slot, gapFrom, ascii), cellCol(slot, gapTo, ascii)
			if to-from < 10 {
				t.Fatalf("the day spans columns %d-%d", from, to)
			}
			// the columns holding only the missing day
			for x := from + 1; x < to; x++ {
				if drawn[x] {
					t.Errorf("column %d (inside the missing day, columns %d-%d) holds a series rune", x, from, to)
				}
			}
			// the days around it are drawn
			for _, x := range []int{from - 2, to + 2} {
				if !drawn[x] {
					t.Errorf("column %d next to the gap holds no series rune", x)
				}
			}
		})
	}
}

func TestLiveGaps(t *testing.T) {
	hole := func(tm time.Time) bool {
		return tm.After(testNow.Add(-8*time.Minute)) && !tm.After(testNow.Add(-5*time.Minute))
	}
	cases := []struct {
		name    string
		version string        // DSMR 5 sends every second, 4 every ten
		every   time.Duration // sample interval
		offline bool          // the meter was silent for three minutes
	}{
		{"dsmr5 offline", "50", time.Second, true},
		{"dsmr4 offline", "42", 10 * time.Second, true},
		{"dsmr4 online", "42", 10 * time.Second, false},
		{"dsmr5 online", "50", time.Second, false},
		// the demo's clock runs ten times faster: a DSMR 5 meter's samples
		// come about 10 s apart and are still one line
		{"dsmr5 sped up online", "50", 10500 * time.Millisecond, false},
		{"dsmr5 sped up offline", "50", 10500 * time.Millisecond, true},
	}
	for _, c := range cases {
		for _, ascii := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s ascii=%v", c.name, ascii), func(t *testing.T) {
				var samples []household.Sample
				for tm := testNow.Add(-20 * time.Minute); !tm.After(testNow); tm = tm.Add(c.every) {
					if c.offline && hole(tm) {
						continue
					}
					samples = append(samples, household.Sample{Time: tm, ImportW: 800 + int64(tm.Second()%7)*10})
				}
				m := chartModel(t, samples, nil, false, ascii)
				m.state.Live.Reading.Version = c.version
				start, end, n := m.liveWindow(160)
				var slot *timeserieslinechart.Model
				m.renderChart(&slot, 160, 20, start, end, m.liveSeries(start, end, n))
				drawn := seriesColumns(slot)
				gapFrom, gapTo := cellCol(slot, testNow.Add(-8*time.Minute), ascii), cellCol(slot, testNow.Add(-5*time.Minute), ascii)
				first, last := slices.Index(drawn, true), lastTrue(drawn)
				if first < 0 {
					t.Fatal("no series drawn")
				}
				// a point sits mid-column and the samples around the hole
				// are up to one interval (1.7 cells) away from it
				for x := first; x <= last; x++ {
					inHole := x > gapFrom+1 && x < gapTo-1
					nearHole := x >= gapFrom-1 && x <= gapTo+2
					switch {
					case c.offline && inHole && drawn[x]:
						t.Errorf("column %d (meter offline, columns %d-%d) holds a series rune", x, gapFrom, gapTo)
					case (!c.offline || !nearHole) && !drawn[x]:
						t.Errorf("column %d with data around it holds no series rune", x)
					}
				}
			})
		}
	}
}

// lastTrue is the index of the last true value in bs, or -1.
func lastTrue(bs []bool) int {
	for i := len(bs) - 1; i >= 0; i-- {
		if bs[i] {
			return i
		}
	}
	return -1
}

// TestMarkersAreOnTheLine checks that every marker sits in a cell its
// line is drawn through: the marker cells are not blank once the lines
// are drawn again without markers.
func TestMarkersAreOnTheLine(t *testing.T) {
	f := newFake()
	for _, ascii := range []bool{false, true} {
		for _, w := range []int{80, 160} {
			t.Run(fmt.Sprintf("ascii=%v/%d", ascii, w), func(t *testing.T) {
				m := chartModel(t, f.samples, f.buckets, false, ascii)
				hs, he := histWindowAt(testNow, span7d, testZone)
				ls, le, ln := m.liveWindow(w)
				hn := 2 * w
				if ascii {
					hn = w
				}
				for _, c := range []struct {
					start, end time.Time
					sets       []series
				}{{hs, he, m.histSeries(hs, he, hn)}, {ls, le, m.liveSeries(ls, le, ln)}} {
					var slot *timeserieslinechart.Model
					m.renderChart(&slot, w, 20, c.start, c.end, c.sets)
					marks := map[canvas.Point]rune{}
					for _, s := range c.sets {
						for y := 0; y < slot.Canvas.Height(); y++ {
							for x := 0; x < slot.Canvas.Width(); x++ {
								p := canvas.Point{X: x, Y: y}
								if slot.Canvas.Cell(p).Rune == s.mark {
									marks[p] = s.mark
								}
							}
						}
					}
					if len(marks) < 4 {
						t.Fatalf("%d markers", len(marks))
					}
					if ascii {
						drawLineSets(slot, c.sets, true, m.st.zero)
					} else {
						drawBrailleSets(slot, c.sets, true, m.st.zero)
					}
					for p, mark := range marks {
						if r := slot.Canvas.Cell(p).Rune; r == 0 || r == ' ' {
							t.Errorf("marker %q at %v is off its line", mark, p)
						}
					}
				}
			})
		}
	}
}

// BenchmarkChartWithGaps measures a live chart rebuild at 160x22 when the
// meter drops out every few seconds for an hour: 3 s of samples, 11 s of
// silence, so every series is split into over a hundred segments.
func BenchmarkChartWithGaps(b *testing.B) {
	var samples []household.Sample
	for tm := testNow.Add(-time.Hour); !tm.After(testNow); tm = tm.Add(time.Second) {
		if int(tm.Sub(testNow.Add(-time.Hour))/time.Second)%14 < 3 {
			samples = append(samples, household.Sample{Time: tm, ImportW: 900, ExportW: 100})
		}
	}
	m := chartModel(b, samples, nil, false, false)
	start, end, n := m.liveWindow(160)
	if sets := m.liveSeries(start, end, n); len(sets) < 100 {
		b.Fatalf("%d segments", len(sets))
	}
	var slot *timeserieslinechart.Model
	b.ReportAllocs()
	b.ResetTimer()
	c := cpuTime()
	for i := 0; i < b.N; i++ {
		m.renderChart(&slot, 160, 22, start, end, m.liveSeries(start, end, n))
	}
	reportCPU(b, c)
}
