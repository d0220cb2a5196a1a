package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/commons-energy/commons/share"
	"github.com/commons-energy/commons/share/node"
)

// newKeyCmd returns `commons key rotate` and `commons key recover`. Both
// need the home's lock: they run in this process, never through a
// running daemon (stop it first).
func newKeyCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Replace the household's signing key: rotate it, or recover after a lost, stolen or forked key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return failf(exitUsage, "key needs a subcommand: rotate, or recover --recovery-key FILE")
		},
	}
	var force bool
	rotate := &cobra.Command{
		Use:   "rotate [--force]",
		Short: "Hand the household over to a new key, signed by the old and the new key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := openKeyNode(cmd, g, "commons key rotate")
			if err != nil {
				return err
			}
			defer n.Close()
			open, err := openPledgeIDs(cmd, n)
			if err != nil {
				return err
			}
			if len(open) > 0 && !force {
				return failf(exitFailure, "key rotate: %d pledge(s) still open (%s): their answers and settlement need the key they were made with; answer, cancel or settle them first (commons pledges --open), or rotate anyway with --force (they then stay open)", len(open), strings.Join(open, ", "))
			}
			kc, err := n.RotateKey(cmd.Context())
			if err != nil {
				return nodeErr(err)
			}
			printKeyChange(cmd, n, kc)
			return nil
		},
	}
	var recoveryFile string
	recoverCmd := &cobra.Command{
		Use:   "recover --recovery-key FILE",
		Short: "Continue the household under a new key, signed by the recovery key made at init",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if recoveryFile == "" {
				return failf(exitUsage, "key recover needs the recovery key init made: commons key recover --recovery-key FILE")
			}
			rk, err := share.LoadRecoveryKey(recoveryFile)
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, share.ErrBadKeyFile) {
				return failf(exitUsage, "--recovery-key: %v", err)
			}
			if err != nil {
				return withCode(exitFailure, err)
			}
			n, err := openKeyNode(cmd, g, "commons key recover")
			if err != nil {
				return err
			}
			defer n.Close()
			open, err := openPledgeIDs(cmd, n)
			if err != nil {
				return err
			}
			kc, err := n.RecoverKey(cmd.Context(), rk)
			if err != nil {
				return nodeErr(err)
			}
			printKeyChange(cmd, n, kc)
			if len(open) > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "commons: %d pledge(s) made with the old key stay open and cannot be answered or settled under the new one (%s)\n", len(open), strings.Join(open, ", "))
			}
			return nil
		},
	}
	rotate.Flags().BoolVar(&force, "force", false, "rotate even though pledges are open (they stay open: their answers and settlement need the old key)")
	recoverCmd.Flags().StringVar(&recoveryFile, "recovery-key", "", "the recovery key file init wrote (recovery.key), brought back from where you keep it")
	cmd.AddCommand(rotate, recoverCmd)
	return cmd
}

// openPledgeIDs returns the short ids of the household's pledges that are
// not final yet (pledged, accepted or disputed): a key change leaves them
// open, since their answers and settlement need the key they were made
// with (README, "Keys").
func openPledgeIDs(cmd *cobra.Command, n *node.Node) ([]string, error) {
	ps, err := n.Pledges(cmd.Context(), true)
	if err != nil {
		return nil, nodeErr(err)
	}
	var ids []string
	for _, p := range ps {
		ids = append(ids, short(p.ID))
	}
	return ids, nil
}

// openKeyNode opens the household in this process under the home's lock.
func openKeyNode(cmd *cobra.Command, g *globalFlags, owner string) (*node.Node, error) {
	h, err := g.resolveHome()
	if err != nil {
		return nil, err
	}
	if !h.Initialised() {
		return nil, failf(exitFailure, "no household in %s: run commons init first", h)
	}
	n, err := node.Open(cmd.Context(), h, node.Options{Owner: owner})
	if err != nil {
		return nil, nodeErr(fmt.Errorf("%w (a key is replaced with the daemon stopped)", err))
	}
	return n, nil
}

func printKeyChange(cmd *cobra.Command, n *node.Node, kc node.KeyChange) {
	out := cmd.OutOrStdout()
	verb := "rotated"
	if kc.Via == "recover" {
		verb = "recovered"
	}
	id := n.Identity()
	fmt.Fprintf(out, "Household key %s: the old key's messages after seq %d are refused\n", verb, kc.AtSeq)
	fmt.Fprintf(out, "old id: %s (key moved to %s)\n", kc.Old, kc.Retired)
	fmt.Fprintf(out, "new id: %s\n", id.ID)
	fmt.Fprintf(out, "invite: %s\n", id.Invite)
	if kc.NewRecoveryKey != "" {
		fmt.Fprintf(out, "recovery key: %s\n  This household had none; move this file off the box now: with it, `commons key recover --recovery-key FILE` continues the household after a lost, stolen or forked key.\n", kc.NewRecoveryKey)
	}
	if kc.Retired != "" && fileExists(kc.Retired) {
		fmt.Fprintln(out, "Start the daemon again: neighbours follow the household to the new key over the peer links and the community hub (this box answers them with the old key, kept in the file above, until they do). Keep that file until every neighbour shows the new id.")
		return
	}
	fmt.Fprintln(out, "This box no longer holds the old key, so the peer links cannot carry the change: neighbours follow when the community hub brings them this recovery, or when they import the output of `commons export-messages`; until then they refuse this box's connections.")
}

// fileExists reports whether path names an existing file.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
