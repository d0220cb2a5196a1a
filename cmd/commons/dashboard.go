package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"

	daemonpkg "github.com/commons-energy/commons/share/daemon"
	"github.com/commons-energy/commons/share/dashconfig"
	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/node"
	"github.com/commons-energy/commons/tui"
)

// runDashboard is the bare `commons` command: the dashboard on this home's
// household. It attaches to the home's running daemon when there is one;
// otherwise it runs the household in-process (meter, ledger, peers and the
// local socket, under the home's lock) for as long as the dashboard is
// open. A home that was never initialised gets the first-run message.
func runDashboard(cmd *cobra.Command, g *globalFlags) error {
	ctx := cmd.Context()
	h, err := g.resolveHome()
	if err != nil {
		return err
	}
	if !h.Initialised() {
		firstRun(cmd.OutOrStdout(), g, h)
		return nil
	}
	d, err := dashboardOptions()
	if err != nil {
		return err
	}
	if err := needTerminal("the dashboard"); err != nil {
		return err
	}
	hh, err := openHousehold(ctx, g, "commons dashboard", running)
	if err != nil {
		return err
	}
	// The household's calendar: a viewer in group commons-viewers may not
	// read the home's config file.
	d.opts.Location = hh.Calendar().Location
	d.opts.ReadOnly = viewer(hh)
	tuiErr := runTUI(ctx, hh, d)
	closeErr := hh.Close()
	if tuiErr != nil {
		return tuiErr
	}
	return closeErr
}

// dashboardSettings are the person's dashboard settings file, read once
// and applied to every dashboard this process draws: the local one, and
// each SSH session's when the daemon serves them.
type dashboardSettings struct {
	cfg dashconfig.Config
}

// loadDashboardSettings reads the settings file (colour, background,
// ASCII charts), useful over SSH where NO_COLOR and COLORTERM do not
// arrive. No config folder means no settings; a bad settings file is a
// usage error naming it.
func loadDashboardSettings() (dashboardSettings, error) {
	path, err := dashconfig.ConfigPath()
	if err != nil {
		return dashboardSettings{}, nil
	}
	cfg, err := dashconfig.LoadConfig(path)
	if err != nil {
		return dashboardSettings{}, withCode(exitUsage, err)
	}
	return dashboardSettings{cfg: cfg}, nil
}

// setup is the one place that turns the settings into a dashboard's
// options and its program's options, for a local terminal and for an SSH
// session alike: r is the terminal's renderer, term its TERM (line
// characters on the Linux console, which has no braille). The program
// options cap the frame rate; the caller adds how it runs the program
// (alternate screen, context, the session's input and output).
func (s dashboardSettings) setup(r *lipgloss.Renderer, term string) (tui.Options, []tea.ProgramOption) {
	// LoadConfig validated the settings, so Apply has nothing to refuse.
	_ = s.cfg.Apply(r)
	opts := tui.Options{Renderer: r, ASCII: term == "linux" || s.cfg.ASCII}
	return opts, []tea.ProgramOption{tea.WithFPS(dashboardFPS)}
}

// localDashboard is how a dashboard on this process's terminal is set up.
type localDashboard struct {
	opts tui.Options
	prog []tea.ProgramOption
}

// dashboardOptions prepares a dashboard on this process's terminal from
// the settings file; a bad file is a usage error.
func dashboardOptions() (localDashboard, error) {
	s, err := loadDashboardSettings()
	if err != nil {
		return localDashboard{}, err
	}
	opts, prog := s.setup(lipgloss.DefaultRenderer(), os.Getenv("TERM"))
	return localDashboard{opts: opts, prog: prog}, nil
}

// sshDashboard is the dashboard the daemon serves to an SSH session: the
// same settings and frame-rate cap as a local one, on the session's
// renderer and terminal.
func (s dashboardSettings) sshDashboard(hh household.Household, sess daemonpkg.DashboardSession) (tea.Model, []tea.ProgramOption) {
	opts, prog := s.sessionOptions(sess)
	return tui.New(hh, opts), prog
}

// sessionOptions are an SSH session's dashboard and program options.
func (s dashboardSettings) sessionOptions(sess daemonpkg.DashboardSession) (tui.Options, []tea.ProgramOption) {
	opts, prog := s.setup(sess.Renderer, sess.Term)
	opts.Context, opts.Location = sess.Context, sess.Location
	opts.Width, opts.Height, opts.ReadOnly = sess.Width, sess.Height, sess.ReadOnly
	return opts, prog
}

// runTUI runs the dashboard on b in the terminal's alternate screen until
// the person quits or ctx ends (SIGINT/SIGTERM); either way the terminal
// is restored. d comes from dashboardOptions.
func runTUI(ctx context.Context, b household.Household, d localDashboard) error {
	opts := d.opts
	opts.Context = ctx
	m := tui.New(b, opts)
	// main turns SIGINT/SIGTERM into ctx's end. Bubble Tea's own signal
	// handler would race it: it can block sending QuitMsg to an event loop
	// that already stopped for the cancelled context, hanging the exit.
	p := tea.NewProgram(m, append([]tea.ProgramOption{tea.WithAltScreen(), tea.WithContext(ctx), tea.WithoutSignalHandler()}, d.prog...)...)
	return runProgram(p)
}

// runProgram runs a dashboard program and maps how it ended to an exit
// code. Bubble Tea recovers a panic in the model or a command, restores the
// terminal, prints the panic and its stack, and returns an error that wraps
// both tea.ErrProgramPanic and tea.ErrProgramKilled: the panic is checked
// first, so a crash exits 1 with one line saying so instead of passing for
// a killed program (exit 0).
func runProgram(p *tea.Program) error {
	_, err := p.Run()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, tea.ErrProgramPanic):
		return failf(exitFailure, "the dashboard crashed (a bug; what it hit is printed above); run commons again to reopen it")
	case errors.Is(err, tea.ErrProgramKilled), errors.Is(err, context.Canceled):
		return nil
	}
	return withCode(exitFailure, fmt.Errorf("dashboard: %w", err))
}

// needTerminal refuses to start a full-screen view when standard output is
// not a terminal (a script, cron, a pipe), with the commands that suit
// those instead.
func needTerminal(what string) error {
	if term.IsTerminal(os.Stdout.Fd()) {
		return nil
	}
	return failf(exitUsage, "%s needs a terminal and standard output is not one; from scripts use `commons status --json`, `commons pledges --json` or `commons daemon`", what)
}

// firstRun tells a person whose home holds no household yet what to do.
func firstRun(w io.Writer, g *globalFlags, h node.Home) {
	home := ""
	if g.home != "" {
		home = " --home " + g.home
	}
	fmt.Fprintf(w, `Welcome to commons.

There is no household in %s yet. To set one up:

  commons%s init --name "Your name" --meter /dev/ttyUSB0
      (find your meter's port with: commons meter ports)

then run `+"`commons%s`"+` again for the dashboard.

To look around first, run a simulated street (nothing is written outside a
temporary folder):

  commons demo

`, h, home, home)
}

// dashboardFPS caps how often the dashboard flushes a changed screen. Bubble
// Tea's renderer wakes this often even when nothing changed (its default
// is 60, about 1 % of a core on its own); the dashboard changes about once
// a second, and a keypress still shows within 100 ms.
const dashboardFPS = 10
