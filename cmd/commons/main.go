// Command commons is the household box of a neighbourhood energy commons: it
// reads the smart meter, shows a terminal dashboard, keeps a signed ledger of
// pledges between neighbours and settles them from meter data.
//
// See README.md and ../shared/design/CLI.md for the command-line contract.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the process exit code.
func run(ctx context.Context, args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "commons:", ee.err)
		}
		return ee.code
	}
	// Errors cobra returns on its own are usage errors (unknown flag,
	// wrong argument count).
	fmt.Fprintln(os.Stderr, "commons:", err)
	fmt.Fprintln(os.Stderr, "Run 'commons --help' for usage.")
	return exitUsage
}
