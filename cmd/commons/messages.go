package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/commons-energy/commons/share/household"
)

func newLedgerCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "Verify and export the household's ledger",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return failf(exitUsage, "ledger needs a subcommand: verify or export --format csv|jsonl")
		},
	}
	var asJSON bool
	verify := &cobra.Command{
		Use:   "verify [--json]",
		Short: "Re-verify every stored message and the database; exit 4 when anything is wrong",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hh, err := openHousehold(cmd.Context(), g, "commons ledger verify", readOnly)
			if err != nil {
				return err
			}
			defer hh.Close()
			rep, err := hh.Verify(cmd.Context())
			if err != nil {
				return nodeErr(err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if err := printJSON(out, rep); err != nil {
					return err
				}
			} else if rep.OK {
				fmt.Fprintf(out, "ledger intact: %d messages verified\n", rep.Messages)
			}
			if rep.OK {
				return nil
			}
			for _, p := range rep.Problems {
				if p.ID != "" {
					fmt.Fprintf(cmd.ErrOrStderr(), "commons: message %s: %s\n", p.ID, p.Reason)
				} else {
					fmt.Fprintf(cmd.ErrOrStderr(), "commons: %s\n", p.Reason)
				}
			}
			frozen, disputed := 0, 0
			for _, p := range rep.Problems {
				switch {
				case strings.HasPrefix(p.Reason, "frozen: "):
					frozen++
				case strings.HasPrefix(p.Reason, "disputed: "):
					disputed++
				}
			}
			if disputed > 0 && frozen+disputed == len(rep.Problems) && rep.Omitted == 0 {
				return failf(exitIntegrity, "ledger verify: %d messages intact, but %d pledge(s) disputed and %d feed(s) frozen: the party whose settle does not hold settles again from the reports (`commons settle`)", rep.Messages, disputed, frozen)
			}
			if frozen == len(rep.Problems) && rep.Omitted == 0 {
				return failf(exitIntegrity, "ledger verify: %d messages intact, but %d neighbour feed(s) frozen by a fork: that household must start a new key; nothing more is accepted from the old one", rep.Messages, frozen)
			}
			return failf(exitIntegrity, "ledger verify found %d problem(s) in %d messages; keep a copy of the ledger file and re-import the messages from a neighbour", len(rep.Problems), rep.Messages)
		},
	}
	verify.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	var format, outPath, table string
	export := &cobra.Command{
		Use:   "export --format csv|jsonl [--table T] [--out FILE]",
		Short: "Export messages, pledges and settlements for spreadsheets and scripts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "csv" && format != "jsonl" {
				return failf(exitUsage, "ledger export --format %q: use csv or jsonl", format)
			}
			hh, err := openHousehold(cmd.Context(), g, "commons ledger export", readOnly)
			if err != nil {
				return err
			}
			defer hh.Close()
			if outPath == "" || outPath == "-" {
				return nodeErr(hh.ExportLedger(cmd.Context(), cmd.OutOrStdout(), format, table))
			}
			f, err := os.Create(outPath)
			if err != nil {
				return failf(exitFailure, "ledger export: %v", err)
			}
			if err := hh.ExportLedger(cmd.Context(), f, format, table); err != nil {
				f.Close()
				os.Remove(outPath)
				return nodeErr(err)
			}
			if err := f.Close(); err != nil {
				return failf(exitFailure, "ledger export: write %s: %v", outPath, err)
			}
			return nil
		},
	}
	export.Flags().StringVar(&format, "format", "", "csv or jsonl")
	export.Flags().StringVar(&outPath, "out", "", "write to FILE instead of stdout")
	export.Flags().StringVar(&table, "table", "", "messages, pledges, settlements, or all (jsonl only); default pledges for csv, all for jsonl")
	cmd.AddCommand(verify, export)
	return cmd
}

func newExportMessagesCmd(g *globalFlags) *cobra.Command {
	var since string
	cmd := &cobra.Command{
		Use:   "export-messages [--since ID]",
		Short: "Print stored messages as an armored text block for 'commons import' on another box",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hh, err := openHousehold(cmd.Context(), g, "commons export-messages", readOnly)
			if err != nil {
				return err
			}
			defer hh.Close()
			n, err := hh.ExportMessages(cmd.Context(), cmd.OutOrStdout(), since)
			if err != nil {
				return nodeErr(err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "commons: exported %d messages\n", n)
			return nil
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "only messages stored after the message with this id")
	return cmd
}

func newImportCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "import FILE|-",
		Short: "Verify and store the messages of an armored block from 'commons export-messages'",
		Args:  exactArgs(1, "import needs a file written by 'commons export-messages', or - for stdin: commons import FILE|-"),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := readInput(cmd, args[0])
			if err != nil {
				return err
			}
			defer in.Close()
			hh, err := openHousehold(cmd.Context(), g, "commons import", writable)
			if err != nil {
				return err
			}
			defer hh.Close()
			rep, err := hh.Import(cmd.Context(), in)
			if err != nil {
				return nodeErr(err)
			}
			if asJSON {
				if rep.Rejected == nil {
					rep.Rejected = []household.Rejection{}
				}
				if err := printJSON(cmd.OutOrStdout(), rep); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "imported %d new messages, %d already stored, %d rejected\n", rep.Added, rep.Duplicates, len(rep.Rejected))
			}
			for _, r := range rep.Rejected {
				id := ""
				if r.ID != "" {
					id = " " + short(r.ID)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "commons: rejected message %d%s: %s\n", r.Index, id, r.Reason)
			}
			if len(rep.Rejected) > 0 {
				return failf(exitIntegrity, "%d of %d messages in %s were rejected and not stored", len(rep.Rejected), rep.Added+rep.Duplicates+len(rep.Rejected), args[0])
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the counts as JSON")
	return cmd
}
