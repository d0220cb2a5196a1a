package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	// The demo street lives in Europe/Amsterdam (the simulator's days);
	// embed the zone database so it works on systems without one.
	_ "time/tzdata"

	"github.com/spf13/cobra"

	"github.com/commons-energy/commons/share/demo"
	"github.com/commons-energy/commons/share/node"
)

// newDemoCmd is `commons demo`: the dashboard on a simulated street.
func newDemoCmd(g *globalFlags) *cobra.Command {
	var (
		neighbours int
		speed      float64
		seed       int64
		logFile    string
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
11:00 Amsterdam time so the sun is up; --speed runs it faster. Everything is
removed on exit (q, ctrl+c, SIGINT or SIGTERM).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), cmd.ErrOrStderr(), demoFlags{neighbours, speed, seed, logFile})
		},
	}
	f := cmd.Flags()
	f.IntVar(&neighbours, "neighbours", 4, fmt.Sprintf("simulated neighbours (0 to %d): solar roof, flat, EV charger, night shift, then again", demo.MaxNeighbours))
	f.Float64Var(&speed, "speed", 1, fmt.Sprintf("simulated seconds per real second (1 to %d); the settlement slot grows with it", demo.MaxSpeed))
	f.Int64Var(&seed, "seed", 1, "seed of the simulated meters")
	f.StringVar(&logFile, "log", "", "write the households' logs to this file (default: none)")
	return cmd
}

type demoFlags struct {
	neighbours int
	speed      float64
	seed       int64
	logFile    string
}

func runDemo(ctx context.Context, stderr io.Writer, fl demoFlags) error {
	opts := demo.Options{Neighbours: fl.neighbours, Speed: fl.speed, Seed: fl.seed}
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
	tuiOpts.Now, tuiOpts.Location = st.Now, st.Location()
	tuiErr := runTUI(ctx, node.TUIBackend(st.User.Runtime.Node()), tuiOpts)
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
