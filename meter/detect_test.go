package meter

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// Every fixture stream of the push protocols is recognised as the protocol
// of its folder, and the auto decoder then decodes it exactly as the named
// decoder does.
func TestAutoIdentifiesEveryFixture(t *testing.T) {
	for _, folder := range []string{"dsmr", "sml", "iec62056-21", "smarty", "modbus", "mbus"} {
		dir, names, exp := fxLoad(t, folder)
		for _, name := range names {
			e := exp[name]
			t.Run(name, func(t *testing.T) {
				data, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				d, ok := Detect(data, true)
				switch folder {
				case "modbus", "mbus":
					// Polled binary protocols: auto does not claim them.
					if ok {
						t.Fatalf("detected %v in a %s frame", d, folder)
					}
					return
				}
				if !ok || d.Protocol != folder {
					t.Fatalf("detected %v (ok %v), want %s", d, ok, folder)
				}
				if d.Reason == "" {
					t.Error("no reason given")
				}
				opts := DecoderOptions{}
				if e.KeyHex != "" {
					opts.Key, _ = hex.DecodeString(e.KeyHex)
				}
				var told []Detection
				opts.OnDetect = func(d Detection) { told = append(told, d) }
				auto, err := NewDecoder("auto", opts)
				if err != nil {
					t.Fatal(err)
				}
				named, err := NewDecoder(folder, opts)
				if err != nil {
					t.Fatal(err)
				}
				for _, chunk := range []int{0, 5} {
					ar, ae := fxFeed(auto, data, chunk)
					nr, ne := fxFeed(named, data, chunk)
					if len(ar) != len(nr) || len(ae) != len(ne) {
						t.Fatalf("chunk %d: auto gave %d readings/%d errors, %s gave %d/%d", chunk, len(ar), len(ae), folder, len(nr), len(ne))
					}
					for i := range ar {
						if !reflect.DeepEqual(ar[i], nr[i]) {
							t.Fatalf("reading %d differs:\nauto %+v\n%s %+v", i, ar[i], folder, nr[i])
						}
					}
					auto, _ = NewDecoder("auto", opts)
					named, _ = NewDecoder(folder, opts)
				}
				if len(told) != 1 && len(told) != 2 || told[0].Protocol != folder {
					t.Errorf("OnDetect told %v", told)
				}
			})
		}
	}
}

func TestDetectSevenBitAndNoKey(t *testing.T) {
	tele := []byte("/ISk5\\2MT382-1000\r\n\r\n1-3:0.2.8(50)\r\n1-0:1.8.1(000001.000*kWh)\r\n!")
	par := make([]byte, len(tele))
	for i, c := range tele {
		par[i] = c
		if i%3 == 0 {
			par[i] |= 0x80 // parity bits left in place
		}
	}
	d, ok := Detect(par, true)
	if !ok || d.Protocol != "dsmr" || !d.SevenBit {
		t.Fatalf("detected %+v ok %v", d, ok)
	}
	data, err := os.ReadFile(filepath.Join(fxDir(t), "smarty", "synthetic_t210dr_esphome.bin"))
	if err != nil {
		t.Fatal(err)
	}
	rs, errs := fxFeed(NewAutoDecoder(DecoderOptions{}, nil), append(data, data...), 0)
	if len(rs) != 0 || len(errs) != 1 {
		t.Fatalf("%d readings, errors %v; want one 'no key' error", len(rs), errs)
	}
	if _, ok := Detect([]byte("hello world, no meter here"), true); ok {
		t.Error("detected a protocol in plain text")
	}
}

func FuzzDetect(f *testing.F) {
	f.Add([]byte("/XYZ5\r\n\x021.8.0(1*kWh)!\r\n\x03a"))
	f.Add(smlStart)
	f.Fuzz(func(t *testing.T, data []byte) {
		d, ok := Detect(data, true)
		if ok && (d.Offset < 0 || d.Offset >= len(data)) {
			t.Fatalf("offset %d of %d", d.Offset, len(data))
		}
		a := NewAutoDecoder(DecoderOptions{Key: make([]byte, 16)}, nil)
		fxFeed(a, data, 7)
	})
}
