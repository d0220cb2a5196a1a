package node

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"time"

	"github.com/commons-energy/commons/meter"
)

// Errors the operations wrap so callers (the CLI's exit codes, the local
// API's status codes) can tell kinds of failure apart with errors.Is.
var (
	// ErrNotFound: an unknown neighbour, pledge id or message id (exit 3).
	ErrNotFound = errors.New("not found")
	// ErrInvalid: input the user can fix (a bad invite, energy, window, or
	// an action the pledge's state does not allow) (exit 2).
	ErrInvalid = errors.New("invalid input")
	// ErrIntegrity: stored or imported data failed verification (exit 4).
	ErrIntegrity = errors.New("integrity failure")
)

// Identity is who this household is, as `commons id` prints it.
type Identity struct {
	ID        string `json:"id"`        // household id: the Ed25519 public key, base32
	Name      string `json:"name"`      // display name
	Invite    string `json:"invite"`    // the self-signed invite string neighbours paste
	Listen    string `json:"listen"`    // where neighbours reach this box directly
	Relay     string `json:"relay"`     // community hub URL, "" when none
	Community string `json:"community"` // community id, hex
}

// Neighbour is a household whose messages this one accepts.
type Neighbour struct {
	ID        string           `json:"id"`
	Name      string           `json:"name"`
	LastSeen  *time.Time       `json:"last_seen"` // nil when never
	Status    *NeighbourStatus `json:"status"`    // latest signed status, nil when none
	Addresses []string         `json:"addresses,omitempty"`
	// StoredBytes is the size of its messages stored here, as the storage
	// quota counts it.
	StoredBytes int64 `json:"stored_bytes"`
	// Refused counts its messages refused, by reason code (e.g. "quota",
	// "disk_reserve", "seq_gap"); empty when none.
	Refused map[string]int64 `json:"refused"`
	// Frozen is true when the neighbour signed two different messages
	// with one sequence number (a fork, docs/PROTOCOL.md §6.3): nothing
	// more is accepted from its key until it starts a new one.
	Frozen bool `json:"frozen"`
	// ForkSeq is the sequence number of the first fork; 0 (and absent
	// from JSON) when not frozen.
	ForkSeq uint64 `json:"fork_seq,omitempty"`
}

// NeighbourStatus is a neighbour's latest signed surplus or need.
type NeighbourStatus struct {
	SurplusW int64     `json:"surplus_w"` // > 0 surplus, < 0 need
	Time     time.Time `json:"time"`      // the status's advisory signing time; null in JSON when RFC 3339 cannot hold it
}

// MarshalJSON writes the status with its time as RFC 3339, or null when
// the signed time is outside the years 0..9999 (see jsonTime).
func (s NeighbourStatus) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		SurplusW int64      `json:"surplus_w"`
		Time     *time.Time `json:"time"`
	}{s.SurplusW, jsonTime(s.Time)})
}

// PledgeWindow is a pledge's window in JSON: its instants and its slot
// numbers as signed.
type PledgeWindow struct {
	Start    time.Time `json:"start"`     // null in JSON when RFC 3339 cannot hold it
	End      time.Time `json:"end"`       // null in JSON when RFC 3339 cannot hold it
	FromSlot int64     `json:"from_slot"` // first slot
	ToSlot   int64     `json:"to_slot"`   // end slot (exclusive)
}

// MarshalJSON writes the window. An instant outside the years 0..9999,
// which only a message stored before the end of protocol time was
// enforced can name (docs/PROTOCOL.md §4.1), is null; the slot numbers
// are always there.
func (w PledgeWindow) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Start    *time.Time `json:"start"`
		End      *time.Time `json:"end"`
		FromSlot int64      `json:"from_slot"`
		ToSlot   int64      `json:"to_slot"`
	}{jsonTime(w.Start), jsonTime(w.End), w.FromSlot, w.ToSlot})
}

// jsonTime returns &t, or nil when t's year (in its location) is outside
// 0..9999, the range time.Time.MarshalJSON and RFC 3339 can hold.
func jsonTime(t time.Time) *time.Time {
	if y := t.Year(); y < 0 || y > 9999 {
		return nil
	}
	return &t
}

// Pledge is one pledge and where it stands, in the shape of the CLI's JSON.
type Pledge struct {
	ID          string       `json:"id"`
	From        string       `json:"from"`
	To          string       `json:"to"`
	FromName    string       `json:"from_name"`
	ToName      string       `json:"to_name"`
	EnergyWh    int64        `json:"energy_wh"`
	Window      PledgeWindow `json:"window"`
	State       string       `json:"state"` // pledged|accepted|declined|cancelled|expired|settled
	AcceptedWh  *int64       `json:"accepted_wh"`
	DeliveredWh *int64       `json:"delivered_wh"` // settled Wh; nil until settled
	Outgoing    bool         `json:"outgoing"`     // this household gives
	Created     time.Time    `json:"created"`      // the pledge's advisory signing time; null in JSON when RFC 3339 cannot hold it
}

// MarshalJSON writes the pledge in the CLI's JSON shape; a created time
// outside the years 0..9999 (the signed clock is only bounded above) is
// null.
func (p Pledge) MarshalJSON() ([]byte, error) {
	type plain Pledge // without this method
	return json.Marshal(struct {
		plain
		Created *time.Time `json:"created"`
	}{plain(p), jsonTime(p.Created)})
}

// Open reports whether the pledge can still change: pledged or accepted.
func (p *Pledge) Open() bool { return p.State == "pledged" || p.State == "accepted" }

// PledgeRequest is what a household asks to pledge.
type PledgeRequest struct {
	To       string    // neighbour name, id or unique id prefix
	EnergyWh int64     // total over the window
	Start    time.Time // widened to whole slots by the node
	End      time.Time
	// Force skips the plausibility check (ErrImplausible).
	Force bool
	// IdempotencyKey, when set, makes the request safe to retry: a second
	// request with the same key and the same parameters returns the first
	// pledge instead of making another; the same key with other parameters
	// is ErrInvalid.
	IdempotencyKey string
}

// Status is the household's state at a glance.
type Status struct {
	Reading     *meter.Reading `json:"reading"` // the latest meter reading, nil when none
	Meter       MeterState     `json:"meter"`
	Today       Today          `json:"today"`
	Neighbours  int            `json:"neighbours"`
	OpenPledges int            `json:"open_pledges"`
	// Production is the production meter's state; nil when none is configured.
	Production *ProductionState `json:"production,omitempty"`
	// Relay is the community hub link; nil when no relay is configured.
	Relay *RelayState `json:"relay,omitempty"`
	// MQTT is the daemon's broker connection when it publishes to Home
	// Assistant (--mqtt); nil (absent) otherwise.
	MQTT *MQTTState `json:"mqtt,omitempty"`
}

// RelayState is the community hub link at a glance.
type RelayState struct {
	URL         string     `json:"url"`           // credentials removed
	Running     bool       `json:"running"`       // a running household holds the link
	Connected   bool       `json:"connected"`     // connected to the hub now
	LastError   *string    `json:"last_error"`    // the last problem since connecting; null when none
	LastErrorAt *time.Time `json:"last_error_at"` // when
	LastMessage *time.Time `json:"last_message"`  // the last message that arrived from the hub
	Cursor      uint64     `json:"cursor"`        // the last hub stream sequence handled
	Received    uint64     `json:"received"`      // messages that arrived since the household started
	Stored      uint64     `json:"stored"`        // of those, new and stored
	Duplicates  uint64     `json:"duplicates"`    // of those, already held
	Refused     uint64     `json:"refused"`       // of those, refused (forged, altered, unknown author...)
	Published   uint64     `json:"published"`     // own messages the hub took
}

// MeterState is the meter's health.
type MeterState struct {
	Online       bool       `json:"online"`
	Port         string     `json:"port"`
	Protocol     string     `json:"protocol"`
	LastTelegram *time.Time `json:"last_telegram"`
	// ClockSkewS is the meter's clock minus this box's clock at the latest
	// reading, in whole seconds; nil when the meter sends no time, none
	// was read yet, or the household is not running (status read from the
	// ledger). Energy is always filed by this box's clock.
	ClockSkewS *int64 `json:"clock_skew_s"`
	// ClockOK is false when the meter's clock differs from this box's by
	// more than meter.MaxClockSkew (5 minutes); true otherwise, also when
	// the meter sends no time.
	ClockOK bool `json:"clock_ok"`
}

// Today is today's energy totals in the household's time zone.
type Today struct {
	ImportWh int64 `json:"import_wh"`
	ExportWh int64 `json:"export_wh"`
	// With a production meter: its energy today and the consumption
	// derived from it (production + import - export).
	ProductionWh  *int64 `json:"production_wh,omitempty"`
	ConsumptionWh *int64 `json:"consumption_wh,omitempty"`
}

// ImportReport counts what an import did.
type ImportReport struct {
	Added      int         `json:"added"`
	Duplicates int         `json:"duplicates"`
	Rejected   []Rejection `json:"rejected"`
}

// Rejection is one message an import refused, and why.
type Rejection struct {
	Index  int    `json:"index"` // 1-based position in the block
	ID     string `json:"id"`    // message id when it could be computed
	Reason string `json:"reason"`
}

// Calendar is how the household counts time: its zone for "today" and
// HH:MM windows, and the community's settlement slot length.
type Calendar struct {
	Location *time.Location
	Slot     time.Duration
}

// Household is every operation the CLI, the dashboard and the local API
// need from a household. *Node implements it in-process; a client of a
// running daemon's socket implements it too, so callers do not care which
// process owns the household.
type Household interface {
	Identity() Identity
	Calendar() Calendar
	AddNeighbour(ctx context.Context, invite, alias string) (Neighbour, error)
	Neighbours(ctx context.Context) ([]Neighbour, error)
	RemoveNeighbour(ctx context.Context, nameOrID string) (Neighbour, error)
	Pledge(ctx context.Context, req PledgeRequest) (Pledge, error)
	Accept(ctx context.Context, id string) (Pledge, error)
	Decline(ctx context.Context, id string) (Pledge, error)
	Cancel(ctx context.Context, id string) (Pledge, error)
	Pledges(ctx context.Context, openOnly bool) ([]Pledge, error)
	FindPledge(ctx context.Context, id string) (Pledge, error)
	Status(ctx context.Context) (Status, error)
	Verify(ctx context.Context) (VerifyReport, error)
	ExportLedger(ctx context.Context, w io.Writer, format, table string) error
	ExportMessages(ctx context.Context, w io.Writer, since string) (int, error)
	Import(ctx context.Context, r io.Reader) (ImportReport, error)
	Close() error
}
