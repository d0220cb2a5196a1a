package daemon

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/commons-energy/commons/meter"
	"github.com/commons-energy/commons/meter/sim"
	"github.com/commons-energy/commons/share/household"
)

// TestReadingWire: a reading sent over the socket prints exactly the same
// contract JSON (`status --json`) as in-process, floating meter times
// included.
func TestReadingWire(t *testing.T) {
	p, err := sim.LoadProfile("home")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2025, 1, 21, 12, 0, 0, 0, time.UTC)
	base := sim.New(p, 3, start).Reading(start.Add(90 * time.Second))
	brussels, err := time.LoadLocation("Europe/Brussels")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(r *meter.Reading)
	}{
		{"simulated DSMR", func(r *meter.Reading) {}},
		{"zone offset", func(r *meter.Reading) { r.Time = r.Time.In(brussels) }},
		{"floating time", func(r *meter.Reading) {
			r.Time = time.Date(2025, 3, 30, 2, 30, 0, 0, meter.Floating)
		}},
		{"floating gas time", func(r *meter.Reading) {
			r.Gas = &meter.SubMeter{Channel: 1, DeviceType: 3, Milli: 1234567, Unit: "m3", Time: time.Date(2025, 1, 21, 12, 0, 0, 0, meter.Floating)}
		}},
		{"Belgian capacity tariff", func(r *meter.Reading) {
			cet := time.FixedZone("CET", 3600)
			r.DemandAvgW, r.DemandPeakW = meter.Some(78), meter.Some(4123)
			r.DemandPeakTime = time.Date(2025, 1, 12, 18, 15, 0, 0, cet)
			r.DemandPeakHistory = []meter.DemandPeak{
				{Month: time.Date(2024, 12, 1, 0, 0, 0, 0, cet), Time: time.Date(2024, 12, 30, 11, 45, 0, 0, cet), W: 13603},
				{Month: time.Date(2024, 11, 1, 0, 0, 0, 0, cet), W: 0},
			}
		}},
		{"no time, registers", func(r *meter.Reading) {
			r.Time = time.Time{}
			r.Registers = []meter.Register{{ID: "1-0:16.7.0*255", Value: "-299.12", Unit: "W", Raw: -29912, Scaler: -2}}
			r.PowerAbsW = meter.Some(299)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base
			if base.Gas != nil {
				g := *base.Gas
				r.Gas = &g
			}
			tt.edit(&r)
			want, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(toStatusWire(household.Status{Reading: &r}))
			if err != nil {
				t.Fatal(err)
			}
			var w statusWire
			if err := json.Unmarshal(b, &w); err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(w.status().Reading)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("over the socket\n%s\nin-process\n%s", got, want)
			}
		})
	}
}

// TestStatusWireFields: every field of household.Status crosses the socket;
// a field added to household.Status without its wire twin fails here.
func TestStatusWireFields(t *testing.T) {
	st, wt := reflect.TypeOf(household.Status{}), reflect.TypeOf(statusWire{})
	for i := range st.NumField() {
		f := st.Field(i)
		w, ok := wt.FieldByName(f.Name)
		if !ok || w.Tag.Get("json") != f.Tag.Get("json") {
			t.Errorf("household.Status.%s (json %q) has no twin in statusWire", f.Name, f.Tag.Get("json"))
		}
	}
	// And the values come back: all but the reading compared as JSON.
	pw, cw := int64(1800), int64(700)
	skew := int64(-31536000)
	in := household.Status{Meter: household.MeterState{Online: true, Port: "/dev/ttyUSB0", Protocol: "dsmr", ClockSkewS: &skew, ClockOK: false},
		Today: household.Today{ImportWh: 5, ExportWh: 7}, Neighbours: 3, OpenPledges: 2,
		Production: &household.ProductionState{MeterState: household.MeterState{Online: true, Port: "/dev/ttyUSB1", Protocol: "modbus"}, PowerW: &pw, ConsumptionW: &cw}}
	b, err := json.Marshal(toStatusWire(in))
	if err != nil {
		t.Fatal(err)
	}
	var w statusWire
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(w.status())
	want, _ := json.Marshal(in)
	if string(got) != string(want) {
		t.Errorf("status over the socket\n%s\nin-process\n%s", got, want)
	}
	if !strings.Contains(string(got), `"clock_skew_s":-31536000,"clock_ok":false`) {
		t.Errorf("meter clock keys missing: %s", got)
	}
}

// TestLiveWireMeterClock: the meter clock warning reaches an attached
// dashboard.
func TestLiveWireMeterClock(t *testing.T) {
	skew := int64(-31536000)
	in := household.Live{Meter: household.MeterState{Online: true, ClockSkewS: &skew, ClockOK: false}}
	b, err := json.Marshal(toLiveWire(in))
	if err != nil {
		t.Fatal(err)
	}
	var w liveWire
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	if got := w.live().Meter; got.ClockSkewS == nil || *got.ClockSkewS != skew || got.ClockOK {
		t.Fatalf("meter over the socket %+v, want %+v", got, in.Meter)
	}
}

// TestStateWireFields: every field of the household's State and Live has
// a twin on the wire, so a field added in package household is not
// silently lost by an attached dashboard.
func TestStateWireFields(t *testing.T) {
	for _, pair := range [][2]reflect.Type{
		{reflect.TypeOf(household.State{}), reflect.TypeOf(stateWire{})},
		{reflect.TypeOf(household.Live{}), reflect.TypeOf(liveWire{})},
	} {
		for i := range pair[0].NumField() {
			f := pair[0].Field(i)
			if _, ok := pair[1].FieldByName(f.Name); !ok {
				t.Errorf("household.%s.%s has no twin in %s", pair[0].Name(), f.Name, pair[1].Name())
			}
		}
	}
}
