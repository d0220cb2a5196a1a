package meter

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Helpers shared by the SML, IEC 62056-21, Modbus, Smarty and detection
// tests: they read the shared fixtures in place (never copied).

func fxDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join("..", "..", "shared")
	if env := os.Getenv("COMMONS_SHARED"); env != "" {
		dir = env
	}
	dir = filepath.Join(dir, "fixtures", "meter")
	if _, err := os.Stat(filepath.Join(dir, "expected.json")); err != nil {
		t.Fatalf("fixtures not found at %s (set COMMONS_SHARED): %v", dir, err)
	}
	return dir
}

// fxEntry is one expectation of expected.json, the fields these tests use.
type fxEntry struct {
	Protocol      string                     `json:"protocol"`
	Expect        string                     `json:"expect"`
	Count         int                        `json:"count"`
	CRC           *string                    `json:"crc"`
	CRCComputed   *string                    `json:"crc_computed"`
	Offset        int                        `json:"offset"`
	Header        *string                    `json:"header"`
	PowerImportW  *int64                     `json:"power_import_w"`
	PowerExportW  *int64                     `json:"power_export_w"`
	PowerAbsW     *int64                     `json:"power_abs_w"`
	EnergyImport  map[string]int64           `json:"energy_import_wh"`
	EnergyExport  map[string]int64           `json:"energy_export_wh"`
	PhaseCount    *int                       `json:"phase_count"`
	Phases        map[string]fxPhase         `json:"phases"`
	Registers     map[string]fxRegister      `json:"registers"`
	Values        map[string]any             `json:"values"`
	KeyHex        string                     `json:"key_hex"`
	Timestamp     *string                    `json:"timestamp"`
	P1Version     *string                    `json:"p1_version"`
	DZGWorkaround map[string]json.RawMessage `json:"dzg_workaround"`
	FrameHex      string                     `json:"frame_hex"`
	raw           map[string]json.RawMessage
}

type fxPhase struct {
	PowerImportW *int64   `json:"power_import_w"`
	PowerExportW *int64   `json:"power_export_w"`
	VoltageV     *float64 `json:"voltage_v"`
	CurrentA     *float64 `json:"current_a"`
}

type fxRegister struct {
	Raw    *int64  `json:"raw"`
	Scaler *int    `json:"scaler"`
	Unit   *string `json:"unit"`
	Value  string  `json:"value"`
}

// fxLoad returns the expectations of every fixture in folder (e.g. "sml"),
// sorted by path.
func fxLoad(t testing.TB, folder string) (dir string, names []string, m map[string]*fxEntry) {
	t.Helper()
	dir = fxDir(t)
	b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Files map[string]json.RawMessage `json:"files"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	m = make(map[string]*fxEntry)
	for name, raw := range doc.Files {
		if !strings.HasPrefix(name, folder+"/") {
			continue
		}
		var e fxEntry
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_ = json.Unmarshal(raw, &e.raw)
		m[name] = &e
		names = append(names, name)
	}
	sort.Strings(names)
	// Every file in the folder must have an expectation, and vice versa.
	files, err := os.ReadDir(filepath.Join(dir, folder))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(names) {
		t.Fatalf("%s: %d files but %d expectations", folder, len(files), len(names))
	}
	return dir, names, m
}

// fxHas reports whether the entry has key at all (null counts as present).
func (e *fxEntry) fxHas(key string) bool { _, ok := e.raw[key]; return ok }

// fxCheckOpt compares an Optional with an expected nullable integer,
// allowing tol for values the fixtures document as rounded.
func fxCheckOpt(t *testing.T, what string, got Optional, want *int64, tol int64) {
	t.Helper()
	if want == nil {
		if got.OK {
			t.Errorf("%s = %d, want absent", what, got.V)
		}
		return
	}
	if !got.OK {
		t.Errorf("%s absent, want %d", what, *want)
		return
	}
	if d := got.V - *want; d > tol || d < -tol {
		t.Errorf("%s = %d, want %d", what, got.V, *want)
	}
}

// fxCheckEnergy compares Registers with an expected {total,tariff1,tariff2}
// object (nil = no register of that direction).
func fxCheckEnergy(t *testing.T, what string, got Registers, want map[string]int64, tol int64) {
	t.Helper()
	if want == nil {
		if got.Present() {
			t.Errorf("%s = %+v, want none", what, got)
		}
		return
	}
	for key, opt := range map[string]Optional{"total": got.Total, "tariff1": got.Tariff1, "tariff2": got.Tariff2} {
		w, ok := want[key]
		if !ok {
			if opt.OK {
				t.Errorf("%s.%s = %d, want absent", what, key, opt.V)
			}
			continue
		}
		fxCheckOpt(t, what+"."+key, opt, &w, tol)
	}
}

// fxCheckReading compares the fields a reading shares with expected.json.
func fxCheckReading(t *testing.T, r Reading, e *fxEntry) {
	t.Helper()
	const tol = 1 // fixtures round non-integer values; see conventions.rounding
	if e.fxHas("power_import_w") {
		fxCheckOpt(t, "power import", r.PowerImportW, e.PowerImportW, tol)
	}
	if e.fxHas("power_export_w") {
		fxCheckOpt(t, "power export", r.PowerExportW, e.PowerExportW, tol)
	}
	if e.fxHas("power_abs_w") || e.Protocol == "sml" {
		fxCheckOpt(t, "power abs", r.PowerAbsW, e.PowerAbsW, tol)
	}
	if e.fxHas("energy_import_wh") {
		fxCheckEnergy(t, "energy import", r.EnergyImport, e.EnergyImport, tol)
	}
	if e.fxHas("energy_export_wh") {
		fxCheckEnergy(t, "energy export", r.EnergyExport, e.EnergyExport, tol)
	}
	if e.PhaseCount != nil {
		n := 0
		for _, p := range r.Phases {
			if p.Present() {
				n++
			}
		}
		if n != *e.PhaseCount {
			t.Errorf("phase count = %d, want %d", n, *e.PhaseCount)
		}
	}
	for name, wp := range e.Phases {
		i := int(name[1] - '1')
		p := r.Phases[i]
		if wp.PowerImportW != nil || p.PowerImportW.OK {
			fxCheckOpt(t, name+" power import", p.PowerImportW, wp.PowerImportW, tol)
		}
		if wp.PowerExportW != nil || p.PowerExportW.OK {
			fxCheckOpt(t, name+" power export", p.PowerExportW, wp.PowerExportW, tol)
		}
		if wp.VoltageV != nil {
			want := int64(*wp.VoltageV*1000 + 0.5)
			fxCheckOpt(t, name+" voltage mV", p.VoltageMV, &want, 0)
		}
		if wp.CurrentA != nil {
			want := int64(*wp.CurrentA*1000 + 0.5)
			fxCheckOpt(t, name+" current mA", p.CurrentMA, &want, 0)
		}
	}
	if e.Registers != nil {
		got := make(map[string]Register)
		for _, reg := range r.Registers {
			got[reg.ID] = reg
		}
		for id, w := range e.Registers {
			g, ok := got[id]
			if !ok {
				t.Errorf("register %s missing", id)
				continue
			}
			if g.Value != w.Value {
				t.Errorf("register %s = %s, want %s", id, g.Value, w.Value)
			}
			wantUnit := ""
			if w.Unit != nil {
				wantUnit = *w.Unit
			}
			if g.Unit != wantUnit {
				t.Errorf("register %s unit = %q, want %q", id, g.Unit, wantUnit)
			}
			if w.Raw != nil && (g.Raw != *w.Raw || g.Scaler != *w.Scaler) {
				t.Errorf("register %s raw %d e%d, want %d e%d", id, g.Raw, g.Scaler, *w.Raw, *w.Scaler)
			}
		}
		if len(got) != len(e.Registers) {
			var extra []string
			for id := range got {
				if _, ok := e.Registers[id]; !ok {
					extra = append(extra, id)
				}
			}
			t.Errorf("registers: got %d, want %d; extra %v", len(got), len(e.Registers), extra)
		}
	}
}

// fxFeed feeds the whole input to d in chunks of size n (0 = at once),
// flushes it when it can, and collects what it emits.
func fxFeed(d Decoder, data []byte, n int) (rs []Reading, errs []error) {
	emit := func(r Reading, err error) {
		if err != nil {
			errs = append(errs, err)
			return
		}
		rs = append(rs, r)
	}
	if n <= 0 {
		n = len(data) + 1
	}
	for len(data) > 0 {
		k := min(n, len(data))
		d.Feed(data[:k], emit)
		data = data[k:]
	}
	if f, ok := d.(Flusher); ok {
		f.Flush(emit)
	}
	return rs, errs
}
