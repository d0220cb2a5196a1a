package meter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// telegram builds a CRLF telegram from lines and appends its CRC, or just
// "!" when withCRC is false.
func telegram(header string, withCRC bool, lines ...string) []byte {
	var b bytes.Buffer
	b.WriteString("/" + header + "\r\n\r\n")
	for _, l := range lines {
		b.WriteString(l + "\r\n")
	}
	b.WriteByte('!')
	if withCRC {
		fmt.Fprintf(&b, "%04X", CRC16ARC(b.Bytes()))
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

func decodeAll(t *testing.T, data []byte) ([]Reading, []error) {
	t.Helper()
	res, _ := decodeChunks(data, whole(len(data)))
	return res.readings, res.errs
}

// TestDSMRAutumnHour: in the night summer time ends the wall clock shows
// 02:00-03:00 twice; the S/W flag must turn them into two instants an hour
// apart, in the right order.
func TestDSMRAutumnHour(t *testing.T) {
	var stream []byte
	for _, ts := range []string{"231029023000S", "231029023000W", "231029015959S", "231029030000W"} {
		stream = append(stream, telegram("ISK5\\2M550T-1012", true, "1-3:0.2.8(50)", "0-0:1.0.0("+ts+")", "1-0:1.7.0(00.100*kW)")...)
	}
	rs, errs := decodeAll(t, stream)
	if len(errs) != 0 || len(rs) != 4 {
		t.Fatalf("readings %d, errors %v", len(rs), errs)
	}
	want := []string{"2023-10-29T00:30:00Z", "2023-10-29T01:30:00Z", "2023-10-28T23:59:59Z", "2023-10-29T02:00:00Z"}
	wantLocal := []string{"2023-10-29T02:30:00+02:00", "2023-10-29T02:30:00+01:00", "2023-10-29T01:59:59+02:00", "2023-10-29T03:00:00+01:00"}
	for i, r := range rs {
		if got := r.Time.UTC().Format(time.RFC3339); got != want[i] {
			t.Errorf("telegram %d: UTC %s, want %s", i, got, want[i])
		}
		if got := r.Time.Format(time.RFC3339); got != wantLocal[i] {
			t.Errorf("telegram %d: local %s, want %s", i, got, wantLocal[i])
		}
	}
	if !rs[0].Time.Before(rs[1].Time) || rs[1].Time.Sub(rs[0].Time) != time.Hour {
		t.Errorf("the two 02:30 readings are %v apart, want 1h", rs[1].Time.Sub(rs[0].Time))
	}
}

func TestParseTST(t *testing.T) {
	tests := []struct {
		in   string
		want string // RFC 3339, "" = no value, "local ..." = floating wall clock
	}{
		{"190324150541W", "2019-03-24T15:05:41+01:00"},
		{"150701190000s", "2015-07-01T19:00:00+02:00"},
		{"150701190000w", "2015-07-01T19:00:00+01:00"},
		{"632525252525W", ""},
		{"632525252525S", ""},
		{"700101010000W", ""},
		{"000101010000W", ""},
		{"000101000001W", ""},
		{"190230120000W", ""}, // 30 February
		{"190324150541X", ""},
		{"19032415054W", ""},
		{"1903241505a1W", ""},
		{"161107190000", "local 2016-11-07T19:00:00"},
		{"", ""},
	}
	for _, tc := range tests {
		got, ok := parseTST([]byte(tc.in))
		var s string
		switch {
		case !ok:
			if !got.IsZero() {
				t.Errorf("%q: not ok but time %v", tc.in, got)
			}
		case got.Location() == Floating:
			s = "local " + got.Format("2006-01-02T15:04:05")
		default:
			s = got.Format(time.RFC3339)
		}
		if s != tc.want {
			t.Errorf("parseTST(%q) = %q, want %q", tc.in, s, tc.want)
		}
	}
}

func TestParseFixed(t *testing.T) {
	tests := []struct {
		in    string
		scale int
		want  int64
		ok    bool
	}{
		{"003432.829", 3, 3432829, true},
		{"000000.000", 3, 0, true},
		{"006545766", 0, 6545766, true},
		{"00.433", 3, 433, true},
		{"236.7", 3, 236700, true},
		{"002", 3, 2000, true},
		{"000.27", 3, 270, true},
		{"123456789012.345", 3, 123456789012345, true},
		{"0.0005", 3, 1, true},   // half rounds away from zero
		{"0.0004", 3, 0, true},   // below half
		{"-0.0005", 3, -1, true}, // and away from zero when negative
		{"-142.30", 0, -142, true},
		{"+26", 0, 26, true},
		{"52185.7825309", 3, 52185783, true},
		{"", 3, 0, false},
		{".", 3, 0, false},
		{"1.2.3", 3, 0, false},
		{"1e3", 3, 0, false},
		{"12 3", 3, 0, false},
		{"9999999999999999999", 0, 0, false},
		{"999999999999999999", 3, 0, false}, // overflows int64 once scaled
	}
	for _, tc := range tests {
		got, ok := parseFixed([]byte(tc.in), tc.scale)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseFixed(%q, %d) = %d, %v; want %d, %v", tc.in, tc.scale, got, ok, tc.want, tc.ok)
		}
	}
}

// TestDSMRFloatingPointFree: values whose float64 form is inexact stay exact.
func TestDSMRExactValues(t *testing.T) {
	rs, errs := decodeAll(t, telegram("XMX5TEST", true, "1-3:0.2.8(50)",
		"1-0:1.8.1(999999.999*kWh)", "1-0:1.8.2(000000.001*kWh)", "1-0:2.8.0(4503599627.371*kWh)",
		"1-0:1.7.0(00000286*W)", "1-0:2.7.0(0.1*kW)"))
	if len(errs) != 0 || len(rs) != 1 {
		t.Fatalf("readings %d, errors %v", len(rs), errs)
	}
	r := rs[0]
	if r.EnergyImport.Total != Some(1000000000) || r.EnergyImport.Tariff1 != Some(999999999) {
		t.Errorf("import %+v", r.EnergyImport)
	}
	if r.EnergyExport.Total != Some(4503599627371) || r.EnergyExport.Tariff1.OK {
		t.Errorf("export %+v", r.EnergyExport)
	}
	if r.PowerImportW != Some(286) || r.PowerExportW != Some(100) {
		t.Errorf("power %+v %+v", r.PowerImportW, r.PowerExportW)
	}
}

func TestDSMRRejections(t *testing.T) {
	v22 := []string{"0-0:96.1.1(00000000000000)", "1-0:1.8.1(00001.001*kWh)", "1-0:1.7.0(0001.01*kW)"}
	lfOnly := bytes.ReplaceAll(telegram("ISk5\\2MT382-1004", false, v22...), []byte("\r\n"), []byte("\n"))
	parity := telegram("ISk5\\2MT382-1004", false, v22...)
	parity[bytes.Index(parity, []byte("1-0:1.7.0"))] |= 0x80
	long := telegram("ISK5\\2M550T-1012", true, "1-3:0.2.8(50)", "0-0:96.13.0("+strings.Repeat("41", 3000)+")")
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"v5 without CRC", telegram("ISK5\\2M550T-1012", false, "1-3:0.2.8(50)", "1-0:1.7.0(00.100*kW)"), ErrNoChecksum},
		{"timestamped without CRC", telegram("KAM5", false, "0-0:1.0.0(211115100940W)", "1-0:1.7.0(00.100*kW)"), ErrNoChecksum},
		{"e-MUCS without CRC", telegram("FLU5\\253769484_A", false, "0-0:96.1.4(50217)", "1-0:1.7.0(00.100*kW)"), ErrNoChecksum},
		{"LF only without CRC", lfOnly, ErrLineEnding},
		{"parity bit set", parity, ErrParity},
		{"nothing inside", []byte("/XMX5X\r\n\r\nhello\r\n!\r\n"), ErrNoObjects},
		{"no CRC, not a DSMR 2.2 header", telegram("a/b", false, v22...), ErrNoChecksum},
		{"longer than the bound", long, ErrTooLong},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDSMRDecoder(DecoderOptions{MaxFrame: 4096})
			var rs []Reading
			var errs []error
			emit := func(r Reading, err error) {
				if err != nil {
					errs = append(errs, err)
				} else {
					rs = append(rs, r)
				}
			}
			d.Feed(tc.data, emit)
			d.Flush(emit)
			if len(rs) != 0 || len(errs) != 1 || !errors.Is(errs[0], tc.want) {
				t.Fatalf("want one %v, got %d readings, errors %v", tc.want, len(rs), errs)
			}
			if !strings.HasPrefix(errs[0].Error(), "telegram /") {
				t.Errorf("message does not name the telegram: %v", errs[0])
			}
			// The decoder recovers: a good telegram right after decodes.
			good := telegram("ISK5\\2M550T-1012", true, "1-3:0.2.8(50)", "1-0:1.7.0(00.100*kW)")
			rs, errs = nil, nil
			d.Feed(good, emit)
			if len(rs) != 1 || len(errs) != 0 || rs[0].PowerImportW != Some(100) {
				t.Fatalf("after the rejection: readings %+v, errors %v", rs, errs)
			}
		})
	}
}

// TestDSMRBoundedBuffer feeds a stream with no '!' at all: the decoder
// must drop it in pieces and never hold more than its bound.
func TestDSMRBoundedBuffer(t *testing.T) {
	d := NewDSMRDecoder(DecoderOptions{MaxFrame: 1024})
	chunk := []byte("/ISK5\r\n" + strings.Repeat("1-0:1.7.0(00.100*kW)\r", 10))
	tooLong := 0
	for range 2000 {
		d.Feed(chunk, func(r Reading, err error) {
			if errors.Is(err, ErrTooLong) {
				tooLong++
			} else {
				t.Fatalf("unexpected %v %+v", err, r)
			}
		})
		if len(d.buf) > 1024+len(chunk) {
			t.Fatalf("buffer %d bytes", len(d.buf))
		}
	}
	if tooLong == 0 {
		t.Fatal("an endless telegram was never reported")
	}
}

// TestDSMRGluedTelegrams: "!CRC" immediately followed by the next "/"
// (ndokter/dsmr_parser#91), and a 3-digit CRC at the very end of input.
func TestDSMRGluedTelegrams(t *testing.T) {
	a := telegram("ISK5\\2M550T-1013", true, "1-3:0.2.8(50)", "1-0:1.7.0(00.100*kW)")
	b := telegram("ISK5\\2M550T-1013", true, "1-3:0.2.8(50)", "1-0:1.7.0(00.200*kW)")
	glued := append(bytes.TrimRight(a, "\r\n"), b...)
	rs, errs := decodeAll(t, glued)
	if len(rs) != 2 || len(errs) != 0 || rs[1].PowerImportW != Some(200) {
		t.Fatalf("readings %d, errors %v", len(rs), errs)
	}

	// Find a telegram whose CRC has a leading zero, and send it unpadded
	// with nothing after: only Flush can complete it.
	for i := range 10000 {
		tg := telegram("NWA-TEST", true, "1-3:0.2.8(50)", fmt.Sprintf("1-0:1.7.0(%06d*W)", i))
		crc := tg[len(tg)-6 : len(tg)-2]
		if crc[0] != '0' {
			continue
		}
		unpadded := append(append([]byte(nil), tg[:len(tg)-6]...), crc[1:]...)
		d := NewDSMRDecoder(DecoderOptions{})
		var got []Reading
		emit := func(r Reading, err error) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, r)
		}
		d.Feed(unpadded, emit)
		if len(got) != 0 {
			t.Fatal("emitted before the CRC could have ended")
		}
		d.Flush(emit)
		if len(got) != 1 || !got[0].ChecksumOK || got[0].PowerImportW != Some(int64(i)) {
			t.Fatalf("unpadded CRC %s at EOF: %+v", crc[1:], got)
		}
		return
	}
	t.Fatal("no telegram with a leading-zero CRC found")
}

// TestDSMRAllocations: a steady stream of telegrams allocates nothing.
func TestDSMRAllocations(t *testing.T) {
	data := telegram("ISK5\\2M550T-1012", true, "1-3:0.2.8(50)", "0-0:1.0.0(190324150541W)",
		"0-0:96.1.1(4530303434303037313331363530363138)", "1-0:1.8.1(003432.829*kWh)", "1-0:1.7.0(00.433*kW)",
		"0-1:24.1.0(003)", "0-1:24.2.1(190324150000W)(00212.529*m3)")
	d := NewDSMRDecoder(DecoderOptions{})
	n := 0
	emit := func(r Reading, err error) {
		if err != nil || r.Gas == nil {
			t.Fatalf("%v %+v", err, r)
		}
		n++
	}
	d.Feed(data, emit)
	if a := testing.AllocsPerRun(100, func() { d.Feed(data, emit) }); a > 0 {
		t.Errorf("%v allocations per telegram, want 0", a)
	}
}

// TestReadingJSON checks the encoding against CLI.md's reading object,
// written out by hand from the fixture's lines.
func TestReadingJSON(t *testing.T) {
	data := telegram("FLU5\xab769484_A", true,
		"0-0:96.1.4(50217)", "0-0:96.1.1(3153414733313031303231363035)", "0-0:1.0.0(200512135409S)",
		"1-0:1.8.1(000000.034*kWh)", "1-0:1.8.2(000015.758*kWh)", "1-0:2.8.1(000000.000*kWh)",
		"0-0:96.14.0(0001)", "1-0:1.7.0(00.000*kW)", "1-0:2.7.0(02.317*kW)",
		"1-0:32.7.0(236.9*V)", "1-0:31.7.0(010.00*A)", "1-0:21.7.0(00.000*kW)", "1-0:22.7.0(02.317*kW)",
		"1-0:52.7.0(234.7*V)",
		"0-1:24.1.0(003)", "0-1:24.2.3(200512134558S)(01234.567*m3)",
		"0-2:24.1.0(007)", "0-2:24.2.1(200512134558S)(00872.234*m3)")
	rs, errs := decodeAll(t, data)
	if len(rs) != 1 || len(errs) != 0 {
		t.Fatalf("readings %d errors %v", len(rs), errs)
	}
	got, err := json.Marshal(rs[0])
	if err != nil {
		t.Fatal(err)
	}
	want := `{"time":"2020-05-12T13:54:09+02:00","protocol":"dsmr","version":"50217","header":"FLU5\u00ab769484_A",` +
		`"meter_id":"3153414733313031303231363035","power_import_w":0,"power_export_w":2317,` +
		`"energy_import_wh":{"total":15792,"tariff1":34,"tariff2":15758},"energy_export_wh":{"total":0,"tariff1":0},` +
		`"tariff":1,"phases":[{"phase":1,"voltage_v":236.9,"current_a":10,"power_import_w":0,"power_export_w":2317},` +
		`{"phase":2,"voltage_v":234.7}],` +
		`"gas":{"channel":1,"device_type":3,"m3":1234.567,"unit":"m3","time":"2020-05-12T13:45:58+02:00"},` +
		`"water":{"channel":2,"device_type":7,"m3":872.234,"unit":"m3","time":"2020-05-12T13:45:58+02:00"},"checksum_ok":true}`
	if string(got) != want {
		t.Errorf("JSON:\n got %s\nwant %s", got, want)
	}
	if !json.Valid(got) {
		t.Error("not valid JSON")
	}

	// A meter that sent nothing but power: the rest is null, not zero.
	rs, _ = decodeAll(t, telegram("KMP5 X", false, "1-0:1.7.0(0000.12*kW)"))
	if len(rs) != 1 {
		t.Fatal("minimal DSMR 2.2 telegram not decoded")
	}
	got, _ = json.Marshal(rs[0])
	want = `{"time":null,"protocol":"dsmr","version":null,"header":"KMP5 X","meter_id":null,"power_import_w":120,` +
		`"power_export_w":null,"energy_import_wh":null,"energy_export_wh":null,"tariff":null,"phases":[],"gas":null,"checksum_ok":false}`
	if string(got) != want {
		t.Errorf("JSON:\n got %s\nwant %s", got, want)
	}
}

// TestDSMRReusedReadBuffer: a serial read loop overwrites its buffer after
// every Feed; the decoder must have copied what it keeps.
func TestDSMRReusedReadBuffer(t *testing.T) {
	data := telegram("ISK5\\2M550T-1012", true, "1-3:0.2.8(50)", "0-0:1.0.0(190324150541W)",
		"1-0:1.8.1(003432.829*kWh)", "1-0:1.7.0(00.433*kW)", "0-1:24.1.0(003)", "0-1:24.2.1(190324150000W)(00212.529*m3)")
	stream := append(append([]byte("tail of an earlier one\r\n!ABCD\r\n"), data...), data...)
	d := NewDSMRDecoder(DecoderOptions{})
	var rs []Reading
	emit := func(r Reading, err error) {
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r.Clone())
	}
	buf := make([]byte, 13)
	for p := stream; len(p) > 0; {
		n := copy(buf, p)
		d.Feed(buf[:n], emit)
		for i := range buf {
			buf[i] = '!'
		}
		p = p[n:]
	}
	if len(rs) != 2 {
		t.Fatalf("want 2 readings, got %d", len(rs))
	}
	for _, r := range rs {
		if r.PowerImportW != Some(433) || r.EnergyImport.Tariff1 != Some(3432829) || r.Gas == nil || r.Gas.Milli != 212529 {
			t.Errorf("reading %+v gas %+v", r, r.Gas)
		}
	}
	if rs[0].Gas == rs[1].Gas {
		t.Error("Clone shares the gas reading")
	}
}

func TestDecodeDSMRTelegram(t *testing.T) {
	good := telegram("ISK5\\2M550T-1012", true, "1-3:0.2.8(50)", "1-0:1.7.0(00.433*kW)",
		"0-2:24.1.0(003)", "0-2:24.2.1(190324150000W)(00212.529*m3)")
	r, err := DecodeDSMRTelegram(good)
	if err != nil || r.PowerImportW != Some(433) || !r.ChecksumOK || r.Gas == nil || r.Gas.Channel != 2 {
		t.Fatalf("%v %+v", err, r)
	}
	bad := bytes.Replace(good, []byte("00.433"), []byte("00.933"), 1)
	if _, err := DecodeDSMRTelegram(bad); !errors.Is(err, ErrChecksum) {
		t.Fatalf("changed value: %v", err)
	}
	if _, err := DecodeDSMRTelegram(good[:40]); !errors.Is(err, ErrTruncated) {
		t.Fatalf("cut telegram: %v", err)
	}
	if _, err := DecodeDSMRTelegram([]byte("no header")); err == nil {
		t.Fatal("no header accepted")
	}
}

func TestNewDecoderDSMR(t *testing.T) {
	d, err := NewDecoder("dsmr", DecoderOptions{})
	if err != nil || d.Protocol() != "dsmr" {
		t.Fatalf("%v %v", d, err)
	}
	if _, ok := d.(Flusher); !ok {
		t.Error("the DSMR decoder must be a Flusher")
	}
	_, err = NewDecoder("zigbee", DecoderOptions{})
	if err == nil || !strings.Contains(err.Error(), "dsmr") {
		t.Fatalf("unknown protocol: %v", err)
	}
}

// TestDSMRBufferAfterHugeChunk: a huge read that ends inside a telegram
// must not leave the decoder holding the huge read's memory.
func TestDSMRBufferAfterHugeChunk(t *testing.T) {
	d := NewDSMRDecoder(DecoderOptions{MaxFrame: 4096})
	good := telegram("ISK5\\2M550T-1012", true, "1-3:0.2.8(50)", "1-0:1.7.0(00.100*kW)")
	n := 0
	emit := func(r Reading, err error) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	d.Feed(good[:10], emit) // start a partial telegram so the next chunk is appended
	huge := append(append(append([]byte(nil), good[10:]...), bytes.Repeat(good, 5000)...), good[:20]...)
	d.Feed(huge, emit)
	if n != 5001 {
		t.Fatalf("%d readings, want 5001", n)
	}
	if c := cap(d.buf); c > 2*4096 {
		t.Fatalf("decoder keeps %d bytes of capacity after a %d-byte chunk", c, len(huge))
	}
	d.Feed(good[20:], emit)
	if n != 5002 {
		t.Fatalf("the telegram split around the huge chunk was lost: %d readings", n)
	}
}
