package main

import (
	"os"

	"github.com/spf13/cobra"
)

// globalFlags are the flags every command takes.
type globalFlags struct {
	home string // --home or COMMONS_HOME; "" means the XDG defaults
}

// newRootCmd builds the command tree. Each group of subcommands lives in
// its own file and is added here.
func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "commons",
		Short:         "A household box in a neighbourhood energy commons",
		Long:          "commons reads the household's smart meter, shows a live dashboard, and pledges surplus energy to neighbours with signed messages that the meter data later settles.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       currentVersion().String(),
	}
	// --version prints exactly the line `commons version` prints.
	root.SetVersionTemplate("{{.Version}}\n")
	root.Flags().Bool("version", false, "print the version, commit, Go version and protocol version")
	root.PersistentFlags().StringVar(&g.home, "home", os.Getenv("COMMONS_HOME"), "the household's home folder (default: XDG config and data folders; env COMMONS_HOME)")
	root.AddCommand(newMeterCmd(g))
	root.AddCommand(newHouseholdCmds(g)...)
	root.AddCommand(newDaemonCmd(g))
	root.AddCommand(newDemoCmd(g))
	root.AddCommand(newVersionCmd())
	root.RunE = func(cmd *cobra.Command, _ []string) error { return runDashboard(cmd, g) }
	return root
}
