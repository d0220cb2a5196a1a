package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/commons-energy/commons/meter"
)

// newMeterPortsCmd builds `commons meter ports`.
func newMeterPortsCmd(g *globalFlags) *cobra.Command {
	var o portsOptions
	cmd := &cobra.Command{
		Use:   "ports [--probe [--listen D]] [--json]",
		Short: "List serial ports, with USB vendor and product where known",
		Long: `List the serial ports of this machine from sysfs: device path, kernel driver
and, for USB adapters such as P1 cables, the USB vendor:product id, serial
number and product name. --json prints a JSON array.

--probe listens on every port for --listen at 115200 8N1, 9600 8N1 and
9600 7E1 and names the protocol it hears (dsmr, sml, iec62056-21, smarty)
with the settings that worked. Meters that only answer requests (Modbus,
IEC 62056-21 mode C) stay silent and show as not detected.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ports, err := meter.ListPorts()
			if err != nil {
				return withCode(exitFailure, err)
			}
			return runMeterPorts(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), ports, o, meter.OpenSerial)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print a JSON array")
	cmd.Flags().BoolVar(&o.probe, "probe", false, "listen on each port and name the meter protocol heard")
	cmd.Flags().DurationVar(&o.listen, "listen", 3*time.Second, "with --probe: how long to listen per port and setting")
	return cmd
}

// portsOptions are the flags of `commons meter ports`.
type portsOptions struct {
	json   bool
	probe  bool
	listen time.Duration
}

// portEntry is one line of `meter ports`: the port and, with --probe, what
// was heard on it.
type portEntry struct {
	meter.PortInfo
	Detected   string `json:"detected,omitempty"`    // protocol heard, e.g. "dsmr"
	Settings   string `json:"settings,omitempty"`    // e.g. "115200 8N1"
	Reason     string `json:"reason,omitempty"`      // what gave it away
	ProbeError string `json:"probe_error,omitempty"` // why nothing was detected
}

// probePorts listens on each port in turn.
func probePorts(ctx context.Context, ports []meter.PortInfo, open meter.Opener, listen time.Duration) []portEntry {
	out := make([]portEntry, len(ports))
	for i, p := range ports {
		out[i].PortInfo = p
		if ctx.Err() != nil {
			out[i].ProbeError = "not probed: interrupted"
			continue
		}
		d, cfg, err := meter.Probe(ctx, open, p.Device, listen)
		if err != nil {
			out[i].ProbeError = err.Error()
			continue
		}
		out[i].Detected = d.Protocol
		out[i].Settings = fmt.Sprintf("%d %s", cfg.Baud, cfg.Format())
		out[i].Reason = d.Reason
	}
	return out
}

func runMeterPorts(ctx context.Context, stdout, stderr io.Writer, ports []meter.PortInfo, o portsOptions, open meter.Opener) error {
	if o.listen <= 0 {
		return withCode(exitUsage, fmt.Errorf("--listen %v: must be positive", o.listen))
	}
	var entries []portEntry
	if o.probe {
		entries = probePorts(ctx, ports, open, o.listen)
	} else {
		entries = make([]portEntry, len(ports))
		for i, p := range ports {
			entries[i].PortInfo = p
		}
	}
	if o.json {
		b, err := json.Marshal(entries)
		if err != nil {
			return withCode(exitFailure, err)
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	if len(entries) == 0 {
		fmt.Fprintln(stderr, "commons: no serial ports found; plug in the meter cable, then look at `dmesg | tail` for the device it got")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	head := "DEVICE\tDRIVER\tUSB ID\tSERIAL\tPRODUCT"
	if o.probe {
		head += "\tHEARD"
	}
	fmt.Fprintln(tw, head)
	for _, e := range entries {
		p := e.PortInfo
		id, product := "-", "-"
		if p.USB() {
			id = p.VendorID + ":" + p.ProductID
		}
		switch {
		case p.Manufacturer != "" && p.Product != "":
			product = p.Manufacturer + " " + p.Product
		case p.Product != "":
			product = p.Product
		case p.Manufacturer != "":
			product = p.Manufacturer
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s", p.Device, dash(p.Driver), id, dash(p.Serial), product)
		if o.probe {
			if e.Detected != "" {
				fmt.Fprintf(tw, "\t%s at %s", e.Detected, e.Settings)
			} else {
				fmt.Fprintf(tw, "\tnothing (%s)", e.ProbeError)
			}
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
