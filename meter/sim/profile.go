// Package sim simulates a household's smart meter: a deterministic model
// of solar production and household load (base load, appliance runs,
// per-phase split, gas), exact energy counters, DSMR 5 telegrams with a
// valid CRC, and a virtual serial port (a pseudo-terminal) that emits them.
//
// The model is a pure function of the profile, the seed and the time for
// instantaneous values; the energy counters integrate those values second
// by second in integer watt-seconds, so they only ever increase and match
// the integrated power exactly to the Wh.
package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/commons-energy/commons/assets"
)

// Profile describes a simulated household. The embedded profiles live in
// assets/profiles/*.json; LoadProfile reads them.
type Profile struct {
	Name        string      `json:"name"`
	Description string      `json:"description"`
	Header      string      `json:"header"`   // identification line without '/', e.g. `ISK5\2M550T-1012`
	MeterID     string      `json:"meter_id"` // ASCII equipment id; the telegram carries it hex-encoded
	GasID       string      `json:"gas_id"`   // ASCII gas meter id; "" when there is no gas meter
	Latitude    float64     `json:"latitude"` // degrees north, for the sun
	Longitude   float64     `json:"longitude"`
	Phases      int         `json:"phases"` // 1 or 3; 0 means 3
	Solar       *Solar      `json:"solar"`  // nil: no panels
	Base        Base        `json:"base"`
	Appliances  []Appliance `json:"appliances"`
	Gas         *Gas        `json:"gas"` // nil: no gas meter
	Start       Start       `json:"start"`
}

// Solar describes the panels.
type Solar struct {
	PeakW      int     `json:"peak_w"`     // inverter output in full sun at a high sun
	Phase      int     `json:"phase"`      // 1..3 single-phase inverter; 0 three-phase
	Cloudiness float64 `json:"cloudiness"` // 0 always clear .. 1 always overcast; mean over the year
}

// Base is the load that is always there: standby, lights, electronics,
// following the hour of the day.
type Base struct {
	StandbyW int        `json:"standby_w"`
	NoiseW   int        `json:"noise_w"`  // second-to-second jitter, ±W
	Split    [3]float64 `json:"split"`    // share of the base load on L1, L2, L3
	HourlyW  [24]int    `json:"hourly_w"` // extra load by local hour, interpolated
}

// Appliance is a device that runs a program of steps a few times a day,
// or all the time (a fridge cycling).
type Appliance struct {
	Name        string       `json:"name"`
	Phase       int          `json:"phase"`                // 1..3; 0 spreads it over three phases
	Always      bool         `json:"always"`               // runs its steps in a loop all day
	RunsPerDay  float64      `json:"runs_per_day"`         // expected runs on a weekday
	WeekendRuns *float64     `json:"weekend_runs_per_day"` // expected runs on Saturday and Sunday; nil: RunsPerDay x WeekendFactor
	WeekendFac  float64      `json:"weekend_factor"`       // 0 means 1
	Season      float64      `json:"season"`               // 0 all year alike .. 1 runs only in the cold half (heat pump)
	Windows     [][2]float64 `json:"windows"`              // local hours a run may start in, e.g. [[17.5, 19]]
	Jitter      float64      `json:"jitter"`               // each run's length varies by ±Jitter
	Steps       []Step       `json:"steps"`
}

// Step is one phase of an appliance's program.
type Step struct {
	Seconds int `json:"s"`
	W       int `json:"w"`
	OnS     int `json:"on_s"`  // with OffS: thermostat cycling inside the step
	OffS    int `json:"off_s"` // 0: on for the whole step
}

// Gas is the household's gas use.
type Gas struct {
	WinterM3PerDay float64     `json:"winter_m3_per_day"`
	SummerM3PerDay float64     `json:"summer_m3_per_day"`
	Hourly         [24]float64 `json:"hourly"` // relative use by local hour
}

// Start holds the meter's registers when the simulation starts.
type Start struct {
	ImportT1Wh int64 `json:"import_t1_wh"`
	ImportT2Wh int64 `json:"import_t2_wh"`
	ExportT1Wh int64 `json:"export_t1_wh"`
	ExportT2Wh int64 `json:"export_t2_wh"`
	GasL       int64 `json:"gas_l"` // litres = m3 x 1000
}

// ProfileNames lists the embedded profiles.
func ProfileNames() []string { return assets.ProfileNames() }

// DefaultProfile is the name of the profile used when none is given.
const DefaultProfile = "home"

// LoadProfile returns the embedded profile called name.
func LoadProfile(name string) (Profile, error) {
	b, err := assets.Profile(name)
	if err != nil {
		return Profile{}, err
	}
	p, err := ParseProfile(b)
	if err != nil {
		return Profile{}, fmt.Errorf("profile %s: %w", name, err)
	}
	return p, nil
}

// ParseProfile reads a profile from JSON and checks it.
func ParseProfile(b []byte) (Profile, error) {
	var p Profile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Profile{}, err
	}
	return p, p.Validate()
}

// Limits of a profile.
const (
	maxAppliances    = 64
	maxSteps         = 32
	maxPowerW        = 99999
	maxStartRegister = 90_000_000 // Wh or litres
)

// Validate checks that the profile describes a possible household.
func (p *Profile) Validate() error {
	if p.Phases == 0 {
		p.Phases = 3
	}
	if p.Phases != 1 && p.Phases != 3 {
		return fmt.Errorf("phases must be 1 or 3, not %d", p.Phases)
	}
	if p.Header == "" || p.MeterID == "" {
		return errors.New("header and meter_id are required")
	}
	if p.Latitude < -66 || p.Latitude > 66 || p.Longitude < -180 || p.Longitude > 180 {
		return fmt.Errorf("latitude %v / longitude %v out of range (|latitude| <= 66)", p.Latitude, p.Longitude)
	}
	if len(p.Appliances) > maxAppliances {
		return fmt.Errorf("%d appliances; at most %d", len(p.Appliances), maxAppliances)
	}
	phaseOK := func(ph int) bool { return ph >= 0 && ph <= 3 && (p.Phases == 3 || ph <= 1) }
	if s := p.Solar; s != nil {
		if s.PeakW < 0 || s.PeakW > 99000 || !phaseOK(s.Phase) || s.Cloudiness < 0 || s.Cloudiness > 1 {
			return fmt.Errorf("solar: peak_w 0..99000, phase 0..%d, cloudiness 0..1", p.Phases)
		}
	}
	if p.Base.StandbyW < 0 || p.Base.NoiseW < 0 {
		return errors.New("base: negative load")
	}
	var sum float64
	for _, f := range p.Base.Split {
		if f < 0 {
			return errors.New("base: negative split")
		}
		sum += f
	}
	if sum < 0.99 || sum > 1.01 {
		return fmt.Errorf("base: split must add up to 1, not %v", sum)
	}
	peak := p.Base.StandbyW + p.Base.NoiseW
	maxHour := 0
	for _, w := range p.Base.HourlyW {
		if w < 0 {
			return errors.New("base: negative hourly load")
		}
		maxHour = max(maxHour, w)
	}
	peak += maxHour
	for _, a := range p.Appliances {
		if !phaseOK(a.Phase) {
			return fmt.Errorf("appliance %q: phase %d on a %d-phase connection", a.Name, a.Phase, p.Phases)
		}
		if len(a.Steps) == 0 || len(a.Steps) > maxSteps || len(a.Windows) > maxSteps {
			return fmt.Errorf("appliance %q: 1 to %d steps and at most %d windows", a.Name, maxSteps, maxSteps)
		}
		stepMax := 0
		for _, s := range a.Steps {
			stepMax = max(stepMax, s.W)
			if s.Seconds <= 0 || s.W < 0 || s.W > 30000 || s.OnS < 0 || s.OffS < 0 {
				return fmt.Errorf("appliance %q: a step needs s > 0 and 0 <= w <= 30000", a.Name)
			}
		}
		peak += stepMax
		weekendOK := a.WeekendRuns == nil || *a.WeekendRuns >= 0 && *a.WeekendRuns <= 50
		if a.RunsPerDay < 0 || a.RunsPerDay > 50 || !weekendOK || a.WeekendFac < 0 || a.WeekendFac > 10 ||
			a.Jitter < 0 || a.Jitter >= 1 || a.Season < 0 || a.Season > 1 {
			return fmt.Errorf("appliance %q: runs_per_day 0..50, weekend_factor 0..10, jitter 0..<1, season 0..1", a.Name)
		}
		if !a.Always && len(a.Windows) == 0 && (a.RunsPerDay > 0 || a.WeekendRuns != nil) {
			return fmt.Errorf("appliance %q: no windows to start in", a.Name)
		}
		for _, w := range a.Windows {
			if w[0] < 0 || w[1] > 24 || w[1] <= w[0] {
				return fmt.Errorf("appliance %q: window %v must lie within 0..24 hours", a.Name, w)
			}
		}
	}
	// The telegram shows power as kW with two integer digits.
	if peak > maxPowerW {
		return fmt.Errorf("peak load %d W above the meter's %d W", peak, maxPowerW)
	}
	if g := p.Gas; g != nil {
		if p.GasID == "" {
			return errors.New("gas: gas_id is required")
		}
		if g.WinterM3PerDay < 0 || g.SummerM3PerDay < 0 || g.WinterM3PerDay > 200 {
			return errors.New("gas: m3 per day out of range")
		}
	}
	s := p.Start
	for _, r := range []int64{s.ImportT1Wh, s.ImportT2Wh, s.ExportT1Wh, s.ExportT2Wh, s.GasL} {
		// Registers show six integer digits of kWh (five of m3); leave
		// decades of headroom.
		if r < 0 || r > maxStartRegister {
			return fmt.Errorf("start: registers must be 0..%d", maxStartRegister)
		}
	}
	return nil
}
