package sim

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/commons-energy/commons/assets"
	"github.com/commons-energy/commons/meter"
)

func mustProfile(t testing.TB, name string) Profile {
	t.Helper()
	p, err := LoadProfile(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProfilesLoad(t *testing.T) {
	names := ProfileNames()
	for _, want := range []string{"home", "solar-roof", "flat", "ev", "night-shift"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("profile %q not embedded (have %v)", want, names)
		}
	}
	for _, n := range names {
		p := mustProfile(t, n)
		if p.Name != n {
			t.Errorf("profile file %s.json names itself %q", n, p.Name)
		}
	}
	if _, err := LoadProfile("../home"); err == nil {
		t.Error("LoadProfile accepted a path")
	}
	if _, err := LoadProfile("mansion"); err == nil {
		t.Error("LoadProfile accepted an unknown name")
	}
}

func TestParseProfileRejects(t *testing.T) {
	base := `{"name":"x","header":"ISK5\\2M550T-1012","meter_id":"E1","latitude":52,"base":{"split":[1,0,0]}%s}`
	for _, tc := range []struct{ name, extra string }{
		{"unknown field", `,"colour":"red"`},
		{"bad split", `,"phases":3,"base":{"split":[0.5,0.1,0.1]}`},
		{"appliance without steps", `,"appliances":[{"name":"a","runs_per_day":1,"windows":[[1,2]]}]`},
		{"window out of day", `,"appliances":[{"name":"a","runs_per_day":1,"windows":[[20,25]],"steps":[{"s":10,"w":10}]}]`},
		{"phase 3 on one phase", `,"phases":1,"appliances":[{"name":"a","phase":3,"always":true,"steps":[{"s":10,"w":10}]}]`},
		{"gas without id", `,"gas":{"winter_m3_per_day":1}`},
		{"negative start", `,"start":{"import_t1_wh":-1}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseProfile(fmt.Appendf(nil, base, tc.extra)); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// TestTelegramDecodesToReading checks every profile at many instants over
// a year: the telegram has a valid CRC and H1's DSMR decoder reads exactly
// what Reading reports.
func TestTelegramDecodesToReading(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, name := range ProfileNames() {
		t.Run(name, func(t *testing.T) {
			p := mustProfile(t, name)
			var m *Meter
			for i := range 600 {
				// A fresh meter every third check, at instants spread over
				// a year and over the hours of the day.
				now := start.Add(time.Duration(i/3)*(43*time.Hour+17*time.Minute) + time.Duration(i%3*137)*time.Second)
				if i%3 == 0 {
					m = New(p, int64(42+i), now.Add(-time.Duration(i)*time.Second))
				}
				tg := m.Telegram(now)
				excl := bytes.IndexByte(tg, '!')
				crc, err := strconv.ParseUint(string(tg[excl+1:excl+5]), 16, 16)
				if err != nil || uint16(crc) != meter.CRC16ARC(tg[:excl+1]) {
					t.Fatalf("%v: CRC %q does not match %04X", now, tg[excl+1:excl+5], meter.CRC16ARC(tg[:excl+1]))
				}
				got, err := meter.DecodeDSMRTelegram(tg)
				if err != nil {
					t.Fatalf("%v: decode: %v\n%s", now, err, tg)
				}
				want := m.Reading(now)
				if !got.Time.Equal(want.Time) || got.Time.Format(time.RFC3339) != want.Time.Format(time.RFC3339) {
					t.Fatalf("%v: time %v, want %v", now, got.Time, want.Time)
				}
				if (got.Gas == nil) != (want.Gas == nil) {
					t.Fatalf("%v: gas %v, want %v", now, got.Gas, want.Gas)
				}
				if want.Gas != nil {
					if !got.Gas.Time.Equal(want.Gas.Time) || got.Gas.Milli != want.Gas.Milli || got.Gas.Channel != 1 || got.Gas.DeviceType != 3 {
						t.Fatalf("%v: gas %+v, want %+v", now, *got.Gas, *want.Gas)
					}
				}
				got.Time, want.Time, got.Gas, want.Gas = time.Time{}, time.Time{}, nil, nil
				got.Registers, want.Registers = nil, nil
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%v: decoded\n%+v\nwant\n%+v\n%s", now, got, want, tg)
				}
			}
		})
	}
}

// TestRegistersMatchIntegratedPower integrates the pure Power samples
// independently and compares with the registers to the Wh, per tariff, and
// checks the registers never decrease.
func TestRegistersMatchIntegratedPower(t *testing.T) {
	for _, tc := range []struct {
		profile string
		start   time.Time
	}{
		{"home", time.Date(2025, 6, 21, 4, 0, 0, 0, time.UTC)},
		{"solar-roof", time.Date(2025, 3, 29, 20, 0, 0, 0, time.UTC)}, // across the spring DST change
		{"ev", time.Date(2025, 10, 24, 12, 0, 0, 0, time.UTC)},        // across the autumn DST change
		{"night-shift", time.Date(2025, 12, 30, 0, 0, 0, 0, time.UTC)},
		{"flat", time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(tc.profile, func(t *testing.T) {
			p := mustProfile(t, tc.profile)
			m := New(p, 7, tc.start)
			var imp, exp [2]int64
			var gas, gas5 int64
			prev := m.Registers()
			const span = 30 * 3600
			step := int64(3600 + 17) // check at irregular points
			for s := int64(0); s < span; s++ {
				now := tc.start.Add(time.Duration(s) * time.Second)
				smp := m.Power(now)
				if smp.ImportW < 0 || smp.ExportW < 0 || (smp.ImportW > 0 && smp.ExportW > 0) {
					t.Fatalf("%v: import %d export %d", now, smp.ImportW, smp.ExportW)
				}
				if smp.LoadW-smp.SolarW != smp.NetW() {
					t.Fatalf("%v: load %d - solar %d != net %d", now, smp.LoadW, smp.SolarW, smp.NetW())
				}
				var sum int64
				for _, ph := range smp.Phases {
					sum += ph.ImportW - ph.ExportW
				}
				if sum != smp.NetW() {
					t.Fatalf("%v: phases net %d != total net %d", now, sum, smp.NetW())
				}
				imp[smp.Tariff-1] += smp.ImportW
				exp[smp.Tariff-1] += smp.ExportW
				gas += smp.GasMLs
				if (now.Unix()+1)%300 == 0 {
					gas5 = gas
				}
				if (s+1)%step == 0 || s == span-1 {
					end := now.Add(time.Second)
					m.Advance(end)
					r := m.Registers()
					st := p.Start
					want := Registers{
						ImportWh: [2]int64{st.ImportT1Wh + imp[0]/3600, st.ImportT2Wh + imp[1]/3600},
						ExportWh: [2]int64{st.ExportT1Wh + exp[0]/3600, st.ExportT2Wh + exp[1]/3600},
						GasL:     st.GasL + gas5/1000,
					}
					r.GasTime = time.Time{}
					if r != want {
						t.Fatalf("at %v registers %+v, integrated %+v", end, r, want)
					}
					for i := range 2 {
						if r.ImportWh[i] < prev.ImportWh[i] || r.ExportWh[i] < prev.ExportWh[i] {
							t.Fatalf("register went down: %+v after %+v", r, prev)
						}
					}
					if r.GasL < prev.GasL {
						t.Fatalf("gas went down")
					}
					prev = r
				}
			}
			if p.Solar != nil && imp == [2]int64{} {
				t.Error("30 hours without any import")
			}
			if p.Solar != nil && exp == [2]int64{} && tc.start.Month() == time.June {
				t.Error("30 June hours without any export")
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	start := time.Date(2025, 5, 1, 6, 0, 0, 0, time.UTC)
	a := New(mustProfile(t, "home"), 99, start)
	b := New(mustProfile(t, "home"), 99, start)
	c := New(mustProfile(t, "home"), 100, start)
	differ := false
	for i := range 600 {
		now := start.Add(time.Duration(i) * 37 * time.Second)
		ta, tb, tc := a.Telegram(now), b.Telegram(now), c.Telegram(now)
		if !bytes.Equal(ta, tb) {
			t.Fatalf("same seed, different telegram at %v", now)
		}
		differ = differ || !bytes.Equal(ta, tc)
	}
	if !differ {
		t.Error("seeds 99 and 100 gave the same household")
	}
}

// TestProfilesBehave checks the profiles do what their names promise, over
// a week in June and a week in January.
func TestProfilesBehave(t *testing.T) {
	type stats struct {
		solarWh, loadWh, nightLoadWh, dayLoadWh int64
		maxLoad                                 int64
		eveningMax                              int64
	}
	week := func(name string, start time.Time) stats {
		m := New(mustProfile(t, name), 3, start)
		var st stats
		for s := int64(0); s < 7*86400; s += 30 {
			smp := m.Power(start.Add(time.Duration(s) * time.Second))
			st.solarWh += smp.SolarW * 30
			st.loadWh += smp.LoadW * 30
			h := smp.Time.Hour()
			if h >= 0 && h < 6 {
				st.nightLoadWh += smp.LoadW * 30
			}
			if h >= 10 && h < 16 {
				st.dayLoadWh += smp.LoadW * 30
			}
			if h >= 17 && h < 24 {
				st.eveningMax = max(st.eveningMax, smp.LoadW)
			}
			st.maxLoad = max(st.maxLoad, smp.LoadW)
		}
		st.solarWh /= 3600
		st.loadWh /= 3600
		st.nightLoadWh /= 3600
		st.dayLoadWh /= 3600
		return st
	}
	june := time.Date(2025, 6, 9, 0, 0, 0, 0, time.UTC)
	jan := time.Date(2025, 1, 13, 0, 0, 0, 0, time.UTC)
	home, roof, flat := week("home", june), week("solar-roof", june), week("flat", june)
	ev, night := week("ev", june), week("night-shift", june)
	if flat.solarWh != 0 {
		t.Errorf("flat has %d Wh solar", flat.solarWh)
	}
	if !(roof.solarWh > 2*home.solarWh && home.solarWh > 0) {
		t.Errorf("solar-roof %d Wh vs home %d Wh in June", roof.solarWh, home.solarWh)
	}
	// 4.2 kWp in a Dutch June: roughly 15-30 kWh a day.
	if d := home.solarWh / 7; d < 10000 || d > 32000 {
		t.Errorf("home solar %d Wh/day in June", d)
	}
	if hj := week("home", jan); hj.solarWh*3 > home.solarWh {
		t.Errorf("home solar January %d Wh vs June %d Wh", hj.solarWh, home.solarWh)
	}
	if ev.eveningMax < 11000 {
		t.Errorf("ev evening peak %d W, no charging seen", ev.eveningMax)
	}
	if night.nightLoadWh <= night.dayLoadWh || home.nightLoadWh >= home.dayLoadWh {
		t.Errorf("night-shift night %d day %d; home night %d day %d", night.nightLoadWh, night.dayLoadWh, home.nightLoadWh, home.dayLoadWh)
	}
	if roofJan, roofJun := week("solar-roof", jan), roof; roofJan.loadWh < roofJun.loadWh*3/2 {
		t.Errorf("solar-roof heat pump: January load %d Wh vs June %d Wh", roofJan.loadWh, roofJun.loadWh)
	}
	// Daily household use of a Dutch family: 6-20 kWh.
	if d := home.loadWh / 7; d < 6000 || d > 20000 {
		t.Errorf("home uses %d Wh/day", d)
	}
}

func TestSummerTime(t *testing.T) {
	for _, tc := range []struct {
		utc  string
		want string
	}{
		{"2025-03-30T00:59:59Z", "2025-03-30T01:59:59+01:00"},
		{"2025-03-30T01:00:00Z", "2025-03-30T03:00:00+02:00"},
		{"2025-10-26T00:30:00Z", "2025-10-26T02:30:00+02:00"},
		{"2025-10-26T01:30:00Z", "2025-10-26T02:30:00+01:00"},
		{"2024-10-27T01:00:00Z", "2024-10-27T02:00:00+01:00"},
	} {
		u, _ := time.Parse(time.RFC3339, tc.utc)
		if got := meterTime(u.Unix()).Format(time.RFC3339); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.utc, got, tc.want)
		}
	}
}

// FuzzParseProfile: any profile text is either rejected or simulates
// without panicking into telegrams that decode to the model's reading.
func FuzzParseProfile(f *testing.F) {
	for _, n := range ProfileNames() {
		b, err := assets.Profile(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, int64(1), int64(1750000000))
	}
	f.Fuzz(func(t *testing.T, b []byte, seed, at int64) {
		p, err := ParseProfile(b)
		if err != nil {
			return
		}
		at = 946684800 + mod(at, 100*365*86400) // 2000..2100
		start := time.Unix(at, 0)
		m := New(p, seed, start)
		for i := range 3 {
			now := start.Add(time.Duration(i) * 61 * time.Second)
			tg := m.Telegram(now)
			got, err := meter.DecodeDSMRTelegram(tg)
			if err != nil {
				t.Fatalf("decode: %v\n%s", err, tg)
			}
			want := m.Reading(now)
			if got.PowerImportW != want.PowerImportW || got.PowerExportW != want.PowerExportW ||
				got.EnergyImport != want.EnergyImport || got.EnergyExport != want.EnergyExport {
				t.Fatalf("decoded %+v\nwant %+v", got, want)
			}
		}
	})
}

// TestTelegramAutumnHour: the repeated hour of the autumn change is sent
// twice as 02:30, once with S and once with W, and decodes to two
// instants an hour apart.
func TestTelegramAutumnHour(t *testing.T) {
	first := time.Date(2025, 10, 26, 0, 30, 0, 0, time.UTC)
	m := New(mustProfile(t, "home"), 1, first)
	a, b := m.Telegram(first), m.Telegram(first.Add(time.Hour))
	if !bytes.Contains(a, []byte("0-0:1.0.0(251026023000S)")) || !bytes.Contains(b, []byte("0-0:1.0.0(251026023000W)")) {
		t.Fatalf("timestamps:\n%s\n%s", a[:80], b[:80])
	}
	ra, err := meter.DecodeDSMRTelegram(a)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := meter.DecodeDSMRTelegram(b)
	if err != nil {
		t.Fatal(err)
	}
	if !ra.Time.Equal(first) || !rb.Time.Equal(first.Add(time.Hour)) {
		t.Fatalf("decoded %v and %v, want %v and an hour later", ra.Time, rb.Time, first)
	}
}

// TestPTYsAreDistinct opens several pseudo-terminals at once and checks
// each path reaches its own line: bytes written to one arrive at its path
// and at no other.
func TestPTYsAreDistinct(t *testing.T) {
	const n = 4
	ptys := make([]*PTY, n)
	seen := map[string]bool{}
	for i := range ptys {
		p, err := OpenPTY("")
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if seen[p.Path()] {
			t.Fatalf("two pseudo-terminals share the path %s", p.Path())
		}
		seen[p.Path()] = true
		ptys[i] = p
	}
	for i, p := range ptys {
		f, err := os.OpenFile(p.Path(), os.O_RDWR|unix.O_NOCTTY, 0)
		if err != nil {
			t.Fatal(err)
		}
		msg := fmt.Sprintf("line %d\n", i)
		if _, err := p.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if err := f.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		got, err := f.Read(buf)
		f.Close()
		if err != nil || string(buf[:got]) != msg {
			t.Fatalf("%s read %q, %v; want %q", p.Path(), buf[:got], err, msg)
		}
	}
}
