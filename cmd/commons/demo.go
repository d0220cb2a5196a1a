package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	// The demo street lives in Europe/Amsterdam (the simulator's days);
	// embed the zone database so it works on systems without one.
	_ "time/tzdata"

	"github.com/spf13/cobra"

	"github.com/commons-energy/commons/share/demo"
)

// newDemoCmd is `commons demo`: the dashboard on a simulated street.
func newDemoCmd(g *globalFlags) *cobra.Command {
	var (
		neighbours int
		speed      float64
		seed       int64
		logFile    string
		start      string
		headless   bool
		hl         headlessFlags
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "The dashboard on a simulated street of households (no setup)",
		Long: `demo runs your household and N simulated neighbours in this process, each a
real household in its own home under one temporary folder: a simulated DSMR
meter writes telegrams to a pseudo-terminal that the real meter reader reads,
and the households exchange signed statuses, pledges, accepts and settlements
over TLS on loopback. The neighbours pledge their surplus and accept pledges by
themselves; you answer yours in the dashboard. The street's clock starts at
11:00 Amsterdam time on 21 June of this year, a long sunny day, so the solar
roof has surplus to share whatever the season outside; --start picks another
instant (a winter morning: --start 2026-12-21T11:00) and --speed runs the
clock faster. Everything is removed on exit (q, ctrl+c, SIGINT or SIGTERM).

With --headless there is no screen: --neighbours N households (2 or more,
thousands if the open-file limit allows) run for --duration at an accelerated
clock (--speed, default 60), each linked with its nearest neighbours on a ring
(--links, default 8; a small street is a full mesh), pledging surplus and
accepting; then no new pledges are made until the open ones are settled and
delivered (at most two minutes), and every household's ledger is checked. The
result is one line, or with --json one object: households, messages,
converged, latency_ms {p50, p99}, rss_mb and more. Exit 0 when converged, 5
when messages were still missing, 4 when two parties disagree about a
settlement. Up to 50 households each read a simulated meter on a real
pseudo-terminal; a larger street feeds the simulator's readings straight into
each household. --relay URL sends every message through a community hub
instead of direct links.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if headless {
				hl.households, hl.seed, hl.logFile, hl.start = neighbours, seed, logFile, start
				if cmd.Flags().Changed("speed") {
					hl.speed = speed // otherwise demo.HeadlessSpeed
				}
				return runDemoHeadless(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), hl)
			}
			for _, name := range []string{"duration", "relay", "json", "links"} {
				if cmd.Flags().Changed(name) {
					return withCode(exitUsage, errHeadlessOnly)
				}
			}
			return runDemo(cmd.Context(), cmd.ErrOrStderr(), demoFlags{neighbours, speed, seed, logFile, start})
		},
	}
	f := cmd.Flags()
	f.IntVar(&neighbours, "neighbours", 4, fmt.Sprintf("simulated neighbours (0 to %d): solar roof, flat, EV charger, night shift, then again; with --headless, the households in the street (2 or more)", demo.MaxNeighbours))
	f.Float64Var(&speed, "speed", 1, fmt.Sprintf("simulated seconds per real second (1 to %d); the settlement slot grows with it", demo.MaxSpeed))
	f.Int64Var(&seed, "seed", 1, "seed of the simulated meters")
	f.StringVar(&logFile, "log", "", "write the households' logs to this file (default: none)")
	f.BoolVar(&headless, "headless", false, "run the street without a screen for --duration and report (see above)")
	f.StringVar(&hl.duration, "duration", "", "with --headless: how long the households pledge, e.g. 30s or 5m (real time)")
	f.StringVar(&hl.relay, "relay", "", "with --headless: a community hub URL (e.g. nats://127.0.0.1:4222); households listen nowhere")
	f.BoolVar(&hl.json, "json", false, "with --headless: print one JSON object")
	f.IntVar(&hl.links, "links", 0, fmt.Sprintf("with --headless: neighbours per household (0: %d, or fewer if the open-file limit demands)", demo.DefaultLinks))
	f.StringVar(&start, "start", "", "the street's simulated start: YYYY-MM-DD, YYYY-MM-DDTHH:MM (Amsterdam time) or RFC 3339 (default: 11:00 on 21 June this year)")
	return cmd
}

type demoFlags struct {
	neighbours int
	speed      float64
	seed       int64
	logFile    string
	start      string
}

// parseDemoStart reads --start: an RFC 3339 instant, or a date with an
// optional HH:MM in the street's zone (11:00 when the time is left out).
func parseDemoStart(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	loc, err := time.LoadLocation(demo.Zone)
	if err != nil {
		return time.Time{}, fmt.Errorf("time zone %s: %w", demo.Zone, err)
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, v, loc); err == nil {
			return t, nil
		}
	}
	if d, err := time.ParseInLocation(time.DateOnly, v, loc); err == nil {
		return time.Date(d.Year(), d.Month(), d.Day(), 11, 0, 0, 0, loc), nil
	}
	return time.Time{}, fmt.Errorf("--start %q is not a date: use YYYY-MM-DD, YYYY-MM-DDTHH:MM (Amsterdam time) or an RFC 3339 instant", v)
}

func runDemo(ctx context.Context, stderr io.Writer, fl demoFlags) error {
	opts := demo.Options{Neighbours: fl.neighbours, Speed: fl.speed, Seed: fl.seed}
	start, err := parseDemoStart(fl.start)
	if err != nil {
		return withCode(exitUsage, err)
	}
	opts.Start = start
	if fl.neighbours < 0 || fl.neighbours > demo.MaxNeighbours {
		return failf(exitUsage, "--neighbours %d is out of range: use 0 to %d", fl.neighbours, demo.MaxNeighbours)
	}
	if !(fl.speed >= 1 && fl.speed <= demo.MaxSpeed) {
		return failf(exitUsage, "--speed %v is out of range: use 1 (real time) to %d", fl.speed, demo.MaxSpeed)
	}
	tuiOpts, err := dashboardOptions()
	if err != nil {
		return err
	}
	if err := needTerminal("commons demo"); err != nil {
		return err
	}
	if fl.logFile != "" {
		f, err := os.OpenFile(fl.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return withCode(exitFailure, fmt.Errorf("demo log: %w", err))
		}
		defer f.Close()
		opts.Logger = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	st, err := demo.Open(ctx, opts)
	if err != nil {
		return withCode(exitFailure, fmt.Errorf("demo: %w", err))
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- st.Run(runCtx) }()
	tuiOpts.opts.Now, tuiOpts.opts.Location = st.Now, st.Location()
	tuiErr := runTUI(ctx, st.User.Runtime.Node(), tuiOpts)
	stop()
	runErr := <-done
	closeErr := st.Close()
	switch {
	case tuiErr != nil:
		return tuiErr
	case runErr != nil:
		return withCode(exitFailure, fmt.Errorf("demo: %w", runErr))
	case closeErr != nil:
		return withCode(exitFailure, fmt.Errorf("demo: %w", closeErr))
	}
	return nil
}
