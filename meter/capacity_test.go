package meter

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// peakWant is what a test expects of one 0-0:98.1.0 entry.
type peakWant struct {
	month string // "2006-01"
	time  string // RFC 3339, "" for a placeholder
	w     int64
}

// TestBelgianCapacityTariff decodes the e-MUCS capacity-tariff objects of
// the Fluvius fixtures. The avg/peak values and the peak's time are
// expected.json's "peak" object; the history entries were read off the
// telegrams by hand (each entry is the period's end stamp, the peak's time
// and its kW, so the month is the one before the end stamp).
func TestBelgianCapacityTariff(t *testing.T) {
	exp := loadExpectations(t)
	dir := fixturesDir(t)
	tests := []struct {
		file    string
		history []peakWant
	}{
		{"dsmr/be_fluvius_50217_peak_data.txt", []peakWant{{"2023-01", "2023-01-14T12:45:00+01:00", 3332}}},
		{"dsmr/be_fluvius_multiple_gas.txt", []peakWant{{"2022-12", "2022-12-30T11:45:00+01:00", 13603}}},
		{"dsmr/be_fluvius_v171_3phase_gas_water.txt", []peakWant{
			{"2020-04", "2020-04-23T19:25:38+02:00", 3695},
			{"2020-03", "2020-03-05T12:21:39+02:00", 5980},
			{"2020-02", "2020-02-10T03:54:21+01:00", 4318},
		}},
		{"dsmr/be_fluvius_v171_placeholder_peak_ts.txt", []peakWant{
			{"2023-07", "", 0}, // 632525252525W: the meter has no peak for that month
			{"2023-08", "2023-08-31T18:15:00+02:00", 1862},
			{"2023-09", "2023-09-10T18:30:00+02:00", 4229},
			{"2023-10", "2023-10-16T13:00:00+02:00", 4927},
		}},
		// E.ON Hungary sends a billing row on 0-0:98.1.0 that is not a
		// peak history, and no demand objects at all.
		{"dsmr/hu_sagemcom_eon_4tariff.txt", nil},
	}
	for _, tc := range tests {
		t.Run(strings.TrimSuffix(filepath.Base(tc.file), ".txt"), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			rs, errs := decodeAll(t, data)
			if len(rs) != 1 || len(errs) != 0 {
				t.Fatalf("%d readings, errors %v", len(rs), errs)
			}
			r := rs[0]
			e := exp[tc.file]
			if !e.has("peak") {
				if r.DemandAvgW.OK || r.DemandPeakW.OK || !r.DemandPeakTime.IsZero() {
					t.Errorf("demand avg %+v peak %+v at %v from a meter that sends none", r.DemandAvgW, r.DemandPeakW, r.DemandPeakTime)
				}
			} else {
				p := e.obj(t, "peak")
				if want := intOf(t, p.num(t, "current_quarter_avg_w")); r.DemandAvgW != Some(want) {
					t.Errorf("demand avg = %+v, want %d W", r.DemandAvgW, want)
				}
				if want := intOf(t, p.num(t, "month_max_w")); r.DemandPeakW != Some(want) {
					t.Errorf("demand peak = %+v, want %d W", r.DemandPeakW, want)
				}
				if got, want := r.DemandPeakTime.Format(time.RFC3339), p.str(t, "month_max_timestamp"); got != want {
					t.Errorf("demand peak time = %s, want %s", got, want)
				}
			}
			if len(r.DemandPeakHistory) != len(tc.history) {
				t.Fatalf("history %+v, want %d entries", r.DemandPeakHistory, len(tc.history))
			}
			for i, w := range tc.history {
				g := r.DemandPeakHistory[i]
				gotTime := ""
				if !g.Time.IsZero() {
					gotTime = g.Time.Format(time.RFC3339)
				}
				if g.Month.Format("2006-01") != w.month || gotTime != w.time || g.W != w.w {
					t.Errorf("history[%d] = %s %q %d W, want %s %q %d W", i, g.Month.Format("2006-01"), gotTime, g.W, w.month, w.time, w.w)
				}
			}
		})
	}
}

// TestCapacityTariffJSON checks the JSON keys of the demand values and that
// a reading without them has none of the keys.
func TestCapacityTariffJSON(t *testing.T) {
	data := telegram("FLU5\xab769484_A", true,
		"0-0:96.1.4(50217)", "0-0:1.0.0(250112181500W)",
		"1-0:1.4.0(04.123*kW)", "1-0:1.6.0(250112181500W)(04.123*kW)",
		"0-0:98.1.0(2)(1-0:1.6.0)(1-0:1.6.0)(241201000000W)(241118074500W)(05.001*kW)(250101000000W)(632525252525W)(00.000*kW)")
	rs, errs := decodeAll(t, data)
	if len(rs) != 1 || len(errs) != 0 {
		t.Fatalf("%d readings, errors %v", len(rs), errs)
	}
	got, _ := json.Marshal(rs[0])
	want := `"demand_avg_w":4123,"demand_peak_w":4123,"demand_peak_time":"2025-01-12T18:15:00+01:00",` +
		`"demand_peak_history":[{"month":"2024-11","time":"2024-11-18T07:45:00+01:00","w":5001},{"month":"2024-12","time":null,"w":0}]`
	if !strings.Contains(string(got), want) {
		t.Errorf("JSON %s\nlacks %s", got, want)
	}
	if !json.Valid(got) {
		t.Errorf("invalid JSON %s", got)
	}

	// Clone shares no memory: the decoder reuses the history's storage.
	c := rs[0].Clone()
	c.DemandPeakHistory[0].W = 1
	if rs[0].DemandPeakHistory[0].W != 5001 {
		t.Error("Clone shares the peak history")
	}

	rs, _ = decodeAll(t, telegram("ISK5\\2M550T-1012", true, "1-3:0.2.8(50)", "1-0:1.7.0(00.433*kW)"))
	got, _ = json.Marshal(rs[0])
	if strings.Contains(string(got), "demand") {
		t.Errorf("JSON of a Dutch meter has demand keys: %s", got)
	}
}

// TestDemandParse covers the odd shapes of the demand objects.
func TestDemandParse(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		avg     Optional
		peak    Optional
		peakAt  string
		history int
	}{
		{"avg in W", "1-0:1.4.0(04123*W)", Some(4123), Optional{}, "", 0},
		{"avg exact, no float", "1-0:1.4.0(99.999*kW)", Some(99999), Optional{}, "", 0},
		{"avg with a wrong unit", "1-0:1.4.0(04.123*kWh)", Optional{}, Optional{}, "", 0},
		{"peak with placeholder time", "1-0:1.6.0(632525252525W)(00.000*kW)", Optional{}, Some(0), "", 0},
		{"peak without value", "1-0:1.6.0(250112181500W)", Optional{}, Optional{}, "", 0},
		{"peak of a past billing period is not the month's", "1-0:1.6.0*01(250112181500W)(09.999*kW)", Optional{}, Optional{}, "", 0},
		{"history count larger than the entries", "0-0:98.1.0(3)(1-0:1.6.0)(1-0:1.6.0)(241201000000W)(241118074500W)(05.001*kW)", Optional{}, Optional{}, "", 1},
		{"history with zero entries", "0-0:98.1.0(0)(1-0:1.6.0)(1-0:1.6.0)", Optional{}, Optional{}, "", 0},
		{"history without the OBIS ids", "0-0:98.1.0(1)(241201000000W)(241118074500W)(05.001*kW)", Optional{}, Optional{}, "", 0},
		{"history entry with a bad value", "0-0:98.1.0(1)(1-0:1.6.0)(1-0:1.6.0)(241201000000W)(241118074500W)(x*kW)", Optional{}, Optional{}, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, errs := decodeAll(t, telegram("FLU5\xab769484_A", true, "0-0:96.1.4(50217)", tc.line))
			if len(rs) != 1 || len(errs) != 0 {
				t.Fatalf("%d readings, errors %v", len(rs), errs)
			}
			r := rs[0]
			at := ""
			if !r.DemandPeakTime.IsZero() {
				at = r.DemandPeakTime.Format(time.RFC3339)
			}
			if r.DemandAvgW != tc.avg || r.DemandPeakW != tc.peak || at != tc.peakAt || len(r.DemandPeakHistory) != tc.history {
				t.Errorf("avg %+v peak %+v at %q history %d; want %+v %+v %q %d",
					r.DemandAvgW, r.DemandPeakW, at, len(r.DemandPeakHistory), tc.avg, tc.peak, tc.peakAt, tc.history)
			}
		})
	}
}
