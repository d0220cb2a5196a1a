package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tmuxTerm is a real terminal: a detached tmux session on a private
// socket in the test's temporary folder.
type tmuxTerm struct {
	tb   testing.TB
	sock string
	name string
}

// newTmux starts command (run by tmux through sh -c) in a w x h session.
func newTmux(tb testing.TB, dir string, w, h int, command string) *tmuxTerm {
	tb.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		tb.Skip("tmux is not installed (test.sh installs it): the terminal end-to-end test needs a real terminal")
	}
	s := &tmuxTerm{tb: tb, sock: filepath.Join(dir, "tmux.sock"), name: "e2e"}
	tb.Cleanup(func() { exec.Command("tmux", "-S", s.sock, "kill-server").Run() })
	s.tmux("new-session", "-d", "-s", s.name, "-x", strconv.Itoa(w), "-y", strconv.Itoa(h), command)
	return s
}

func (s *tmuxTerm) tmux(args ...string) string {
	s.tb.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", s.sock}, args...)...).CombinedOutput()
	if err != nil {
		s.tb.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// screen is the visible pane as plain text.
func (s *tmuxTerm) screen() string { return s.tmux("capture-pane", "-p", "-t", s.name) }

// keys sends tmux key names (e.g. "Enter", "Escape") or literal text.
func (s *tmuxTerm) keys(keys ...string) {
	s.tmux(append([]string{"send-keys", "-t", s.name}, keys...)...)
}

// waitFor polls the screen until cond holds and returns it; on the
// deadline it fails with the last screen.
func (s *tmuxTerm) waitFor(what string, timeout time.Duration, cond func(string) bool) string {
	s.tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		scr := s.screen()
		if cond(scr) {
			return scr
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("waited %v for %s; the screen:\n%s", timeout, what, scr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func contains(subs ...string) func(string) bool {
	return func(scr string) bool {
		for _, sub := range subs {
			if !strings.Contains(scr, sub) {
				return false
			}
		}
		return true
	}
}

// waitFile polls until path exists with content and returns it.
func waitFile(tb testing.TB, path string, timeout time.Duration) string {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if b, err := os.ReadFile(path); err == nil && bytes.HasSuffix(b, []byte("\n")) {
			return string(b)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("waited %v for %s", timeout, path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// shellLine runs commandLine in a pane that outlives it: it prints a
// marker before and after (with the exit status in exitFile), then keeps
// the pane open, so the test can see what the terminal shows afterwards.
func shellLine(commandLine, exitFile string) string {
	return fmt.Sprintf("echo shell-before; %s; echo EXIT=$? > %s; echo shell-after; exec sleep 600", commandLine, exitFile)
}

// TestDemoE2E runs `commons demo` in a real terminal, pledges to the
// selected neighbour from the neighbour list with the keyboard, waits for
// the neighbour to accept it over the real peer link, quits with q, and
// checks the exit status, that the alternate screen is gone and that the
// demo left nothing behind.
func TestDemoE2E(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (test.sh installs it): the terminal end-to-end test needs a real terminal")
	}
	dir := t.TempDir()
	bin := buildCommons(t, dir)
	tmp := filepath.Join(dir, "tmp") // the demo's TMPDIR: must be empty after exit
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	exitFile := filepath.Join(dir, "exit")
	line := fmt.Sprintf("TERM=xterm-256color TMPDIR=%s %s demo --seed 7 --log %s", tmp, bin, filepath.Join(dir, "demo.log"))
	term := newTmux(t, dir, 120, 40, shellLine(line, exitFile))
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "demo.log")); err == nil {
				t.Logf("demo log:\n%s", b)
			}
		}
	})

	term.waitFor("the dashboard", 30*time.Second, contains("1 Overview", "Power now", "Meter dsmr"))

	// The neighbour list, with the neighbours the demo introduced.
	term.keys("3")
	scr := term.waitFor("the neighbour list", 10*time.Second, contains("Neighbours · 4", "Sofia", "Femi", "Eva", "Nico"))
	if !strings.Contains(scr, "›") {
		t.Fatalf("no selected neighbour in the list:\n%s", scr)
	}

	// p opens the pledge form for the selected neighbour, amount focused.
	term.keys("p")
	scr = term.waitFor("the pledge form", 10*time.Second, contains("Pledge energy", "Amount", "next slot"))
	to := formRecipient(t, scr)
	term.keys("-l", "50")
	term.keys("Enter")
	term.waitFor("the preview", 10*time.Second, contains("Pledge 50 Wh to "+to, "sign and send"))
	term.keys("Enter")
	scr = term.waitFor("the pledge result", 15*time.Second, contains("Signed and stored."))
	if !strings.Contains(scr, "Delivered to "+to) && !strings.Contains(scr, "Queued") {
		t.Fatalf("the result says neither delivered nor queued:\n%s", scr)
	}
	term.keys("Enter") // close the result

	// The ledger shows the pledge; the neighbour accepts it by itself over
	// the peer link, and the dashboard learns of it.
	term.keys("4")
	term.waitFor("the accepted pledge in the ledger", 45*time.Second, func(s string) bool {
		for _, l := range strings.Split(s, "\n") {
			if strings.Contains(l, "→ "+to) && strings.Contains(l, "0.050") && strings.Contains(l, "accepted") {
				return true
			}
		}
		return false
	})

	term.keys("q")
	if got := waitFile(t, exitFile, 20*time.Second); strings.TrimSpace(got) != "EXIT=0" {
		t.Fatalf("commons demo exited with %q, want EXIT=0", got)
	}
	scr = term.waitFor("the shell after the demo", 5*time.Second, contains("shell-before", "shell-after"))
	for _, gone := range []string{"Overview", "Neighbours", "Ledger", "Power now"} {
		if strings.Contains(scr, gone) {
			t.Fatalf("the terminal still shows the dashboard (%q) after exit:\n%s", gone, scr)
		}
	}
	left, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("the demo left %d entries in its temporary folder, e.g. %s", len(left), left[0].Name())
	}
}

// formRecipient reads the neighbour's name from the form's "To" row.
func formRecipient(t *testing.T, scr string) string {
	t.Helper()
	for _, l := range strings.Split(scr, "\n") {
		i := strings.Index(l, "To ")
		if i < 0 {
			continue
		}
		f := strings.Fields(strings.TrimLeft(l[i+3:], " ‹"))
		if len(f) > 0 {
			return f[0]
		}
	}
	t.Fatalf("no recipient in the pledge form:\n%s", scr)
	return ""
}

// TestDemoSIGTERM stops a running demo with SIGTERM and checks that it
// exits 0, restores the terminal and removes its temporary folder.
func TestDemoSIGTERM(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (test.sh installs it): the terminal end-to-end test needs a real terminal")
	}
	dir := t.TempDir()
	bin := buildCommons(t, dir)
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	exitFile := filepath.Join(dir, "exit")
	pidFile := filepath.Join(dir, "pid")
	// A shell records its pid and becomes the demo (exec keeps the pid).
	line := fmt.Sprintf("sh -c 'echo $$ > %s; exec env TERM=xterm-256color TMPDIR=%s %s demo --neighbours 2'", pidFile, tmp, bin)
	term := newTmux(t, dir, 100, 30, shellLine(line, exitFile))
	term.waitFor("the dashboard", 30*time.Second, contains("1 Overview", "Power now"))
	pid, err := strconv.Atoi(strings.TrimSpace(waitFile(t, pidFile, 5*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := waitFile(t, exitFile, 20*time.Second); strings.TrimSpace(got) != "EXIT=0" {
		t.Fatalf("commons demo exited with %q after SIGTERM, want EXIT=0", got)
	}
	scr := term.waitFor("the shell after the demo", 5*time.Second, contains("shell-after"))
	if strings.Contains(scr, "Power now") {
		t.Fatalf("the terminal still shows the dashboard after SIGTERM:\n%s", scr)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("the demo left %d entries in its temporary folder after SIGTERM, e.g. %s", len(left), left[0].Name())
	}
}

// TestDashboardFirstRun runs the bare `commons` on a home that was never
// initialised: it prints how to start, exits 0, and creates nothing.
func TestDashboardFirstRun(t *testing.T) {
	dir := t.TempDir()
	bin := buildCommons(t, dir)
	home := filepath.Join(dir, "no-household-here")
	cmd := exec.Command(bin, "--home", home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("commons on an empty home: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"Welcome to commons",
		"There is no household in " + home,
		"commons --home " + home + " init --name",
		"commons meter ports",
		"commons demo",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("first-run message lacks %q:\n%s", want, out)
		}
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr is not empty:\n%s", stderr.String())
	}
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Errorf("the first-run message created %s (stat: %v)", home, err)
	}
}
