package tui

import (
	"context"
	"errors"
	"time"

	"github.com/commons-energy/commons/meter"
)

// Backend is everything the dashboard needs from a household. The node
// implements it in-process; a client of the daemon's local socket can
// implement it for an attached dashboard or an SSH session. Tests use a fake.
//
// The dashboard calls every method from a tea.Cmd, never from Update or View,
// so a method may block on I/O; it should honour ctx. Methods may be called
// concurrently. Returned slices belong to the caller: a backend must not
// modify them afterwards.
type Backend interface {
	// State returns the current household state: live values, neighbours
	// and pledges.
	State(ctx context.Context) (State, error)
	// Samples returns the 1 s live samples at or after since, oldest first.
	// A backend keeps at most the last hour in memory and returns what it
	// has.
	Samples(ctx context.Context, since time.Time) ([]Sample, error)
	// Aggregates returns the energy buckets that overlap [from, to), oldest
	// first, at the resolution the backend stores (1 min for the last days,
	// 15 min slots beyond). The dashboard downsamples to the chart width.
	Aggregates(ctx context.Context, from, to time.Time) ([]Bucket, error)
	// Preview checks a pledge before it is made: the window aligned to the
	// community's slots, the surplus forecast for it and what is already
	// pledged in it. It signs and stores nothing.
	Preview(ctx context.Context, req PledgeRequest) (Preview, error)
	// Pledge signs, stores and delivers a pledge. A nil error means the
	// pledge is signed and durable; Result.Delivery says whether the
	// neighbour already has it.
	Pledge(ctx context.Context, req PledgeRequest) (PledgeResult, error)
	// Accept accepts an incoming pledge by id.
	Accept(ctx context.Context, id string) error
	// Decline declines an incoming pledge by id.
	Decline(ctx context.Context, id string) error
	// Cancel cancels one of our own open pledges before its window starts.
	Cancel(ctx context.Context, id string) error
	// Subscribe returns a channel of change notifications that is closed
	// when ctx is done. The backend must never block on a slow subscriber:
	// it keeps a small buffer per subscriber and may drop an EventLive
	// (the next one supersedes it) but must not drop the other kinds
	// (it may coalesce repeated ones).
	Subscribe(ctx context.Context) <-chan Event
}

// ErrUnavailable is wrapped by a Backend's error when the household cannot
// be reached at all, as when the daemon an attached dashboard talks to has
// stopped. The error's text says what happened in plain words ("the daemon
// stopped"). The dashboard then stops showing the last state as current
// and retries, with a backoff, until the household answers again.
var ErrUnavailable = errors.New("the household is not reachable")

// EventKind says what changed.
type EventKind int

// The kinds of Event.
const (
	// EventLive carries a new reading: Event.Live and Event.Sample are set.
	EventLive EventKind = iota + 1
	// EventState says neighbours, pledges or the meter health changed; the
	// dashboard calls State again.
	EventState
	// EventAggregates says new energy buckets were stored; the dashboard
	// calls Aggregates again for the span it shows.
	EventAggregates
	// EventIncoming says a neighbour pledged energy to us: Event.Pledge is
	// set. The dashboard shows a notification and calls State again.
	EventIncoming
)

// Event is one change notification from Backend.Subscribe.
type Event struct {
	Kind   EventKind
	Live   Live    // EventLive
	Sample Sample  // EventLive: the 1 s sample for the live chart
	Pledge *Pledge // EventIncoming
}

// State is a snapshot of the household for the dashboard.
type State struct {
	Home       Home
	Live       Live
	Neighbours []Neighbour // in display order
	// Pledges holds every open pledge (ours and incoming) plus the most
	// recent closed ones, newest first. A backend bounds it (a few hundred
	// rows); the ledger view shows what it gets.
	Pledges []Pledge
}

// Home describes this household.
type Home struct {
	ID   string // household id
	Name string // display name
	// SlotLength is the community's settlement slot (15 min by default).
	SlotLength time.Duration
	// FuseA is the main fuse per phase in amperes; 0 when unknown.
	FuseA int
	// Production says a production meter (inverter) is configured, so
	// solar production and home consumption are measured rather than
	// unknown.
	Production bool
}

// Live is the household's state that changes with every telegram.
type Live struct {
	// Reading is the latest grid meter reading; valid when HasReading.
	Reading    meter.Reading
	HasReading bool
	// ProductionW is the solar production now, when a production meter is
	// configured and has answered.
	ProductionW meter.Optional
	Meter       MeterHealth
	Today       Today
}

// MeterHealth is the state of the serial link to the grid meter.
type MeterHealth struct {
	Protocol     string    // "dsmr", ...; "" when not yet known
	Port         string    // e.g. "/dev/ttyUSB0"
	Online       bool      // telegrams are arriving
	LastTelegram time.Time // zero when none yet
	OfflineSince time.Time // zero when online
	CRCErrors    int       // telegrams rejected today (local day)
	LastError    string    // the last read or decode error; "" when none
	// ClockSkewS is the meter's clock minus this box's in seconds at the
	// latest reading; not OK when the meter sends no time.
	ClockSkewS meter.Optional
	// ClockWrong is true when the meter's clock differs from this box's
	// by more than meter.MaxClockSkew. Energy is filed by the box's clock
	// regardless; the dashboard says so.
	ClockWrong bool
}

// Today holds the energy of the current local day in Wh.
type Today struct {
	ImportWh     int64
	ExportWh     int64
	ProductionWh meter.Optional // with a production meter only
}

// Sample is one second of power for the live chart.
type Sample struct {
	Time        time.Time
	ImportW     int64
	ExportW     int64
	ProductionW meter.Optional
}

// Bucket is the energy of one aggregation interval.
type Bucket struct {
	Start        time.Time
	Length       time.Duration // 1 min, 15 min, ...
	ImportWh     int64
	ExportWh     int64
	ProductionWh meter.Optional
}

// Neighbour is one household of the commons as this home sees it.
type Neighbour struct {
	ID   string
	Name string
	// Status is the neighbour's latest signed status; nil when none arrived.
	Status *NeighbourStatus
	// LastSeen is when we last heard from the neighbour; zero when never.
	LastSeen time.Time
	// OpenPledges counts pledges between us, either way, that are not
	// settled, declined, cancelled or expired.
	OpenPledges int
	// Energy settled between us in Wh: given = we exported to them.
	GivenWh, ReceivedWh           int64 // all time
	MonthGivenWh, MonthReceivedWh int64 // this local month
	// Forked is true when two messages of the neighbour share a sequence
	// number: the feed is frozen.
	Forked bool
	// VerifyFailures counts the neighbour's messages that failed
	// verification and were rejected.
	VerifyFailures int
	// Problem says in words what is wrong (fork, failures); "" when nothing.
	Problem string
}

// NeighbourStatus is a neighbour's signed statement of surplus or need.
type NeighbourStatus struct {
	// SurplusW is positive when the neighbour has power to give and
	// negative when it needs power.
	SurplusW int64
	Time     time.Time // when the neighbour signed it
}

// PledgeState is the lifecycle state of a pledge, as in the CLI's JSON.
type PledgeState string

// The pledge states.
const (
	StatePledged   PledgeState = "pledged"
	StateAccepted  PledgeState = "accepted"
	StateDeclined  PledgeState = "declined"
	StateCancelled PledgeState = "cancelled"
	StateExpired   PledgeState = "expired"
	StateSettled   PledgeState = "settled"
)

// Open reports whether the pledge still waits for an answer or its window.
func (s PledgeState) Open() bool { return s == StatePledged || s == StateAccepted }

// Verification is the verification status of a pledge's messages.
type Verification int

// The verification statuses.
const (
	VerifyUnknown Verification = iota // not yet checked or not applicable
	VerifyOK                          // every message verified
	VerifyFailed                      // a message failed verification
)

// Pledge is one pledge with its answer and settlement.
type Pledge struct {
	ID       string
	From, To string // household ids
	// FromName and ToName are display names ("" when unknown).
	FromName, ToName string
	// Outgoing is true when this household is the one giving.
	Outgoing    bool
	EnergyWh    int64
	Start, End  time.Time // the window, aligned to slots
	State       PledgeState
	AcceptedWh  meter.Optional // set once accepted
	DeliveredWh meter.Optional // set once settled
	Verified    Verification
	Created     time.Time
}

// PledgeRequest asks to pledge EnergyWh to the neighbour To (id) over the
// window [Start, End). The backend aligns the window to the slots.
type PledgeRequest struct {
	To         string
	EnergyWh   int64
	Start, End time.Time
}

// Preview is what the backend knows about a planned pledge.
type Preview struct {
	Start, End time.Time // the window aligned to slots
	// ForecastSurplusWh is the expected surplus of this household over the
	// window; not OK when the backend cannot forecast.
	ForecastSurplusWh meter.Optional
	// PledgedWh is what this household already pledged in the window.
	PledgedWh int64
	// Warning is a sentence for the person ("more than the forecast
	// surplus"); "" when nothing to say.
	Warning string
}

// Delivery says how far a signed pledge got.
type Delivery int

// The delivery outcomes.
const (
	Queued    Delivery = iota // stored; delivery to the neighbour is retried
	Delivered                 // the neighbour's box has it
)

// PledgeResult is the outcome of Backend.Pledge.
type PledgeResult struct {
	Pledge   Pledge
	Delivery Delivery
	// Note explains a queued delivery ("anna is offline, will retry").
	Note string
}
