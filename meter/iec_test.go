package meter

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIECFixtures(t *testing.T) {
	dir, names, exp := fxLoad(t, "iec62056-21")
	for _, name := range names {
		e := exp[name]
		t.Run(filepath.Base(name), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			for _, chunk := range []int{0, 1, 3, 50} {
				rs, errs := fxFeed(NewIECDecoder(DecoderOptions{}), data, chunk)
				switch e.Expect {
				case "valid", "no_crc_ok":
					if len(rs) != 1 || len(errs) != 0 {
						t.Fatalf("chunk %d: %d readings, errors %v; want exactly 1 reading", chunk, len(rs), errs)
					}
					r := rs[0]
					fxCheckReading(t, r, e)
					if r.ChecksumOK != (e.Expect == "valid") {
						t.Errorf("checksum ok = %v, want %v", r.ChecksumOK, e.Expect == "valid")
					}
					if "/"+r.Header != *e.Header {
						t.Errorf("header %q, want %q", "/"+r.Header, *e.Header)
					}
				case "stream":
					if len(rs) != e.Count || len(errs) != 0 {
						t.Fatalf("chunk %d: %d readings, errors %v; want %d", chunk, len(rs), errs, e.Count)
					}
					fxCheckReading(t, rs[len(rs)-1], e)
				case "reject_crc":
					if len(rs) != 0 || len(errs) != 1 {
						t.Fatalf("chunk %d: %d readings, errors %v; want one BCC error", chunk, len(rs), errs)
					}
					if !strings.Contains(errs[0].Error(), "BCC mismatch: sent "+*e.CRC+", computed "+*e.CRCComputed) {
						t.Errorf("error %q does not give sent %s computed %s", errs[0], *e.CRC, *e.CRCComputed)
					}
				default:
					t.Fatalf("unknown expectation %q", e.Expect)
				}
			}
		})
	}
}

// The Multical 66 is a heat meter: its 6.8 register becomes the reading's
// heat sub-meter, as expected.json's values give it.
func TestIECHeatMeterValues(t *testing.T) {
	dir, _, exp := fxLoad(t, "iec62056-21")
	name := "iec62056-21/derived_kamstrup_mc66_bcc_fixed.txt"
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	rs, errs := fxFeed(NewIECDecoder(DecoderOptions{}), data, 0)
	if len(rs) != 1 || len(errs) != 0 {
		t.Fatalf("%d readings, errors %v", len(rs), errs)
	}
	want := exp[name].Values
	if r := rs[0]; r.Heat == nil || float64(r.Heat.Milli) != want["heat_energy_gj"].(float64)*1000 || r.Heat.Unit != "GJ" {
		t.Errorf("heat %+v, want %v GJ", r.Heat, want["heat_energy_gj"])
	}
	if rs[0].MeterID != want["serial"] {
		t.Errorf("meter id %q, want %v", rs[0].MeterID, want["serial"])
	}
}

func TestIECUnitsAndSigns(t *testing.T) {
	in := "\x7f/?!\r\n/XYZ5Test\r\n\r\n" +
		"1-0:1.8.1*255(000010.5*kWh)\r\n" +
		"1-0:1.8.2*255(2500*Wh)\r\n" +
		"1-0:2.8.0*255(1.0005*kWh)\r\n" +
		"1-0:16.7.0*255(-1.234*kW)\r\n" +
		"1-0:32.7.0*255(230.1*V)\r\n" +
		"1-0:31.7.0*255(1.5*A)\r\n" +
		"garbage line\r\n" +
		"!\n\n"
	rs, errs := fxFeed(NewIECDecoder(DecoderOptions{}), []byte(in), 2)
	if len(rs) != 1 || len(errs) != 0 {
		t.Fatalf("%d readings, errors %v", len(rs), errs)
	}
	r := rs[0]
	checks := []struct {
		name string
		got  Optional
		want int64
	}{
		{"import t1", r.EnergyImport.Tariff1, 10500},
		{"import t2", r.EnergyImport.Tariff2, 2500},
		{"import total (sum)", r.EnergyImport.Total, 13000},
		{"export total", r.EnergyExport.Total, 1001},
		{"power import", r.PowerImportW, 0},
		{"power export", r.PowerExportW, 1234},
		{"L1 voltage", r.Phases[0].VoltageMV, 230100},
		{"L1 current", r.Phases[0].CurrentMA, 1500},
	}
	for _, c := range checks {
		if c.got != Some(c.want) {
			t.Errorf("%s = %+v, want %d", c.name, c.got, c.want)
		}
	}
	if r.Header != "XYZ5Test" {
		t.Errorf("header %q", r.Header)
	}
}

func FuzzIECDecoder(f *testing.F) {
	dir := fxDir(f)
	files, _ := filepath.Glob(filepath.Join(dir, "iec62056-21", "*.txt"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(0))
	}
	f.Add([]byte("/LGZ52ZMD120APt.G03\r\n1.8.1(001846.0*kWh)\r\n1.8.1*03(001500.0*kWh)\r\n1.8.1&04(001400.0*kWh)\r\n1-0:1.8.0*96(00000090.000*kWh)\r\n!\r\n"), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		d := NewIECDecoder(DecoderOptions{MaxFrame: 4096})
		rs, _ := fxFeed(d, data, int(chunk))
		for _, r := range rs {
			if r.Protocol != "iec62056-21" {
				t.Fatalf("protocol %q", r.Protocol)
			}
		}
		if len(d.buf) != 0 {
			t.Fatalf("%d bytes left after Flush", len(d.buf))
		}
	})
}

func BenchmarkIECDecoder(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(fxDir(b), "iec62056-21", "landisgyr_e350_zmf100_lflf.txt"))
	if err != nil {
		b.Fatal(err)
	}
	data = append(data, "\r\n\x03"...)
	data = append(data, 0) // a BCC byte; its value does not matter for speed
	d := NewIECDecoder(DecoderOptions{})
	n := 0
	emit := func(Reading, error) { n++ }
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		d.Feed(data, emit)
	}
	if n != b.N {
		b.Fatalf("%d results for %d readouts", n, b.N)
	}
}
