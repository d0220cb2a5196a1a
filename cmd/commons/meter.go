package main

import "github.com/spf13/cobra"

// newMeterCmd groups the meter subcommands: decode, read, simulate, ports.
func newMeterCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "meter",
		Short: "Decode, read, simulate and find smart meters",
	}
	cmd.AddCommand(newMeterDecodeCmd(g))
	cmd.AddCommand(newMeterReadCmd(g), newMeterSimulateCmd(g), newMeterPortsCmd(g))
	return cmd
}
