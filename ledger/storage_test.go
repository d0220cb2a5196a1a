package ledger

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
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

// unknownKind is a chained kind this version does not know: valid by the
// protocol, stored as opaque bytes.
const unknownKind share.Kind = 99

// bulky is an unknown-kind content of about size bytes.
func bulky(size int) share.Content {
	return &share.Unknown{K: unknownKind, Raw: []byte(`{"x":"` + strings.Repeat("x", size-8) + `"}`)}
}

func openQuota(t *testing.T, self share.HouseholdID, q Quota) *Ledger {
	t.Helper()
	l, err := Open(context.Background(), filepath.Join(t.TempDir(), FileName), Options{Self: self, Manifest: testManifest,
		Now: func() time.Time { return t0.Add(time.Hour) }, Quota: q})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestQuota checks the per-author storage quota: a neighbour's chain
// messages beyond it are refused with reason "quota", counted overall and
// per neighbour, and never stored; this household's own feed is never
// limited.
func TestQuota(t *testing.T) {
	noReserve := func(string) (int64, error) { return 1 << 40, nil }
	for _, tc := range []struct {
		name       string
		quota      Quota
		own        bool // the messages are this household's own
		content    func(i int) share.Content
		n          int
		wantStored int
	}{
		{"unknown kinds over their sub-quota", Quota{UnknownKindBytes: 3 * 8300}, false, func(int) share.Content { return bulky(8000) }, 10, 3},
		{"known kinds over the author quota", Quota{AuthorBytes: 2000}, false, func(i int) share.Content { return announce(strings.Repeat("n", 60)) }, 10, 6},
		{"unknown kinds count towards the author quota", Quota{AuthorBytes: 20000, UnknownKindBytes: -1}, false, func(int) share.Content { return bulky(8000) }, 5, 2},
		{"within the quota", Quota{}, false, func(int) share.Content { return bulky(8000) }, 10, 10},
		{"own feed is never limited", Quota{AuthorBytes: 2000, UnknownKindBytes: 2000}, true, func(int) share.Content { return bulky(8000) }, 10, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			self, bob := newHousehold(t, 1), newHousehold(t, 2)
			tc.quota.FreeSpace = noReserve
			author := bob
			if tc.own {
				author = self
			}
			l := openQuota(t, self.ID(), tc.quota)
			addNeighbour(t, l, bob, "Bob")
			// Half in one batch, half one by one: the quota holds within a
			// batch and across batches.
			msgs := make([]*share.Message, tc.n)
			for i := range msgs {
				msgs[i] = author.next(t, tc.content(i))
			}
			var res []Result
			res = append(res, mustAppend(t, l, msgs[:tc.n/2]...)...)
			for _, m := range msgs[tc.n/2:] {
				res = append(res, mustAppend(t, l, m)...)
			}
			stored, quota := 0, 0
			var storedBytes int64
			for _, r := range res {
				switch {
				case r.Outcome == Stored:
					stored++
					storedBytes += int64(len(r.Message.Bytes()))
				case Reason(r.Err) == "quota":
					quota++
				}
			}
			if stored != tc.wantStored {
				t.Errorf("stored %d of %d, want %d; outcomes %v", stored, tc.n, tc.wantStored, outcomes(res))
			}
			if got := count(t, l, "SELECT count(*) FROM messages WHERE author = ?", author.ID().String()); got != int64(stored) {
				t.Errorf("%d messages in the table, %d reported stored", got, stored)
			}
			wantQuota := 0
			if stored < tc.n {
				wantQuota = 1 // the next one; those after it are seq gaps
			}
			if quota != wantQuota {
				t.Errorf("%d refused for quota, want %d", quota, wantQuota)
			}
			if got := count(t, l, "SELECT coalesce(sum(count), 0) FROM rejections WHERE reason = 'quota'"); got != int64(wantQuota) {
				t.Errorf("rejection counter quota = %d, want %d", got, wantQuota)
			}
			us, err := l.Usage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			u := us[author.ID()]
			if u.StoredBytes != storedBytes {
				t.Errorf("StoredBytes = %d, want %d", u.StoredBytes, storedBytes)
			}
			if got := u.Refused["quota"]; got != int64(wantQuota) {
				t.Errorf("Refused[quota] = %d, want %d (%v)", got, wantQuota, u.Refused)
			}
			// A new Ledger on the same file (no cache) counts the same.
			if l2 := reopen(t, l); l2 != nil {
				res := mustAppend(t, l2, author.next(t, tc.content(0)))
				if tc.own || stored < tc.n {
					// own: stored; over quota: a gap or the quota again.
					if !tc.own && res[0].Outcome == Stored {
						t.Errorf("after reopening, a message past the quota was stored")
					}
				}
			}
		})
	}
}

// reopen closes l and opens its file again with the same options.
func reopen(t *testing.T, l *Ledger) *Ledger {
	t.Helper()
	path, opts := l.path, l.opts
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l2.Close() })
	return l2
}

// TestDiskReserve checks that neighbours' messages are refused with reason
// "disk_reserve" while the free space is below the reserve, and that this
// household's own messages are still stored.
func TestDiskReserve(t *testing.T) {
	for _, tc := range []struct {
		name      string
		free      int64
		wantBob   Outcome
		wantCount int64
	}{
		{"plenty of space", 10 << 30, Stored, 0},
		{"nearly full", 10 << 20, Rejected, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			self, bob := newHousehold(t, 1), newHousehold(t, 2)
			l := openQuota(t, self.ID(), Quota{FreeSpace: func(dir string) (int64, error) {
				if _, err := os.Stat(dir); err != nil {
					t.Errorf("FreeSpace asked about %s: %v", dir, err)
				}
				return tc.free, nil
			}})
			addNeighbour(t, l, bob, "Bob")
			res := mustAppend(t, l, self.next(t, announce("Me")), bob.next(t, announce("Bob")), bob.next(t, &share.Status{SurplusW: 100}))
			if res[0].Outcome != Stored {
				t.Errorf("own message: %v %v, want stored", res[0].Outcome, res[0].Err)
			}
			for _, r := range res[1:] {
				if tc.wantBob == Rejected && (r.Outcome != Rejected || Reason(r.Err) != "disk_reserve") {
					t.Errorf("Bob's message: %v %v, want rejected for disk_reserve", r.Outcome, r.Err)
				}
				if tc.wantBob == Stored && r.Outcome == Rejected {
					t.Errorf("Bob's message rejected: %v", r.Err)
				}
			}
			if got := count(t, l, "SELECT coalesce(sum(count), 0) FROM rejections WHERE reason = 'disk_reserve'"); got != tc.wantCount {
				t.Errorf("disk_reserve counter = %d, want %d", got, tc.wantCount)
			}
			if tc.wantBob == Rejected {
				if n := count(t, l, "SELECT count(*) FROM messages WHERE author = ?", bob.ID().String()); n != 0 {
					t.Errorf("%d of Bob's messages stored", n)
				}
			}
		})
	}
}

// TestDiskFullError checks that a write failing with SQLITE_FULL says in
// one line what to do and that nothing of the batch was stored.
// PRAGMA max_page_count makes SQLite fail exactly as on a full disk.
func TestDiskFullError(t *testing.T) {
	self := newHousehold(t, 1)
	l, path := openTest(t, self.ID())
	l.db.SetMaxOpenConns(1)
	mustAppend(t, l, self.next(t, announce("Me")))
	var pages int64
	if err := l.db.QueryRow("PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := l.db.Exec(fmt.Sprintf("PRAGMA max_page_count = %d", pages)); err != nil {
		t.Fatal(err)
	}
	var msgs []*share.Message
	for range 20 {
		msgs = append(msgs, self.next(t, bulky(8000)))
	}
	_, err := l.AppendMessages(context.Background(), msgs...)
	if err == nil {
		t.Fatal("append to a full database succeeded")
	}
	if !errors.Is(err, ErrDiskFull) {
		t.Errorf("error %v: want ErrDiskFull", err)
	}
	want := "the disk holding " + filepath.Dir(path) + " is full: free space or move the home; nothing was stored"
	if err.Error() != want {
		t.Errorf("error %q\nwant  %q", err, want)
	}
	if n := count(t, l, "SELECT count(*) FROM messages"); n != 1 {
		t.Errorf("%d messages stored, want the 1 from before", n)
	}
}
