package meter

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkDSMRDecode decodes one ~900-byte DSMR 5.0 telegram per
// iteration through the streaming decoder, CRC included.
func BenchmarkDSMRDecode(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(fixturesDir(b), "dsmr", "v50_iskra_am550t_1012.txt"))
	if err != nil {
		b.Fatal(err)
	}
	d := NewDSMRDecoder(DecoderOptions{})
	var got int
	emit := func(r Reading, err error) {
		if err != nil {
			b.Fatal(err)
		}
		got++
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU()
	for b.Loop() {
		d.Feed(data, emit)
	}
	cpu.report(b)
	if got == 0 {
		b.Fatal("no reading")
	}
}

// BenchmarkDSMRDecodeChunked is the same telegram arriving in 64-byte
// reads, as from a serial port.
func BenchmarkDSMRDecodeChunked(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(fixturesDir(b), "dsmr", "v50_iskra_am550t_1012.txt"))
	if err != nil {
		b.Fatal(err)
	}
	d := NewDSMRDecoder(DecoderOptions{})
	emit := func(r Reading, err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU()
	for b.Loop() {
		for p := data; len(p) > 0; {
			n := min(64, len(p))
			d.Feed(p[:n], emit)
			p = p[n:]
		}
	}
	cpu.report(b)
}

// BenchmarkCRC16ARCTelegram is the checksum alone over the same bytes.
func BenchmarkCRC16ARCTelegram(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(fixturesDir(b), "dsmr", "v50_iskra_am550t_1012.txt"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		CRC16ARC(data)
	}
}

// BenchmarkCRC16ARCFastTelegram is the decoder's slicing-by-8 checksum.
func BenchmarkCRC16ARCFastTelegram(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(fixturesDir(b), "dsmr", "v50_iskra_am550t_1012.txt"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		crc16ARCFast(data)
	}
}
