package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/commons-energy/commons/share"
	daemonpkg "github.com/commons-energy/commons/share/daemon"
	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/input"
	"github.com/commons-energy/commons/share/node"
)

// newHouseholdCmds returns the household commands: init, id, neighbours,
// pledge and its lifecycle, status, ledger, export-messages and import.
func newHouseholdCmds(g *globalFlags) []*cobra.Command {
	return []*cobra.Command{
		newInitCmd(g),
		newIDCmd(g),
		newNeighboursCmd(g),
		newPledgeCmd(g),
		newPledgesCmd(g),
		newLifecycleCmd(g, "accept", "Accept a neighbour's pledge to this household"),
		newLifecycleCmd(g, "decline", "Decline a neighbour's pledge to this household"),
		newLifecycleCmd(g, "cancel", "Withdraw a pledge or an acceptance before its window starts"),
		newSettleCmd(g),
		newStatusCmd(g),
		newLedgerCmd(g),
		newExportMessagesCmd(g),
		newImportCmd(g),
		newKeyCmd(g),
	}
}

// home resolves the --home flag.
func (g *globalFlags) resolveHome() (node.Home, error) {
	h, err := node.ResolveHome(g.home)
	if err != nil {
		return node.Home{}, withCode(exitFailure, err)
	}
	return h, nil
}

// access is what a command needs of the household.
type access int

const (
	// readOnly looks: it shares the ledger with whoever owns the home.
	readOnly access = iota
	// writable signs or stores: it takes the home's exclusive lock.
	writable
	// running also runs the household (meter, peers, local socket) for as
	// long as it is open: the dashboard without a daemon.
	running
)

// openHousehold is the one place that picks who serves this home's
// household for command owner: the home's running daemon over its local
// socket when one answers, otherwise this process (under the home's lock
// when acc is not readOnly). Every front end then uses the same
// household.Household. Closing it ends what it opened.
func openHousehold(ctx context.Context, g *globalFlags, owner string, acc access) (household.Household, error) {
	h, err := g.resolveHome()
	if err != nil {
		return nil, err
	}
	// A running daemon owns the household: go through its socket.
	if c, err := daemonpkg.Connect(ctx, h); err == nil {
		return c, nil
	} else if !errors.Is(err, daemonpkg.ErrNoDaemon) {
		return nil, withCode(exitFailure, err)
	}
	if acc == running {
		rt, err := daemonpkg.Open(ctx, h, daemonpkg.Options{Owner: owner, Socket: true})
		if err != nil {
			return nil, nodeErr(err)
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- rt.Run(runCtx) }()
		return &runningHousehold{Household: rt.Node(), home: h, stop: stop, done: done, rt: rt}, nil
	}
	n, err := node.Open(ctx, h, node.Options{Owner: owner, ReadOnly: acc == readOnly})
	if err != nil {
		return nil, nodeErr(err)
	}
	return n, nil
}

// runningHousehold is a household this process runs while a command
// (the dashboard) is open.
type runningHousehold struct {
	household.Household
	home node.Home
	stop context.CancelFunc
	done chan error
	rt   *daemonpkg.Runtime
}

// Close stops the household and reports how its run ended.
func (r *runningHousehold) Close() error {
	r.stop()
	err := <-r.done
	if cerr := r.rt.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		return withCode(exitFailure, fmt.Errorf("household %s: %w", r.home, err))
	}
	return nil
}

// viewer reports whether hh is a daemon's client with read-only access.
func viewer(hh household.Household) bool {
	c, ok := hh.(*daemonpkg.Client)
	return ok && c.Role() == daemonpkg.RoleViewer
}

// nodeErr maps a node error to the CLI's exit codes.
func nodeErr(err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	switch {
	case errors.Is(err, household.ErrNotFound):
		return withCode(exitNotFound, err)
	case errors.Is(err, household.ErrInvalid):
		return withCode(exitUsage, err)
	case errors.Is(err, household.ErrIntegrity):
		return withCode(exitIntegrity, err)
	case errors.Is(err, context.DeadlineExceeded):
		return withCode(exitTimeout, err)
	}
	return withCode(exitFailure, err)
}

// printJSON writes v as one JSON document on w.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return withCode(exitFailure, fmt.Errorf("write JSON: %w", err))
	}
	return nil
}

func newInitCmd(g *globalFlags) *cobra.Command {
	var name, join, port, protocol, listen, relay, relayDomain, tz, prodPort, prodModel string
	var baud, prodSlave, fuseA int
	cmd := &cobra.Command{
		Use:   "init --name NAME [--join INVITE] [--meter PORT] [--protocol P] [--production-meter PORT] [--listen ADDR|none] [--relay URL]",
		Short: "Create this household's identity and config; prints its id and invite",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := g.resolveHome()
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("name") {
				return failf(exitUsage, "init needs a display name: commons init --name Alice")
			}
			cfg := node.DefaultConfig(name)
			// A household belongs to one community: the inviter's with
			// --join, else a new one with its own random genesis value,
			// so two streets never share a community id by accident.
			var inviter *share.Invite
			if cmd.Flags().Changed("join") {
				if inviter, err = share.ParseInvite(join); err != nil {
					return failf(exitUsage, "--join: %v", err)
				}
				cfg.Community = node.CommunityConfig{Name: inviter.Community.Name, SlotSeconds: int(inviter.Community.SlotLen),
					AllocationKey: inviter.Community.Key, Genesis: inviter.Community.Genesis}
			} else if cfg.Community.Genesis, err = share.NewGenesis(); err != nil {
				return withCode(exitFailure, err)
			}
			cfg.Meter.Port = port
			if protocol != "" {
				cfg.Meter.Protocol = protocol
			}
			cfg.Meter.Baud = baud
			if cmd.Flags().Changed("listen") {
				cfg.Listen = listen
			}
			cfg.Relay = relay
			cfg.RelayDomain = relayDomain
			cfg.Timezone = tz
			cfg.FuseA = fuseA
			if prodPort != "" {
				cfg.ProductionMeter = &node.ProductionMeterConfig{Port: prodPort, Protocol: "modbus", Slave: prodSlave, Model: prodModel}
			}
			id, err := node.Init(cmd.Context(), h, cfg)
			if err != nil {
				return nodeErr(err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Household %s created in %s\n", id.Name, h)
			fmt.Fprintf(out, "id:     %s\n", id.ID)
			fmt.Fprintf(out, "invite: %s\n", id.Invite)
			if rk := h.RecoveryKeyPath(); fileExists(rk) {
				fmt.Fprintf(out, "recovery key: %s\n  Move this file off the box now (a USB stick in a drawer, or print it): with it, `commons key recover --recovery-key FILE` continues this household after a lost, stolen or forked key. Anyone holding it can take the household over.\n", rk)
			}
			if inviter == nil {
				fmt.Fprintf(out, "This is a new community, %q. Neighbours join it with: commons init --name NAME --join INVITE (your invite above); add their invites with: commons neighbours add INVITE\n", cfg.Community.Name)
				return nil
			}
			hh, err := openHousehold(cmd.Context(), g, "commons init", writable)
			if err != nil {
				return err
			}
			defer hh.Close()
			nb, err := hh.AddNeighbour(cmd.Context(), join, "")
			if err != nil {
				return nodeErr(fmt.Errorf("add the inviter as a neighbour: %w", err))
			}
			fmt.Fprintf(out, "Joined community %q with neighbour %s (%s). Give your invite to %s, who adds it with: commons neighbours add INVITE\n", cfg.Community.Name, nb.Name, short(nb.ID), nb.Name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "the household's display name, shown to neighbours")
	f.StringVar(&join, "join", "", "a neighbour's invite: join that household's community and add it as a neighbour (without --join a new community starts)")
	f.StringVar(&port, "meter", "", "the meter's serial port, e.g. /dev/ttyUSB0 (see 'commons meter ports')")
	f.StringVar(&protocol, "protocol", "", "meter protocol: auto, dsmr, sml, iec62056-21, smarty, modbus (default auto)")
	f.IntVar(&baud, "baud", 0, "meter baud rate (default: the protocol's)")
	f.StringVar(&listen, "listen", node.DefaultListen, "address where neighbours reach this box directly; none: no peer server, neighbours are reached through the --relay hub only")
	f.StringVar(&relay, "relay", "", "community hub (NATS JetStream) URL, e.g. nats://hub:4222; credentials and a CA file go in the config's relay_auth")
	f.StringVar(&relayDomain, "relay-domain", "", "the hub's JetStream domain, when --relay is a local leaf node of the hub (see README: Running a community hub)")
	f.StringVar(&tz, "timezone", "", "IANA time zone for 'today' and HH:MM windows (default: the system's)")
	f.StringVar(&prodPort, "production-meter", "", "serial port of a Modbus production meter on the solar inverter's line, e.g. /dev/ttyUSB1")
	f.StringVar(&prodModel, "production-model", "sdm630", "production meter model: sdm630 or sdm120")
	f.IntVar(&prodSlave, "production-slave", 1, "production meter Modbus slave id")
	f.IntVar(&fuseA, "fuse", 0, "main fuse per phase in amperes, for the dashboard's phase bars (0 = unknown)")
	return cmd
}

func newIDCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "id [--json]",
		Short: "Print the household id, name, listen address and invite string",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hh, err := openHousehold(cmd.Context(), g, "commons id", readOnly)
			if err != nil {
				return err
			}
			defer hh.Close()
			id := hh.Identity()
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, id)
			}
			fmt.Fprintf(out, "id:        %s\nname:      %s\nlisten:    %s\n", id.ID, id.Name, id.Listen)
			if id.Relay != "" {
				fmt.Fprintf(out, "relay:     %s\n", id.Relay)
			}
			fmt.Fprintf(out, "community: %s\ninvite:    %s\n", id.Community, id.Invite)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newNeighboursCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "neighbours",
		Aliases: []string{"neighbors"},
		Short:   "Add, list and remove neighbours",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return failf(exitUsage, "neighbours needs a subcommand: add INVITE, list or remove NAME|ID")
		},
	}
	var alias string
	add := &cobra.Command{
		Use:   "add INVITE [--name ALIAS]",
		Short: "Add a neighbour from its invite string (see 'commons id' on their box)",
		Args:  exactArgs(1, "neighbours add needs the neighbour's invite string: commons neighbours add INVITE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			hh, err := openHousehold(cmd.Context(), g, "commons neighbours add", writable)
			if err != nil {
				return err
			}
			defer hh.Close()
			n, err := hh.AddNeighbour(cmd.Context(), args[0], alias)
			if err != nil {
				return nodeErr(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Added neighbour %s (%s)\n", n.Name, n.ID)
			return nil
		},
	}
	add.Flags().StringVar(&alias, "name", "", "a local name for the neighbour (default: the name in the invite)")
	var asJSON bool
	list := &cobra.Command{
		Use:   "list [--json]",
		Short: "List the neighbours",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hh, err := openHousehold(cmd.Context(), g, "commons neighbours list", readOnly)
			if err != nil {
				return err
			}
			defer hh.Close()
			ns, err := hh.Neighbours(cmd.Context())
			if err != nil {
				return nodeErr(err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if ns == nil {
					ns = []household.Neighbour{}
				}
				return printJSON(out, ns)
			}
			if len(ns) == 0 {
				fmt.Fprintln(out, "No neighbours yet. Add one with: commons neighbours add INVITE")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tID\tLAST SEEN\tNOW\tSTORED\tREFUSED\tFEED")
			for _, n := range ns {
				seen := "never"
				if n.LastSeen != nil {
					seen = n.LastSeen.Local().Format("2006-01-02 15:04")
				}
				now := "-"
				if n.Status != nil {
					switch {
					case n.Status.SurplusW > 0:
						now = fmt.Sprintf("surplus %d W", n.Status.SurplusW)
					case n.Status.SurplusW < 0:
						now = fmt.Sprintf("needs %d W", -n.Status.SurplusW)
					default:
						now = "balanced"
					}
				}
				feed := "ok"
				switch {
				case n.Frozen:
					feed = fmt.Sprintf("frozen: fork at seq %d", n.ForkSeq)
				case n.Protocol == 1:
					feed = "ok, protocol 1 (older commons: our shared reports are public)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, short(n.ID), seen, now, formatBytes(n.StoredBytes), formatRefused(n.Refused), feed)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	remove := &cobra.Command{
		Use:   "remove NAME|ID",
		Short: "Remove a neighbour: its new messages are no longer accepted",
		Args:  exactArgs(1, "neighbours remove needs a neighbour's name or id: commons neighbours remove NAME|ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			hh, err := openHousehold(cmd.Context(), g, "commons neighbours remove", writable)
			if err != nil {
				return err
			}
			defer hh.Close()
			n, err := hh.RemoveNeighbour(cmd.Context(), args[0])
			if err != nil {
				return nodeErr(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removed neighbour %s (%s)\n", n.Name, n.ID)
			return nil
		},
	}
	cmd.AddCommand(add, list, remove)
	return cmd
}

// formatBytes writes a size for people: 512 B, 3.4 KiB, 12.0 MiB.
func formatBytes(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}

// formatRefused writes refusal counts by reason, largest first:
// "quota 12, seq_gap 3", or "-" when none.
func formatRefused(m map[string]int64) string {
	if len(m) == 0 {
		return "-"
	}
	reasons := make([]string, 0, len(m))
	for r := range m {
		reasons = append(reasons, r)
	}
	slices.SortFunc(reasons, func(a, b string) int {
		if c := cmp.Compare(m[b], m[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(reasons))
	for i, r := range reasons {
		parts[i] = fmt.Sprintf("%s %d", r, m[r])
	}
	return strings.Join(parts, ", ")
}

// exactArgs is cobra.ExactArgs with a message that says what to type.
func exactArgs(n int, usage string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return failf(exitUsage, "%s", usage)
		}
		return nil
	}
}

func newStatusCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [--json]",
		Short: "Latest reading, today's totals, meter health, neighbours and open pledges",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hh, err := openHousehold(cmd.Context(), g, "commons status", readOnly)
			if err != nil {
				return err
			}
			defer hh.Close()
			st, err := hh.Status(cmd.Context())
			if err != nil {
				return nodeErr(err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, st)
			}
			printStatus(out, hh.Identity(), st)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// printStatus writes the text form of status.
func printStatus(out io.Writer, id household.Identity, st household.Status) {
	fmt.Fprintf(out, "%s (%s)\n", id.Name, id.ID)
	switch {
	case st.Meter.Port == "":
		fmt.Fprintln(out, "meter:       none configured (commons init --meter PORT, see 'commons meter ports')")
	case st.Meter.Online:
		fmt.Fprintf(out, "meter:       %s on %s, online\n", st.Meter.Protocol, st.Meter.Port)
	default:
		fmt.Fprintf(out, "meter:       %s on %s, offline\n", st.Meter.Protocol, st.Meter.Port)
	}
	if note := st.Meter.ClockNote(); note != "" {
		fmt.Fprintf(out, "meter clock: %s (energy is counted by this box's clock)\n", note)
	}
	if r := st.Reading; r != nil {
		if w, ok := r.NetPowerW(); ok {
			if w >= 0 {
				fmt.Fprintf(out, "now:         importing %d W\n", w)
			} else {
				fmt.Fprintf(out, "now:         exporting %d W\n", -w)
			}
		}
	}
	fmt.Fprintf(out, "today:       imported %s, exported %s\n", input.FormatEnergy(st.Today.ImportWh), input.FormatEnergy(st.Today.ExportWh))
	if p := st.Production; p != nil {
		state := "offline"
		if p.Online {
			state = "online"
		}
		fmt.Fprintf(out, "production:  %s on %s, %s\n", p.Protocol, p.Port, state)
		if p.PowerW != nil && p.ConsumptionW != nil {
			fmt.Fprintf(out, "now:         producing %d W, consuming %d W\n", *p.PowerW, *p.ConsumptionW)
		}
		if st.Today.ProductionWh != nil && st.Today.ConsumptionWh != nil {
			fmt.Fprintf(out, "today:       produced %s, consumed %s\n", input.FormatEnergy(*st.Today.ProductionWh), input.FormatEnergy(*st.Today.ConsumptionWh))
			// the dashboard's Overview uses the same words
			if p.SelfConsumptionPct != nil {
				fmt.Fprintf(out, "self-consumption: %d %% of solar used at home\n", *p.SelfConsumptionPct)
			}
			if p.SelfSufficiencyPct != nil {
				fmt.Fprintf(out, "self-sufficiency: %d %% of home use from own solar\n", *p.SelfSufficiencyPct)
			}
		}
	}
	fmt.Fprintf(out, "neighbours:  %d\npledges:     %d open\n", st.Neighbours, st.OpenPledges)
	if r := st.Relay; r != nil {
		fmt.Fprintf(out, "relay:       %s\n", relayLine(r))
	}
	if m := st.MQTT; m != nil {
		if m.Connected {
			fmt.Fprintf(out, "mqtt:        publishing to %s\n", m.URL)
		} else {
			fmt.Fprintf(out, "mqtt:        not connected to %s: %s (retrying)\n", m.URL, m.LastError)
		}
	}
}

// relayLine is the community hub link in one line of the text status.
func relayLine(r *household.RelayState) string {
	var b strings.Builder
	b.WriteString(r.URL)
	switch {
	case !r.Running:
		b.WriteString(", not linked (no daemon running)")
	case r.Connected:
		b.WriteString(", connected")
	default:
		b.WriteString(", not connected")
	}
	fmt.Fprintf(&b, ", cursor %d", r.Cursor)
	if r.LastMessage != nil {
		fmt.Fprintf(&b, ", last message %s", r.LastMessage.Format(time.RFC3339))
	}
	if r.Refused > 0 {
		fmt.Fprintf(&b, ", %d refused", r.Refused)
	}
	if r.LastError != nil {
		fmt.Fprintf(&b, "; last error: %s", *r.LastError)
	}
	return b.String()
}

// readInput opens FILE or "-" for stdin.
func readInput(cmd *cobra.Command, name string) (io.ReadCloser, error) {
	if name == "-" {
		return io.NopCloser(cmd.InOrStdin()), nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, failf(exitFailure, "open %s: %v; give a file written by 'commons export-messages', or - for stdin", name, unwrapPath(err))
	}
	return f, nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// fmtWindow prints a window in the given zone compactly.
func fmtWindow(start, end time.Time, loc *time.Location) string {
	s, e := start.In(loc), end.In(loc)
	if s.Format("2006-01-02") == e.Format("2006-01-02") || e.Equal(time.Date(s.Year(), s.Month(), s.Day()+1, 0, 0, 0, 0, loc)) {
		return s.Format("2006-01-02 15:04") + "–" + e.Format("15:04")
	}
	return s.Format("2006-01-02 15:04") + "–" + e.Format("2006-01-02 15:04")
}

// short returns the shortened id the tables and the dashboard show.
func short(id string) string { return household.ShortID(id) }
