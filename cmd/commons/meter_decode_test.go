package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sharedFixtures is the shared meter fixtures folder, read in place.
func sharedFixtures(t *testing.T) string {
	t.Helper()
	shared := os.Getenv("COMMONS_SHARED")
	if shared == "" {
		shared = filepath.Join("..", "..", "..", "shared")
	}
	dir := filepath.Join(shared, "fixtures", "meter")
	if _, err := os.Stat(filepath.Join(dir, "expected.json")); err != nil {
		t.Fatalf("meter fixtures not found (set COMMONS_SHARED): %v", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// TestMeterDecodeCLI builds the real binary and runs `commons meter decode`
// on good fixtures and on every kind of bad input, checking exit codes,
// output and that a failure says one line on stderr without a panic.
func TestMeterDecodeCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	fx := sharedFixtures(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "commons")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	binary := make([]byte, 4096)
	for i := range binary {
		binary[i] = byte(i*131 + i>>3) // deterministic, every byte value, no '/'
		if binary[i] == '/' {
			binary[i] = 0xFE
		}
	}
	garbage := write("garbage.txt", []byte("this is not a meter capture\nat all\n"))
	binFile := write("random.bin", binary)
	empty := write("empty.txt", nil)
	sub := filepath.Join(dir, "captures")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	dsmr := func(name string) string { return filepath.Join(fx, "dsmr", name) }

	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   []string // substrings stdout must hold
		stderr   string   // substring of the one stderr line; "" = stderr must be empty
		jsonRows int      // with --json: number of lines that must parse as readings
		stdin    string   // fixture fed on standard input
	}{
		{name: "stdin", args: []string{"--json", "-"}, stdin: "v42_kaifa_ma105_dsmrparser.txt", code: 0, jsonRows: 1,
			stdout: []string{`"version":"42"`, `"power_import_w":2027`, `"m3":981.443`}},
		{name: "valid json", args: []string{"--json", dsmr("v50_iskra_am550_two_mbus.txt")}, code: 0, jsonRows: 1,
			stdout: []string{`"power_import_w":111`, `"energy_import_wh":{"total":2375582,"tariff1":2130115,"tariff2":245467}`, `"gas":{"channel":2,"device_type":3,"m3":246.138,"unit":"m3","time":"2020-04-26T22:30:01+02:00"}`}},
		{name: "valid text", args: []string{dsmr("v50_iskra_am550_two_mbus.txt")}, code: 0,
			stdout: []string{"checksum ok", "import 111 W", "2375.582 kWh", "246.138 m3"}},
		{name: "dsmr 2.2 at EOF without CRLF", args: []string{"--json", dsmr("v22_iskra_mt382_1003_dsmrreader.txt")}, code: 0, jsonRows: 1,
			stdout: []string{`"time":null`, `"time_local":"2016-04-10T13:00:00"`, `"checksum_ok":false`}},
		{name: "stream of ten", args: []string{"--json", "--protocol", "dsmr", dsmr("stream_v50_iskra_am550_capture_10s.txt")}, code: 0, jsonRows: 10},
		{name: "resync keeps good, reports the cut one", args: []string{"--json", dsmr("stream_interrupted_then_full_iskra_am550.txt")}, code: 0, jsonRows: 1,
			stderr: "1 telegram decoded, 1 rejected"},
		{name: "auto says what it found", args: []string{filepath.Join(fx, "sml", "easymeter_q3a_frame.bin")}, code: 0,
			stdout: []string{"detected sml", "import 810 W"}},
		{name: "wrong CRC", args: []string{dsmr("v42_kaifa_bad_crc_abcd.txt")}, code: 4, stderr: "CRC mismatch: sent ABCD, computed 4BC6"},
		{name: "LF only", args: []string{dsmr("derived_lf_only.txt")}, code: 4, stderr: "LF only"},
		{name: "truncated", args: []string{dsmr("derived_truncated_midline.txt")}, code: 4, stderr: "truncated"},
		{name: "CRC removed on v5", args: []string{dsmr("derived_crc_removed_v50.txt")}, code: 4, stderr: "CRC missing"},
		{name: "garbage", args: []string{garbage}, code: 4, stderr: "no telegram start found"},
		{name: "binary", args: []string{binFile}, code: 4, stderr: "binary data"},
		{name: "empty", args: []string{empty}, code: 4, stderr: "empty file"},
		{name: "directory", args: []string{sub}, code: 2, stderr: "is a directory"},
		{name: "missing", args: []string{filepath.Join(dir, "nope.txt")}, code: 3, stderr: "no such file"},
		{name: "unknown protocol", args: []string{"--protocol", "zigbee", garbage}, code: 2, stderr: "unknown --protocol"},
		{name: "bad key", args: []string{"--key", "abc", garbage}, code: 2, stderr: "--key must be 32 hex digits"},
		{name: "no file", args: nil, code: 2, stderr: "arg"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, append([]string{"meter", "decode"}, tc.args...)...)
			cmd.Env = append(os.Environ(), "COMMONS_HOME="+filepath.Join(dir, "home"))
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if tc.stdin != "" {
				f, err := os.Open(dsmr(tc.stdin))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				cmd.Stdin = f
			}
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code {
				t.Errorf("exit code %d, want %d\nstderr: %s", code, tc.code, stderr.String())
			}
			se := stderr.String()
			if strings.Contains(se, "panic") || strings.Contains(se, "goroutine ") {
				t.Fatalf("stderr shows a crash:\n%s", se)
			}
			if tc.stderr == "" {
				if se != "" {
					t.Errorf("unexpected stderr: %q", se)
				}
			} else {
				lines := strings.Split(strings.TrimRight(se, "\n"), "\n")
				if tc.code == exitUsage && len(lines) == 2 && strings.HasPrefix(lines[1], "Run 'commons --help'") {
					lines = lines[:1] // cobra's own usage errors add the help hint
				}
				if len(lines) != 1 || !strings.Contains(lines[0], tc.stderr) {
					t.Errorf("stderr: want one line containing %q, got %q", tc.stderr, se)
				}
			}
			out := stdout.String()
			for _, s := range tc.stdout {
				if !strings.Contains(out, s) {
					t.Errorf("stdout lacks %q:\n%s", s, out)
				}
			}
			if tc.jsonRows > 0 {
				rows := strings.Split(strings.TrimRight(out, "\n"), "\n")
				if len(rows) != tc.jsonRows {
					t.Fatalf("want %d JSON lines, got %d:\n%s", tc.jsonRows, len(rows), out)
				}
				for _, row := range rows {
					var m map[string]any
					if err := json.Unmarshal([]byte(row), &m); err != nil {
						t.Fatalf("line is not JSON: %v\n%s", err, row)
					}
					for _, k := range []string{"time", "protocol", "version", "meter_id", "power_import_w", "power_export_w",
						"energy_import_wh", "energy_export_wh", "tariff", "phases", "gas", "checksum_ok"} {
						if _, ok := m[k]; !ok {
							t.Errorf("JSON lacks key %q: %s", k, row)
						}
					}
				}
			}
			if tc.code != 0 && tc.jsonRows == 0 && out != "" {
				t.Errorf("failed decode wrote to stdout: %q", out)
			}
		})
	}
}
