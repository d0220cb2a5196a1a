package household

import (
	"encoding/json"
	"time"

	"github.com/commons-energy/commons/meter"
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

// Calendar is how the household counts time: its zone for "today" and
// HH:MM windows, and the community's settlement slot length.
type Calendar struct {
	Location *time.Location
	Slot     time.Duration
}

// Neighbour is a household whose messages this one accepts, with what
// passed between them.
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
	// Protocol is the protocol version the neighbour's program is known
	// to read (docs/PROTOCOL.md §8.16): 2 once its feed holds a message of
	// a version 2 kind, 1 while it holds only version 1 kinds (it may run
	// an older commons, and gets plain reports for our shared windows),
	// 0 while none of its messages is here.
	Protocol int `json:"protocol"`
	// OpenPledges counts pledges between us, either way, that are not
	// settled, declined, cancelled or expired.
	OpenPledges int `json:"open_pledges"`
	// Energy settled between us in Wh: given = we exported to them.
	GivenWh         int64 `json:"given_wh"`          // all time
	ReceivedWh      int64 `json:"received_wh"`       // all time
	MonthGivenWh    int64 `json:"month_given_wh"`    // this local month
	MonthReceivedWh int64 `json:"month_received_wh"` // this local month
	// VerifyFailures counts the neighbour's messages that failed
	// verification and were rejected.
	VerifyFailures int `json:"verify_failures,omitempty"`
	// Problem says in words what is wrong (fork, failures); "" when nothing.
	Problem string `json:"problem,omitempty"`
	// The direct link to its box, while this household runs: the last
	// exchange that worked, and since when (and why) it cannot be
	// reached; nil when unknown (not running, no address) or reachable.
	LastContact      *time.Time `json:"last_contact,omitempty"`
	UnreachableSince *time.Time `json:"unreachable_since,omitempty"`
	LinkError        string     `json:"link_error,omitempty"`
	// Acknowledged is the seq of this household's feed its box is known
	// to hold; 0 when none.
	Acknowledged uint64 `json:"acknowledged"`
}

// Link is the direct link to one neighbour's box, as the running
// transport sees it.
type Link struct {
	LastContact      time.Time // the last pull that worked; zero if none yet
	UnreachableSince time.Time // the first failed pull since then; zero when reachable
	LastError        string    // why the last pull failed; "" after a success
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
	// StateDisputed: a settle does not recompute from the evidence it
	// names, or the two parties settled differently; nothing is
	// delivered until a settle holds (Pledge.Dispute says why).
	StateDisputed PledgeState = "disputed"
)

// Open reports whether the pledge still waits for an answer or its window.
func (s PledgeState) Open() bool { return s == StatePledged || s == StateAccepted }

// Verification is the verification status of a pledge's messages.
type Verification string

// The verification statuses.
const (
	VerifyUnknown Verification = ""       // not yet checked or not applicable
	VerifyOK      Verification = "ok"     // every message verified
	VerifyFailed  Verification = "failed" // a message failed verification
)

// PledgeWindow is a pledge's window: its instants and its slot numbers as
// signed.
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
	State       PledgeState  `json:"state"` // pledged|accepted|declined|cancelled|expired|settled|disputed
	AcceptedWh  *int64       `json:"accepted_wh"`
	DeliveredWh *int64       `json:"delivered_wh"` // settled Wh; nil until settled
	// Delivered says the counterparty's box has acknowledged this
	// household's latest message about the pledge (the pledge, or this
	// household's answer or settle); true when there is none to deliver.
	Delivered bool `json:"delivered"`
	// LimitedBy names the term of min(pledged, accepted, export, import)
	// that decided the settled amount: "pledged", "accepted", "export" or
	// "import"; nil until settled. SlotLimits says it per slot of the
	// window, and SlotWh is what the settlement allocated in each slot.
	LimitedBy  *string  `json:"limited_by"`
	SlotLimits []string `json:"slot_limits,omitempty"`
	SlotWh     []int64  `json:"slot_wh,omitempty"`
	// Dispute says why the pledge is disputed ("" otherwise): which
	// settle does not hold and what its evidence gives instead, or how
	// the parties' settles differ.
	Dispute  string    `json:"dispute,omitempty"`
	Outgoing bool      `json:"outgoing"` // this household gives
	Created  time.Time `json:"created"`  // the pledge's advisory signing time; null in JSON when RFC 3339 cannot hold it
	// Verified says whether the pledge's messages verified; the ledger
	// stores only verified messages.
	Verified Verification `json:"verified,omitempty"`
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
func (p *Pledge) Open() bool { return p.State.Open() }

// PledgeRequest is what a household asks to pledge: EnergyWh to the
// neighbour To over [Start, End), which the household widens to whole
// slots.
type PledgeRequest struct {
	To       string    `json:"to"`        // neighbour name, id or unique id prefix
	EnergyWh int64     `json:"energy_wh"` // total over the window
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	// Force skips the plausibility check.
	Force bool `json:"force,omitempty"`
	// IdempotencyKey, when set, makes the request safe to retry: a second
	// request with the same key and the same parameters returns the first
	// pledge instead of making another; the same key with other parameters
	// is ErrInvalid.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// Delivery says how far a signed pledge got.
type Delivery int

// The delivery outcomes.
const (
	Queued    Delivery = iota // stored; delivery to the neighbour is retried
	Delivered                 // the neighbour's box has it
)

// PledgeResult is the outcome of Household.Pledge.
type PledgeResult struct {
	Pledge   Pledge   `json:"pledge"`
	Delivery Delivery `json:"delivery"`
	// Note explains a queued delivery ("anna is offline, will retry").
	Note string `json:"note,omitempty"`
}

// Preview is what the household knows about a planned pledge.
type Preview struct {
	Start time.Time `json:"start"` // the window aligned to slots
	End   time.Time `json:"end"`
	// ForecastSurplusWh is the expected surplus of this household over the
	// window; not OK when there is no forecast.
	ForecastSurplusWh meter.Optional `json:"forecast_surplus_wh"`
	// PledgedWh is what this household already pledged in the window.
	PledgedWh int64 `json:"pledged_wh"`
	// Warning is a sentence for the person ("more than the forecast
	// surplus"); "" when nothing to say.
	Warning string `json:"warning,omitempty"`
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
	Skipped     uint64     `json:"skipped"`       // of those, of households that are not neighbours: not read
	Published   uint64     `json:"published"`     // own messages the hub took
}

// MQTTState is a running daemon's connection to its MQTT broker, as
// `commons status --json` shows it under "mqtt".
type MQTTState struct {
	URL       string `json:"url"`        // the broker, without user name or password
	Connected bool   `json:"connected"`  // connected now
	LastError string `json:"last_error"` // why the last attempt failed or the connection dropped; "" once connected
	// Failures counts the failed connection attempts since the last
	// connection (or the start).
	Failures int `json:"failures"`
}

// MeterState is a meter's health.
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
	// While the household runs: since when the meter is silent (nil when
	// online), telegrams rejected today, and the last read or decode error.
	OfflineSince *time.Time `json:"offline_since,omitempty"`
	CRCErrors    int        `json:"crc_errors,omitempty"`
	LastError    string     `json:"last_error,omitempty"`
}

// ClockNote says how far the meter's clock is off this box's when it is
// not OK ("1 year ahead of this box"); "" when it is OK or unknown.
func (m MeterState) ClockNote() string {
	if m.ClockOK || m.ClockSkewS == nil {
		return ""
	}
	if *m.ClockSkewS > 0 {
		return meter.DescribeClockSkew(time.Duration(*m.ClockSkewS)*time.Second) + " of this box"
	}
	return meter.DescribeClockSkew(time.Duration(*m.ClockSkewS)*time.Second) + " this box"
}

// ProductionState is the production meter at a glance (Status).
type ProductionState struct {
	MeterState
	PowerW             *int64 `json:"power_w"`              // production now; nil when the meter has no recent reading
	ConsumptionW       *int64 `json:"consumption_w"`        // production + grid import - grid export now
	SelfConsumptionPct *int64 `json:"self_consumption_pct"` // today: production used at home / production
	SelfSufficiencyPct *int64 `json:"self_sufficiency_pct"` // today: production used at home / consumption
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

// State is the dashboard's snapshot of the household.
type State struct {
	Home       Home        `json:"home"`
	Live       Live        `json:"live"`
	Neighbours []Neighbour `json:"neighbours"` // in display order
	// Pledges holds every open pledge (ours and incoming) plus the most
	// recent closed ones, newest first, bounded (a few hundred rows).
	Pledges []Pledge `json:"pledges"`
	// Relay is the community hub link; nil when no relay is configured.
	Relay *RelayState `json:"relay,omitempty"`
}

// Home describes this household for the dashboard.
type Home struct {
	ID   string `json:"id"`   // household id
	Name string `json:"name"` // display name
	// SlotLength is the community's settlement slot (15 min by default).
	SlotLength time.Duration `json:"slot_length"`
	// FuseA is the main fuse per phase in amperes; 0 when unknown.
	FuseA int `json:"fuse_a"`
	// Production says a production meter (inverter) is configured, so
	// solar production and home consumption are measured rather than
	// unknown.
	Production bool `json:"production"`
}

// Live is the household's state that changes with every telegram.
type Live struct {
	// Reading is the latest grid meter reading; valid when HasReading.
	Reading    meter.Reading
	HasReading bool
	// ProductionW is the solar production now, when a production meter is
	// configured and has answered.
	ProductionW meter.Optional
	Meter       MeterState // the grid meter
	Today       Today
}

// Sample is one live power sample. ImportW and ExportW come from the grid
// meter; with a production meter configured and read recently,
// ProductionW is its power (signed: an idle inverter's own draw is
// negative) and ConsumptionW = ProductionW + ImportW - ExportW.
type Sample struct {
	Time         time.Time      `json:"time"`
	ImportW      int64          `json:"import_w"`
	ExportW      int64          `json:"export_w"`
	ProductionW  meter.Optional `json:"production_w"`
	ConsumptionW meter.Optional `json:"consumption_w"`
}

// Bucket is the energy of one aggregation interval.
type Bucket struct {
	Start        time.Time      `json:"start"`
	Length       time.Duration  `json:"length"` // 1 min, 15 min, ...
	ImportWh     int64          `json:"import_wh"`
	ExportWh     int64          `json:"export_wh"`
	ProductionWh meter.Optional `json:"production_wh"`
}

// EventKind says what changed.
type EventKind int

// The kinds of Event.
const (
	// EventLive carries a new reading: Event.Live and Event.Sample are set.
	EventLive EventKind = iota + 1
	// EventState says neighbours, pledges or the meter health changed.
	EventState
	// EventAggregates says new energy buckets were stored.
	EventAggregates
	// EventIncoming says a neighbour pledged energy to us: Event.Pledge is
	// set.
	EventIncoming
)

// Event is one change notification from Household.Subscribe.
type Event struct {
	Kind   EventKind
	Live   Live    // EventLive
	Sample Sample  // EventLive: the 1 s sample for the live chart
	Pledge *Pledge // EventIncoming
}

// SettleReport says what one settlement round did.
type SettleReport struct {
	Reported []string  `json:"reported"` // pledge ids whose window this household reported its metered slots for
	Settled  []Pledge  `json:"settled"`  // pledges this household settled in this round
	Waiting  []Problem `json:"waiting"`  // pledges not settled yet, with what they wait for
}

// VerifyReport is the outcome of re-verifying the ledger; its JSON form is
// the `ledger verify --json` contract (ok, messages, problems, and more).
type VerifyReport struct {
	OK       bool  `json:"ok"`
	Messages int64 `json:"messages"` // chain messages checked
	Statuses int64 `json:"statuses"` // kept statuses checked
	// Ephemerals counts the kept ephemeral messages of kinds this version
	// does not interpret that were checked.
	Ephemerals int64 `json:"ephemerals"`
	Forks      int64 `json:"forks"` // fork proofs checked; each forked author is also a problem
	// Disputes counts disputed pledges; each is also a "disputed: …"
	// problem with the pledge's id.
	Disputes int64     `json:"disputes,omitempty"`
	Problems []Problem `json:"problems"` // empty, never null, when OK
	Omitted  int64     `json:"omitted,omitempty"`
}

// Problem is one thing found wrong, or one reason a pledge waits: the
// message or pledge id and a reason in words.
type Problem struct {
	ID     string `json:"id"`
	Author string `json:"author,omitempty"`
	Seq    int64  `json:"seq,omitempty"`
	Reason string `json:"reason"`
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

// ShortLen is how many characters of a household, pledge or message id
// the command line and the dashboard show (share.ShortLen: the protocol's
// error messages use the same length). Commands accept any unique prefix.
const ShortLen = 12

// ShortID returns the first ShortLen characters of id, for tables and
// messages.
func ShortID(id string) string {
	if len(id) > ShortLen {
		return id[:ShortLen]
	}
	return id
}
