package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/commons-energy/commons/share"
)

// TestBuildVersion: values set with -ldflags -X win; without them the
// toolchain's build information fills in; with neither, "devel" and
// "unknown".
func TestBuildVersion(t *testing.T) {
	rev := "0123456789abcdef0123456789abcdef01234567"
	vcs := func(modified string) *debug.BuildInfo {
		return &debug.BuildInfo{
			GoVersion: "go1.26.8",
			Main:      debug.Module{Path: "github.com/commons-energy/commons", Version: "(devel)"},
			Settings:  []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}},
		}
	}
	tests := []struct {
		name                   string
		ldVersion, ldCommit    string
		bi                     *debug.BuildInfo
		version, commit, goVer string
	}{
		{"ldflags win", "1.2.0", "feedbeef", vcs("true"), "1.2.0", "feedbeef", "go1.26.8"},
		{"vcs clean", "", "", vcs("false"), "devel", rev, "go1.26.8"},
		{"vcs dirty", "", "", vcs("true"), "devel", rev + "-dirty", "go1.26.8"},
		{"go install @version", "", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.3.0"}}, "v1.3.0", "unknown", "go1.26.8"},
		{"no build info", "", "", nil, "devel", "unknown", runtime.Version()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := buildVersion(tt.ldVersion, tt.ldCommit, tt.bi)
			want := versionInfo{Version: tt.version, Commit: tt.commit, Go: tt.goVer, Protocol: share.ProtocolVersion}
			if got != want {
				t.Errorf("buildVersion = %+v, want %+v", got, want)
			}
		})
	}
}

// TestVersionCLI builds the binary with a version and commit embedded the
// way release.sh does and checks `commons --version`, `commons version`
// and `commons version --json`.
func TestVersionCLI(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "commons")
	const ver, com = "9.8.7-test", "abcdef0123456789abcdef0123456789abcdef01"
	build := exec.Command("go", "build", "-ldflags", "-X main.version="+ver+" -X main.commit="+com, "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	c := newCLI(t, bin)
	line := "commons " + ver + " (commit " + com + ", " + runtime.Version() + ", protocol 2)\n"
	if share.ProtocolVersion != 2 {
		t.Fatalf("share.ProtocolVersion = %d: update this test's expected line", share.ProtocolVersion)
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		if out := c.ok(args...); out != line {
			t.Errorf("commons %s = %q, want %q", strings.Join(args, " "), out, line)
		}
	}
	out := c.ok("version", "--json")
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("version --json: %q: %v", out, err)
	}
	want := map[string]any{"version": ver, "commit": com, "go": runtime.Version(), "protocol": float64(share.ProtocolVersion)}
	if len(v) != len(want) {
		t.Errorf("version --json = %v, want keys %v", v, want)
	}
	for k, w := range want {
		if v[k] != w {
			t.Errorf("version --json %s = %v, want %v", k, v[k], w)
		}
	}
	if r := c.run("", "version", "extra"); r.code != exitUsage || strings.Count(strings.TrimSpace(r.stderr), "\n") > 1 {
		t.Errorf("version extra: exit %d, stderr %q; want exit %d and a short message", r.code, r.stderr, exitUsage)
	}
}
