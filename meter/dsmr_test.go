package meter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fixturesDir is the shared meter fixtures folder, read in place.
func fixturesDir(t testing.TB) string {
	t.Helper()
	shared := os.Getenv("COMMONS_SHARED")
	if shared == "" {
		shared = filepath.Join("..", "..", "shared")
	}
	dir := filepath.Join(shared, "fixtures", "meter")
	if _, err := os.Stat(filepath.Join(dir, "expected.json")); err != nil {
		t.Fatalf("meter fixtures not found (set COMMONS_SHARED): %v", err)
	}
	return dir
}

// expectation is one entry of expected.json; fields are kept raw so that
// "absent" and "null" stay distinct.
type expectation map[string]json.RawMessage

func (e expectation) has(k string) bool { _, ok := e[k]; return ok }

func (e expectation) isNull(k string) bool { return string(e[k]) == "null" }

func (e expectation) str(t *testing.T, k string) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(e[k], &s); err != nil {
		t.Fatalf("expected.json %s: %v", k, err)
	}
	return s
}

func (e expectation) num(t *testing.T, k string) json.Number {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(e[k]))
	d.UseNumber()
	var n json.Number
	if err := d.Decode(&n); err != nil {
		t.Fatalf("expected.json %s: %v", k, err)
	}
	return n
}

func (e expectation) obj(t *testing.T, k string) expectation {
	t.Helper()
	var o expectation
	if err := json.Unmarshal(e[k], &o); err != nil {
		t.Fatalf("expected.json %s: %v", k, err)
	}
	return o
}

func loadExpectations(t testing.TB) map[string]expectation {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(fixturesDir(t), "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Files map[string]expectation `json:"files"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Files
}

// dsmrFixtures lists every DSMR-text fixture: the dsmr folder (which holds
// the plaintext Luxembourg Smarty telegrams too).
func dsmrFixtures(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(fixturesDir(t), "dsmr", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no DSMR fixtures: %v", err)
	}
	sort.Strings(files)
	return files
}

// result is everything a decoder emitted for one input.
type result struct {
	readings []Reading
	offsets  []int64
	errs     []error
}

// decodeChunks feeds data in the given chunk sizes (cycled), then flushes.
func decodeChunks(data []byte, sizes func() int) (res result, feedOnly int) {
	d := NewDSMRDecoder(DecoderOptions{})
	emit := func(r Reading, err error) {
		if err != nil {
			res.errs = append(res.errs, err)
			return
		}
		res.readings = append(res.readings, r.Clone())
		res.offsets = append(res.offsets, d.FrameOffset())
	}
	for len(data) > 0 {
		n := min(sizes(), len(data))
		d.Feed(data[:n], emit)
		data = data[n:]
	}
	feedOnly = len(res.readings) + len(res.errs)
	d.Flush(emit)
	return res, feedOnly
}

func whole(n int) func() int { return func() int { return n } }

// summary renders a result for comparing runs with different chunkings.
func (r result) summary() string {
	var b strings.Builder
	for i, x := range r.readings {
		j, _ := json.Marshal(x)
		fmt.Fprintf(&b, "%d %s\n", r.offsets[i], j)
	}
	for _, e := range r.errs {
		fmt.Fprintf(&b, "error %v\n", e)
	}
	return b.String()
}

// milli converts an expected decimal number to thousandths without
// relying on the code under test.
func milli(t *testing.T, n json.Number) int64 {
	t.Helper()
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		t.Fatalf("number %q: %v", n, err)
	}
	return int64(math.Round(f * 1000))
}

func intOf(t *testing.T, n json.Number) int64 {
	t.Helper()
	v, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		t.Fatalf("integer %q: %v", n, err)
	}
	return v
}

// latin1 turns expected.json's header (bytes shown as Latin-1) back into bytes.
func latin1(s string) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		b = append(b, byte(r))
	}
	return string(b)
}

func checkOptional(t *testing.T, what string, got Optional, e expectation, k string) {
	t.Helper()
	if !e.has(k) {
		return
	}
	if e.isNull(k) {
		if got.OK {
			t.Errorf("%s: got %d, want no value", what, got.V)
		}
		return
	}
	want := intOf(t, e.num(t, k))
	if !got.OK || got.V != want {
		t.Errorf("%s: got %+v, want %d", what, got, want)
	}
}

func checkMilli(t *testing.T, what string, got Optional, e expectation, k string) {
	t.Helper()
	if !e.has(k) {
		if got.OK {
			t.Errorf("%s: got %d, want no value", what, got.V)
		}
		return
	}
	want := milli(t, e.num(t, k))
	if !got.OK || got.V != want {
		t.Errorf("%s: got %+v (thousandths), want %d", what, got, want)
	}
}

func checkTime(t *testing.T, what string, got time.Time, e expectation, k string) {
	t.Helper()
	if !e.has(k) {
		return
	}
	if e.isNull(k) {
		if !got.IsZero() && got.Location() != Floating {
			t.Errorf("%s: got %s, want none", what, got.Format(time.RFC3339))
		}
		return
	}
	want := e.str(t, k)
	if got.IsZero() || got.Location() == Floating || got.Format(time.RFC3339) != want {
		t.Errorf("%s: got %s (%v), want %s", what, got.Format(time.RFC3339), got.Location(), want)
	}
	if k == "timestamp" && e.has("timestamp_utc") {
		if u := got.UTC().Format(time.RFC3339); u != e.str(t, "timestamp_utc") {
			t.Errorf("%s UTC: got %s, want %s", what, u, e.str(t, "timestamp_utc"))
		}
	}
}

func checkRegisters(t *testing.T, what string, got Registers, e expectation, k string) {
	t.Helper()
	if !e.has(k) {
		return
	}
	if e.isNull(k) {
		if got.Present() {
			t.Errorf("%s: got %+v, want none", what, got)
		}
		return
	}
	o := e.obj(t, k)
	for _, f := range []struct {
		name string
		v    Optional
	}{{"total", got.Total}, {"tariff1", got.Tariff1}, {"tariff2", got.Tariff2}} {
		if !o.has(f.name) {
			if f.v.OK {
				t.Errorf("%s.%s: got %d, want absent", what, f.name, f.v.V)
			}
			continue
		}
		checkOptional(t, what+"."+f.name, f.v, o, f.name)
	}
}

func checkSubMeter(t *testing.T, what string, got *SubMeter, e expectation, k, valueKey string) {
	t.Helper()
	if !e.has(k) {
		return
	}
	if e.isNull(k) {
		if got != nil {
			t.Errorf("%s: got %+v, want none", what, *got)
		}
		return
	}
	if got == nil {
		t.Errorf("%s: got none, want %s", what, e[k])
		return
	}
	o := e.obj(t, k)
	if ch := intOf(t, o.num(t, "channel")); int64(got.Channel) != ch {
		t.Errorf("%s channel: got %d, want %d", what, got.Channel, ch)
	}
	dt, err := strconv.Atoi(o.str(t, "device_type"))
	if err != nil || got.DeviceType != dt {
		t.Errorf("%s device type: got %d, want %s", what, got.DeviceType, o["device_type"])
	}
	if want := milli(t, o.num(t, valueKey)); got.Milli != want {
		t.Errorf("%s value: got %d thousandths, want %d", what, got.Milli, want)
	}
	checkTime(t, what+" time", got.Time, o, "timestamp")
	if o.has("timestamp_local") && !o.isNull("timestamp_local") {
		want := o.str(t, "timestamp_local")
		if got.Time.Location() != Floating || got.Time.Format("2006-01-02T15:04:05") != want {
			t.Errorf("%s local time: got %s (%v), want %s", what, got.Time.Format("2006-01-02T15:04:05"), got.Time.Location(), want)
		}
	}
}

// checkReading compares every field expected.json gives for a reading.
func checkReading(t *testing.T, r Reading, e expectation) {
	t.Helper()
	if r.Protocol != "dsmr" {
		t.Errorf("protocol %q", r.Protocol)
	}
	checkTime(t, "time", r.Time, e, "timestamp")
	if e.has("timestamp_if_cet") { // the Irish file: the S/W flag read the Dutch way
		checkTime(t, "time (CET convention)", r.Time, expectation{"timestamp": e["timestamp_if_cet"]}, "timestamp")
	}
	if e.has("header") {
		if got, want := "/"+r.Header, latin1(e.str(t, "header")); got != want {
			t.Errorf("header: got %q, want %q", got, want)
		}
	}
	if e.has("p1_version") {
		want := ""
		if !e.isNull("p1_version") {
			want = e.str(t, "p1_version")
		}
		if r.Version != want {
			t.Errorf("version: got %q, want %q", r.Version, want)
		}
	}
	if e.has("crc_valid") {
		var want bool
		_ = json.Unmarshal(e["crc_valid"], &want)
		if r.ChecksumOK != want {
			t.Errorf("checksum ok: got %v, want %v", r.ChecksumOK, want)
		}
	}
	checkOptional(t, "power import", r.PowerImportW, e, "power_import_w")
	checkOptional(t, "power export", r.PowerExportW, e, "power_export_w")
	checkRegisters(t, "energy import", r.EnergyImport, e, "energy_import_wh")
	checkRegisters(t, "energy export", r.EnergyExport, e, "energy_export_wh")
	if e.has("tariff_indicator") {
		want := int64(0)
		if !e.isNull("tariff_indicator") {
			want = intOf(t, e.num(t, "tariff_indicator"))
		}
		if int64(r.Tariff) != want {
			t.Errorf("tariff: got %d, want %d", r.Tariff, want)
		}
	}
	if e.has("phase_count") {
		n := 0
		for _, p := range r.Phases {
			if p.Present() {
				n++
			}
		}
		if want := intOf(t, e.num(t, "phase_count")); int64(n) != want {
			t.Errorf("phase count: got %d, want %d", n, want)
		}
	}
	if e.has("phases") {
		ph := e.obj(t, "phases")
		for i, name := range []string{"L1", "L2", "L3"} {
			p := r.Phases[i]
			if !ph.has(name) {
				if p.Present() {
					t.Errorf("%s: got %+v, want no values", name, p)
				}
				continue
			}
			o := ph.obj(t, name)
			checkMilli(t, name+" voltage", p.VoltageMV, o, "voltage_v")
			checkMilli(t, name+" current", p.CurrentMA, o, "current_a")
			if o.has("power_import_w") {
				checkOptional(t, name+" power import", p.PowerImportW, o, "power_import_w")
			} else if p.PowerImportW.OK {
				t.Errorf("%s power import: got %d, want none", name, p.PowerImportW.V)
			}
			if o.has("power_export_w") {
				checkOptional(t, name+" power export", p.PowerExportW, o, "power_export_w")
			} else if p.PowerExportW.OK {
				t.Errorf("%s power export: got %d, want none", name, p.PowerExportW.V)
			}
		}
	}
	checkSubMeter(t, "gas", r.Gas, e, "gas", "m3")
	checkSubMeter(t, "water", r.Water, e, "water", "m3")
	checkSubMeter(t, "heat", r.Heat, e, "heat", "gj")
	if e.has("gas_m3") {
		if e.isNull("gas_m3") != (r.Gas == nil) {
			t.Errorf("gas_m3 %s but gas %+v", e["gas_m3"], r.Gas)
		}
	}
}

// TestDSMRFixtures decodes every DSMR-text fixture whole, byte by byte and
// in random chunks, and checks the result against expected.json.
func TestDSMRFixtures(t *testing.T) {
	exp := loadExpectations(t)
	dir := fixturesDir(t)
	for _, path := range dsmrFixtures(t) {
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			e, ok := exp[rel]
			if !ok {
				t.Fatalf("%s is not in expected.json", rel)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			res, feedOnly := decodeChunks(data, whole(len(data)))
			checkResult(t, e, res, feedOnly)

			want := res.summary()
			rng := rand.New(rand.NewPCG(1, uint64(len(data))))
			chunkings := map[string]func() int{
				"1-byte":  whole(1),
				"2-byte":  whole(2),
				"random":  func() int { return 1 + rng.IntN(64) },
				"random2": func() int { return 1 + rng.IntN(700) },
			}
			for name, sizes := range chunkings {
				got, _ := decodeChunks(data, sizes)
				if s := got.summary(); s != want {
					t.Errorf("%s chunks differ from one chunk:\n got: %s\nwant: %s", name, s, want)
				}
			}
		})
	}
}

func checkResult(t *testing.T, e expectation, res result, feedOnly int) {
	t.Helper()
	var expect string
	_ = json.Unmarshal(e["expect"], &expect)
	offset := int64(0)
	if e.has("offset") {
		offset = intOf(t, e.num(t, "offset"))
	}
	switch expect {
	case "valid", "no_crc_ok":
		if len(res.readings) != 1 || len(res.errs) != 0 {
			t.Fatalf("want exactly one reading and no error, got %d readings, errors %v", len(res.readings), res.errs)
		}
		if res.offsets[0] != offset {
			t.Errorf("offset: got %d, want %d", res.offsets[0], offset)
		}
		checkReading(t, res.readings[0], e)
	case "valid_after_resync":
		if len(res.readings) != 1 {
			t.Fatalf("want exactly one reading, got %d (errors %v)", len(res.readings), res.errs)
		}
		if res.offsets[0] != offset {
			t.Errorf("offset: got %d, want %d", res.offsets[0], offset)
		}
		checkReading(t, res.readings[0], e)
	case "stream":
		want := intOf(t, e.num(t, "count"))
		if int64(len(res.readings)) != want {
			t.Fatalf("want %d readings, got %d (errors %v)", want, len(res.readings), res.errs)
		}
		last := len(res.readings) - 1
		if res.offsets[last] != offset {
			t.Errorf("offset of the last: got %d, want %d", res.offsets[last], offset)
		}
		checkReading(t, res.readings[last], e)
	case "reject_crc":
		if len(res.readings) != 0 {
			t.Fatalf("want no reading, got %d", len(res.readings))
		}
		if len(res.errs) != 1 {
			t.Fatalf("want one error, got %v", res.errs)
		}
		var te *TelegramError
		if !errors.As(res.errs[0], &te) {
			t.Fatalf("error %v is not a *TelegramError", res.errs[0])
		}
		if e.isNull("crc") {
			if !errors.Is(te, ErrNoChecksum) {
				t.Errorf("want ErrNoChecksum, got %v", te)
			}
			break
		}
		if !errors.Is(te, ErrChecksum) {
			t.Fatalf("want ErrChecksum, got %v", te)
		}
		sent, _ := strconv.ParseUint(e.str(t, "crc"), 16, 16)
		computed, _ := strconv.ParseUint(e.str(t, "crc_computed"), 16, 16)
		if te.Sent != uint16(sent) || te.Computed != uint16(computed) {
			t.Errorf("crc: got sent %04X computed %04X, want %s %s", te.Sent, te.Computed, e.str(t, "crc"), e.str(t, "crc_computed"))
		}
		msg := te.Error()
		for _, part := range []string{"telegram " + strings.ReplaceAll(latin1(e.str(t, "header")), "\\", "\\"), "CRC mismatch",
			"sent " + e.str(t, "crc"), "computed " + e.str(t, "crc_computed")} {
			if !strings.Contains(msg, part) {
				t.Errorf("message %q lacks %q", msg, part)
			}
		}
	case "incomplete":
		if feedOnly != 0 {
			t.Fatalf("Feed emitted %d results for an incomplete telegram", feedOnly)
		}
		if len(res.readings) != 0 || len(res.errs) != 1 || !errors.Is(res.errs[0], ErrTruncated) {
			t.Fatalf("Flush: want one ErrTruncated, got %d readings, errors %v", len(res.readings), res.errs)
		}
	default:
		t.Fatalf("unknown expectation %q", expect)
	}
}
