package tui

import (
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
	"github.com/commons-energy/commons/share/household"
)

// resizeSeed fixes the random sizes, so a failure reproduces; the sizes it
// found are printed with it.
const resizeSeed = 20260615

// resizeSteps is the number of sizes each screen goes through.
const resizeSteps = 30

// TestEveryViewSurvivesAnyResize drives every screen of the dashboard, with
// data in it, through a seeded random sequence of window sizes from 1x1 to
// 300x100 and checks that no size panics and that no line is wider than the
// window, nor are there more lines than the window's height.
func TestEveryViewSurvivesAnyResize(t *testing.T) {
	screens := []struct {
		name string
		keys []string
		prod bool // with a production meter
		mod  func(f *fakeBackend)
	}{
		{"overview", []string{"1"}, false, nil},
		{"overview_production", []string{"1"}, true, nil},
		{"overview_hub_down", []string{"1"}, false, func(f *fakeBackend) {
			e := "dial tcp 10.0.0.9:4222: connect: connection refused, a long error a hub can give"
			f.state.Relay = &household.RelayState{URL: "nats://hub.example.org:4222", Running: true, LastError: &e, Refused: 3}
		}},
		{"overview_no_meter", []string{"1"}, false, func(f *fakeBackend) {
			f.state.Live.Meter = household.MeterState{Protocol: "auto", ClockOK: true}
			f.state.Live.HasReading = false
		}},
		{"charts", []string{"2"}, false, nil},
		{"charts_production_7d", []string{"2", "l"}, true, nil},
		{"neighbours", []string{"3", "j"}, false, nil},
		{"neighbour_detail", []string{"3", "j", "enter"}, false, nil},
		{"ledger", []string{"4", "j", "j"}, false, nil},
		{"ledger_filtered", []string{"4", "f"}, false, nil},
		{"pledge_form", []string{"3", "j", "p", "1.5kWh", "down", "right", "right"}, false, nil},
		{"pledge_preview", []string{"3", "j", "p", "1.5kWh", "enter"}, false, nil},
		{"cancel_confirm", []string{"4", "j", "c"}, false, nil},
		{"help_overview", []string{"1", "?"}, false, nil},
		{"help_ledger", []string{"4", "?"}, false, nil},
	}
	// each screen opens wide, with the extra table columns, and the first
	// size is near the minimum; the random sizes then cross every layout
	// threshold both ways
	for _, startSize := range [][2]int{{160, 48}} {
		for _, sc := range screens {
			name := fmt.Sprintf("%s_from_%dx%d", sc.name, startSize[0], startSize[1])
			t.Run(name, func(t *testing.T) {
				f := newFake()
				if sc.mod != nil {
					sc.mod(f)
				}
				if sc.prod {
					f.state.Home.Production = true
					f.state.Live.ProductionW = someW(3817)
					f.state.Live.Today.ProductionWh = ptr(int64(20000))
					for i := range f.samples {
						f.samples[i].ProductionW = someW(1000)
					}
				}
				var tm tea.Model = loaded(t, f, startSize[0], startSize[1])
				for _, k := range sc.keys {
					tm = step(t, tm, press(k), "key "+k)
				}
				rng := rand.New(rand.NewPCG(resizeSeed, uint64(len(sc.name))))
				var sizes []string
				for i := 0; i < resizeSteps; i++ {
					w, h := 1+rng.IntN(300), 1+rng.IntN(100)
					if i%10 == 0 { // edges: the minimum and just below it
						w, h = MinWidth-1+rng.IntN(3), MinHeight-1+rng.IntN(3)
					}
					sizes = append(sizes, fmt.Sprintf("%dx%d", w, h))
					tm = step(t, tm, tea.WindowSizeMsg{Width: w, Height: h}, "resize to "+strings.Join(sizes, " "))
					if t.Failed() {
						return
					}
					checkFits(t, tm, w, h, strings.Join(sizes, " "))
					if t.Failed() {
						return
					}
				}
			})
		}
	}
}

// step applies msg and renders, turning a panic into a test failure that
// says what led to it.
func step(t *testing.T, tm tea.Model, msg tea.Msg, what string) (out tea.Model) {
	t.Helper()
	out = tm
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("panic after %s: %v\n%s", what, r, debug.Stack())
		}
	}()
	out, _ = tm.Update(msg)
	_ = out.View()
	return out
}

// checkFits checks that no line of the view is wider than w and that there
// are at most h lines.
func checkFits(t *testing.T, tm tea.Model, w, h int, sizes string) {
	t.Helper()
	v := tm.View()
	lines := strings.Split(v, "\n")
	for i, l := range lines {
		if lw := ansi.StringWidth(l); lw > w {
			t.Errorf("window %dx%d: line %d is %d cells wide (sizes %s):\n%s", w, h, i+1, lw, sizes, v)
			return
		}
	}
	if len(lines) > h {
		t.Errorf("window %dx%d: the view has %d lines (sizes %s):\n%s", w, h, len(lines), sizes, v)
	}
}
