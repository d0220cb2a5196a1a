package tui

import (
	"bytes"
	"context"
	"errors"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/muesli/termenv"

	"github.com/commons-energy/commons/meter"
	"github.com/commons-energy/commons/share/household"
)

// asciiRenderer renders without colour, as under NO_COLOR, so goldens are
// plain text.
func asciiRenderer() *lipgloss.Renderer {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.Ascii)
	r.SetHasDarkBackground(true)
	return r
}

func testOptions(w, h int) Options {
	return Options{Renderer: asciiRenderer(), Now: testClock, Location: testZone, Width: w, Height: h}
}

// loaded returns a dashboard on f that already holds f's state, samples
// and 24 h aggregates, applied through Update as the program would. The
// program's own loads then return the same data, so the final view does
// not depend on when they complete.
func loaded(t testing.TB, f *fakeBackend, w, h int) Model {
	t.Helper()
	ctx := context.Background()
	m := New(f, testOptions(w, h))
	st, _ := f.State(ctx)
	ss, _ := f.Samples(ctx, testNow.Add(-time.Hour))
	from, to := histWindowAt(testNow, span24h, testZone)
	bs, _ := f.Aggregates(ctx, from, to)
	var tm tea.Model = m
	for _, msg := range []tea.Msg{
		tea.WindowSizeMsg{Width: w, Height: h},
		stateMsg{state: st, now: testNow},
		samplesMsg{samples: ss},
		aggMsg{span: span24h, buckets: bs, now: testNow},
	} {
		tm, _ = tm.Update(msg)
	}
	return tm.(Model)
}

// start runs m in a teatest program of size w x h.
func start(t *testing.T, m Model, w, h int) *teatest.TestModel {
	t.Helper()
	return teatest.NewTestModel(t, m, teatest.WithInitialTermSize(w, h))
}

// waitOutput waits until the program has written every one of subs.
func waitOutput(t *testing.T, tm *teatest.TestModel, subs ...string) {
	t.Helper()
	var seen []byte
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		seen = append(seen, b...)
		for _, s := range subs {
			if !bytes.Contains(seen, []byte(s)) {
				return false
			}
		}
		return true
	}, teatest.WithDuration(5*time.Second), teatest.WithCheckInterval(5*time.Millisecond))
}

// final quits the program and returns its last model.
func final(t *testing.T, tm *teatest.TestModel) Model {
	t.Helper()
	if err := tm.Quit(); err != nil {
		t.Fatal(err)
	}
	return tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(Model)
}

func press(s string) tea.KeyMsg {
	switch s {
	case "enter":
		return tea.KeyMsg{Type: tea.KeyEnter}
	case "esc":
		return tea.KeyMsg{Type: tea.KeyEsc}
	case "tab":
		return tea.KeyMsg{Type: tea.KeyTab}
	case "shift+tab":
		return tea.KeyMsg{Type: tea.KeyShiftTab}
	case "up":
		return tea.KeyMsg{Type: tea.KeyUp}
	case "down":
		return tea.KeyMsg{Type: tea.KeyDown}
	case "left":
		return tea.KeyMsg{Type: tea.KeyLeft}
	case "right":
		return tea.KeyMsg{Type: tea.KeyRight}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)}
}

func send(tm *teatest.TestModel, keys ...string) {
	for _, k := range keys {
		tm.Send(press(k))
	}
}

// waitCalls polls the fake until its call log holds want.
func waitCalls(t *testing.T, f *fakeBackend, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if slices.Contains(f.callLog(), want) {
			return
		}
		time.Sleep(2 * time.Millisecond) // polling a condition with a deadline
	}
	t.Fatalf("backend never got %q; calls: %q", want, f.callLog())
}

func TestGolden(t *testing.T) {
	cases := []struct {
		name  string
		keys  []string
		await []string
	}{
		{"overview", nil, []string{"Power now"}},
		{"charts", []string{"2"}, []string{"History"}},
		{"charts_7d", []string{"2", "l"}, []string{"[7 days]", "Mon 15"}},
		{"neighbours", []string{"3"}, []string{"Month g/r"}},
		{"neighbour_detail", []string{"3", "j", "enter"}, []string{"pledges and settlements between you"}},
		{"ledger", []string{"4"}, []string{"Delivered"}},
		{"ledger_filtered", []string{"4", "f"}, []string{"Anna (f)"}},
		{"ledger_expired_shown", []string{"4", "e"}, []string{"Carla"}},
		{"ledger_settled", []string{"4", "s", "s"}, []string{"settled (s)"}},
		{"ledger_empty", []string{"4", "f", "f", "s", "s"}, []string{"No settled pledges with Bob"}},
		{"ledger_detail", []string{"4", "j", "j", "enter"}, []string{"Pledge p3dev00001", "import (Dev)"}},
		{"pledge_form", []string{"3", "j", "p", "1.5kWh"}, []string{"Pledge energy", "window forecast 2.6 kWh"}},
		{"pledge_preview", []string{"3", "j", "p", "1.5kWh", "enter"}, []string{"sign and send", "window forecast 2.6 kWh"}},
		{"help", []string{"?"}, []string{"Keys"}},
	}
	for _, size := range [][2]int{{80, 24}, {160, 48}} {
		for _, c := range cases {
			name := c.name + "_" + sprintf("%dx%d", size[0], size[1])
			t.Run(name, func(t *testing.T) {
				f := newFake()
				tm := start(t, loaded(t, f, size[0], size[1]), size[0], size[1])
				send(tm, c.keys...)
				waitOutput(t, tm, c.await...)
				m := final(t, tm)
				got := m.View()
				if w, h := lipgloss.Width(got), lipgloss.Height(got); w > size[0] || h != size[1] {
					t.Errorf("view is %dx%d, want at most %d wide and %d high", w, h, size[0], size[1])
				}
				golden.RequireEqual(t, []byte(got))
			})
		}
	}
}

func TestViewsFitEverySize(t *testing.T) {
	f := newFake()
	for _, size := range [][2]int{{80, 24}, {100, 30}, {120, 40}, {160, 48}, {200, 60}, {250, 70}} {
		m := loaded(t, f, size[0], size[1])
		for _, k := range []string{"1", "2", "3", "4", "?"} {
			var tm tea.Model = m
			tm, _ = tm.Update(press(k))
			v := tm.View()
			if w, h := lipgloss.Width(v), lipgloss.Height(v); w > size[0] || h != size[1] {
				t.Errorf("%dx%d view %s: rendered %dx%d", size[0], size[1], k, w, h)
			}
		}
	}
}

func TestPledgeFromNeighbourEndToEnd(t *testing.T) {
	f := newFake()
	tm := start(t, loaded(t, f, 80, 24), 80, 24)
	// neighbours, second row (Bob), pledge, amount, window: next hour
	send(tm, "3", "j", "p")
	waitOutput(t, tm, "Pledge energy", "Bob")
	send(tm, "1.5 kWh", "tab", "right", "enter")
	waitOutput(t, tm, "Forecast surplus", "2.6 kWh", "Left after this", "1.1 kWh")
	waitCalls(t, f, "preview to=h-bob-00003 wh=1500 14:00-15:00")
	send(tm, "enter")
	waitOutput(t, tm, "Delivered to Bob.")
	waitCalls(t, f, "pledge to=h-bob-00003 wh=1500 14:00-15:00")
	send(tm, "enter", "4")
	waitOutput(t, tm, "[4 Ledger]")
	m := final(t, tm)
	if m.form.open {
		t.Error("form still open after closing the result")
	}
	p, ok := pledgeByID(m.state, "new00001")
	if !ok {
		t.Fatalf("the new pledge is not in the dashboard's state: %+v", m.state.Pledges)
	}
	if p.To != "h-bob-00003" || p.EnergyWh != 1500 || p.State != household.StatePledged {
		t.Errorf("new pledge = %+v", p)
	}
	if !strings.Contains(m.View(), "→ Bob") || !strings.Contains(m.View(), "14:00-15:00") {
		t.Errorf("ledger does not show the new pledge:\n%s", m.View())
	}
	if n := strings.Count(strings.Join(f.callLog(), "\n"), "pledge to="); n != 1 {
		t.Errorf("Pledge called %d times, want once", n)
	}
}

// Beside the amount the form shows the household's surplus now and the
// forecast of the window chosen, asked again when the window changes.
func TestPledgeFormShowsSurplusAndForecast(t *testing.T) {
	f := newFake()
	tm := start(t, loaded(t, f, 80, 24), 80, 24)
	send(tm, "3", "j", "p")
	waitOutput(t, tm, "You: surplus 2317 W now · window forecast 2.6 kWh")
	waitCalls(t, f, "preview to=h-bob-00003 wh=0 13:30-13:45")
	send(tm, "tab", "right") // window: next hour
	waitCalls(t, f, "preview to=h-bob-00003 wh=0 14:00-15:00")
	f.mu.Lock()
	f.preview.ForecastSurplusWh = meter.Optional{}
	f.preview.PledgedWh = 1500
	f.mu.Unlock()
	send(tm, "right") // range: nothing to ask until it parses
	send(tm, "tab", "16:00-17:30")
	waitCalls(t, f, "preview to=h-bob-00003 wh=0 16:00-17:30")
	waitOutput(t, tm, "You: surplus 2317 W now · no forecast (no data yesterday), 1.5 kWh pledged")
	final(t, tm)
}

func TestPledgeFromAnywhereWithRangeQueued(t *testing.T) {
	f := newFake()
	f.delivery = household.Queued
	f.note = "Bob is offline, will retry"
	tm := start(t, loaded(t, f, 80, 24), 80, 24)
	// From the overview the form starts on the recipient, ordered by
	// need: Dev (needs 2300 W), then Bob.
	send(tm, "p")
	waitOutput(t, tm, "Dev")
	send(tm, "right", "tab", "2000", "tab", "right", "right", "tab", "16:00-17:30", "enter")
	waitOutput(t, tm, "Pledge", "2 kWh", "16:00-17:30")
	send(tm, "y")
	waitOutput(t, tm, "Queued: Bob is offline, will retry.")
	waitCalls(t, f, "pledge to=h-bob-00003 wh=2000 16:00-17:30")
	final(t, tm)
}

func TestPledgeFormRejectsBadInput(t *testing.T) {
	cases := []struct {
		name, amount, rng, want string
	}{
		{"no amount", "", "", `energy "" is not a number`},
		{"zero", "0", "", "is zero; pledge at least 1 Wh"},
		{"four decimals", "1.2345kWh", "", "finer than 1 Wh"},
		{"unknown unit", "1.5 kW", "", "unknown unit; use Wh, kWh or MWh"},
		{"bad range", "500", "noon", "write it as 14:00/16:00, 14:00-16:00"},
		{"reversed range", "500", "14:00-13:00", "the window ends before it starts"},
		{"reversed slash", "500", "14:00/13:00", "the window ends before it starts"},
		{"zero range", "500", "14:00-14:00", "the window ends before it starts"},
		{"over the pledge maximum", "1001 MWh", "", "at most 1000 MWh"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFake()
			m := loaded(t, f, 80, 24)
			var tm tea.Model = m
			steps := []string{"3", "p"}
			if c.amount != "" {
				steps = append(steps, c.amount)
			}
			if c.rng != "" {
				steps = append(steps, "tab", "left", "tab", c.rng)
			}
			steps = append(steps, "enter")
			var cmd tea.Cmd
			for _, k := range steps {
				tm, cmd = tm.Update(press(k))
			}
			if cmd != nil {
				if msg := cmd(); msg != nil {
					if _, ok := msg.(previewMsg); ok {
						t.Fatal("a preview was requested for bad input")
					}
				}
			}
			if got := tm.(Model).form.err; !strings.Contains(got, c.want) {
				t.Errorf("form says %q, want %q", got, c.want)
			}
			if len(f.callLog()) != 0 {
				t.Errorf("backend called: %q", f.callLog())
			}
		})
	}
}

func TestPledgeFormShowsExportLimit(t *testing.T) {
	f := newFake()
	// What the household's backend answers for a pledge above its connection.
	reason := "1.5 MWh is more than this home can export in 1h0m0s (25 A × 3 phases × 230 V: at most 17.25 kWh)"
	f.previewErr = errors.New(reason)
	tm := start(t, loaded(t, f, 120, 30), 120, 30)
	send(tm, "3", "p", "1.5 MWh", "enter")
	waitCalls(t, f, "preview to=h-anna-0002 wh=1500000 13:30-13:45")
	m := final(t, tm)
	if !strings.Contains(m.form.err, reason) || m.form.step != stepEdit || !m.form.open {
		t.Errorf("form err %q step %v open %v; want the reason, back in edit", m.form.err, m.form.step, m.form.open)
	}
	if n := strings.Count(strings.Join(f.callLog(), "\n"), "pledge to="); n != 0 {
		t.Errorf("Pledge called %d times", n)
	}
}

func TestPledgeFailureKeepsForm(t *testing.T) {
	f := newFake()
	f.failWith = io.ErrClosedPipe
	tm := start(t, loaded(t, f, 80, 24), 80, 24)
	send(tm, "3", "p", "700", "enter")
	waitOutput(t, tm, "sign and send")
	send(tm, "enter")
	waitOutput(t, tm, "the pledge was not made")
	m := final(t, tm)
	if !m.form.open || m.form.step != stepEdit {
		t.Errorf("form open=%v step=%v, want open in edit", m.form.open, m.form.step)
	}
}

func TestAcceptIncomingFromBanner(t *testing.T) {
	f := newFake()
	tm := start(t, loaded(t, f, 80, 24), 80, 24)
	waitOutput(t, tm, "Incoming: Anna pledges you 1 kWh")
	send(tm, "a")
	waitCalls(t, f, "accept p2anna0001")
	waitOutput(t, tm, "Pledge p2anna0001 accepted.")
	m := final(t, tm)
	if p, _ := pledgeByID(m.state, "p2anna0001"); p.State != household.StateAccepted && m.notice == "" {
		t.Errorf("state after accept: %v", p.State)
	}
}

func TestDeclineSelectedInLedger(t *testing.T) {
	f := newFake()
	tm := start(t, loaded(t, f, 80, 24), 80, 24)
	send(tm, "4", "d")
	waitCalls(t, f, "decline p2anna0001")
	waitOutput(t, tm, "declined.")
	final(t, tm)
}

func TestAnswerWithoutIncoming(t *testing.T) {
	f := newFake()
	f.state.Pledges = f.state.Pledges[1:] // drop Anna's open pledge
	m := loaded(t, f, 80, 24)
	var tm tea.Model = m
	tm, cmd := tm.Update(press("a"))
	if cmd != nil {
		t.Error("accept without an incoming pledge returned a command")
	}
	if !strings.Contains(tm.View(), "No incoming pledge waits") {
		t.Errorf("no explanation:\n%s", tm.View())
	}
}

func TestCancelOwnPledge(t *testing.T) {
	f := newFake()
	tm := start(t, loaded(t, f, 80, 24), 80, 24)
	send(tm, "4", "j", "c")
	waitOutput(t, tm, "Cancel your pledge of 1.5 kWh to Bob for 14:00-15:00?")
	send(tm, "y")
	waitCalls(t, f, "cancel p1bob00001")
	waitOutput(t, tm, "cancelled.")
	m := final(t, tm)
	if m.confirm.open {
		t.Error("confirmation still open")
	}
}

func TestCancelRefused(t *testing.T) {
	cases := []struct {
		name string
		down int
		want string
	}{
		{"incoming", 0, "decline it with d"},
		{"settled", 2, "is settled and can no longer be cancelled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFake()
			var tm tea.Model = loaded(t, f, 80, 24)
			tm, _ = tm.Update(press("4"))
			for i := 0; i < c.down; i++ {
				tm, _ = tm.Update(press("j"))
			}
			tm, _ = tm.Update(press("c"))
			if !strings.Contains(tm.View(), c.want) {
				t.Errorf("want %q in:\n%s", c.want, tm.View())
			}
			if tm.(Model).confirm.open {
				t.Error("confirmation opened")
			}
		})
	}
	// a window that has started
	f := newFake()
	f.state.Pledges[1].Window.Start = testNow.Add(-time.Minute)
	var tm tea.Model = loaded(t, f, 80, 24)
	for _, k := range []string{"4", "j", "c"} {
		tm, _ = tm.Update(press(k))
	}
	if !strings.Contains(tm.View(), "its window has started") {
		t.Errorf("started window not refused:\n%s", tm.View())
	}
}

func TestCancelAbandoned(t *testing.T) {
	f := newFake()
	var tm tea.Model = loaded(t, f, 80, 24)
	for _, k := range []string{"4", "j", "c", "n"} {
		tm, _ = tm.Update(press(k))
	}
	if tm.(Model).confirm.open || len(f.callLog()) != 0 {
		t.Errorf("confirm open=%v calls=%q", tm.(Model).confirm.open, f.callLog())
	}
}

func TestHelpOverlay(t *testing.T) {
	f := newFake()
	tm := start(t, loaded(t, f, 80, 24), 80, 24)
	send(tm, "?")
	waitOutput(t, tm, "Keys", "shift+tab", "previous view", "accept incoming")
	send(tm, "?")
	m := final(t, tm)
	if m.help.open {
		t.Error("help still shown after the second ?")
	}
}

func TestHelpListsEveryViewKey(t *testing.T) {
	f := newFake()
	for _, v := range []string{"1", "2", "3", "4"} {
		var tm tea.Model = loaded(t, f, 160, 48)
		tm, _ = tm.Update(press(v))
		tm, _ = tm.Update(press("?"))
		out := tm.View()
		for _, want := range []string{"tab", "quit", "pledge", "overview", "ledger"} {
			if !strings.Contains(out, want) {
				t.Errorf("view %s help lacks %q", v, want)
			}
		}
	}
}

func TestTooSmall(t *testing.T) {
	f := newFake()
	tm := start(t, loaded(t, f, 80, 24), 80, 24)
	tm.Send(tea.WindowSizeMsg{Width: 60, Height: 20})
	waitOutput(t, tm, "Terminal too small: 60x20", "at least 80x24")
	send(tm, "2") // ignored while too small
	tm.Send(tea.WindowSizeMsg{Width: 100, Height: 30})
	waitOutput(t, tm, "Power now")
	tm.Send(tea.WindowSizeMsg{Width: 79, Height: 40})
	waitOutput(t, tm, "79x40")
	send(tm, "q")
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
	m := tm.FinalModel(t).(Model)
	if m.view != viewOverview {
		t.Errorf("a key switched the view while too small: %v", m.view)
	}
}

func TestQuitKeys(t *testing.T) {
	for _, k := range []tea.KeyMsg{press("q"), {Type: tea.KeyCtrlC}} {
		f := newFake()
		tm := start(t, loaded(t, f, 80, 24), 80, 24)
		tm.Send(k)
		tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
	}
}

func TestViewSwitching(t *testing.T) {
	f := newFake()
	var tm tea.Model = loaded(t, f, 80, 24)
	steps := []struct {
		key  string
		want view
	}{
		{"tab", viewCharts}, {"tab", viewNeighbours}, {"tab", viewLedger}, {"tab", viewOverview},
		{"shift+tab", viewLedger}, {"2", viewCharts}, {"3", viewNeighbours}, {"1", viewOverview}, {"4", viewLedger},
	}
	for _, s := range steps {
		tm, _ = tm.Update(press(s.key))
		if got := tm.(Model).view; got != s.want {
			t.Fatalf("after %s: view %v, want %v", s.key, got, s.want)
		}
		if !strings.Contains(tm.View(), "["+sprintf("%d %s", s.want+1, viewNames[s.want])+"]") {
			t.Errorf("after %s the tab is not marked", s.key)
		}
	}
}

func TestLiveEventUpdatesOverview(t *testing.T) {
	f := newFake()
	tm := start(t, loaded(t, f, 80, 24), 80, 24)
	waitOutput(t, tm, "-2317 W")
	deadline := time.Now().Add(5 * time.Second)
	for f.subscribers() == 0 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond) // polling a condition with a deadline
	}
	f.mu.Lock()
	live := f.state.Live
	live.Reading.PowerImportW.V, live.Reading.PowerExportW.V = 1234, 0
	live.Meter.LastTelegram = ptr(testNow)
	// as a real household does, the state says what the event says: a
	// state reload (the slow tick) in the same frame must not undo it
	f.state.Live = live
	f.mu.Unlock()
	f.send(household.Event{Kind: household.EventLive, Live: live, Sample: household.Sample{Time: testNow.Add(time.Second), ImportW: 1234}})
	waitOutput(t, tm, "+1234 W", "importing from the grid", "at least 1234 W")
	m := final(t, tm)
	if s, _ := m.live.Last(); s.ImportW != 1234 {
		t.Errorf("live ring last = %+v", s)
	}
}

func TestIncomingEventNotifies(t *testing.T) {
	f := newFake()
	tm := start(t, loaded(t, f, 80, 24), 80, 24)
	deadline := time.Now().Add(5 * time.Second)
	for f.subscribers() == 0 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond) // polling a condition with a deadline
	}
	p := f.state.Pledges[0]
	p.FromName, p.EnergyWh = "Dev", 2500
	f.send(household.Event{Kind: household.EventIncoming, Pledge: &p})
	waitOutput(t, tm, "Dev pledged you 2.5 kWh for 15:00-16:00: a accept, d decline.")
	final(t, tm)
}

func TestMeterOffline(t *testing.T) {
	f := newFake()
	f.state.Live.Meter.Online = false
	f.state.Live.Meter.OfflineSince = ptr(testNow.Add(-8 * time.Minute))
	f.state.Live.Meter.LastTelegram = ptr(testNow.Add(-8 * time.Minute))
	f.state.Live.Meter.LastError = "read /dev/ttyUSB0: no such device"
	v := loaded(t, f, 100, 30).View()
	for _, want := range []string{"OFFLINE since 13:12", "(8 min)", "last telegram 8 min ago", "no such device"} {
		if !strings.Contains(v, want) {
			t.Errorf("want %q in:\n%s", want, v)
		}
	}
}

// TestMeterNotConfigured: a home without a meter says so and how to add
// one; a meter still detecting its protocol says that, not "auto".
func TestMeterNotConfigured(t *testing.T) {
	f := newFake()
	f.state.Live.Meter = household.MeterState{Protocol: "auto", ClockOK: true}
	f.state.Live.HasReading = false
	v := loaded(t, f, 160, 48).View()
	for _, want := range []string{"no meter configured", "commons meter ports", "config.json"} {
		if !strings.Contains(v, want) {
			t.Errorf("want %q in:\n%s", want, v)
		}
	}
	f = newFake()
	f.state.Live.Meter = household.MeterState{Protocol: "auto", Port: "/dev/ttyUSB0", ClockOK: true}
	f.state.Live.HasReading = false
	v = loaded(t, f, 160, 48).View()
	if !strings.Contains(v, "detecting the protocol") || strings.Contains(v, "no meter configured") {
		t.Errorf("a meter on a port before its first telegram:\n%s", v)
	}
	if strings.Contains(v, " auto ") {
		t.Errorf("the meter line says auto:\n%s", v)
	}
}

// TestHubLine: a household with a community hub sees the link's state on
// Overview; one without a hub sees no hub line.
func TestHubLine(t *testing.T) {
	refused := "nats: Authorization Violation"
	tests := []struct {
		name  string
		relay *household.RelayState
		want  []string
		not   []string
	}{
		{"no hub", nil, nil, []string{"Hub"}},
		{"connected", &household.RelayState{URL: "nats://hub.example:4222", Running: true, Connected: true, LastMessage: ptr(testNow.Add(-12 * time.Second)), Refused: 2},
			[]string{"Hub", "nats://hub.example:4222", "● connected", "last message 12 s ago", "2 refused"}, []string{"retrying"}},
		{"refused", &household.RelayState{URL: "nats://hub.example:4222", Running: true, LastError: &refused},
			[]string{"Hub", "not connected, retrying", "Authorization Violation"}, []string{"● connected"}},
		{"no daemon", &household.RelayState{URL: "nats://hub.example:4222"},
			[]string{"Hub", "not linked: no daemon is running"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.state.Relay = tc.relay
			v := loaded(t, f, 120, 40).View()
			for _, w := range tc.want {
				if !strings.Contains(v, w) {
					t.Errorf("want %q in:\n%s", w, v)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(v, w) {
					t.Errorf("did not want %q in:\n%s", w, v)
				}
			}
		})
	}
}

// TestQueuedPledgeMarked: in the ledger a pledge whose latest message the
// counterparty's box has not acknowledged carries "…" after its state;
// one that reached it does not.
func TestQueuedPledgeMarked(t *testing.T) {
	f := newFake()
	tm := start(t, loaded(t, f, 160, 48), 160, 48)
	send(tm, "4")
	waitOutput(t, tm, "Delivered")
	v := final(t, tm).View()
	for _, line := range strings.Split(v, "\n") {
		switch {
		case strings.Contains(line, "p1bob000") && !strings.Contains(line, "pledged…"):
			t.Errorf("the queued pledge to Bob is not marked: %q", line)
		case strings.Contains(line, "p5bob000") && strings.Contains(line, "…"):
			t.Errorf("a delivered pledge is marked queued: %q", line)
		}
	}
	if !strings.Contains(v, "… not yet reached them") {
		t.Error("the ledger does not say what … means")
	}
}

// TestStateAskedBeforeALiveEventKeepsItsFigures: a state answer to a
// question asked before the latest live event does not put the older
// power figures back.
func TestStateAskedBeforeALiveEventKeepsItsFigures(t *testing.T) {
	f := newFake()
	m := loaded(t, f, 100, 30)
	cmd := m.loadState() // asked now, answered after the event below
	live := f.state.Live
	live.Reading.PowerImportW.V, live.Reading.PowerExportW.V = 1234, 0
	var tm tea.Model = m
	tm, _ = tm.Update(eventMsg{ev: household.Event{Kind: household.EventLive, Live: live}, now: testNow})
	tm, _ = tm.Update(cmd())
	v := tm.View()
	if !strings.Contains(v, "importing from the grid") || strings.Contains(v, "exporting to the grid") {
		t.Errorf("the older state put the older power back:\n%s", v)
	}
	// a state asked for after the event is shown whole
	m = tm.(Model)
	tm, _ = tm.Update(m.loadState()())
	if v := tm.View(); !strings.Contains(v, "exporting to the grid") {
		t.Errorf("a state asked for after the event was not shown:\n%s", v)
	}
}

func TestProductionMeterShowsMeasuredShares(t *testing.T) {
	f := newFake()
	f.state.Home.Production = true
	f.state.Live.ProductionW = someW(3817)
	f.state.Live.Today.ProductionWh = ptr(int64(20000))
	v := loaded(t, f, 100, 40).View()
	// home use = import 0 - export 2317 + solar 3817 = 1500 W;
	// today: self = 20000-12345 = 7655 Wh; use = 4321+7655 = 11976 Wh;
	// shares rounded to nearest: 38.3 % and 63.9 %
	for _, want := range []string{"3817 W", "measured", "1500 W", "derived: import - export + solar",
		"20 kWh", "11.976 kWh", "38 %", "64 %"} {
		if !strings.Contains(v, want) {
			t.Errorf("want %q in:\n%s", want, v)
		}
	}
	if strings.Contains(v, "need a production meter") {
		t.Error("still says a production meter is needed")
	}
}

// At 80x24 a home with everything (a production meter, a hub, an
// incoming pledge) still shows its open pledges on Overview, and the hint
// line keeps help and quit.
func TestOverviewAt80x24KeepsOpenPledges(t *testing.T) {
	f := newFake()
	f.state.Home.Production = true
	f.state.Live.ProductionW = someW(3817)
	f.state.Live.Today.ProductionWh = ptr(int64(20000))
	f.state.Relay = &household.RelayState{URL: "nats://hub.example:4222", Running: true, Connected: true, LastMessage: ptr(testNow.Add(-12 * time.Second))}
	v := loaded(t, f, 80, 24).View()
	lines := strings.Split(v, "\n")
	if len(lines) != 24 {
		t.Fatalf("%d lines, want 24:\n%s", len(lines), v)
	}
	if !regexp.MustCompile(`open pledges +2`).MatchString(v) {
		t.Errorf("no open pledges on Overview at 80x24:\n%s", v)
	}
	if last := lines[23]; !strings.Contains(last, "? help") || !strings.Contains(last, "q quit") {
		t.Errorf("hint line %q", last)
	}
}

func TestGridOnlyIsHonest(t *testing.T) {
	f := newFake()
	v := loaded(t, f, 80, 24).View()
	for _, want := range []string{"measured by the grid meter", "derived: what you export is produced here",
		"need a production meter"} {
		if !strings.Contains(v, want) {
			t.Errorf("want %q in:\n%s", want, v)
		}
	}
}

func TestNeighbourMarkers(t *testing.T) {
	f := newFake()
	var tm tea.Model = loaded(t, f, 160, 48)
	tm, _ = tm.Update(press("3"))
	v := tm.View()
	for _, want := range []string{"! Carla", "! Dev", "feed forked at seq 42", "2 failed verification", "needs 2300 W", "surplus 1200 W"} {
		if !strings.Contains(v, want) {
			t.Errorf("want %q in:\n%s", want, v)
		}
	}
	if strings.Contains(v, "! Anna") {
		t.Error("Anna marked although her feed is fine")
	}
}

func TestChartSpanSwitchLoadsAggregates(t *testing.T) {
	f := newFake()
	var tm tea.Model = loaded(t, f, 120, 40)
	tm, _ = tm.Update(press("2"))
	before := f.aggCalls
	tm, cmd := tm.Update(press("l"))
	if cmd == nil {
		t.Fatal("no load command for the 7 day span")
	}
	if !strings.Contains(tm.View(), "loading 7 days") {
		t.Errorf("no loading note:\n%s", tm.View())
	}
	tm, _ = tm.Update(cmd())
	if f.aggCalls != before+1 {
		t.Errorf("Aggregates called %d times, want 1", f.aggCalls-before)
	}
	v := tm.View()
	if !strings.Contains(v, "[7 days]") || !strings.Contains(v, "Mon 15") {
		t.Errorf("7 day chart without day labels:\n%s", v)
	}
	// a stale answer for another span is ignored
	tm, _ = tm.Update(aggMsg{span: span1h, now: testNow})
	if tm.(Model).charts.bucketsOf != span7d {
		t.Error("a stale 1 h answer replaced the 7 day buckets")
	}
}

func TestColourProfiles(t *testing.T) {
	f := newFake()
	mk := func(p termenv.Profile, dark bool) string {
		r := lipgloss.NewRenderer(io.Discard)
		r.SetColorProfile(p)
		r.SetHasDarkBackground(dark)
		o := testOptions(80, 24)
		o.Renderer = r
		m := New(f, o)
		st, _ := f.State(context.Background())
		tm, _ := m.Update(stateMsg{state: st, now: testNow})
		return tm.View()
	}
	if v := mk(termenv.Ascii, true); strings.Contains(v, "\x1b[") {
		t.Error("escape sequences under the Ascii profile (NO_COLOR)")
	}
	dark, light := mk(termenv.TrueColor, true), mk(termenv.TrueColor, false)
	// export colour: dark #34D399, light #047857
	if !strings.Contains(dark, "38;2;52;211;153") {
		t.Error("dark background does not use the dark export colour")
	}
	if !strings.Contains(light, "38;2;4;120;87") {
		t.Error("light background does not use the light export colour")
	}
	if v := mk(termenv.ANSI256, true); strings.Contains(v, "38;2;") || !strings.Contains(v, "38;5;") {
		t.Error("256-colour profile not respected")
	}
}

func TestASCIICharts(t *testing.T) {
	f := newFake()
	o := testOptions(120, 40)
	o.ASCII = true
	m := New(f, o)
	st, _ := f.State(context.Background())
	ss, _ := f.Samples(context.Background(), testNow.Add(-time.Hour))
	var tm tea.Model = m
	tm, _ = tm.Update(stateMsg{state: st, now: testNow})
	tm, _ = tm.Update(samplesMsg{samples: ss})
	tm, _ = tm.Update(press("2"))
	v := tm.View()
	for _, r := range v {
		if r >= 0x2800 && r <= 0x28FF {
			t.Fatalf("braille rune %q in ASCII mode", r)
		}
	}
}

func TestOvertakenStateIgnored(t *testing.T) {
	f := newFake()
	var tm tea.Model = loaded(t, f, 80, 24)
	newer, _ := f.State(context.Background())
	older := newer
	older.Home.Name = "Old name"
	tm, _ = tm.Update(stateMsg{seq: 3, state: newer, now: testNow})
	tm, _ = tm.Update(stateMsg{seq: 2, state: older, now: testNow})
	if got := tm.(Model).state.Home.Name; got != "Alice" {
		t.Errorf("an overtaken answer replaced the state: name %q", got)
	}
}

func TestTinyAndOddSizesDoNotPanic(t *testing.T) {
	f := newFake()
	var tm tea.Model = loaded(t, f, 80, 24)
	for _, sz := range [][2]int{{0, 0}, {1, 1}, {10, 3}, {79, 24}, {80, 23}, {80, 24}, {300, 100}} {
		tm, _ = tm.Update(tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
		for _, k := range []string{"1", "2", "3", "enter", "4", "p", "esc", "?"} {
			tm, _ = tm.Update(press(k))
			_ = tm.View()
		}
		if sz[0] < MinWidth || sz[1] < MinHeight {
			if v := tm.View(); sz[0] >= 40 && !strings.Contains(v, "too small") {
				t.Errorf("%dx%d: no too-small message:\n%s", sz[0], sz[1], v)
			}
		}
	}
}

func TestLiveWindowAndDetailKeys(t *testing.T) {
	f := newFake()
	var tm tea.Model = loaded(t, f, 120, 40)
	tm, _ = tm.Update(press("2"))
	if !strings.Contains(tm.View(), "last 15 min") {
		t.Fatal("live window is not 15 min by default")
	}
	tm, _ = tm.Update(press("w"))
	if !strings.Contains(tm.View(), "last 1 h") {
		t.Errorf("w did not switch to 1 h:\n%s", tm.View())
	}
	tm, _ = tm.Update(press("w"))
	if !strings.Contains(tm.View(), "last 5 min") {
		t.Errorf("w did not wrap to 5 min")
	}
	// neighbour detail: enter, pledge from it goes to that neighbour, esc back
	tm, _ = tm.Update(press("3"))
	tm, _ = tm.Update(press("j"))
	tm, _ = tm.Update(press("j"))
	tm, _ = tm.Update(press("enter"))
	if !strings.Contains(tm.View(), "feed forked at seq 42") {
		t.Fatalf("Carla's detail lacks the fork:\n%s", tm.View())
	}
	tm, _ = tm.Update(press("p"))
	if m := tm.(Model); !m.form.open || m.form.to != "h-carla-004" {
		t.Errorf("pledge from detail: open=%v to=%q", m.form.open, m.form.to)
	}
	tm, _ = tm.Update(press("esc"))
	tm, _ = tm.Update(press("esc"))
	if m := tm.(Model); m.neighbours.detail != "" || m.form.open {
		t.Errorf("esc did not go back: detail=%q form=%v", m.neighbours.detail, m.form.open)
	}
	// ledger filter cycles and esc clears it
	tm, _ = tm.Update(press("4"))
	tm, _ = tm.Update(press("f"))
	tm, _ = tm.Update(press("f"))
	if !strings.Contains(tm.View(), "filter: Bob") || strings.Contains(tm.View(), "← Anna") {
		t.Errorf("second f is not Bob only:\n%s", tm.View())
	}
	tm, _ = tm.Update(press("esc"))
	if !strings.Contains(tm.View(), "filter: all neighbours") {
		t.Errorf("esc did not clear the filter")
	}
}

func TestStateLoadFailureIsShownAndRetried(t *testing.T) {
	f := newFake()
	f.stateErr = io.ErrUnexpectedEOF
	var tm tea.Model = New(f, testOptions(80, 24))
	st, err := f.State(context.Background())
	tm, _ = tm.Update(stateMsg{seq: 1, state: st, err: err, now: testNow})
	if v := tm.View(); !strings.Contains(v, "could not load the household state: unexpected EOF") {
		t.Fatalf("load error not shown:\n%s", v)
	}
	tm, cmd := tm.Update(tickMsg{now: testNow})
	if cmd == nil {
		t.Fatal("no retry after a failed load")
	}
	f.mu.Lock()
	f.stateErr = nil
	f.mu.Unlock()
	// run the batch: one of its commands is the retried State call (the
	// other is the next 5 s tick, left running)
	results := make(chan tea.Msg, 8)
	for _, c := range cmd().(tea.BatchMsg) {
		if c != nil {
			go func() { results <- c() }()
		}
	}
	var got bool
	deadline := time.After(4 * time.Second)
	for !got {
		select {
		case msg := <-results:
			if sm, ok := msg.(stateMsg); ok {
				tm, _ = tm.Update(sm)
				got = true
			}
		case <-deadline:
			t.Fatal("the retried State call never answered")
		}
	}
	if !got || !strings.Contains(tm.View(), "Power now") || strings.Contains(tm.View(), "could not load") {
		t.Errorf("retry did not recover (got state %v):\n%s", got, tm.View())
	}
}

func TestProductionSeriesInCharts(t *testing.T) {
	f := newFake()
	f.state.Home.Production = true
	for i := range f.samples {
		f.samples[i].ProductionW = someW(3000)
	}
	var tm tea.Model = loaded(t, f, 120, 40)
	tm, _ = tm.Update(press("2"))
	m := tm.(Model)
	start, end, n := m.charts.liveWindow(120)
	sets := m.charts.liveSeries(start, end, n)
	if len(sets) != 4 || sets[2].name != setSolar || sets[3].name != setHome || len(sets[2].pts) == 0 {
		t.Fatalf("series with production: %d sets", len(sets))
	}
	// home use = import - export + production, per point
	for i, p := range sets[3].pts {
		if want := sets[0].pts[i].Value + sets[1].pts[i].Value + sets[2].pts[i].Value; p.Value != want {
			t.Fatalf("point %d: home use %v, want %v", i, p.Value, want)
		}
	}
	if !strings.Contains(tm.View(), "solar") || !strings.Contains(tm.View(), "home use") {
		t.Errorf("legend lacks the production series:\n%s", tm.View())
	}
}

func TestBatchedKeysAreSplit(t *testing.T) {
	f := newFake()
	var tm tea.Model = loaded(t, f, 80, 24)
	// "3jp1.5kWh" arriving as one read: view 3, down to Bob, pledge, and
	// the rest typed into the amount field
	tm, _ = tm.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("3jp1.5kWh")})
	m := tm.(Model)
	if m.view != viewNeighbours || !m.form.open || m.form.to != "h-bob-00003" || m.form.amount.Value() != "1.5kWh" {
		t.Errorf("view %v form open %v to %q amount %q", m.view, m.form.open, m.form.to, m.form.amount.Value())
	}
	// a paste is never split
	tm, _ = loaded(t, f, 80, 24).Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("3q"), Paste: true})
	if tm.(Model).view != viewOverview {
		t.Error("a pasted text was taken as keys")
	}
}

func TestCompactOverviewKeepsTheMeterLine(t *testing.T) {
	for _, production := range []bool{false, true} {
		f := newFake()
		f.state.Home.Production = production
		f.state.Live.ProductionW = someW(3817)
		f.state.Live.Today.ProductionWh = ptr(int64(20000))
		var tm tea.Model = loaded(t, f, 80, 24)
		tm, _ = tm.Update(press("a")) // a status line too: the smallest body
		v := tm.View()
		if !strings.Contains(v, "Meter dsmr") || !strings.Contains(v, "● online") {
			t.Errorf("production=%v: meter health cut off at 80x24:\n%s", production, v)
		}
		if h := lipgloss.Height(v); h != 24 {
			t.Errorf("production=%v: %d lines", production, h)
		}
	}
}

func TestStateReloadedWhenOld(t *testing.T) {
	f := newFake()
	var tm tea.Model = loaded(t, f, 80, 24)
	seq := func() int { return tm.(Model).stateSeq }
	before := seq()
	tm, _ = tm.Update(tickMsg{now: testNow.Add(10 * time.Second)})
	if seq() != before {
		t.Fatal("a tick 10 s after a load asked for the state again")
	}
	tm, _ = tm.Update(tickMsg{now: testNow.Add(31 * time.Second)})
	if seq() != before+1 {
		t.Fatal("a tick 31 s after a load did not reload the state")
	}
	// not again on the next tick while that load is under way
	tm, _ = tm.Update(tickMsg{now: testNow.Add(36 * time.Second)})
	if seq() != before+1 {
		t.Error("a second reload was issued 5 s later")
	}
}

func TestCancelFromNeighbourDetail(t *testing.T) {
	f := newFake()
	var tm tea.Model = loaded(t, f, 80, 24)
	for _, k := range []string{"3", "j", "enter", "c"} { // Bob's history, first row: our open pledge
		tm, _ = tm.Update(press(k))
	}
	m := tm.(Model)
	if !m.confirm.open || m.confirm.id != "p1bob00001" {
		t.Fatalf("confirm open=%v id=%q:\n%s", m.confirm.open, m.confirm.id, tm.View())
	}
	tm, cmd := tm.Update(press("y"))
	if cmd == nil {
		t.Fatal("no cancel command after y")
	}
	tm, _ = tm.Update(cmd())
	if !slices.Contains(f.callLog(), "cancel p1bob00001") || !strings.Contains(tm.View(), "cancelled.") {
		t.Errorf("calls %q, view:\n%s", f.callLog(), tm.View())
	}
}

// A phase bar shows current, which has no direction; its colour says where
// the phase's power flows, so an exporting phase does not wear the import
// colour.
func TestPhaseBarColourFollowsDirection(t *testing.T) {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.TrueColor)
	r.SetHasDarkBackground(true)
	o := testOptions(80, 24)
	o.Renderer = r
	m := New(newFake(), o)
	exportFill := m.com.st.exportS.Render("█")
	importFill := m.com.st.barFill.Render("█")
	if exportFill == importFill {
		t.Fatal("the export and import styles render alike; the test cannot tell them apart")
	}
	tests := []struct {
		name string
		ph   meter.Phase
		want string
	}{
		{"exporting", meter.Phase{CurrentMA: meter.Some(10000), PowerExportW: meter.Some(2317), PowerImportW: meter.Some(0)}, exportFill},
		{"importing", meter.Phase{CurrentMA: meter.Some(10000), PowerImportW: meter.Some(2300), PowerExportW: meter.Some(0)}, importFill},
	}
	for _, tt := range tests {
		line := m.overview.phaseLine(1, tt.ph, 25000, 20)
		if !strings.Contains(line, strings.TrimSuffix(tt.want, "\x1b[0m")) {
			t.Errorf("%s phase: bar not in the expected colour: %q", tt.name, line)
		}
	}
}

// TestReadOnlyHidesAndDisablesActions: a viewer's dashboard names no
// pledge, accept, decline or cancel key in its hint line, banner or help,
// and those keys call nothing on the backend.
func TestReadOnlyHidesAndDisablesActions(t *testing.T) {
	f := newFake()
	for _, v := range []string{"1", "2", "3", "4"} {
		m := New(f, Options{Renderer: asciiRenderer(), Now: testClock, Location: testZone, Width: 160, Height: 48, ReadOnly: true})
		var tm tea.Model = m
		st, _ := f.State(context.Background())
		tm, _ = tm.Update(tea.WindowSizeMsg{Width: 160, Height: 48})
		tm, _ = tm.Update(stateMsg{state: st, now: testNow})
		tm, _ = tm.Update(press(v))
		hint := tm.View()
		tm, _ = tm.Update(press("?"))
		helpView := tm.View()
		for _, out := range []string{hint, helpView} {
			for _, bad := range []string{"pledge to", "accept incoming", "a accept", "decline incoming", "cancel own", "answer selected", "p pledge"} {
				if strings.Contains(out, bad) {
					t.Errorf("read-only view %s shows %q:\n%s", v, bad, out)
				}
			}
		}
		tm, _ = tm.Update(press("?"))
		for _, k := range []string{"p", "a", "d", "c", "enter", "y"} {
			var cmd tea.Cmd
			tm, cmd = tm.Update(press(k))
			if cmd != nil {
				if msg := cmd(); msg != nil {
					tm, _ = tm.Update(msg)
				}
			}
		}
		if tm.(Model).form.open {
			t.Errorf("view %s: p opened the pledge form on a read-only dashboard", v)
		}
	}
	for _, c := range f.callLog() {
		if strings.HasPrefix(c, "pledge") || strings.HasPrefix(c, "accept") || strings.HasPrefix(c, "decline") || strings.HasPrefix(c, "cancel") {
			t.Errorf("a read-only dashboard called the backend: %s", c)
		}
	}
}
