package mqtt

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/commons-energy/commons/meter"
	"github.com/commons-energy/commons/share/household"
)

// Entity groups: each is published on its own schedule.
const (
	groupPower   = iota // live power, phases, last reading time: at most once per Options.PowerEvery, with a reading
	groupEnergy         // meter registers: on change, with a reading
	groupHealth         // meter online, clock: on change
	groupCommons        // pledged, given, received: on change
)

// entity is one Home Assistant entity: its discovery config and group.
type entity struct {
	object      string // object id: the last level of its state topic
	component   string // "sensor" or "binary_sensor"
	name        string
	deviceClass string
	stateClass  string
	unit        string
	precision   int  // suggested_display_precision; -1 = none
	diagnostic  bool // entity_category "diagnostic"
	group       int
}

// entities are every entity this household may publish, by object id. One
// is announced (its discovery config published) when it first has a value.
var entities = func() map[string]entity {
	es := []entity{
		{"power_import", "sensor", "Power import", "power", "measurement", "W", 0, false, groupPower},
		{"power_export", "sensor", "Power export", "power", "measurement", "W", 0, false, groupPower},
		{"power_net", "sensor", "Power net", "power", "measurement", "W", 0, false, groupPower},
		{"energy_import", "sensor", "Energy import", "energy", "total_increasing", "kWh", 3, false, groupEnergy},
		{"energy_export", "sensor", "Energy export", "energy", "total_increasing", "kWh", 3, false, groupEnergy},
		{"energy_import_tariff1", "sensor", "Energy import tariff 1", "energy", "total_increasing", "kWh", 3, false, groupEnergy},
		{"energy_import_tariff2", "sensor", "Energy import tariff 2", "energy", "total_increasing", "kWh", 3, false, groupEnergy},
		{"energy_export_tariff1", "sensor", "Energy export tariff 1", "energy", "total_increasing", "kWh", 3, false, groupEnergy},
		{"energy_export_tariff2", "sensor", "Energy export tariff 2", "energy", "total_increasing", "kWh", 3, false, groupEnergy},
		{"meter_online", "binary_sensor", "Meter", "connectivity", "", "", -1, true, groupHealth},
		{"meter_clock_problem", "binary_sensor", "Meter clock", "problem", "", "", -1, true, groupHealth},
		{"meter_last_reading", "sensor", "Meter last reading", "timestamp", "", "", -1, true, groupPower},
		{"pledged_today", "sensor", "Pledged today", "energy", "total", "Wh", 0, false, groupCommons},
		{"given_today", "sensor", "Given today", "energy", "total_increasing", "Wh", 0, false, groupCommons},
		{"received_today", "sensor", "Received today", "energy", "total_increasing", "Wh", 0, false, groupCommons},
		{"given_total", "sensor", "Given in total", "energy", "total_increasing", "Wh", 0, false, groupCommons},
		{"received_total", "sensor", "Received in total", "energy", "total_increasing", "Wh", 0, false, groupCommons},
	}
	for i := 1; i <= 3; i++ {
		l := strconv.Itoa(i)
		es = append(es,
			entity{"voltage_l" + l, "sensor", "Voltage L" + l, "voltage", "measurement", "V", 1, false, groupPower},
			entity{"current_l" + l, "sensor", "Current L" + l, "current", "measurement", "A", 2, false, groupPower},
			entity{"power_import_l" + l, "sensor", "Power import L" + l, "power", "measurement", "W", 0, false, groupPower},
			entity{"power_export_l" + l, "sensor", "Power export L" + l, "power", "measurement", "W", 0, false, groupPower},
		)
	}
	m := make(map[string]entity, len(es))
	for _, e := range es {
		m[e.object] = e
	}
	return m
}()

// device is the Home Assistant device block every entity shares.
type device struct {
	Identifiers  []string `json:"identifiers"`
	Name         string   `json:"name"`
	Manufacturer string   `json:"manufacturer"`
	Model        string   `json:"model"`
	SWVersion    string   `json:"sw_version,omitempty"`
}

// origin says which program published the discovery config.
type origin struct {
	Name      string `json:"name"`
	SWVersion string `json:"sw_version,omitempty"`
}

// discovery is one entity's Home Assistant MQTT discovery config, with
// the full key names (not the abbreviations).
type discovery struct {
	Name                string  `json:"name"`
	UniqueID            string  `json:"unique_id"`
	StateTopic          string  `json:"state_topic"`
	AvailabilityTopic   string  `json:"availability_topic"`
	PayloadAvailable    string  `json:"payload_available"`
	PayloadNotAvailable string  `json:"payload_not_available"`
	DeviceClass         string  `json:"device_class,omitempty"`
	StateClass          string  `json:"state_class,omitempty"`
	Unit                string  `json:"unit_of_measurement,omitempty"`
	Precision           *int    `json:"suggested_display_precision,omitempty"`
	PayloadOn           string  `json:"payload_on,omitempty"`
	PayloadOff          string  `json:"payload_off,omitempty"`
	EntityCategory      string  `json:"entity_category,omitempty"`
	Device              *device `json:"device"`
	Origin              *origin `json:"origin"`
}

// Availability payloads.
const (
	payloadOnline  = "online"
	payloadOffline = "offline"
)

// topics names everything one household publishes.
type topics struct {
	base      string // <topic_prefix>/<household id>
	discovery string // <discovery_prefix>
	nodeID    string // commons_<household id>
}

func newTopics(s *Settings, householdID string) topics {
	return topics{base: s.TopicPrefix + "/" + householdID, discovery: s.DiscoveryPrefix, nodeID: "commons_" + householdID}
}

func (t topics) availability() string       { return t.base + "/availability" }
func (t topics) state(object string) string { return t.base + "/" + object }
func (t topics) config(e entity) string {
	return t.discovery + "/" + e.component + "/" + t.nodeID + "/" + e.object + "/config"
}

// config returns the discovery payload of e.
func (t topics) configPayload(e entity, id household.Identity, version string) []byte {
	d := discovery{
		Name:                e.name,
		UniqueID:            t.nodeID + "_" + e.object,
		StateTopic:          t.state(e.object),
		AvailabilityTopic:   t.availability(),
		PayloadAvailable:    payloadOnline,
		PayloadNotAvailable: payloadOffline,
		DeviceClass:         e.deviceClass,
		StateClass:          e.stateClass,
		Unit:                e.unit,
		Device: &device{
			Identifiers:  []string{t.nodeID},
			Name:         id.Name,
			Manufacturer: "commons",
			Model:        "energy commons household",
			SWVersion:    version,
		},
		Origin: &origin{Name: "commons", SWVersion: version},
	}
	if e.precision >= 0 {
		p := e.precision
		d.Precision = &p
	}
	if e.component == "binary_sensor" {
		d.PayloadOn, d.PayloadOff = "ON", "OFF"
	}
	if e.diagnostic {
		d.EntityCategory = "diagnostic"
	}
	b, err := json.Marshal(d)
	if err != nil {
		panic(err) // plain strings and ints only
	}
	return b
}

// FormatFixed formats v / 10^decimals exactly with that many decimals:
// FormatFixed(2192317, 3) = "2192.317". Integers only, no floating point.
func FormatFixed(v int64, decimals int) string {
	neg := v < 0
	u := uint64(v)
	if neg {
		u = uint64(-(v + 1)) + 1 // also for math.MinInt64
	}
	s := strconv.FormatUint(u, 10)
	if decimals > 0 {
		for len(s) <= decimals {
			s = "0" + s
		}
		s = s[:len(s)-decimals] + "." + s[len(s)-decimals:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// formatKWh formats integer Wh as kWh with three decimals, exactly.
func formatKWh(wh int64) string { return FormatFixed(wh, 3) }

func formatInt(v int64) string { return strconv.FormatInt(v, 10) }

func onOff(b bool) string {
	if b {
		return "ON"
	}
	return "OFF"
}

// values is what one group's entities say now, by object id.
type values map[string]string

// readingValues returns the power group's and the energy group's values
// of a reading. Values the meter did not send are left out.
func readingValues(r meter.Reading, lastTelegram time.Time) (power, energy values) {
	power, energy = values{}, values{}
	if r.PowerImportW.OK {
		power["power_import"] = formatInt(r.PowerImportW.V)
	}
	if r.PowerExportW.OK {
		power["power_export"] = formatInt(r.PowerExportW.V)
	}
	if r.PowerImportW.OK && r.PowerExportW.OK {
		power["power_net"] = formatInt(r.PowerImportW.V - r.PowerExportW.V)
	}
	for i, ph := range r.Phases {
		l := strconv.Itoa(i + 1)
		if ph.VoltageMV.OK {
			power["voltage_l"+l] = FormatFixed(ph.VoltageMV.V, 3)
		}
		if ph.CurrentMA.OK {
			power["current_l"+l] = FormatFixed(ph.CurrentMA.V, 3)
		}
		if ph.PowerImportW.OK {
			power["power_import_l"+l] = formatInt(ph.PowerImportW.V)
		}
		if ph.PowerExportW.OK {
			power["power_export_l"+l] = formatInt(ph.PowerExportW.V)
		}
	}
	if !lastTelegram.IsZero() {
		power["meter_last_reading"] = lastTelegram.UTC().Format(time.RFC3339)
	}
	regs := func(prefix string, rg meter.Registers) {
		if rg.Total.OK {
			energy[prefix] = formatKWh(rg.Total.V)
		}
		if rg.Tariff1.OK {
			energy[prefix+"_tariff1"] = formatKWh(rg.Tariff1.V)
		}
		if rg.Tariff2.OK {
			energy[prefix+"_tariff2"] = formatKWh(rg.Tariff2.V)
		}
	}
	regs("energy_import", r.EnergyImport)
	regs("energy_export", r.EnergyExport)
	return power, energy
}

// healthValues returns the meter's health: online while the running
// reader gets valid telegrams; the clock is a problem when it differs
// from this box's by more than meter.MaxClockSkew.
func healthValues(online bool, skew time.Duration, skewKnown bool) values {
	wrong := skewKnown && (skew > meter.MaxClockSkew || skew < -meter.MaxClockSkew)
	return values{"meter_online": onOff(online), "meter_clock_problem": onOff(wrong)}
}

// Figures are the household's commons figures in Wh.
type Figures struct {
	PledgedToday  int64 // this household's pledges to neighbours for windows starting today, unless declined, cancelled or expired
	GivenToday    int64 // settled energy given to neighbours in windows starting today
	ReceivedToday int64 // settled energy received from neighbours in windows starting today
	GivenTotal    int64 // settled energy given, all time
	ReceivedTotal int64 // settled energy received, all time
}

// CommonsFigures adds up the pledges: "today" is the calendar day of now
// in loc, and a pledge counts on the day its window starts.
func CommonsFigures(ps []household.Pledge, now time.Time, loc *time.Location) Figures {
	now = now.In(loc)
	dayStart := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	dayEnd := dayStart.AddDate(0, 0, 1)
	var f Figures
	for _, p := range ps {
		today := !p.Window.Start.Before(dayStart) && p.Window.Start.Before(dayEnd)
		if p.Outgoing && today {
			switch p.State {
			case "pledged", "accepted", "settled":
				f.PledgedToday += p.EnergyWh
			}
		}
		if p.DeliveredWh == nil {
			continue
		}
		d := *p.DeliveredWh
		if p.Outgoing {
			f.GivenTotal += d
			if today {
				f.GivenToday += d
			}
		} else {
			f.ReceivedTotal += d
			if today {
				f.ReceivedToday += d
			}
		}
	}
	return f
}

func (f Figures) values() values {
	return values{
		"pledged_today":  formatInt(f.PledgedToday),
		"given_today":    formatInt(f.GivenToday),
		"received_today": formatInt(f.ReceivedToday),
		"given_total":    formatInt(f.GivenTotal),
		"received_total": formatInt(f.ReceivedTotal),
	}
}

// mustEntity returns the entity of object; it panics on a programming
// error: an object id missing from the table.
func mustEntity(object string) entity {
	e, ok := entities[object]
	if !ok {
		panic(fmt.Sprintf("mqtt: no entity %q", object))
	}
	return e
}

// sortedKeys returns the keys of vs in order, so messages go out in a
// stable order.
func sortedKeys(vs values) []string {
	ks := make([]string, 0, len(vs))
	for k := range vs {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
