package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/commons-energy/commons/share"
)

// version and commit are set at build time by release.sh:
//
//	go build -ldflags "-X main.version=1.2.0 -X main.commit=$(git rev-parse HEAD)" ./cmd/commons
//
// Left empty, they fall back to what the Go toolchain recorded in the
// binary (see buildVersion).
var (
	version string
	commit  string
)

// versionInfo is what `commons --version` and `commons version --json`
// report. The JSON keys are part of the command-line contract.
type versionInfo struct {
	Version  string `json:"version"`
	Commit   string `json:"commit"`
	Go       string `json:"go"`
	Protocol int    `json:"protocol"`
}

// String is the one line `commons --version` prints.
func (v versionInfo) String() string {
	return fmt.Sprintf("commons %s (commit %s, %s, protocol %d)", v.Version, v.Commit, v.Go, v.Protocol)
}

// currentVersion reports this binary's version.
func currentVersion() versionInfo {
	bi, _ := debug.ReadBuildInfo()
	return buildVersion(version, commit, bi)
}

// buildVersion combines the values set with -ldflags -X (ldVersion,
// ldCommit) with the build information the toolchain embeds (bi, nil when
// there is none). A version set at link time wins; otherwise the main
// module's version is used when it is a real one (go install ...@v1.2.0)
// and "devel" when it is not. A commit set at link time wins; otherwise
// the VCS revision recorded by go build, with "-dirty" when the work tree
// had local changes, and "unknown" when none was recorded.
func buildVersion(ldVersion, ldCommit string, bi *debug.BuildInfo) versionInfo {
	v := versionInfo{Version: ldVersion, Commit: ldCommit, Go: runtime.Version(), Protocol: share.ProtocolVersion}
	if bi != nil {
		if bi.GoVersion != "" {
			v.Go = bi.GoVersion
		}
		if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		if v.Commit == "" {
			var rev string
			var dirty bool
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					dirty = s.Value == "true"
				}
			}
			if rev != "" && dirty {
				rev += "-dirty"
			}
			v.Commit = rev
		}
	}
	if v.Version == "" {
		v.Version = "devel"
	}
	if v.Commit == "" {
		v.Commit = "unknown"
	}
	return v
}

// newVersionCmd is `commons version [--json]`; `commons --version` prints
// the same line through cobra's version flag.
func newVersionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version [--json]",
		Short: "Print the version, commit, Go version and protocol version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := currentVersion()
			if !asJSON {
				_, err := fmt.Fprintln(cmd.OutOrStdout(), v)
				return err
			}
			b, err := json.Marshal(v)
			if err != nil {
				return fmt.Errorf("encode version: %w", err)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object: version, commit, go, protocol")
	return cmd
}
