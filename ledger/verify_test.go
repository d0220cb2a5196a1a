package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/commons-energy/commons/share"
)

// storeChain stores n announce messages of h and a status, returning the
// chain messages.
func storeChain(t *testing.T, l *Ledger, h *household, n int) []*share.Message {
	t.Helper()
	var msgs []*share.Message
	for i := 0; i < n; i++ {
		msgs = append(msgs, h.next(t, announce("a")))
	}
	mustAppend(t, l, msgs...)
	return msgs
}

func TestVerifyIntact(t *testing.T) {
	ctx := context.Background()
	self, bob := newHousehold(t, 1), newHousehold(t, 2)
	l, _ := openTest(t, self.ID())
	addNeighbour(t, l, bob, "bob")
	storeChain(t, l, self, 20)
	b := storeChain(t, l, bob, 5)
	mustAppend(t, l, bob.next(t, &share.Status{SurplusW: 5}))
	rep, err := l.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Messages != 25 || rep.Statuses != 1 || rep.Forks != 0 || len(rep.Problems) != 0 {
		t.Fatalf("report = %+v", rep)
	}
	js, _ := json.Marshal(rep)
	if !strings.Contains(string(js), `"ok":true`) || !strings.Contains(string(js), `"problems":[]`) || !strings.Contains(string(js), `"messages":25`) {
		t.Fatalf("json = %s", js)
	}
	// A sound fork proof is no corruption, but the frozen feed is the one
	// problem reported.
	mustAppend(t, l, bob.signAfter(t, share.HeadOf(b[2]), announce("fork")))
	rep, err = l.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.Messages != 25 || rep.Forks != 1 || len(rep.Problems) != 1 || !strings.HasPrefix(rep.Problems[0].Reason, "frozen: fork at seq 4") {
		t.Fatalf("report after a fork = %+v", rep)
	}
}

// TestVerifyDetectsFlippedSignatureInFile flips one byte of a stored
// signature in the database file itself, as a failing SD card would.
func TestVerifyDetectsFlippedSignatureInFile(t *testing.T) {
	ctx := context.Background()
	self := newHousehold(t, 1)
	l, path := openTest(t, self.ID())
	msgs := storeChain(t, l, self, 10)
	victim := msgs[6]
	l.Close() // checkpoints the WAL into the main file

	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if wal, _ := os.ReadFile(path + "-wal"); len(wal) > 0 {
		t.Fatalf("WAL still holds %d bytes after close", len(wal))
	}
	// SQLite leaves stale copies of moved cells in unused page space, so
	// the signature can occur more than once: flip the same bit in each.
	flipped := 0
	for off := 0; ; {
		i := bytes.Index(file[off:], victim.Signature[:])
		if i < 0 {
			break
		}
		file[off+i+10] ^= 0x04
		flipped++
		off += i + len(victim.Signature)
	}
	if flipped == 0 {
		t.Fatal("signature not found in the database file")
	}
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}

	l2, err := Open(ctx, path, Options{Self: self.ID(), Manifest: testManifest})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	rep, err := l2.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || len(rep.Problems) != 1 {
		t.Fatalf("report = %+v, want exactly one problem", rep)
	}
	p := rep.Problems[0]
	if p.ID != victim.ID().String() || p.Seq != 7 || !strings.Contains(p.Reason, "signature") {
		t.Fatalf("problem = %+v, want message %s (seq 7) named with a signature reason", p, victim.ID())
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, l *Ledger, msgs []*share.Message) string // returns the id that must be named
		reason string
	}{
		{"content byte", func(t *testing.T, l *Ledger, msgs []*share.Message) string {
			raw := bytes.Clone(msgs[3].Bytes())
			raw[len(raw)-2] ^= 0x01
			execSQL(t, l, "UPDATE messages SET raw = ? WHERE id = ?", raw, msgs[3].ID().String())
			return msgs[3].ID().String()
		}, "content does not match"},
		{"signature byte", func(t *testing.T, l *Ledger, msgs []*share.Message) string {
			raw := bytes.Clone(msgs[1].Bytes())
			raw[share.HeaderSize] ^= 0x80
			execSQL(t, l, "UPDATE messages SET raw = ? WHERE id = ?", raw, msgs[1].ID().String())
			return msgs[1].ID().String()
		}, "signature"},
		{"deleted message", func(t *testing.T, l *Ledger, msgs []*share.Message) string {
			execSQL(t, l, "DELETE FROM messages WHERE id = ?", msgs[4].ID().String())
			return msgs[5].ID().String()
		}, "jumps from seq 4 to 6"},
		{"edited column", func(t *testing.T, l *Ledger, msgs []*share.Message) string {
			execSQL(t, l, "UPDATE messages SET created_ms = created_ms + 1 WHERE id = ?", msgs[2].ID().String())
			return msgs[2].ID().String()
		}, "columns disagree"},
		{"edited content column", func(t *testing.T, l *Ledger, msgs []*share.Message) string {
			execSQL(t, l, "UPDATE messages SET content = '{}' WHERE id = ?", msgs[2].ID().String())
			return msgs[2].ID().String()
		}, "content column"},
		{"replaced message", func(t *testing.T, l *Ledger, msgs []*share.Message) string {
			execSQL(t, l, "UPDATE messages SET raw = ? WHERE id = ?", msgs[6].Bytes(), msgs[5].ID().String())
			return msgs[5].ID().String()
		}, "hash to id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			self := newHousehold(t, 1)
			l, _ := openTest(t, self.ID())
			msgs := storeChain(t, l, self, 8)
			want := tt.tamper(t, l, msgs)
			rep, err := l.Verify(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK {
				t.Fatal("tampering not detected")
			}
			found := false
			for _, p := range rep.Problems {
				if p.ID == want && strings.Contains(p.Reason, tt.reason) {
					found = true
				}
			}
			if !found {
				t.Fatalf("problems %+v do not name %s with %q", rep.Problems, want, tt.reason)
			}
		})
	}
}

func execSQL(t *testing.T, l *Ledger, q string, args ...any) {
	t.Helper()
	if _, err := l.db.Exec(q, args...); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyReadsSnapshotWhileAppending(t *testing.T) {
	ctx := context.Background()
	self := newHousehold(t, 1)
	l, _ := openTest(t, self.ID())
	storeChain(t, l, self, 50)
	var more []*share.Message
	for i := 0; i < 20; i++ {
		more = append(more, self.next(t, announce("x")))
	}
	done := make(chan error, 1)
	go func() {
		for _, m := range more {
			if _, err := l.AppendMessages(ctx, m); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := 0; i < 5; i++ {
		rep, err := l.Verify(ctx)
		if err != nil || !rep.OK {
			t.Fatalf("verify during appends: %+v %v", rep, err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
