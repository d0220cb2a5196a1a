package main

import (
	"bytes"
	"errors"
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
	s := &tmuxTerm{tb: tb, sock: filepath.Join(dir, fmt.Sprintf("tmux-%d.sock", time.Now().UnixNano())), name: "e2e"}
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
			if strings.Contains(l, "→ "+to) && strings.Contains(l, "50 Wh") && strings.Contains(l, "accepted") {
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

// TestDashboardE2E runs the bare `commons` in a real terminal on an
// initialised home, once with the household in-process and once attached
// to a running daemon: the dashboard shows the household, other commands
// reach it meanwhile through the local socket, q exits 0 and restores the
// terminal; in-process the household is released on exit, attached the
// daemon keeps running.
func TestDashboardE2E(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (test.sh installs it): the terminal end-to-end test needs a real terminal")
	}
	bin := buildCommons(t, t.TempDir())
	for _, attached := range []bool{false, true} {
		name := map[bool]string{false: "in-process", true: "attached"}[attached]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			c := newCLI(t, bin)
			home := filepath.Join(dir, "alice")
			c.ok("--home", home, "init", "--name", "Alice", "--listen", "127.0.0.1:0")
			var d *daemonProc
			if attached {
				d = startDaemon(t, c, home)
				poll(t, "the daemon's socket", func() bool { _, err := os.Stat(filepath.Join(home, "commons.sock")); return err == nil })
			}
			exitFile := filepath.Join(dir, "exit")
			line := fmt.Sprintf("env %s TERM=xterm-256color %s --home %s", strings.Join(c.env, " "), bin, home)
			term := newTmux(t, dir, 100, 30, shellLine(line, exitFile))
			term.waitFor("the dashboard", 30*time.Second, contains("commons · Alice", "1 Overview", "Power now"))

			// The household answers other commands meanwhile (through the socket).
			var id idJSON
			c.json(&id, "--home", home, "id", "--json")
			if id.Name != "Alice" {
				t.Fatalf("id while the dashboard runs: %+v", id)
			}
			if !attached {
				r := c.run("", "--home", home, "daemon")
				if r.code != exitFailure || !strings.Contains(r.stderr, "commons dashboard") {
					t.Fatalf("a daemon on the dashboard's home: exit %d, stderr %q; want exit 1 naming the dashboard", r.code, r.stderr)
				}
			}

			term.keys("q")
			if got := waitFile(t, exitFile, 20*time.Second); strings.TrimSpace(got) != "EXIT=0" {
				t.Fatalf("commons exited with %q, want EXIT=0", got)
			}
			scr := term.waitFor("the shell after the dashboard", 5*time.Second, contains("shell-after"))
			if strings.Contains(scr, "Power now") {
				t.Fatalf("the terminal still shows the dashboard after exit:\n%s", scr)
			}
			if attached {
				if d.cmd.ProcessState != nil {
					t.Fatal("quitting the attached dashboard stopped the daemon")
				}
				c.ok("--home", home, "status")
				d.stop(t)
				return
			}
			if _, err := os.Stat(filepath.Join(home, "commons.sock")); !os.IsNotExist(err) {
				t.Errorf("the in-process dashboard left its socket behind (stat: %v)", err)
			}
			c.ok("--home", home, "neighbours", "list")
		})
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

// TestFullScreenNeedsTerminal: the dashboard and the demo started from a
// script (standard output not a terminal) say what to use instead, with
// exit 2, rather than failing inside the terminal library.
func TestFullScreenNeedsTerminal(t *testing.T) {
	dir := t.TempDir()
	bin := buildCommons(t, dir)
	c := newCLI(t, bin)
	home := filepath.Join(dir, "home")
	c.ok("--home", home, "init", "--name", "Scripted", "--listen", "127.0.0.1:0")
	for _, args := range [][]string{{"--home", home}, {"demo"}} {
		cmd := exec.Command(bin, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
			t.Fatalf("commons %v without a terminal: %v, want exit %d\nstderr: %s", args, err, exitUsage, stderr.String())
		}
		lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], "needs a terminal") || !strings.Contains(lines[0], "commons status --json") {
			t.Errorf("commons %v without a terminal: want one line saying what to use instead, got %q", args, stderr.String())
		}
		if stdout.Len() != 0 {
			t.Errorf("commons %v without a terminal wrote to stdout: %q", args, stdout.String())
		}
	}
	if _, err := os.Stat(filepath.Join(home, "commons.sock")); !os.IsNotExist(err) {
		t.Errorf("the refused dashboard left a socket (stat: %v)", err)
	}
}

// Benchmarks of the dashboard in a real terminal (numbers in
// docs/BENCHMARKS.md, "dashboard and demo"). Run them one at a time with
// -benchtime=1x for the idle ones: each idle run watches the process for
// idleWindow.

// idleWindow is how long the idle benchmarks watch the process.
const idleWindow = 60 * time.Second

// clockTicks is the kernel's USER_HZ, the unit of utime/stime in
// /proc/PID/stat (100 on every Linux this runs on).
const clockTicks = 100

// benchHome initialises a household whose meter is a `commons meter
// simulate` process (1 telegram/s over a real pty) and returns its home.
func benchHome(b *testing.B, dir, bin string) string {
	b.Helper()
	link := filepath.Join(dir, "meter")
	sim := exec.Command(bin, "meter", "simulate", "--link", link)
	if err := sim.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sim.Process.Signal(syscall.SIGTERM); sim.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(link); err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the simulated meter did not appear")
		}
		time.Sleep(20 * time.Millisecond)
	}
	home := filepath.Join(dir, "home")
	out, err := exec.Command(bin, "--home", home, "init", "--name", "Bench", "--meter", link, "--listen", "127.0.0.1:0").CombinedOutput()
	if err != nil {
		b.Fatalf("init: %v\n%s", err, out)
	}
	return home
}

// firstFrame starts command in a fresh tmux session whose shell waits for
// a line first, then sends that line (the person pressing Enter) and
// returns how long it took from there until the screen showed all of
// marks (polled every 2 ms). tmux's own start-up is not counted.
func firstFrame(b *testing.B, dir, command string, marks ...string) (*tmuxTerm, time.Duration) {
	b.Helper()
	term := newTmux(b, dir, 120, 40, "read go; "+command)
	term.waitFor("the waiting shell", 10*time.Second, func(string) bool { return true })
	cond := contains(marks...)
	start := time.Now()
	term.keys("Enter")
	deadline := start.Add(30 * time.Second)
	for {
		if cond(term.screen()) {
			return term, time.Since(start)
		}
		if time.Now().After(deadline) {
			b.Fatalf("no dashboard after 30 s:\n%s", term.screen())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// quit presses q and waits for the session to end.
func (s *tmuxTerm) quit(b *testing.B) {
	s.keys("q")
	deadline := time.Now().Add(20 * time.Second)
	for exec.Command("tmux", "-S", s.sock, "has-session", "-t", s.name).Run() == nil {
		if time.Now().After(deadline) {
			b.Fatalf("the dashboard did not quit:\n%s", s.screen())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkDashboardFirstFrame: from Enter on a shell line to the bare
// `commons` dashboard on screen (household opened in-process), and to its
// first reading. For scale it also reports the same measurement for a
// shell echo of the marker (what tmux and the polling cost) and for
// `commons --help` (what starting the binary costs).
func BenchmarkDashboardFirstFrame(b *testing.B) {
	dir := b.TempDir()
	bin := buildCommons(b, dir)
	home := benchHome(b, dir, bin)
	var frame, data, harness, help time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		term, f := firstFrame(b, dir, "echo 1 Over''view; exec sleep 60", "1 Overview")
		harness += f
		term.tmux("kill-server")
		term, f = firstFrame(b, dir, bin+" --help; exec sleep 60", "Available Commands")
		help += f
		term.tmux("kill-server")
		term, f = firstFrame(b, dir, "exec "+bin+" --home "+home, "1 Overview")
		start := time.Now()
		term.waitFor("a reading", 30*time.Second, contains("online · last telegram"))
		frame += f
		data += f + time.Since(start)
		term.quit(b)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(frame.Milliseconds())/n, "ms/first-frame")
	b.ReportMetric(float64(data.Milliseconds())/n, "ms/first-reading")
	b.ReportMetric(float64(harness.Milliseconds())/n, "ms/echo-baseline")
	b.ReportMetric(float64(help.Milliseconds())/n, "ms/help-baseline")
}

func BenchmarkDemoFirstFrame(b *testing.B) {
	dir := b.TempDir()
	bin := buildCommons(b, dir)
	var frame time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		term, f := firstFrame(b, dir, "exec env TMPDIR="+dir+" "+bin+" demo", "1 Overview", "online · last telegram")
		frame += f
		term.quit(b)
	}
	b.StopTimer()
	b.ReportMetric(float64(frame.Milliseconds())/float64(b.N), "ms/first-frame")
}

// BenchmarkDashboardIdle: the bare `commons` (household in-process, meter
// at 1 telegram/s) watched for idleWindow: CPU share of one core and RSS.
func BenchmarkDashboardIdle(b *testing.B) {
	dir := b.TempDir()
	bin := buildCommons(b, dir)
	home := benchHome(b, dir, bin)
	benchIdle(b, dir, "exec "+bin+" --home "+home)
}

// BenchmarkDemoIdle: the whole `commons demo` process (five households,
// five simulated meters, the peers and the dashboard) watched for
// idleWindow.
func BenchmarkDemoIdle(b *testing.B) {
	dir := b.TempDir()
	bin := buildCommons(b, dir)
	benchIdle(b, dir, "exec env TMPDIR="+dir+" "+bin+" demo")
}

func benchIdle(b *testing.B, dir, command string) {
	for i := 0; i < b.N; i++ {
		term, _ := firstFrame(b, dir, command, "1 Overview", "online · last telegram")
		pid, err := strconv.Atoi(strings.TrimSpace(term.tmux("display-message", "-p", "-t", term.name, "#{pane_pid}")))
		if err != nil {
			b.Fatal(err)
		}
		// Let start-up settle (first State, charts, catch-up), then watch.
		time.Sleep(5 * time.Second)
		t0, c0 := time.Now(), cpuTicks(b, pid)
		time.Sleep(idleWindow)
		t1, c1 := time.Now(), cpuTicks(b, pid)
		rss, hwm := memKB(b, pid)
		term.quit(b)
		cpu := float64(c1-c0) / clockTicks / t1.Sub(t0).Seconds() * 100
		b.ReportMetric(cpu, "%cpu")
		b.ReportMetric(float64(rss)/1024, "MB-rss")
		b.ReportMetric(float64(hwm)/1024, "MB-rss-peak")
	}
}

// cpuTicks is utime+stime of pid in clock ticks (/proc/PID/stat fields 14, 15).
func cpuTicks(b *testing.B, pid int) int64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ut + st
}

// memKB returns VmRSS and VmHWM of pid in kB.
func memKB(b *testing.B, pid int) (rss, hwm int64) {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = v
		case "VmHWM:":
			hwm = v
		}
	}
	return rss, hwm
}

// TestDashboardBadSettings: a dashboard settings file with an unknown
// value stops the dashboard with one line naming the file (exit 2) and
// leaves the household closed, before any terminal is touched.
func TestDashboardBadSettings(t *testing.T) {
	dir := t.TempDir()
	c := newCLI(t, buildCommons(t, dir))
	home := filepath.Join(dir, "alice")
	c.ok("--home", home, "init", "--name", "Alice", "--listen", "127.0.0.1:0")
	var cfgHome string
	for _, e := range c.env {
		if v, ok := strings.CutPrefix(e, "XDG_CONFIG_HOME="); ok {
			cfgHome = v
		}
	}
	settings := filepath.Join(cfgHome, "commons", "dashboard.json")
	if err := os.MkdirAll(filepath.Dir(settings), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(settings, []byte(`{"colour": "purple"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r := c.run("", "--home", home)
	if r.code != exitUsage || !strings.Contains(r.stderr, settings) || !strings.Contains(r.stderr, `colour "purple" is unknown`) || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("exit %d, stderr %q; want exit 2 and one line naming %s and the bad colour", r.code, r.stderr, settings)
	}
	c.ok("--home", home, "status") // the household is not left locked
}
