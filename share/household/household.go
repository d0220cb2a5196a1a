// Package household is the one contract between a household and its front
// ends: the Household interface (everything the command line and the
// dashboard do) and the plain data types it speaks. share/node implements it
// in-process; share/daemon serves it on the local socket and its Client
// implements it remotely; cmd/commons and tui only ever see this package.
//
// The JSON forms of the types are the command line's (../shared/design/CLI.md):
// scripts depend on their keys.
package household

import (
	"context"
	"errors"
	"io"
	"time"
)

// Errors an implementation wraps so callers (the CLI's exit codes, the local
// API's status codes, the dashboard) can tell kinds of failure apart with
// errors.Is.
var (
	// ErrNotFound: an unknown neighbour, pledge id or message id (exit 3).
	ErrNotFound = errors.New("not found")
	// ErrInvalid: input the user can fix (a bad invite, energy, window, or
	// an action the pledge's state does not allow) (exit 2).
	ErrInvalid = errors.New("invalid input")
	// ErrIntegrity: stored or imported data failed verification (exit 4).
	ErrIntegrity = errors.New("integrity failure")
	// ErrUnavailable is wrapped when the household cannot be reached at
	// all, as when the daemon an attached front end talks to has stopped.
	// The error's text says what happened in plain words ("the daemon
	// stopped"). The dashboard then stops showing the last state as
	// current and retries, with a backoff, until the household answers.
	ErrUnavailable = errors.New("the household is not reachable")
)

// Household is every operation the CLI and the dashboard need from a
// household. *node.Node implements it in-process; a client of a running
// daemon's socket implements it too, so callers do not care which process
// owns the household.
//
// The dashboard calls every method from a tea.Cmd, never from Update or
// View, so a method may block on I/O; it honours ctx. Methods may be called
// concurrently. Returned slices belong to the caller.
type Household interface {
	// Identity is who this household is.
	Identity() Identity
	// Calendar is the household's time zone and settlement slot.
	Calendar() Calendar

	AddNeighbour(ctx context.Context, invite, alias string) (Neighbour, error)
	Neighbours(ctx context.Context) ([]Neighbour, error)
	RemoveNeighbour(ctx context.Context, nameOrID string) (Neighbour, error)

	// Preview checks a pledge before it is made: the window aligned to the
	// community's slots, the surplus forecast for it and what is already
	// pledged in it. It signs and stores nothing.
	Preview(ctx context.Context, req PledgeRequest) (Preview, error)
	// Pledge signs, stores and delivers a pledge. A nil error means the
	// pledge is signed and durable; the result says whether the neighbour
	// already has it.
	Pledge(ctx context.Context, req PledgeRequest) (PledgeResult, error)
	// Accept, Decline and Cancel answer an incoming pledge, or withdraw
	// one of ours before its window starts, by id (or unique id prefix).
	Accept(ctx context.Context, id string) (Pledge, error)
	Decline(ctx context.Context, id string) (Pledge, error)
	Cancel(ctx context.Context, id string) (Pledge, error)
	Pledges(ctx context.Context, openOnly bool) ([]Pledge, error)
	FindPledge(ctx context.Context, id string) (Pledge, error)

	// Status is the household at a glance (`commons status`).
	Status(ctx context.Context) (Status, error)
	// State is the dashboard's snapshot: live values, neighbours with
	// their balances, and pledges.
	State(ctx context.Context) (State, error)
	// Samples returns the 1 s live samples at or after since, oldest
	// first: at most the last hour, what the household has.
	Samples(ctx context.Context, since time.Time) ([]Sample, error)
	// Aggregates returns the energy buckets that overlap [from, to),
	// oldest first, at the resolution stored (1 min for the last days,
	// slots beyond).
	Aggregates(ctx context.Context, from, to time.Time) ([]Bucket, error)
	// Subscribe returns a channel of change notifications that is closed
	// when ctx is done. The household never blocks on a slow subscriber:
	// it may drop an EventLive (the next one supersedes it) but not the
	// other kinds (it may coalesce repeated ones).
	Subscribe(ctx context.Context) <-chan Event

	// Settle runs one settlement round.
	Settle(ctx context.Context) (SettleReport, error)
	Verify(ctx context.Context) (VerifyReport, error)
	ExportLedger(ctx context.Context, w io.Writer, format, table string) error
	ExportMessages(ctx context.Context, w io.Writer, since string) (int, error)
	Import(ctx context.Context, r io.Reader) (ImportReport, error)
	Close() error
}
