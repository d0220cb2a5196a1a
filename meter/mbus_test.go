package meter

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestMBusFixtures decodes both libmbus frames and compares every value
// expected.json lists (the libmbus .norm.xml values).
func TestMBusFixtures(t *testing.T) {
	dir, names, exp := fxLoad(t, "mbus")
	for _, name := range names {
		e := exp[name]
		t.Run(filepath.Base(name), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			f, err := DecodeMBusFrame(data)
			if err != nil {
				t.Fatal(err)
			}
			v := e.Values
			if f.ID != v["identification"] || f.Manufacturer != v["manufacturer"] || MediumName(f.Medium) != v["medium"] ||
				float64(f.Version) != v["version"] || float64(f.Access) != v["access_number"] {
				t.Errorf("header %+v, want %v", f, v)
			}
			if got := strings.ToUpper(strconv.FormatUint(uint64(data[len(data)-2]), 16)); got != *e.CRC {
				t.Errorf("checksum byte %s, want %s", got, *e.CRC)
			}
			values := func(q string) []float64 {
				var out []float64
				for _, r := range f.Records {
					if r.Quantity == q {
						x, err := strconv.ParseFloat(r.Value, 64)
						if err != nil {
							t.Fatalf("%s value %q", q, r.Value)
						}
						out = append(out, x)
					}
				}
				return out
			}
			for key, q := range map[string]string{"voltage_v": "voltage", "current_a": "current", "power_w": "power", "dimensionless": "dimensionless", "manufacturer_specific": "manufacturer specific"} {
				want, ok := v[key].([]any)
				if !ok {
					continue
				}
				got := values(q)
				if len(got) != len(want) {
					t.Fatalf("%s: %v, want %v", key, got, want)
				}
				for i := range got {
					if got[i] != want[i].(float64) {
						t.Errorf("%s[%d] = %v, want %v", key, i, got[i], want[i])
					}
				}
			}
			if want, ok := v["energy_wh"].([]any); ok {
				var got []MBusRecord
				for _, r := range f.Records {
					if r.Quantity == "energy" {
						got = append(got, r)
					}
				}
				if len(got) != len(want) {
					t.Fatalf("%d energy records, want %d", len(got), len(want))
				}
				for i, w := range want {
					w := w.(map[string]any)
					if float64(got[i].Subunit) != w["subunit"] || float64(got[i].Tariff) != w["tariff"] || got[i].Unit != "Wh" {
						t.Errorf("energy %d: %+v, want %v", i, got[i], w)
					}
					if x, _ := strconv.ParseFloat(got[i].Value, 64); x != w["wh"] {
						t.Errorf("energy %d = %s, want %v", i, got[i].Value, w["wh"])
					}
				}
			}
			if ef, ok := v["error_flags"]; ok {
				if got := values("error flags"); len(got) != 1 || got[0] != ef {
					t.Errorf("error flags %v, want %v", got, ef)
				}
			}
			bad := append([]byte(nil), data...)
			bad[len(bad)-2] ^= 0x01
			if _, err := DecodeMBusFrame(bad); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
				t.Errorf("bad checksum: %v", err)
			}
		})
	}
}

func FuzzMBusFrame(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(fxDir(f), "mbus", "*.bin"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := DecodeMBusFrame(data)
		if err == nil && len(fr.Records) > len(data) {
			t.Fatalf("%d records from %d bytes", len(fr.Records), len(data))
		}
	})
}
