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

	"github.com/spf13/cobra"

	"github.com/commons-energy/commons/meter/sim"
)

// simulateOptions are the flags of `commons meter simulate`.
type simulateOptions struct {
	protocol string
	link     string
	profile  string
	speed    float64
	seed     int64
	start    string
}

// newMeterSimulateCmd builds `commons meter simulate`.
func newMeterSimulateCmd(g *globalFlags) *cobra.Command {
	var o simulateOptions
	cmd := &cobra.Command{
		Use:   "simulate [--link PATH] [--profile NAME] [--speed X] [--protocol dsmr|sml|modbus]",
		Short: "Run a virtual DSMR 5 meter on a pseudo-terminal",
		Long: `Run a virtual smart meter: a simulated household (solar, appliances, gas)
whose DSMR 5 telegrams, with valid CRCs, come out of a pseudo-terminal like
a P1 cable's serial port. Prints the device path on stdout; --link makes
PATH a symbolic link to it. Emits one telegram per simulated second until
stopped with Ctrl-C or SIGTERM, then removes the link.

Profiles: ` + strings.Join(sim.ProfileNames(), ", ") + `.
--speed 60 runs an hour of the household per minute; --seed picks another
household of the same profile; --start sets the simulated clock (RFC 3339,
default now). --protocol sml makes a German meter pushing SML 1.04 frames;
--protocol modbus an Eastron SDM630 on the inverter line that answers Modbus
RTU requests (read it with --protocol modbus).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMeterSimulate(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.protocol, "protocol", "dsmr", "what the meter speaks: dsmr (DSMR 5 telegrams), sml (SML push), modbus (SDM630 answering requests)")
	f.StringVar(&o.link, "link", "", "make `PATH` a symbolic link to the device while running")
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
	var srv simServer
	switch o.protocol {
	case "dsmr":
		srv, err = sim.ServePTY(ctx, m, sim.ServeOptions{Link: o.link, Speed: o.speed})
	case "sml":
		srv, err = sim.ServeSMLPTY(ctx, m, sim.ServeOptions{Link: o.link, Speed: o.speed})
	case "modbus":
		var sdm *sim.SDM
		if sdm, err = sim.NewSDM(m, "sdm630"); err == nil {
			srv, err = sim.ServeModbusPTY(ctx, sdm, sim.ModbusServeOptions{Link: o.link, Speed: o.speed})
		}
	default:
		return failf(exitUsage, "--protocol %q: the simulator speaks dsmr, sml or modbus", o.protocol)
	}
	if err != nil {
		return withCode(exitFailure, err)
	}
	fmt.Fprintln(stdout, srv.Path())
	where := srv.Path()
	if o.link != "" {
		where += " (link " + o.link + ")"
	}
	fmt.Fprintf(stderr, "commons: simulating profile %q as %s on %s at %gx speed; stop with Ctrl-C\n", p.Name, o.protocol, where, o.speed)
	<-srv.Done()
	if err := srv.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return withCode(exitFailure, err)
	}
	fmt.Fprintln(stderr, "commons: simulator stopped")
	return nil
}

// simServer is what every simulated meter's server offers.
type simServer interface {
	Path() string
	Done() <-chan struct{}
	Err() error
}
