package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/input"
	"github.com/commons-energy/commons/share/node"
)

// waitPoll is how often `pledge --wait` looks for the neighbour's answer.
const waitPoll = 200 * time.Millisecond

func newPledgeCmd(g *globalFlags) *cobra.Command {
	var to, energy, window string
	var asJSON, force bool
	var wait time.Duration
	var idemKey string
	cmd := &cobra.Command{
		Use:   "pledge --to NAME|ID --energy 1.5kWh --window START/END [--json] [--wait DURATION] [--force] [--idempotency-key K]",
		Short: "Sign and store a pledge of energy to a neighbour",
		Long: `Signs a pledge of energy to a neighbour and stores it durably: exit 0 means the
pledge survives a power cut. Delivery to the neighbour may follow.

--energy takes Wh, kWh or MWh, any case, with or without a space, with a decimal point
or comma (1.5kWh, 1,5 kWh, 1500Wh); a bare number is Wh. Energy is counted in whole Wh.
--window takes HH:MM/HH:MM or HH:MM-HH:MM today in the household's time zone, two RFC 3339
instants (2025-06-01T12:00:00+02:00/2025-06-01T13:00:00+02:00), or next-hour. A window that
ends at or before its start is refused. The window is widened to the community's settlement
slots (15 minutes by default).
A pledge larger than this home's connection can export in the window (fuse_a amperes,
25 when not configured, × the meter's phases, 3 when unknown, × 230 V × hours) is refused
with exit 2; --force pledges it anyway.
--idempotency-key K makes a script safe to retry: the same key with the same parameters
returns the first pledge (exit 0) instead of making a second; with other parameters it is
a usage error (exit 2) naming the first pledge.
--wait waits that long for the neighbour's answer (exit 5 when none came).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, f := range []string{"to", "energy", "window"} {
				if !cmd.Flags().Changed(f) {
					return failf(exitUsage, "pledge needs --%s; e.g. commons pledge --to anna --energy 1.5kWh --window 12:00/13:00", f)
				}
			}
			wh, err := node.ParseEnergy(energy)
			if err != nil {
				return withCode(exitUsage, err)
			}
			if wait < 0 {
				return failf(exitUsage, "--wait %s is negative; give a duration such as 30s or 5m", wait)
			}
			ctx := cmd.Context()
			hh, err := openHousehold(ctx, g, "commons pledge", writable)
			if err != nil {
				return err
			}
			cal := hh.Calendar()
			start, end, err := node.ParseWindow(window, time.Now(), cal)
			if err != nil {
				hh.Close()
				return withCode(exitUsage, err)
			}
			res, err := hh.Pledge(ctx, household.PledgeRequest{To: to, EnergyWh: wh, Start: start, End: end, Force: force, IdempotencyKey: idemKey})
			if cerr := hh.Close(); err == nil && cerr != nil {
				err = cerr
			}
			if errors.Is(err, node.ErrImplausible) {
				return failf(exitUsage, "%s; pass --force to pledge it anyway", err)
			}
			if err != nil {
				return nodeErr(err)
			}
			p := res.Pledge
			out := cmd.OutOrStdout()
			if !asJSON {
				fmt.Fprintf(out, "Pledged %s to %s for %s\nid: %s\n", input.FormatEnergy(p.EnergyWh), p.ToName,
					fmtWindow(p.Window.Start, p.Window.End, cal.Location), p.ID)
			}
			if wait > 0 {
				p, err = waitAnswer(ctx, g, p, wait)
				if err != nil && !errors.Is(err, context.DeadlineExceeded) {
					return nodeErr(err)
				}
				if asJSON {
					if jerr := printJSON(out, p); jerr != nil {
						return jerr
					}
				} else if err == nil {
					fmt.Fprintf(out, "%s answered: %s\n", p.ToName, p.State)
				}
				if err != nil {
					return failf(exitTimeout, "no answer from %s within %s; the pledge %s stays signed and stored (see 'commons pledges')", p.ToName, wait, short(p.ID))
				}
				return nil
			}
			if asJSON {
				return printJSON(out, p)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "the neighbour: name, id or unique id prefix")
	f.StringVar(&energy, "energy", "", "energy over the whole window, e.g. 1.5kWh or 1500Wh")
	f.StringVar(&window, "window", "", "START/END (RFC 3339), HH:MM/HH:MM today, or next-hour")
	f.BoolVar(&asJSON, "json", false, "print the pledge as JSON")
	f.BoolVar(&force, "force", false, "pledge even more than this home can export in the window")
	f.StringVar(&idemKey, "idempotency-key", "", "retry-safe key: the same key and parameters return the first pledge")
	f.DurationVar(&wait, "wait", 0, "wait this long for the neighbour's answer (exit 5 when none)")
	return cmd
}

// waitAnswer polls the ledger, without holding the home's lock (so the
// daemon or an import can store the answer), until the pledge leaves the
// "pledged" state or wait runs out.
func waitAnswer(ctx context.Context, g *globalFlags, p household.Pledge, wait time.Duration) (household.Pledge, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	t := time.NewTicker(waitPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return p, context.DeadlineExceeded
		case <-t.C:
		}
		hh, err := openHousehold(ctx, g, "commons pledge --wait", readOnly)
		if err != nil {
			return p, err
		}
		q, err := hh.FindPledge(ctx, p.ID)
		hh.Close()
		if err != nil {
			return p, err
		}
		if q.State != "pledged" {
			return q, nil
		}
	}
}

func newPledgesCmd(g *globalFlags) *cobra.Command {
	var asJSON, open bool
	cmd := &cobra.Command{
		Use:   "pledges [--json] [--open]",
		Short: "List pledges to and from this household with their states",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hh, err := openHousehold(cmd.Context(), g, "commons pledges", readOnly)
			if err != nil {
				return err
			}
			defer hh.Close()
			ps, err := hh.Pledges(cmd.Context(), open)
			if err != nil {
				return nodeErr(err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if ps == nil {
					ps = []household.Pledge{}
				}
				return printJSON(out, ps)
			}
			printPledges(out, ps, hh.Calendar().Location)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	cmd.Flags().BoolVar(&open, "open", false, "only pledges still open (pledged, accepted, or disputed and waiting for a settle that recomputes)")
	return cmd
}

func printPledges(out io.Writer, ps []household.Pledge, loc *time.Location) {
	if len(ps) == 0 {
		fmt.Fprintln(out, "No pledges.")
		return
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tFROM\tTO\tENERGY\tWINDOW\tSTATE\tDELIVERED\tLIMITED BY\tREACHED")
	for _, p := range ps {
		delivered, limit, reached := "-", "-", "yes"
		if p.DeliveredWh != nil {
			delivered = input.FormatEnergy(*p.DeliveredWh)
		}
		if p.LimitedBy != nil {
			limit = *p.LimitedBy
		}
		if !p.Delivered {
			reached = "queued" // the counterparty's box has not acknowledged our latest message
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", short(p.ID), p.FromName, p.ToName,
			input.FormatEnergy(p.EnergyWh), fmtWindow(p.Window.Start, p.Window.End, loc), p.State, delivered, limit, reached)
	}
	tw.Flush()
	for _, p := range ps {
		if p.Dispute != "" {
			fmt.Fprintf(out, "pledge %s is disputed: %s\n", short(p.ID), p.Dispute)
		}
	}
}

// newLifecycleCmd builds accept, decline or cancel.
func newLifecycleCmd(g *globalFlags, verb, summary string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   verb + " ID",
		Short: summary,
		Args:  exactArgs(1, fmt.Sprintf("%s needs a pledge id (see 'commons pledges'): commons %s ID", verb, verb)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			hh, err := openHousehold(ctx, g, "commons "+verb, writable)
			if err != nil {
				return err
			}
			defer hh.Close()
			// Answering again is not an error: a script that retries
			// "accept" after a lost reply gets exit 0.
			done := map[string]household.PledgeState{"accept": household.StateAccepted, "decline": household.StateDeclined, "cancel": household.StateCancelled}[verb]
			if p, err := hh.FindPledge(ctx, args[0]); err == nil && p.State == done {
				if asJSON {
					return printJSON(cmd.OutOrStdout(), p)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Pledge %s of %s from %s to %s is already %s\n", short(p.ID),
					input.FormatEnergy(p.EnergyWh), p.FromName, p.ToName, done)
				return nil
			}
			var p household.Pledge
			switch verb {
			case "accept":
				p, err = hh.Accept(ctx, args[0])
			case "decline":
				p, err = hh.Decline(ctx, args[0])
			default:
				p, err = hh.Cancel(ctx, args[0])
			}
			if err != nil {
				return nodeErr(err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), p)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Pledge %s of %s from %s to %s is now %s\n", short(p.ID),
				input.FormatEnergy(p.EnergyWh), p.FromName, p.ToName, p.State)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the pledge as JSON")
	return cmd
}

func newSettleCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "settle [--json]",
		Short: "Report metered slots of closed pledge windows and settle this household's pledges",
		Long: `After a pledge window closes and the meter data of its slots is stored, settle reports this
household's measured export and import per slot (a signed report message) and, for pledges this
household made, settles them: per slot, allocated = min(pledged, accepted, own export, the
recipient's reported import), competing pledges sharing by the community's allocation key.
A pledge whose recipient has not reported yet waits; deliver messages and run settle again.
The daemon runs this by itself.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hh, err := openHousehold(cmd.Context(), g, "commons settle", writable)
			if err != nil {
				return err
			}
			defer hh.Close()
			rep, err := hh.Settle(cmd.Context())
			if err != nil {
				return nodeErr(err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if rep.Reported == nil {
					rep.Reported = []string{}
				}
				if rep.Settled == nil {
					rep.Settled = []household.Pledge{}
				}
				if rep.Waiting == nil {
					rep.Waiting = []household.Problem{}
				}
				return printJSON(out, rep)
			}
			for _, id := range rep.Reported {
				fmt.Fprintf(out, "reported metered slots for pledge %s\n", short(id))
			}
			for _, p := range rep.Settled {
				limit := ""
				if p.LimitedBy != nil {
					limit = " (limited by " + *p.LimitedBy + ")"
				}
				fmt.Fprintf(out, "settled pledge %s to %s: %s delivered of %s%s\n", short(p.ID), p.ToName, input.FormatEnergy(*p.DeliveredWh), input.FormatEnergy(p.EnergyWh), limit)
			}
			for _, w := range rep.Waiting {
				fmt.Fprintf(out, "pledge %s waits: %s\n", short(w.ID), w.Reason)
			}
			if len(rep.Reported)+len(rep.Settled)+len(rep.Waiting) == 0 {
				fmt.Fprintln(out, "nothing to settle")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
