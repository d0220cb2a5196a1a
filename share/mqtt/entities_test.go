package mqtt

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/commons-energy/commons/meter"
	"github.com/commons-energy/commons/share/household"
)

func TestFormatFixed(t *testing.T) {
	tests := []struct {
		v    int64
		d    int
		want string
	}{
		{2192317, 3, "2192.317"},
		{0, 3, "0.000"},
		{7, 3, "0.007"},
		{1000, 3, "1.000"},
		{-1500, 3, "-1.500"},
		{-5, 3, "-0.005"},
		{236900, 3, "236.900"},
		{42, 0, "42"},
		{math.MaxInt64, 3, "9223372036854775.807"},
		{math.MinInt64, 3, "-9223372036854775.808"},
	}
	for _, tt := range tests {
		if got := FormatFixed(tt.v, tt.d); got != tt.want {
			t.Errorf("FormatFixed(%d, %d) = %q, want %q", tt.v, tt.d, got, tt.want)
		}
	}
}

func TestCommonsFigures(t *testing.T) {
	loc := time.FixedZone("UTC+1", 3600)
	now := time.Date(2025, 6, 10, 23, 30, 0, 0, loc) // 22:30 UTC: still the 10th here
	at := func(day, h int) household.PledgeWindow {
		s := time.Date(2025, 6, day, h, 0, 0, 0, loc)
		return household.PledgeWindow{Start: s, End: s.Add(time.Hour)}
	}
	wh := func(v int64) *int64 { return &v }
	ps := []household.Pledge{
		{Outgoing: true, EnergyWh: 1500, State: "pledged", Window: at(10, 14)},
		{Outgoing: true, EnergyWh: 700, State: "accepted", Window: at(10, 0)},                      // today's first hour
		{Outgoing: true, EnergyWh: 900, State: "settled", DeliveredWh: wh(650), Window: at(10, 9)}, // given today
		{Outgoing: true, EnergyWh: 300, State: "cancelled", Window: at(10, 15)},
		{Outgoing: true, EnergyWh: 300, State: "declined", Window: at(10, 16)},
		{Outgoing: true, EnergyWh: 300, State: "expired", Window: at(10, 17)},
		{Outgoing: true, EnergyWh: 400, State: "pledged", Window: at(11, 0)},                           // tomorrow
		{Outgoing: true, EnergyWh: 800, State: "settled", DeliveredWh: wh(800), Window: at(9, 23)},     // yesterday
		{Outgoing: false, EnergyWh: 1200, State: "settled", DeliveredWh: wh(1000), Window: at(10, 12)}, // received today
		{Outgoing: false, EnergyWh: 500, State: "settled", DeliveredWh: wh(0), Window: at(10, 13)},
		{Outgoing: false, EnergyWh: 500, State: "settled", DeliveredWh: wh(450), Window: at(1, 13)},
		{Outgoing: false, EnergyWh: 2000, State: "accepted", Window: at(10, 20)},
	}
	got := CommonsFigures(ps, now.UTC(), loc)
	want := Figures{PledgedToday: 1500 + 700 + 900, GivenToday: 650, ReceivedToday: 1000, GivenTotal: 650 + 800, ReceivedTotal: 1000 + 450}
	if got != want {
		t.Fatalf("CommonsFigures = %+v, want %+v", got, want)
	}
	if got := CommonsFigures(nil, now, loc); got != (Figures{}) {
		t.Fatalf("no pledges: %+v", got)
	}
}

func TestReadingValues(t *testing.T) {
	r := meter.Reading{
		PowerImportW: meter.Some(0), PowerExportW: meter.Some(2317),
		EnergyImport: meter.Registers{Total: meter.Some(2192317), Tariff1: meter.Some(1204300), Tariff2: meter.Some(988017)},
		EnergyExport: meter.Registers{Total: meter.Some(2487372)},
	}
	r.Phases[0] = meter.Phase{VoltageMV: meter.Some(236900), CurrentMA: meter.Some(10000), PowerExportW: meter.Some(2317)}
	last := time.Date(2025, 1, 21, 12, 3, 55, 0, time.FixedZone("CET", 3600))
	power, energy := readingValues(r, last)
	wantPower := values{"power_import": "0", "power_export": "2317", "power_net": "-2317",
		"voltage_l1": "236.900", "current_l1": "10.000", "power_export_l1": "2317", "meter_last_reading": "2025-01-21T11:03:55Z"}
	wantEnergy := values{"energy_import": "2192.317", "energy_import_tariff1": "1204.300", "energy_import_tariff2": "988.017", "energy_export": "2487.372"}
	if asJSON(power) != asJSON(wantPower) {
		t.Errorf("power values %s\nwant %s", asJSON(power), asJSON(wantPower))
	}
	if asJSON(energy) != asJSON(wantEnergy) {
		t.Errorf("energy values %s\nwant %s", asJSON(energy), asJSON(wantEnergy))
	}
	for k := range power {
		if mustEntity(k).group != groupPower {
			t.Errorf("%s is not in the power group", k)
		}
	}
	for k := range energy {
		if mustEntity(k).group != groupEnergy {
			t.Errorf("%s is not in the energy group", k)
		}
	}
	// Nothing the meter did not send.
	if p, e := readingValues(meter.Reading{}, time.Time{}); len(p) != 0 || len(e) != 0 {
		t.Errorf("an empty reading gives %v and %v", p, e)
	}
	if h := healthValues(true, 6*time.Minute, true); h["meter_online"] != "ON" || h["meter_clock_problem"] != "ON" {
		t.Errorf("health with a clock 6 min ahead: %v", h)
	}
	if h := healthValues(false, -5*time.Minute, true); h["meter_online"] != "OFF" || h["meter_clock_problem"] != "OFF" {
		t.Errorf("health offline, clock 5 min behind: %v", h)
	}
}

func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
