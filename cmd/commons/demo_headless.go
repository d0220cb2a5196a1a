package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"syscall"
	"time"

	"github.com/commons-energy/commons/share/demo"
)

// headlessFlags are `commons demo --headless`'s own flags.
type headlessFlags struct {
	households int
	duration   string
	relay      string
	json       bool
	links      int
	speed      float64 // 0: demo.HeadlessSpeed
	seed       int64
	logFile    string
	start      string
}

// runDemoHeadless is `commons demo --headless`: a street of N households
// without a screen, run for --duration, drained and checked; it prints
// one JSON object (--json) or a short summary. Exit 0 when the street
// converged; 5 when messages were still missing after the drain; 4 when
// two parties' ledgers disagree about a settled pledge.
func runDemoHeadless(ctx context.Context, stdout, stderr io.Writer, fl headlessFlags) error {
	d, err := time.ParseDuration(fl.duration)
	if fl.duration == "" {
		return failf(exitUsage, "--headless needs --duration, e.g. --duration 30s")
	}
	if err != nil {
		return failf(exitUsage, "--duration %q is not a duration: use e.g. 30s, 2m or 1h", fl.duration)
	}
	start, err := parseDemoStart(fl.start)
	if err != nil {
		return withCode(exitUsage, err)
	}
	opts := demo.HeadlessOptions{Households: fl.households, Duration: d, Relay: fl.relay, Seed: fl.seed, Start: start}
	opts.Speed = fl.speed // 0: demo.HeadlessSpeed
	if err := demo.ValidateHeadless(opts); err != nil {
		return withCode(exitUsage, err)
	}
	if fl.links < 0 {
		return failf(exitUsage, "--links %d is out of range: give 0 (automatic) or a number of neighbours per household", fl.links)
	}
	limit, err := raiseFileLimit()
	if err != nil {
		return withCode(exitFailure, err)
	}
	links, err := demo.HeadlessLinks(fl.households, fl.links, limit)
	if err != nil {
		return withCode(exitUsage, err)
	}
	if fl.logFile != "" {
		f, err := os.OpenFile(fl.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return withCode(exitFailure, fmt.Errorf("demo log: %w", err))
		}
		defer f.Close()
		opts.Logger = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	res, err := demo.RunHeadless(ctx, opts, links)
	if res == nil {
		return withCode(exitFailure, fmt.Errorf("demo: %w", err))
	}
	res.RSSMB = peakRSSMB()
	if fl.json {
		if perr := printJSON(stdout, res); perr != nil {
			return perr
		}
	} else {
		fmt.Fprintf(stdout, "%d households (%s, %d links each, %s meters): %d messages, converged %t, latency p50 %.1f ms p99 %.1f ms, peak RSS %.0f MB\n",
			res.Households, res.Transport, res.Links, res.Meters, res.Messages, res.Converged, res.LatencyMS.P50, res.LatencyMS.P99, res.RSSMB)
		fmt.Fprintf(stdout, "%d pledges, %d accepted, %d settled, %d unsettled; %d deliveries, %d missing\n",
			res.Pledges, res.Accepted, res.Settled, res.Unsettled, res.Deliveries, res.Missing)
	}
	if err != nil {
		return withCode(exitFailure, fmt.Errorf("demo: %w", err))
	}
	for _, p := range res.Problems {
		fmt.Fprintln(stderr, "commons:", p)
	}
	return headlessExit(res)
}

// headlessExit is the exit status of a street that ran: nil (0) when it
// converged; 4 (integrity) when two parties' ledgers disagree about a
// settled pledge; 5 (timed out) when messages were still missing from
// their counterparties' ledgers after the drain.
func headlessExit(res *demo.HeadlessResult) error {
	switch {
	case res.Disagreements > 0:
		return failf(exitIntegrity, "the street did not converge: %d settled pledges differ between the parties' ledgers", res.Disagreements)
	case !res.Converged:
		return failf(exitTimeout, "the street did not converge: %d of %d messages were not in their counterparty's ledger after %.0f s of draining", res.Missing, res.Deliveries, res.DrainS)
	}
	return nil
}

// raiseFileLimit raises the soft RLIMIT_NOFILE to the hard one and
// returns the limit now in force.
func raiseFileLimit() (int, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("read the open-file limit: %w", err)
	}
	if lim.Cur < lim.Max {
		want := lim
		want.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil {
			lim = want
		}
	}
	const most = 1 << 30
	if lim.Cur > most {
		return most, nil
	}
	return int(lim.Cur), nil
}

// peakRSSMB is the process's peak resident set in MB (10^6 bytes):
// getrusage's ru_maxrss (KiB on Linux, bytes on macOS), or 0.
func peakRSSMB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	b := float64(ru.Maxrss) * 1024
	if runtime.GOOS == "darwin" {
		b = float64(ru.Maxrss)
	}
	return float64(int64(b/1e5)) / 10
}

// errHeadlessOnly names a flag given without --headless.
var errHeadlessOnly = errors.New("--duration, --relay, --json and --links work with --headless only")
