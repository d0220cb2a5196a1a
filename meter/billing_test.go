package meter

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"
)

// Values of past billing periods (OBIS value group F other than 255, e.g.
// 1-0:1.8.0*96 "yesterday" or 1.8.1*03 "three billing periods ago") must
// never fill the current registers, whether they come before or after the
// current value. These tests build each protocol's frames by hand.

// regs is the expected import and export registers of a test reading;
// -1 means "not sent".
type regs struct{ impT, imp1, imp2, expT int64 }

func checkRegs(t *testing.T, r Reading, want regs) {
	t.Helper()
	for _, c := range []struct {
		name string
		got  Optional
		want int64
	}{
		{"import total", r.EnergyImport.Total, want.impT},
		{"import tariff 1", r.EnergyImport.Tariff1, want.imp1},
		{"import tariff 2", r.EnergyImport.Tariff2, want.imp2},
		{"export total", r.EnergyExport.Total, want.expT},
	} {
		switch {
		case c.want < 0 && c.got.OK:
			t.Errorf("%s = %d, want none", c.name, c.got.V)
		case c.want >= 0 && (!c.got.OK || c.got.V != c.want):
			t.Errorf("%s = %+v, want %d", c.name, c.got, c.want)
		}
	}
}

func TestIECBillingPeriods(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  regs
		power int64 // expected PowerImportW, -1 none
	}{
		{
			name: "history after current, full OBIS",
			lines: []string{
				"1-0:1.8.0*255(00000100.000*kWh)",
				"1-0:1.8.0*96(00000090.000*kWh)",
				"1-0:1.8.0*97(00000050.000*kWh)",
				"1-0:2.8.0*255(00000007.000*kWh)",
				"1-0:2.8.0*100(00000001.000*kWh)",
				"1-0:1.7.0*255(000250.00*W)",
			},
			want:  regs{100000, -1, -1, 7000},
			power: 250,
		},
		{
			name: "history before current, full OBIS",
			lines: []string{
				"1-0:1.8.0*98(00000060.000*kWh)",
				"1-0:1.8.0*255(00000100.000*kWh)",
				"1-0:2.8.0*99(00000002.000*kWh)",
				"1-0:2.8.0*255(00000007.000*kWh)",
			},
			want:  regs{100000, -1, -1, 7000},
			power: -1,
		},
		{
			name: "short ids, billing periods after the current tariffs",
			lines: []string{
				"1.8.1(001846.0*kWh)",
				"1.8.2(000010.0*kWh)",
				"1.8.1*03(001500.0*kWh)",
				"1.8.2*03(000005.0*kWh)",
				"1.8.1&04(001400.0*kWh)",
				"2.8.0*03(000001.0*kWh)",
				"2.8.0(004329.6*kWh)",
			},
			want:  regs{1856000, 1846000, 10000, 4329600},
			power: -1,
		},
		{
			name: "only historical values: no current register is invented",
			lines: []string{
				"1-0:1.8.1*96(00000090.000*kWh)",
				"1-0:1.8.0*96(00000090.000*kWh)",
				"1-0:1.7.0*96(000250.00*W)",
				"1-0:16.7.0*101(000300.00*W)",
				"1-0:0.0.0*255(12345)",
			},
			want:  regs{-1, -1, -1, -1},
			power: -1,
		},
		{
			name: "power of a past period does not replace the current one",
			lines: []string{
				"1-0:16.7.0*255(000120.00*W)",
				"1-0:16.7.0*96(-000300.00*W)",
				"1-0:1.8.0(00000100.000*kWh)",
			},
			want:  regs{100000, -1, -1, -1},
			power: 120,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := "/ESY5Q3DA1004 V3.04\r\n\r\n" + strings.Join(tc.lines, "\r\n") + "\r\n!\r\n"
			rs, errs := fxFeed(NewIECDecoder(DecoderOptions{}), []byte(data), 0)
			if len(rs) != 1 || len(errs) != 0 {
				t.Fatalf("%d readings, errors %v", len(rs), errs)
			}
			r := rs[0]
			checkRegs(t, r, tc.want)
			if tc.power < 0 && r.PowerImportW.OK || tc.power >= 0 && r.PowerImportW != Some(tc.power) {
				t.Errorf("power import = %+v, want %d", r.PowerImportW, tc.power)
			}
			// Every numeric line stays in Registers, with its F group.
			for _, l := range tc.lines {
				id := l[:strings.IndexByte(l, '(')]
				if strings.HasPrefix(id, "1-0:0.0.0") {
					continue
				}
				found := false
				for _, g := range r.Registers {
					found = found || g.ID == id
				}
				if !found {
					t.Errorf("register %s missing from Registers", id)
				}
			}
		})
	}
}

func TestDSMRBillingPeriods(t *testing.T) {
	base := []string{"1-3:0.2.8(50)", "0-0:1.0.0(250112181500W)"}
	tests := []struct {
		name  string
		lines []string
		want  regs
		power int64
		gasMl int64 // expected gas in litres, -1 none
	}{
		{
			name: "history after current",
			lines: []string{
				"1-0:1.8.1(000100.000*kWh)",
				"1-0:1.8.1*96(000090.000*kWh)",
				"1-0:1.8.2(000200.000*kWh)",
				"1-0:1.8.2*97(000150.000*kWh)",
				"1-0:2.8.1(000003.000*kWh)",
				"1-0:2.8.1*100(000001.000*kWh)",
				"1-0:1.7.0(01.193*kW)",
				"1-0:1.7.0*96(09.999*kW)",
			},
			want:  regs{300000, 100000, 200000, 3000},
			power: 1193,
			gasMl: -1,
		},
		{
			name: "history before current, F 255 is current",
			lines: []string{
				"1-0:1.8.0*98(000050.000*kWh)",
				"1-0:1.8.0*255(000060.000*kWh)",
				"1-0:2.8.0*99(000002.000*kWh)",
				"1-0:2.8.0(000004.000*kWh)",
				"0-1:24.1.0(003)",
				"0-1:24.2.1*96(250111000000W)(00010.000*m3)",
				"0-1:24.2.1(250112181000W)(00012.345*m3)",
				"0-1:24.2.1*97(250105000000W)(00005.000*m3)",
			},
			want:  regs{60000, -1, -1, 4000},
			power: -1,
			gasMl: 12345,
		},
		{
			name: "only historical values",
			lines: []string{
				"1-0:1.8.1*96(000090.000*kWh)",
				"1-0:2.8.0*96(000001.000*kWh)",
				"0-0:96.14.0*96(0002)",
				"0-1:24.1.0(003)",
				"0-1:24.2.1*96(250111000000W)(00010.000*m3)",
			},
			want:  regs{-1, -1, -1, -1},
			power: -1,
			gasMl: -1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, errs := decodeAll(t, telegram("ISK5\\2M550T-1012", true, append(base, tc.lines...)...))
			if len(rs) != 1 || len(errs) != 0 {
				t.Fatalf("%d readings, errors %v", len(rs), errs)
			}
			r := rs[0]
			if !r.ChecksumOK {
				t.Error("CRC not checked")
			}
			checkRegs(t, r, tc.want)
			if tc.power < 0 && r.PowerImportW.OK || tc.power >= 0 && r.PowerImportW != Some(tc.power) {
				t.Errorf("power import = %+v, want %d", r.PowerImportW, tc.power)
			}
			if r.Tariff != 0 {
				t.Errorf("tariff %d from a past period", r.Tariff)
			}
			switch {
			case tc.gasMl < 0 && r.Gas != nil:
				t.Errorf("gas %+v, want none", *r.Gas)
			case tc.gasMl >= 0 && (r.Gas == nil || r.Gas.Milli != tc.gasMl):
				t.Errorf("gas %+v, want %d litres", r.Gas, tc.gasMl)
			}
		})
	}
}

func TestSMLBillingPeriods(t *testing.T) {
	id := func(c, d, e, f byte) [6]byte { return [6]byte{1, 0, c, d, e, f} }
	cur := []SMLEntry{
		{OBIS: id(1, 8, 0, 255), Unit: SMLUnitWh, Scaler: -1, Value: 1000000}, // 100000.0 Wh
		{OBIS: id(1, 8, 1, 255), Unit: SMLUnitWh, Scaler: 0, Value: 60000},
		{OBIS: id(1, 8, 2, 255), Unit: SMLUnitWh, Scaler: 0, Value: 40000},
		{OBIS: id(2, 8, 0, 255), Unit: SMLUnitWh, Scaler: 0, Value: 7000},
		{OBIS: id(16, 7, 0, 255), Unit: SMLUnitW, Scaler: 0, Value: 321},
	}
	hist := []SMLEntry{
		{OBIS: id(1, 8, 0, 96), Unit: SMLUnitWh, Scaler: 0, Value: 90000},
		{OBIS: id(1, 8, 1, 97), Unit: SMLUnitWh, Scaler: 0, Value: 50000},
		{OBIS: id(1, 8, 2, 100), Unit: SMLUnitWh, Scaler: 0, Value: 30000},
		{OBIS: id(2, 8, 0, 0), Unit: SMLUnitWh, Scaler: 0, Value: 1},
		{OBIS: id(16, 7, 0, 96), Unit: SMLUnitW, Scaler: 0, Value: -999},
	}
	tests := []struct {
		name    string
		entries []SMLEntry
		want    regs
		power   int64
	}{
		{"history after current", append(append([]SMLEntry(nil), cur...), hist...), regs{100000, 60000, 40000, 7000}, 321},
		{"history before current", append(append([]SMLEntry(nil), hist...), cur...), regs{100000, 60000, 40000, 7000}, 321},
		{"only history", hist, regs{-1, -1, -1, -1}, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			frame := EncodeSMLFile([]byte{0x0a, 0x01, 'E', 'M', 'H', 0, 0, 0, 0, 1}, 7, tc.entries)
			rs, errs := fxFeed(NewSMLDecoder(SMLOptions{}), frame, 0)
			if len(rs) != 1 || len(errs) != 0 {
				t.Fatalf("%d readings, errors %v", len(rs), errs)
			}
			r := rs[0]
			checkRegs(t, r, tc.want)
			if tc.power < 0 && r.PowerImportW.OK || tc.power >= 0 && r.PowerImportW != Some(tc.power) {
				t.Errorf("power import = %+v, want %d", r.PowerImportW, tc.power)
			}
			if len(r.Registers) != len(tc.entries) {
				t.Errorf("%d registers, want all %d entries kept", len(r.Registers), len(tc.entries))
			}
		})
	}
}

// M-Bus frames are not mapped onto a Reading; what keeps a past value apart
// is its storage number, which the decoder must report for every record.
func TestMBusStorageNumbers(t *testing.T) {
	frame := func(records ...byte) []byte {
		body := []byte{0x08, 0x01, 0x72, 0x78, 0x56, 0x34, 0x12, 0x42, 0x04, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00}
		body = append(body, records...)
		var sum byte
		for _, c := range body {
			sum += c
		}
		out := []byte{0x68, byte(len(body)), byte(len(body)), 0x68}
		out = append(out, body...)
		return append(out, sum, 0x16)
	}
	tests := []struct {
		name    string
		records []byte
		storage []int
		values  []string
	}{
		{"current then past", []byte{0x04, 0x03, 0x10, 0x27, 0, 0, 0x44, 0x03, 0x88, 0x13, 0, 0}, []int{0, 1}, []string{"10000", "5000"}},
		{"past (DIFE storage 2) then current", []byte{0x84, 0x01, 0x03, 0xe8, 0x03, 0, 0, 0x04, 0x03, 0x10, 0x27, 0, 0}, []int{2, 0}, []string{"1000", "10000"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := DecodeMBusFrame(frame(tc.records...))
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Records) != len(tc.storage) {
				t.Fatalf("%d records, want %d", len(f.Records), len(tc.storage))
			}
			for i, r := range f.Records {
				if r.Storage != tc.storage[i] || r.Value != tc.values[i] || r.Unit != "Wh" {
					t.Errorf("record %d = storage %d, %s %s; want storage %d, %s Wh", i, r.Storage, r.Value, r.Unit, tc.storage[i], tc.values[i])
				}
			}
		})
	}
}

// An SDM meter has no billing periods, but its demand registers (0x0054
// total system power demand, 0x0056 its maximum) are averages and maxima,
// not the power now: a captured read that spans them must take the power
// from 0x0034 only, and the energy from 0x0048/0x004A.
func TestModbusSDMDemandRegistersIgnored(t *testing.T) {
	const start, count = 0x0034, 0x0058 - 0x0034
	values := map[uint16]float32{0x0034: 1234, 0x0048: 5.5, 0x004A: 0.25, 0x0054: 2222, 0x0056: 9999}
	tests := []struct {
		name  string
		start uint16
		count uint16
		power int64 // -1: none
		imp   int64 // -1: none
	}{
		{"power, energy and demand in one read", start, count, 1234, 5500},
		{"demand registers alone", 0x0054, 4, -1, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			regs := make([]byte, 2*int(tc.count))
			for addr, v := range values {
				if addr >= tc.start && addr+2 <= tc.start+tc.count {
					binary.BigEndian.PutUint32(regs[2*(addr-tc.start):], math.Float32bits(v))
				}
			}
			resp := EncodeModbusRTU(1, ModbusReadInput, append([]byte{byte(len(regs))}, regs...))
			stream := append(ModbusReadRequest(1, ModbusReadInput, tc.start, tc.count), resp...)
			rs, errs := fxFeed(mustSDM(t, ModbusOptions{}), stream, 0)
			if len(rs) != 1 || len(errs) != 0 {
				t.Fatalf("%d readings, errors %v", len(rs), errs)
			}
			r := rs[0]
			if tc.power < 0 && r.PowerImportW.OK || tc.power >= 0 && r.PowerImportW != Some(tc.power) {
				t.Errorf("power import = %+v, want %d", r.PowerImportW, tc.power)
			}
			if tc.imp < 0 && r.EnergyImport.Total.OK || tc.imp >= 0 && r.EnergyImport.Total != Some(tc.imp) {
				t.Errorf("import = %+v, want %d", r.EnergyImport.Total, tc.imp)
			}
		})
	}
}
