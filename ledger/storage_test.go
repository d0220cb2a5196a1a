package ledger

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFileModesPrivate checks that the ledger and its -wal and -shm files
// are readable by the owner only whatever the umask, for new files and for
// a home created by an older version with 0644 files.
func TestFileModesPrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
	for _, tc := range []struct {
		name     string
		existing bool // the files exist with mode 0644 before Open
	}{
		{"new home", false},
		{"existing home", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			alice := newHousehold(t, 1)
			path := filepath.Join(t.TempDir(), FileName)
			if tc.existing {
				l, err := Open(context.Background(), path, Options{Self: alice.ID(), Manifest: testManifest, Now: func() time.Time { return t0.Add(time.Hour) }})
				if err != nil {
					t.Fatal(err)
				}
				mustAppend(t, l, alice.next(t, announce("Alice")))
				l.Close()
				for _, p := range []string{path, path + "-wal", path + "-shm"} {
					os.WriteFile(p, nil, 0o644) // creates the ones Close removed
					if err := os.Chmod(p, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			var logs bytes.Buffer
			l, err := Open(context.Background(), path, Options{Self: alice.ID(), Manifest: testManifest,
				Now: func() time.Time { return t0.Add(time.Hour) }, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			for range 3 {
				mustAppend(t, l, alice.next(t, announce("Alice")))
			}
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if m := fi.Mode().Perm(); m != 0o600 {
					t.Errorf("%s: mode %o, want 600", filepath.Base(p), m)
				}
			}
			if tc.existing && !strings.Contains(logs.String(), "0600") {
				t.Errorf("no log line about the permission fix; logs:\n%s", logs.String())
			}
		})
	}
}
