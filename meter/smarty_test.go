package meter

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSmartyFixtures(t *testing.T) {
	dir, names, exp := fxLoad(t, "smarty")
	for _, name := range names {
		e := exp[name]
		t.Run(filepath.Base(name), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			key, err := hex.DecodeString(e.KeyHex)
			if err != nil {
				t.Fatal(err)
			}
			for _, chunk := range []int{0, 1, 100} {
				d, err := NewSmartyDecoder(DecoderOptions{Key: key})
				if err != nil {
					t.Fatal(err)
				}
				// Noise before and after, as a port opened mid-frame sees.
				in := append(append([]byte{0x00, 0xDB, 0x08, 0x41}, data...), 0xDB)
				rs, errs := fxFeed(d, in, chunk)
				if len(rs) != 1 || len(errs) != 0 {
					t.Fatalf("chunk %d: %d readings, errors %v", chunk, len(rs), errs)
				}
				r := rs[0]
				fxCheckReading(t, r, e)
				if r.Protocol != "smarty" || !r.ChecksumOK {
					t.Errorf("protocol %q checksum %v", r.Protocol, r.ChecksumOK)
				}
				if want, _ := time.Parse(time.RFC3339, *e.Timestamp); !r.Time.Equal(want) {
					t.Errorf("time %v, want %v", r.Time, want)
				}
				if r.Version != *e.P1Version {
					t.Errorf("version %q, want %q", r.Version, *e.P1Version)
				}
			}
			// The plaintext is byte-identical to the named DSMR fixture.
			var plainFile string
			if err := json.Unmarshal(e.raw["plaintext_file"], &plainFile); err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join(dir, plainFile))
			if err != nil {
				t.Fatal(err)
			}
			d, _ := NewSmartyDecoder(DecoderOptions{Key: key})
			hdr, total, ok := smartyHeader(data, DefaultMaxFrame)
			if !ok || total != len(data) {
				t.Fatalf("header: %d %d %v", hdr, total, ok)
			}
			plain, err := d.open(data, hdr)
			if err != nil || !bytes.Equal(plain, want) {
				t.Errorf("plaintext differs from %s (err %v)", plainFile, err)
			}
		})
	}
}

func TestSmartyWrongKey(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(fxDir(t), "smarty", "lu_sagemcom_real_nexxtlab.bin"))
	if err != nil {
		t.Fatal(err)
	}
	key := bytes.Repeat([]byte{0x42}, 16)
	d, err := NewSmartyDecoder(DecoderOptions{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	rs, errs := fxFeed(d, append(data, data...), 0)
	if len(rs) != 0 || len(errs) != 2 {
		t.Fatalf("%d readings, errors %v; want 2 errors", len(rs), errs)
	}
	for _, err := range errs {
		msg := err.Error()
		if !errors.Is(err, ErrSmartyKey) || !strings.Contains(msg, "decryption failed: check the key") {
			t.Errorf("error %q", msg)
		}
		if strings.Contains(msg, "CRC") || strings.Contains(strings.ToUpper(msg), "42424242") {
			t.Errorf("error %q mentions a CRC or the key", msg)
		}
	}
	if _, err := NewSmartyDecoder(DecoderOptions{Key: key[:15]}); !errors.Is(err, ErrSmartyNoKey) {
		t.Errorf("short key: %v", err)
	}
}

func FuzzSmartyDecoder(f *testing.F) {
	dir := fxDir(f)
	for _, name := range []string{"lu_sagemcom_real_nexxtlab.bin", "synthetic_t210dr_esphome.bin"} {
		b, err := os.ReadFile(filepath.Join(dir, "smarty", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(0))
	}
	key, _ := hex.DecodeString("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		d, err := NewSmartyDecoder(DecoderOptions{Key: key, MaxFrame: 2048})
		if err != nil {
			t.Fatal(err)
		}
		rs, _ := fxFeed(d, data, int(chunk))
		for _, r := range rs {
			if r.Protocol != "smarty" {
				t.Fatalf("protocol %q", r.Protocol)
			}
		}
		if len(d.buf) > 2048+len(data) {
			t.Fatalf("buffer %d", len(d.buf))
		}
	})
}

func BenchmarkSmartyDecoder(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(fxDir(b), "smarty", "lu_sagemcom_real_nexxtlab.bin"))
	if err != nil {
		b.Fatal(err)
	}
	key, _ := hex.DecodeString("D491470F47126332B07D1923B3504188")
	d, err := NewSmartyDecoder(DecoderOptions{Key: key})
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	emit := func(r Reading, err error) {
		if err == nil {
			n++
		}
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		d.Feed(data, emit)
	}
	if n != b.N {
		b.Fatalf("%d readings for %d frames", n, b.N)
	}
}
