package tui

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/commons-energy/commons/share/household"
)

// TestTmuxChild is the dashboard process of TestInRealTerminal: it runs
// only when that test starts it inside tmux.
func TestTmuxChild(t *testing.T) {
	out := os.Getenv("COMMONS_TUI_TMUX_CHILD")
	if out == "" {
		return // not started by TestInRealTerminal: nothing to do
	}
	f := newFake()
	f.delivery = household.Queued
	f.note = "Bob is offline, will retry"
	start := time.Now()
	clock := func() time.Time { return testNow.Add(time.Since(start)) }
	popts := []tea.ProgramOption{tea.WithAltScreen()}
	if fps, err := strconv.Atoi(os.Getenv("COMMONS_TUI_FPS")); err == nil { // for CPU measurements
		popts = append(popts, tea.WithFPS(fps))
	}
	p := tea.NewProgram(New(f, Options{Now: clock, Location: testZone}), popts...)
	done := make(chan struct{})
	go func() { // one telegram a second, as a DSMR 5 meter sends
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
			}
			if f.subscribers() == 0 {
				continue
			}
			now := clock()
			live := f.state.Live
			live.Reading.PowerImportW.V, live.Reading.PowerExportW.V = 0, 1999
			live.Meter.LastTelegram = ptr(now)
			f.send(household.Event{Kind: household.EventLive, Live: live, Sample: household.Sample{Time: now, ExportW: 1999}})
		}
	}()
	_, err := p.Run()
	close(done)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, []byte(strings.Join(f.callLog(), "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestInRealTerminal runs the dashboard in tmux, a real terminal: it waits
// for the first frame, pledges from the neighbour list with keys, quits
// with q and checks the exit status and that the screen was restored.
func TestInRealTerminal(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Fatal("tmux is needed for this test (test.sh installs it): ", err)
	}
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	status := filepath.Join(dir, "status")
	session := fmt.Sprintf("commons-tui-%d", os.Getpid())
	sock := filepath.Join(dir, "tmux.sock") // a private server: no interference with others
	tm := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(tmux, append([]string{"-S", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	cmd := fmt.Sprintf("env TERM=xterm-256color COMMONS_TUI_TMUX_CHILD=%s %s -test.run '^TestTmuxChild$'; echo $? > %s",
		calls, os.Args[0], status)
	tm("new-session", "-d", "-s", session, "-x", "100", "-y", "30", cmd)
	t.Cleanup(func() { exec.Command(tmux, "-S", sock, "kill-server").Run() })
	tm("set-option", "-t", session, "remain-on-exit", "on")
	pane := func() string { return tm("capture-pane", "-p", "-t", session) }
	wait := func(want ...string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			s := pane()
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(s, w)
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("screen never showed %q:\n%s", want, s)
			}
			time.Sleep(50 * time.Millisecond) // polling the screen with a deadline
		}
	}
	keys := func(k ...string) { tm(append([]string{"send-keys", "-t", session}, k...)...) }

	wait("commons · Alice", "Power now")
	wait("-1999 W") // a live telegram arrived and was drawn
	keys("3")
	wait("[3 Neighbours]", "Bob")
	keys("j", "p")
	wait("Pledge energy")
	keys("-l", "2 kWh")
	keys("Tab", "Right", "Enter")
	wait("Forecast surplus", "14:00-15:00")
	keys("Enter")
	wait("Queued: Bob is offline, will retry.")
	keys("Enter", "q")
	deadline := time.Now().Add(15 * time.Second)
	for {
		if b, err := os.ReadFile(status); err == nil && len(b) > 0 {
			if got := strings.TrimSpace(string(b)); got != "0" {
				t.Fatalf("dashboard exited with status %s", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dashboard did not exit after q:\n%s", pane())
		}
		time.Sleep(50 * time.Millisecond) // polling for the exit status with a deadline
	}
	if s := pane(); strings.Contains(s, "Power now") || strings.Contains(s, "Pledge energy") {
		t.Errorf("the terminal still shows the dashboard after exit (alternate screen not left):\n%s", s)
	}
	b, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "pledge to=h-bob-00003 wh=2000 14:00-15:00") {
		t.Errorf("backend calls: %s", b)
	}
}
