// Package assets holds the defaults compiled into the commons binary with
// the go:embed directive: the simulated households' profiles, and later the default
// configuration, themes, the systemd unit and shell completions.
package assets

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

//go:embed profiles/*.json
var profiles embed.FS

// Profiles returns the simulated household profiles, one NAME.json file
// each at the root of the returned file system.
func Profiles() fs.FS {
	sub, err := fs.Sub(profiles, "profiles")
	if err != nil {
		// fs.Sub only fails on an invalid path, and "profiles" is valid.
		panic(err)
	}
	return sub
}

// ProfileNames returns the names of the embedded profiles, sorted.
func ProfileNames() []string {
	entries, _ := fs.ReadDir(profiles, "profiles")
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// Profile returns the JSON text of the named profile.
func Profile(name string) ([]byte, error) {
	if name == "" || strings.ContainsAny(name, "/\\.") {
		return nil, fmt.Errorf("unknown profile %q (known: %s)", name, strings.Join(ProfileNames(), ", "))
	}
	b, err := profiles.ReadFile(path.Join("profiles", name+".json"))
	if err != nil {
		return nil, fmt.Errorf("unknown profile %q (known: %s)", name, strings.Join(ProfileNames(), ", "))
	}
	return b, nil
}
