package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/commons-energy/commons/meter/sim"
	"github.com/spf13/cobra"
)

// simulateOptions are the flags of `commons meter simulate`.
type simulateOptions struct {
	link    string
	profile string
	speed   float64
	seed    int64
	start   string
}

// newMeterSimulateCmd builds `commons meter simulate`.
func newMeterSimulateCmd(g *globalFlags) *cobra.Command {
	var o simulateOptions
	cmd := &cobra.Command{
		Use:   "simulate [--link PATH] [--profile NAME] [--speed X]",
		Short: "Run a virtual DSMR 5 meter on a pseudo-terminal",
		Long: `Run a virtual smart meter: a simulated household (solar, appliances, gas)
whose DSMR 5 telegrams, with valid CRCs, come out of a pseudo-terminal like
a P1 cable's serial port. Prints the device path on stdout; --link makes
PATH a symbolic link to it. Emits one telegram per simulated second until
stopped with Ctrl-C or SIGTERM, then removes the link.

Profiles: ` + strings.Join(sim.ProfileNames(), ", ") + `.
--speed 60 runs an hour of the household per minute; --seed picks another
household of the same profile; --start sets the simulated clock (RFC 3339,
default now).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMeterSimulate(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.link, "link", "", "make PATH a symbolic link to the device while running")
	f.StringVar(&o.profile, "profile", sim.DefaultProfile, "household profile: "+strings.Join(sim.ProfileNames(), ", "))
	f.Float64Var(&o.speed, "speed", 1, "simulated seconds per real second")
	f.Int64Var(&o.seed, "seed", 1, "random seed; the same seed gives the same household")
	f.StringVar(&o.start, "start", "", "simulated start time, RFC 3339 (default now)")
	return cmd
}

func runMeterSimulate(ctx context.Context, stdout, stderr io.Writer, o simulateOptions) error {
	p, err := sim.LoadProfile(o.profile)
	if err != nil {
		return withCode(exitUsage, err)
	}
	if o.speed <= 0 || o.speed > 1e6 {
		return withCode(exitUsage, fmt.Errorf("--speed %v: must be above 0 and at most 1000000", o.speed))
	}
	start := time.Now()
	if o.start != "" {
		if start, err = time.Parse(time.RFC3339, o.start); err != nil {
			return withCode(exitUsage, fmt.Errorf("--start %q: want RFC 3339 such as 2025-06-21T12:00:00+02:00", o.start))
		}
	}
	if o.link != "" {
		// Replace an old link, never a file or folder someone keeps there.
		if fi, err := os.Lstat(o.link); err == nil && fi.Mode()&fs.ModeSymlink == 0 {
			return failf(exitFailure, "--link %s exists and is not a symbolic link; remove it or choose another path", o.link)
		}
	}
	m := sim.New(p, o.seed, start)
	srv, err := sim.ServePTY(ctx, m, sim.ServeOptions{Link: o.link, Speed: o.speed})
	if err != nil {
		return withCode(exitFailure, err)
	}
	fmt.Fprintln(stdout, srv.Path())
	where := srv.Path()
	if srv.Link() != "" {
		where += " (link " + srv.Link() + ")"
	}
	fmt.Fprintf(stderr, "commons: simulating profile %q on %s at %gx speed; stop with Ctrl-C\n", p.Name, where, o.speed)
	<-srv.Done()
	if err := srv.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return withCode(exitFailure, err)
	}
	fmt.Fprintf(stderr, "commons: simulator stopped after %d telegrams\n", srv.Telegrams())
	return nil
}
