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
	opts, err := dashboardOptions()
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
	opts.Location = hh.Calendar().Location
	opts.ReadOnly = viewer(hh)
	tuiErr := runTUI(ctx, hh, opts)
	closeErr := hh.Close()
	if tuiErr != nil {
		return tuiErr
	}
	return closeErr
}

// dashboardOptions prepares how the dashboard looks: the terminal's
// renderer, line characters on the Linux console (no braille there), and
// the person's settings file (colour, background, ASCII charts), useful
// over SSH where NO_COLOR and COLORTERM do not arrive. A bad settings file
// is a usage error naming it.
func dashboardOptions() (tui.Options, error) {
	opts := tui.Options{Renderer: lipgloss.DefaultRenderer()}
	if os.Getenv("TERM") == "linux" {
		opts.ASCII = true
	}
	path, err := tui.ConfigPath()
	if err != nil {
		return opts, nil
	}
	cfg, err := tui.LoadConfig(path)
	if err != nil {
		return opts, withCode(exitUsage, err)
	}
	if opts, err = cfg.Apply(opts.Renderer, opts); err != nil {
		return opts, withCode(exitUsage, fmt.Errorf("dashboard settings %s: %w", path, err))
	}
	return opts, nil
}

// runTUI runs the dashboard on b in the terminal's alternate screen until
// the person quits or ctx ends (SIGINT/SIGTERM); either way the terminal
// is restored. opts come from dashboardOptions.
func runTUI(ctx context.Context, b household.Household, opts tui.Options) error {
	opts.Context = ctx
	m := tui.New(b, opts)
	// main turns SIGINT/SIGTERM into ctx's end. Bubble Tea's own signal
	// handler would race it: it can block sending QuitMsg to an event loop
	// that already stopped for the cancelled context, hanging the exit.
	p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithContext(ctx), tea.WithoutSignalHandler(), tea.WithFPS(dashboardFPS))
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
