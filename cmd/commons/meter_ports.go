package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/commons-energy/commons/meter"
	"github.com/spf13/cobra"
)

// newMeterPortsCmd builds `commons meter ports`.
func newMeterPortsCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ports [--json]",
		Short: "List serial ports, with USB vendor and product where known",
		Long: `List the serial ports of this machine from sysfs: device path, kernel driver
and, for USB adapters such as P1 cables, the USB vendor:product id, serial
number and product name. --json prints a JSON array.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMeterPorts(cmd.OutOrStdout(), cmd.ErrOrStderr(), asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func runMeterPorts(stdout, stderr io.Writer, asJSON bool) error {
	ports, err := meter.ListPorts()
	if err != nil {
		return withCode(exitFailure, err)
	}
	if asJSON {
		b, err := json.Marshal(ports)
		if err != nil {
			return withCode(exitFailure, err)
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	if len(ports) == 0 {
		fmt.Fprintln(stderr, "commons: no serial ports found; plug in the meter cable, then look at `dmesg | tail` for the device it got")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tDRIVER\tUSB ID\tSERIAL\tPRODUCT")
	for _, p := range ports {
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Device, dash(p.Driver), id, dash(p.Serial), product)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
