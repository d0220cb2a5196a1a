package ledger

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/commons-energy/commons/share"
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

// TestWALStaysSmall checks that the -wal file does not keep the size of
// its busiest moment: after many writes and a checkpoint the next write
// truncates it to at most walSizeLimit (SQLite's default keeps it, ~4 MB
// and more, for ever).
func TestWALStaysSmall(t *testing.T) {
	alice := newHousehold(t, 1)
	l, path := openTest(t, alice.ID())
	ctx := context.Background()
	for range 50 {
		msgs := make([]*share.Message, 20)
		for j := range msgs {
			msgs[j] = alice.next(t, announce(strings.Repeat("A", 60)))
		}
		mustAppend(t, l, msgs...)
	}
	// Hold a reader open across many writes so no checkpoint can reset the
	// WAL meanwhile: it grows past the limit as on a busy box.
	reader, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	tx, err := reader.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow("SELECT count(*) FROM messages").Scan(&n); err != nil {
		t.Fatal(err)
	}
	for range 400 {
		mustAppend(t, l, alice.next(t, announce(strings.Repeat("B", 60))))
	}
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() <= walSizeLimit {
		t.Fatalf("test setup: WAL only grew to %d bytes, want more than %d", fi.Size(), walSizeLimit)
	}
	tx.Rollback()
	if _, err := l.db.Exec("PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, alice.next(t, announce("after the checkpoint")))
	fi, err = os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > walSizeLimit {
		t.Errorf("-wal is %d bytes after a checkpoint, want at most %d", fi.Size(), walSizeLimit)
	}
}
