package meter

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"testing"
)

// addFixtureSeeds adds every DSMR-text fixture to the fuzz corpus.
func addFixtureSeeds(f *testing.F, add func(data []byte)) {
	for _, path := range dsmrFixtures(f) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		add(data)
	}
}

// FuzzDSMRFramer feeds arbitrary bytes in arbitrary chunks. The decoder
// must not panic, must give the same results however the bytes are split,
// must keep its buffer bounded and must only emit readings whose frame the
// rules allow.
func FuzzDSMRFramer(f *testing.F) {
	addFixtureSeeds(f, func(data []byte) { f.Add(data, uint8(1), uint8(7)) })
	f.Add([]byte("/a\r\n\r\n1-0:1.8.1(1*kWh)\r\n!"), uint8(3), uint8(1))
	f.Add([]byte("\n/\n/\n!!!!/!\r\n/X!0000"), uint8(2), uint8(5))
	f.Fuzz(func(t *testing.T, data []byte, a, b uint8) {
		const maxFrame = 2048
		whole := NewDSMRDecoder(DecoderOptions{MaxFrame: maxFrame})
		var want []string
		record := func(out *[]string, d *DSMRDecoder) func(Reading, error) {
			return func(r Reading, err error) {
				if err != nil {
					var te *TelegramError
					if !errors.As(err, &te) {
						t.Fatalf("error %v is not a *TelegramError", err)
					}
					if te.Offset < 0 || te.Offset >= int64(len(data)) || data[te.Offset] != '/' {
						t.Fatalf("error offset %d does not point at a '/'", te.Offset)
					}
					*out = append(*out, err.Error())
					return
				}
				off := d.FrameOffset()
				if off < 0 || off >= int64(len(data)) || data[off] != '/' {
					t.Fatalf("reading offset %d does not point at a '/'", off)
				}
				if !r.ChecksumOK && r.Version != "" {
					t.Fatalf("version %q telegram accepted without CRC", r.Version)
				}
				j, err := json.Marshal(r)
				if err != nil || !json.Valid(j) {
					t.Fatalf("reading JSON invalid: %v %s", err, j)
				}
				*out = append(*out, string(j))
			}
		}
		emitWhole := record(&want, whole)
		whole.Feed(data, emitWhole)
		whole.Flush(emitWhole)

		var got []string
		chunked := NewDSMRDecoder(DecoderOptions{MaxFrame: maxFrame})
		emitChunked := record(&got, chunked)
		sizes := [2]int{int(a%64) + 1, int(b%64) + 1}
		rest := data
		for i := 0; len(rest) > 0; i++ {
			n := min(sizes[i%2], len(rest))
			chunked.Feed(rest[:n], emitChunked)
			rest = rest[n:]
			if len(chunked.buf) > maxFrame+64 {
				t.Fatalf("buffer holds %d bytes, bound %d", len(chunked.buf), maxFrame+64)
			}
		}
		chunked.Flush(emitChunked)
		if len(got) != len(want) {
			t.Fatalf("chunked: %d results, whole: %d\n%q\n%q", len(got), len(want), got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("result %d differs:\nchunked %s\nwhole   %s", i, got[i], want[i])
			}
		}
	})
}

// FuzzDSMRDecoder decodes arbitrary bytes as one telegram. It must not
// panic; an accepted telegram must carry a matching CRC or be a CRC-less
// DSMR 2.2/3.0 one, and encode to valid JSON.
func FuzzDSMRDecoder(f *testing.F) {
	addFixtureSeeds(f, func(data []byte) { f.Add(data) })
	// Past billing periods and the Belgian capacity-tariff objects.
	f.Add(telegram("ISK5\\2M550T-1012", true, "1-3:0.2.8(50)", "1-0:1.8.1(000100.000*kWh)", "1-0:1.8.1*96(000090.000*kWh)",
		"0-1:24.1.0(003)", "0-1:24.2.1*97(250105000000W)(00005.000*m3)"))
	f.Add(telegram("FLU5\xab769484_A", true, "0-0:96.1.4(50217)", "1-0:1.4.0(04.123*kW)", "1-0:1.6.0(250112181500W)(04.123*kW)",
		"0-0:98.1.0(2)(1-0:1.6.0)(1-0:1.6.0)(241201000000W)(241118074500W)(05.001*kW)(250101000000W)(632525252525W)(00.000*kW)"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeDSMRTelegram(data)
		if err != nil {
			if r.Protocol != "" || r.ChecksumOK {
				t.Fatalf("rejected telegram returned a reading: %+v", r)
			}
			return
		}
		s := bytes.IndexByte(data, '/')
		e := bytes.LastIndexByte(data, '!')
		if r.ChecksumOK {
			digits := data[e+1:]
			n := 0
			for n < len(digits) && n < 4 && isHex(digits[n]) {
				n++
			}
			if n == 0 || CRC16ARC(data[s:e+1]) != hexValue(digits[:n]) {
				t.Fatalf("accepted with checksum_ok but the CRC does not match")
			}
		} else if r.Version != "" {
			t.Fatalf("version %q accepted without CRC", r.Version)
		}
		if len(r.DemandPeakHistory) > maxPeakHistory {
			t.Fatalf("%d peak history entries", len(r.DemandPeakHistory))
		}
		if !r.DemandPeakW.OK && !r.DemandPeakTime.IsZero() {
			t.Fatalf("peak time %v without a peak", r.DemandPeakTime)
		}
		j, err := json.Marshal(r)
		if err != nil || !json.Valid(j) {
			t.Fatalf("reading JSON invalid: %v %s", err, j)
		}
	})
}
