package daemon

import (
	"time"

	"github.com/commons-energy/commons/meter"
	"github.com/commons-energy/commons/share/household"
)

// API paths of the local socket. Everything is JSON unless noted.
const (
	pathHello      = "/v1/hello"           // GET: identity and calendar
	pathIdentity   = "/v1/identity"        // GET: household.Identity
	pathNeighbours = "/v1/neighbours"      // GET list; POST {invite, alias}; DELETE /v1/neighbours/{who}
	pathPledges    = "/v1/pledges"         // GET ?open=true; POST household.PledgeRequest: household.PledgeResult; GET /{id}; POST /{id}/accept|decline|cancel
	pathStatus     = "/v1/status"          // GET: household.Status (reading in exact form)
	pathVerify     = "/v1/verify"          // GET: household.VerifyReport
	pathSettle     = "/v1/settle"          // POST: household.SettleReport
	pathExport     = "/v1/ledger/export"   // GET ?format=csv|jsonl&table=T: the export as text; error in trailer
	pathMessages   = "/v1/messages"        // GET ?since=ID: armored own feed; POST armored block: household.ImportReport
	pathPeers      = "/v1/peers"           // GET: each neighbour link's state
	pathState      = "/v1/state"           // GET: household.State (reading in exact form)
	pathSamples    = "/v1/samples"         // GET ?since=RFC3339Nano: []household.Sample
	pathAggregates = "/v1/aggregates"      // GET ?from=&to=: []household.Bucket
	pathPreview    = "/v1/pledges/preview" // POST household.PledgeRequest: household.Preview
	pathEvents     = "/v1/events"          // GET: NDJSON stream of events, one per line
)

// Limits of the local API.
const (
	maxJSONBody   = 64 << 10 // request bodies other than imports
	maxImportBody = 64 << 20 // an armored import block
)

// errorBody is every error answer.
type errorBody struct {
	Error string `json:"error"`
	Kind  string `json:"kind"` // not_found | invalid | integrity | failure
}

// hello is what a client learns once when it connects.
type hello struct {
	Identity   household.Identity `json:"identity"`
	Location   string             `json:"location"`    // IANA zone name of the household's calendar
	SlotLength time.Duration      `json:"slot_length"` // community slot, ns
	PeerListen string             `json:"peer_listen"` // where the peer server listens, "" when none
	PID        int                `json:"pid"`         // the daemon's process id
	Role       string             `json:"role"`        // the caller's role: "owner" or "viewer"
}

// neighbourReq adds a neighbour.
type neighbourReq struct {
	Invite string `json:"invite"`
	Alias  string `json:"alias,omitempty"`
}

// reading is meter.Reading with its plain field encoding: the contract's
// JSON form (meter.Reading.MarshalJSON) has no decoder, and the client
// needs the exact reading back. Floating says which times carry no known
// offset (meter.Floating), which JSON times cannot express.
type reading struct {
	R        plainReading `json:"r"`
	Floating []string     `json:"floating,omitempty"` // "time", "gas", "water", "heat"
}

// plainReading has meter.Reading's fields without its MarshalJSON.
type plainReading meter.Reading

// floatingTimes lists r's times that are in meter.Floating.
func floatingTimes(r *meter.Reading) map[string]*time.Time {
	m := map[string]*time.Time{"time": &r.Time}
	for name, sm := range map[string]*meter.SubMeter{"gas": r.Gas, "water": r.Water, "heat": r.Heat} {
		if sm != nil {
			m[name] = &sm.Time
		}
	}
	return m
}

func toReading(r meter.Reading) reading {
	w := reading{R: plainReading(r)}
	for name, t := range floatingTimes(&r) {
		if !t.IsZero() && t.Location() == meter.Floating {
			w.Floating = append(w.Floating, name)
		}
	}
	return w
}

func (w reading) reading() meter.Reading {
	r := meter.Reading(w.R)
	times := floatingTimes(&r)
	for _, name := range w.Floating {
		if t, ok := times[name]; ok && !t.IsZero() {
			*t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), meter.Floating)
		}
	}
	return r
}

// statusWire is household.Status with an exactly decodable reading.
type statusWire struct {
	Reading     *reading                   `json:"reading"`
	Meter       household.MeterState       `json:"meter"`
	Today       household.Today            `json:"today"`
	Neighbours  int                        `json:"neighbours"`
	OpenPledges int                        `json:"open_pledges"`
	Production  *household.ProductionState `json:"production,omitempty"`
	Relay       *household.RelayState      `json:"relay,omitempty"`
	MQTT        *household.MQTTState       `json:"mqtt,omitempty"`
}

func toStatusWire(s household.Status) statusWire {
	w := statusWire{Meter: s.Meter, Today: s.Today, Neighbours: s.Neighbours, OpenPledges: s.OpenPledges, Production: s.Production, Relay: s.Relay, MQTT: s.MQTT}
	if s.Reading != nil {
		r := toReading(*s.Reading)
		w.Reading = &r
	}
	return w
}

func (w statusWire) status() household.Status {
	s := household.Status{Meter: w.Meter, Today: w.Today, Neighbours: w.Neighbours, OpenPledges: w.OpenPledges, Production: w.Production, Relay: w.Relay, MQTT: w.MQTT}
	if w.Reading != nil {
		r := w.Reading.reading()
		s.Reading = &r
	}
	return s
}

// liveWire is household.Live with an exactly decodable reading.
type liveWire struct {
	Reading     reading
	HasReading  bool
	ProductionW meter.Optional
	Meter       household.MeterState
	Today       household.Today
}

func toLiveWire(l household.Live) liveWire {
	return liveWire{Reading: toReading(l.Reading), HasReading: l.HasReading, ProductionW: l.ProductionW, Meter: l.Meter, Today: l.Today}
}

func (w liveWire) live() household.Live {
	return household.Live{Reading: w.Reading.reading(), HasReading: w.HasReading, ProductionW: w.ProductionW, Meter: w.Meter, Today: w.Today}
}

// stateWire is household.State with an exactly decodable reading.
type stateWire struct {
	Home       household.Home
	Live       liveWire
	Neighbours []household.Neighbour
	Pledges    []household.Pledge
	Relay      *household.RelayState
}

// eventWire is one line of the events stream.
type eventWire struct {
	Kind   household.EventKind `json:"kind"` // 1 live, 2 state, 3 aggregates, 4 incoming
	Live   *liveWire           `json:"live,omitempty"`
	Sample *household.Sample   `json:"sample,omitempty"`
	Pledge *household.Pledge   `json:"pledge,omitempty"`
}

func toEventWire(ev household.Event) eventWire {
	w := eventWire{Kind: ev.Kind, Pledge: ev.Pledge}
	if ev.Kind == household.EventLive {
		lv := toLiveWire(ev.Live)
		s := ev.Sample
		w.Live, w.Sample = &lv, &s
	}
	return w
}

func (w eventWire) event() household.Event {
	ev := household.Event{Kind: w.Kind, Pledge: w.Pledge}
	if w.Live != nil {
		ev.Live = w.Live.live()
	}
	if w.Sample != nil {
		ev.Sample = *w.Sample
	}
	return ev
}
