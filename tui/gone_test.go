package tui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/commons-energy/commons/share/household"
)

// stoppedErr is what a backend whose daemon stopped returns.
type stoppedErr struct{}

func (stoppedErr) Error() string { return "the daemon stopped (start it with: commons daemon)" }
func (stoppedErr) Unwrap() error { return household.ErrUnavailable }

var errStopped error = stoppedErr{}

// When the backend says the household cannot be reached, the dashboard says
// so in the backend's words, stops showing the last state as current,
// retries with a growing delay (at most retryMax), and comes back by itself.
func TestBackendGoneAndBack(t *testing.T) {
	f := newFake()
	m := loaded(t, f, 100, 30)
	if v := m.View(); !strings.Contains(v, "● online") {
		t.Fatalf("not online at first:\n%s", v)
	}
	f.stateErr = errStopped
	var tm any
	tm, cmd := m.Update(m.loadState()())
	m = tm.(Model)
	if cmd == nil {
		t.Fatal("no retry scheduled")
	}
	// the other loads failing at the same time do not advance the backoff
	for _, msg := range []any{samplesMsg{err: errStopped}, aggMsg{span: m.charts.span, err: errStopped, now: testNow}} {
		var c2 tea.Cmd
		tm, c2 = m.Update(msg)
		m = tm.(Model)
		if c2 != nil || m.retryIn != retryFirst {
			t.Errorf("after %T: another retry scheduled (delay %v)", msg, m.retryIn)
		}
	}
	v := m.View()
	for _, want := range []string{"the daemon stopped (start it with: commons daemon) · waiting for it to return · q quits",
		"household not reachable since 13:20", "not known: the household is not reachable"} {
		if !strings.Contains(v, want) {
			t.Errorf("want %q in:\n%s", want, v)
		}
	}
	for _, not := range []string{"● online", "exporting to the grid", "dial unix", "could not load"} {
		if strings.Contains(v, not) {
			t.Errorf("%q still shown while the household is unreachable:\n%s", not, v)
		}
	}
	// retries back off: 0.5 s, 1 s, 2 s, 4 s, 5 s, 5 s
	var delays []time.Duration
	for i := 0; i < 6; i++ {
		delays = append(delays, m.retryIn)
		tm, cmd = m.Update(retryMsg{tag: m.retryTag})
		m = tm.(Model)
		if cmd == nil {
			t.Fatal("a retry did not ask for the state")
		}
		tm, _ = m.Update(cmd())
		m = tm.(Model)
	}
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	if fmt.Sprint(delays) != fmt.Sprint(want) {
		t.Errorf("retry delays %v, want %v", delays, want)
	}
	// an outdated retry does nothing
	if _, cmd := m.Update(retryMsg{tag: m.retryTag - 1}); cmd != nil {
		t.Error("a superseded retry asked for the state")
	}

	f.stateErr = nil
	tm, cmd = m.Update(retryMsg{tag: m.retryTag})
	m = tm.(Model)
	tm, _ = m.Update(cmd())
	m = tm.(Model)
	v = m.View()
	if !strings.Contains(v, "● online") || strings.Contains(v, "daemon stopped") || strings.Contains(v, "not reachable") {
		t.Errorf("not back after the household answered:\n%s", v)
	}
}
