package main

import (
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/commons-energy/commons/share/demo"
)

// `commons demo --headless` as a real process: five households, each a
// real runtime reading a simulated meter over a real pseudo-terminal,
// linked over TLS on loopback, pledge for a few seconds of an accelerated
// clock that starts on a fixed summer morning (so the result never
// depends on the date), and the one JSON object says the street
// converged.
func TestDemoHeadlessJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a street of five households")
	}
	c := newCLI(t, buildCommons(t, t.TempDir()))
	r := c.run("", "demo", "--headless", "--neighbours", "5", "--duration", "5s", "--speed", "120",
		"--start", "2026-06-21T11:00", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if strings.Count(strings.TrimSpace(r.stdout), "\n") != 0 {
		t.Fatalf("stdout is not one JSON line: %q", r.stdout)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, r.stdout)
	}
	num := func(key string) float64 {
		t.Helper()
		v, ok := raw[key].(float64)
		if !ok {
			t.Fatalf("%q = %#v; want a number\n%s", key, raw[key], r.stdout)
		}
		return v
	}
	if n := num("households"); n != 5 {
		t.Errorf("households = %v; want 5", n)
	}
	if n := num("messages"); n <= 0 || n != float64(int64(n)) {
		t.Errorf("messages = %v; want a positive integer", n)
	}
	if conv, ok := raw["converged"].(bool); !ok || !conv {
		t.Errorf("converged = %#v; want true\n%s", raw["converged"], r.stdout)
	}
	if rss := num("rss_mb"); rss <= 0 {
		t.Errorf("rss_mb = %v; want the peak RSS", rss)
	}
	lat, ok := raw["latency_ms"].(map[string]any)
	if !ok {
		t.Fatalf("latency_ms = %#v; want an object", raw["latency_ms"])
	}
	p50, ok50 := lat["p50"].(float64)
	p99, ok99 := lat["p99"].(float64)
	if !ok50 || !ok99 || p50 < 0 || p50 > p99 {
		t.Errorf("latency_ms = %v; want numbers with p50 <= p99", lat)
	}
	if raw["meters"] != "pty" || raw["transport"] != "direct" || num("links") != 4 {
		t.Errorf("meters, transport, links = %v, %v, %v; want pty, direct, 4 (a full mesh)", raw["meters"], raw["transport"], raw["links"])
	}
}

// Bad input is refused before anything starts: one line on stderr,
// nothing on stdout, exit 2 (usage).
func TestDemoHeadlessBadInput(t *testing.T) {
	bin := buildCommons(t, t.TempDir())
	c := newCLI(t, bin)
	hl := func(extra ...string) []string {
		return append([]string{"demo", "--headless", "--json"}, extra...)
	}
	cases := []struct {
		name string
		args []string
		// ulimit, when not "", runs commons under `ulimit -n` of it
		// (soft and hard), so the open-file check is the same on every
		// machine.
		ulimit string
		want   string
	}{
		{name: "one household", args: hl("--neighbours", "1", "--duration", "5s"), want: "2 to"},
		{name: "no household", args: hl("--neighbours", "0", "--duration", "5s"), want: "2 to"},
		{name: "negative households", args: hl("--neighbours", "-3", "--duration", "5s"), want: "2 to"},
		{name: "no duration", args: hl("--neighbours", "5"), want: "--duration"},
		{name: "duration not a duration", args: hl("--neighbours", "5", "--duration", "soon"), want: "not a duration"},
		{name: "duration without unit", args: hl("--neighbours", "5", "--duration", "30"), want: "not a duration"},
		{name: "zero duration", args: hl("--neighbours", "5", "--duration", "0s"), want: "not positive"},
		{name: "negative duration", args: hl("--neighbours", "5", "--duration", "-1m"), want: "not positive"},
		{name: "slow clock", args: hl("--neighbours", "5", "--duration", "5s", "--speed", "0.5"), want: "--speed"},
		{name: "negative links", args: hl("--neighbours", "5", "--duration", "5s", "--links", "-1"), want: "--links"},
		{name: "bad start", args: hl("--neighbours", "5", "--duration", "5s", "--start", "soon"), want: "YYYY-MM-DD"},
		{name: "more households than open files", args: hl("--neighbours", "100", "--duration", "5s"), ulimit: "256", want: "RLIMIT_NOFILE"},
		{name: "json without headless", args: []string{"demo", "--json"}, want: "--headless"},
		{name: "duration without headless", args: []string{"demo", "--duration", "5s"}, want: "--headless"},
		{name: "relay not a hub address", args: hl("--neighbours", "5", "--duration", "5s", "--relay", "http://hub:80"), want: "--relay"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r result
			if tc.ulimit != "" {
				sh, err := exec.LookPath("sh")
				if err != nil {
					t.Skip("no sh to set ulimit")
				}
				ul := &cli{tb: t, bin: sh, env: c.env}
				r = ul.run("", append([]string{"-c", `ulimit -n "$0" && exec "$@"`, tc.ulimit, bin}, tc.args...)...)
			} else {
				r = c.run("", tc.args...)
			}
			if r.code != exitUsage {
				t.Fatalf("exit %d; want %d\nstdout: %s\nstderr: %s", r.code, exitUsage, r.stdout, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q; want nothing", r.stdout)
			}
			if lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n"); len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
				t.Errorf("stderr = %q; want one line with %q", r.stderr, tc.want)
			}
		})
	}
}

func TestHeadlessExit(t *testing.T) {
	for _, tc := range []struct {
		name string
		res  demo.HeadlessResult
		code int
	}{
		{"converged", demo.HeadlessResult{Converged: true, Deliveries: 10}, exitOK},
		{"converged, some pledges unsettled", demo.HeadlessResult{Converged: true, Unsettled: 2}, exitOK},
		{"messages missing", demo.HeadlessResult{Missing: 3, Deliveries: 10}, exitTimeout},
		{"settlements disagree", demo.HeadlessResult{Disagreements: 1}, exitIntegrity},
		{"both", demo.HeadlessResult{Missing: 1, Disagreements: 1}, exitIntegrity},
	} {
		err := headlessExit(&tc.res)
		code := exitOK
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		} else if err != nil {
			code = -1
		}
		if code != tc.code {
			t.Errorf("%s: %v (exit %d); want exit %d", tc.name, err, code, tc.code)
		}
	}
}
