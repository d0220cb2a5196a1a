package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/commons-energy/commons/share"
)

func TestOpenMigratesFromEmptyAndReopens(t *testing.T) {
	ctx := context.Background()
	self := newHousehold(t, 1)
	bob := newHousehold(t, 2)
	path := filepath.Join(t.TempDir(), FileName)
	opts := Options{Self: self.ID(), Manifest: testManifest, Now: func() time.Time { return t0.Add(time.Hour) }}
	l, err := Open(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := l.SchemaVersion(ctx); err != nil || v != len(migrations) || v < 1 {
		t.Fatalf("schema version = %d, %v; want %d", v, err, len(migrations))
	}
	var mode string
	var sync int
	if err := l.db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
	if err := l.db.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil || sync != 2 {
		t.Fatalf("synchronous = %d, %v; want 2 (FULL)", sync, err)
	}
	for _, table := range []string{"messages", "forks", "neighbours", "rejections", "statuses", "meter_minutes", "meter_slots", "meter_baseline"} {
		if n := count(t, l, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?", table); n != 1 {
			t.Errorf("table %s missing", table)
		}
	}
	addNeighbour(t, l, bob, "bob")
	mustAppend(t, l, self.next(t, announce("alice")))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopening neither re-runs migrations nor loses data.
	l, err = Open(ctx, path, opts)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if v, _ := l.SchemaVersion(ctx); v != len(migrations) {
		t.Fatalf("schema version after reopen = %d", v)
	}
	if n, _ := l.Count(ctx); n != 1 {
		t.Fatalf("messages after reopen = %d, want 1", n)
	}
	if ns, _ := l.Neighbours(ctx); len(ns) != 1 || ns[0].Name != "bob" {
		t.Fatalf("neighbours after reopen = %+v", ns)
	}
	// A file from a newer program is refused, not guessed at.
	if _, err := l.db.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := Open(ctx, path, opts); err == nil || !strings.Contains(err.Error(), "upgrade commons") {
		t.Fatalf("open of a newer schema: err = %v, want an 'upgrade commons' error", err)
	}
}

func TestAppendIdempotent(t *testing.T) {
	self := newHousehold(t, 1)
	l, _ := openTest(t, self.ID())
	msgs := []*share.Message{self.next(t, announce("a")), self.next(t, announce("b")), self.next(t, announce("c"))}
	if got := outcomes(mustAppend(t, l, msgs...)); !slices.Equal(got, []Outcome{Stored, Stored, Stored}) {
		t.Fatalf("first append: %v", got)
	}
	if got := outcomes(mustAppend(t, l, msgs...)); !slices.Equal(got, []Outcome{Duplicate, Duplicate, Duplicate}) {
		t.Fatalf("second append: %v", got)
	}
	// The same message twice in one batch.
	m4 := self.next(t, announce("d"))
	if got := outcomes(mustAppend(t, l, m4, m4)); !slices.Equal(got, []Outcome{Stored, Duplicate}) {
		t.Fatalf("batch with a repeat: %v", got)
	}
	if n, _ := l.Count(context.Background()); n != 4 {
		t.Fatalf("stored %d messages, want 4", n)
	}
	// Stored verbatim, with readable columns.
	raw, err := l.Message(context.Background(), msgs[1].ID())
	if err != nil || !bytes.Equal(raw, msgs[1].Bytes()) {
		t.Fatalf("stored bytes differ from the signed bytes (err %v)", err)
	}
	var author, kind, prev string
	var seq int64
	if err := l.db.QueryRow("SELECT author, seq, kind_name, prev FROM messages WHERE id = ?", msgs[1].ID().String()).Scan(&author, &seq, &kind, &prev); err != nil {
		t.Fatal(err)
	}
	if author != self.ID().String() || seq != 2 || kind != "announce" || prev != msgs[0].ID().String() {
		t.Fatalf("columns: author %s seq %d kind %s prev %s", author, seq, kind, prev)
	}
	if rs, _ := l.Rejections(context.Background()); len(rs) != 0 {
		t.Fatalf("duplicates counted as rejections: %+v", rs)
	}
}

func TestAppendSeqGap(t *testing.T) {
	ctx := context.Background()
	self := newHousehold(t, 1)
	l, _ := openTest(t, self.ID())
	m1, m2, m3 := self.next(t, announce("a")), self.next(t, announce("b")), self.next(t, announce("c"))
	mustAppend(t, l, m1)
	res := mustAppend(t, l, m3)
	var gap *share.GapError
	if res[0].Outcome != Rejected || !errors.As(res[0].Err, &gap) || gap.Head != 1 || gap.Got != 3 {
		t.Fatalf("seq 3 after 1: %v %v", res[0].Outcome, res[0].Err)
	}
	if _, err := l.Message(ctx, m3.ID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("gap message was stored (err %v)", err)
	}
	rs, _ := l.Rejections(ctx)
	if len(rs) != 1 || rs[0].Reason != "seq_gap" || rs[0].Count != 1 || !strings.Contains(rs[0].LastDetail, "missing 2") {
		t.Fatalf("rejection counters: %+v", rs)
	}
	// Out of order inside one batch is fine: the batch is applied in chain order.
	if got := outcomes(mustAppend(t, l, m3, m2)); !slices.Equal(got, []Outcome{Stored, Stored}) {
		t.Fatalf("reversed batch: %v", got)
	}
	if h, _ := l.Head(ctx, self.ID()); h.Seq != 3 || h.ID != m3.ID() {
		t.Fatalf("head = %+v", h)
	}
}

func TestAppendForkFreezesFeed(t *testing.T) {
	ctx := context.Background()
	self := newHousehold(t, 1)
	bob := newHousehold(t, 2)
	l, _ := openTest(t, self.ID())
	addNeighbour(t, l, bob, "bob")
	b1 := bob.next(t, announce("bob"))
	b2 := bob.next(t, announce("bob 2"))
	mustAppend(t, l, b1, b2)
	// Bob's key signs a second, different seq 2.
	evil := bob.signAfter(t, share.HeadOf(b1), announce("bob 2 again"))
	res := mustAppend(t, l, evil)
	var fe *share.ForkError
	if res[0].Outcome != Forked || !errors.As(res[0].Err, &fe) || fe.Seq != 2 || fe.Stored != b2.ID() || fe.Incoming != evil.ID() {
		t.Fatalf("fork: %v %v", res[0].Outcome, res[0].Err)
	}
	forks, err := l.Forks(ctx)
	if err != nil || len(forks) != 1 || !bytes.Equal(forks[0].Other, evil.Bytes()) || forks[0].StoredID != b2.ID() || forks[0].Author != bob.ID() {
		t.Fatalf("forks = %+v, %v", forks, err)
	}
	// The chain keeps the first message at seq 2; the proof is in forks.
	if raw, _ := l.Message(ctx, b2.ID()); !bytes.Equal(raw, b2.Bytes()) {
		t.Fatal("original seq 2 lost")
	}
	if n := count(t, l, "SELECT count(*) FROM messages WHERE author = ?", bob.ID().String()); n != 2 {
		t.Fatalf("bob has %d chain messages, want 2", n)
	}
	f, _ := l.Feed(ctx, bob.ID())
	if !f.Frozen {
		t.Fatal("feed not frozen")
	}
	// Nothing new is accepted from the frozen feed, even the honest next one.
	b3 := bob.next(t, announce("bob 3"))
	res = mustAppend(t, l, b3)
	if res[0].Outcome != Rejected || !errors.Is(res[0].Err, share.ErrFrozen) {
		t.Fatalf("after fork: %v %v", res[0].Outcome, res[0].Err)
	}
	// The frozen state survives a reopen (it is the forks table).
	if f, _ := l.Feed(ctx, bob.ID()); !f.Frozen || f.Head.Seq != 2 {
		t.Fatalf("feed = %+v", f)
	}
	// Reappending the fork proof is a no-op.
	mustAppend(t, l, evil)
	if forks, _ := l.Forks(ctx); len(forks) != 1 {
		t.Fatalf("forks after repeat = %d", len(forks))
	}
}

func TestAppendUnknownAuthorRejected(t *testing.T) {
	ctx := context.Background()
	self := newHousehold(t, 1)
	eve := newHousehold(t, 9)
	l, _ := openTest(t, self.ID())
	e1 := eve.next(t, announce("eve"))
	res := mustAppend(t, l, e1)
	if res[0].Outcome != Rejected || !errors.Is(res[0].Err, ErrUnknownAuthor) || Reason(res[0].Err) != "unknown_author" {
		t.Fatalf("stranger: %v %v", res[0].Outcome, res[0].Err)
	}
	if n, _ := l.Count(ctx); n != 0 {
		t.Fatalf("stored %d messages of a stranger", n)
	}
	status := eve.next(t, &share.Status{SurplusW: 100})
	if res := mustAppend(t, l, status); res[0].Outcome != Rejected {
		t.Fatalf("stranger's status: %v", res[0].Outcome)
	}
	if n := count(t, l, "SELECT count(*) FROM statuses"); n != 0 {
		t.Fatal("stranger's status stored")
	}
	addNeighbour(t, l, eve, "eve")
	if res := mustAppend(t, l, e1); res[0].Outcome != Stored {
		t.Fatalf("after adding eve: %v %v", res[0].Outcome, res[0].Err)
	}
	if n, _ := l.FindNeighbour(ctx, "EVE"); n.LastSeen.IsZero() {
		t.Fatal("last_seen not set by a stored message")
	}
	if err := l.RemoveNeighbour(ctx, eve.ID()); err != nil {
		t.Fatal(err)
	}
	if res := mustAppend(t, l, eve.next(t, announce("eve 2"))); res[0].Outcome != Rejected || !errors.Is(res[0].Err, ErrUnknownAuthor) {
		t.Fatalf("after removing eve: %v", res[0].Outcome)
	}
	rs, _ := l.Rejections(ctx)
	if len(rs) != 1 || rs[0].Reason != "unknown_author" || rs[0].Count != 3 {
		t.Fatalf("rejections = %+v", rs)
	}
}

func TestAppendRejectsForgedAndForeign(t *testing.T) {
	ctx := context.Background()
	self := newHousehold(t, 1)
	l, _ := openTest(t, self.ID())
	good := self.next(t, announce("a"))

	badSig := bytes.Clone(good.Bytes())
	badSig[share.HeaderSize+3] ^= 0x01
	badContent := bytes.Clone(good.Bytes())
	badContent[len(badContent)-3] ^= 0x20

	other := share.DefaultManifest("another street")
	d, _ := share.NewDraft(other.ID(), share.Head{}, t0, announce("a"))
	foreign, err := self.id.Sign(d)
	if err != nil {
		t.Fatal(err)
	}
	d, _ = share.NewDraft(testCommunity, share.Head{}, t0.Add(3*time.Hour), announce("from the future"))
	ahead, _ := self.id.Sign(d)

	tests := []struct {
		name   string
		raw    []byte
		reason string
	}{
		{"bad signature", badSig, "bad_signature"},
		{"content hash", badContent, "content_hash"},
		{"wrong community", foreign.Bytes(), "wrong_community"},
		{"truncated", good.Bytes()[:100], "truncated"},
		{"garbage", append([]byte("hello neighbours, this is not a message"), make([]byte, 300)...), "bad_magic"},
		{"clock ahead", ahead.Bytes(), "clock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := l.Append(ctx, tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			if res[0].Outcome != Rejected || Reason(res[0].Err) != tt.reason {
				t.Fatalf("outcome %v, reason %q (%v); want rejected %q", res[0].Outcome, Reason(res[0].Err), res[0].Err, tt.reason)
			}
		})
	}
	if n, _ := l.Count(ctx); n != 0 {
		t.Fatalf("stored %d bad messages", n)
	}
	rs, _ := l.Rejections(ctx)
	if len(rs) != len(tests) {
		t.Fatalf("rejection reasons = %+v, want %d", rs, len(tests))
	}
	// The good one still goes in afterwards.
	if res := mustAppend(t, l, good); res[0].Outcome != Stored {
		t.Fatalf("good after bad: %v %v", res[0].Outcome, res[0].Err)
	}
}

func TestStatusLatestOnly(t *testing.T) {
	ctx := context.Background()
	self := newHousehold(t, 1)
	bob := newHousehold(t, 2)
	l, _ := openTest(t, self.ID())
	addNeighbour(t, l, bob, "bob")
	s1 := bob.next(t, &share.Status{SurplusW: 100})
	s2 := bob.next(t, &share.Status{SurplusW: 200})
	s3 := bob.next(t, &share.Status{SurplusW: 300})
	if got := outcomes(mustAppend(t, l, s2)); !slices.Equal(got, []Outcome{Latest}) {
		t.Fatalf("s2: %v", got)
	}
	if got := outcomes(mustAppend(t, l, s1, s2)); !slices.Equal(got, []Outcome{Older, Duplicate}) {
		t.Fatalf("s1, s2: %v", got)
	}
	if got := outcomes(mustAppend(t, l, s3)); !slices.Equal(got, []Outcome{Latest}) {
		t.Fatalf("s3: %v", got)
	}
	st, err := l.Statuses(ctx)
	if err != nil || len(st) != 1 || st[bob.ID()].ID() != s3.ID() {
		t.Fatalf("statuses = %v, %v", st, err)
	}
	if n := count(t, l, "SELECT count(*) FROM statuses"); n != 1 {
		t.Fatalf("%d status rows, want 1", n)
	}
	if n, _ := l.Count(ctx); n != 0 {
		t.Fatalf("statuses went into the chain table: %d", n)
	}
	if h, _ := l.Head(ctx, bob.ID()); h.Seq != 0 {
		t.Fatalf("status moved the head: %+v", h)
	}
}

func TestReplicationQueries(t *testing.T) {
	ctx := context.Background()
	self := newHousehold(t, 1)
	bob := newHousehold(t, 2)
	l, _ := openTest(t, self.ID())
	addNeighbour(t, l, bob, "bob")
	var mine []*share.Message
	for i := 0; i < 10; i++ {
		mine = append(mine, self.next(t, announce("a")))
	}
	b1 := bob.next(t, announce("b"))
	mustAppend(t, l, mine...)
	mustAppend(t, l, b1)
	heads, err := l.Heads(ctx)
	if err != nil || len(heads) != 2 || heads[self.ID()].Seq != 10 || heads[self.ID()].ID != mine[9].ID() || heads[bob.ID()].ID != b1.ID() {
		t.Fatalf("heads = %v, %v", heads, err)
	}
	got, err := l.Range(ctx, self.ID(), 4, 3)
	if err != nil || len(got) != 3 {
		t.Fatalf("range = %d, %v", len(got), err)
	}
	for i, raw := range got {
		if !bytes.Equal(raw, mine[3+i].Bytes()) {
			t.Fatalf("range[%d] is not seq %d", i, 4+i)
		}
	}
	if got, _ := l.Range(ctx, self.ID(), 11, 0); len(got) != 0 {
		t.Fatalf("range past head = %d", len(got))
	}
	id, err := l.FindMessage(ctx, mine[5].ID().String()[:10])
	if err != nil || id != mine[5].ID() {
		t.Fatalf("find by prefix = %v, %v", id, err)
	}
	if _, err := l.FindMessage(ctx, "zzzz"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("find non-hex: %v", err)
	}

	// Storage order with a cursor: mine (10) were stored before b1
	// (inside one batch the order is by author, then seq).
	all, err := l.MessagesSince(ctx, share.ID{}, 0)
	if err != nil || len(all) != 11 || !bytes.Equal(all[10], b1.Bytes()) {
		t.Fatalf("messages since start: %d, %v", len(all), err)
	}
	page, err := l.MessagesSince(ctx, mine[7].ID(), 2)
	if err != nil || len(page) != 2 || !bytes.Equal(page[0], mine[8].Bytes()) || !bytes.Equal(page[1], mine[9].Bytes()) {
		t.Fatalf("messages since seq 8: %d, %v", len(page), err)
	}
	if rest, _ := l.MessagesSince(ctx, b1.ID(), 0); len(rest) != 0 {
		t.Fatalf("messages after the last: %d", len(rest))
	}
	if _, err := l.MessagesSince(ctx, share.ID{1}, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown cursor: %v", err)
	}
}

func TestNeighbours(t *testing.T) {
	ctx := context.Background()
	self := newHousehold(t, 1)
	bob, carol := newHousehold(t, 2), newHousehold(t, 3)
	l, _ := openTest(t, self.ID())
	if err := l.AddNeighbour(ctx, Neighbour{ID: bob.ID(), Name: "Bob", Addresses: []string{"127.0.0.1:7420", "10.0.0.2:7420"}}); err != nil {
		t.Fatal(err)
	}
	if err := l.AddNeighbour(ctx, Neighbour{ID: carol.ID(), Name: "bob"}); err == nil || !strings.Contains(err.Error(), "taken") {
		t.Fatalf("duplicate name: %v", err)
	}
	if err := l.AddNeighbour(ctx, Neighbour{ID: self.ID(), Name: "me"}); err == nil {
		t.Fatal("added self as neighbour")
	}
	n, err := l.FindNeighbour(ctx, bob.ID().String()[:6])
	if err != nil || n.ID != bob.ID() || !slices.Equal(n.Addresses, []string{"127.0.0.1:7420", "10.0.0.2:7420"}) {
		t.Fatalf("find by prefix: %+v, %v", n, err)
	}
	if _, err := l.FindNeighbour(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("find unknown: %v", err)
	}
	if err := l.RemoveNeighbour(ctx, bob.ID()); err != nil {
		t.Fatal(err)
	}
	if err := l.RemoveNeighbour(ctx, bob.ID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("remove twice: %v", err)
	}
	// The name is free again once bob is removed; re-adding bob reactivates him.
	if err := l.AddNeighbour(ctx, Neighbour{ID: carol.ID(), Name: "Bob"}); err != nil {
		t.Fatal(err)
	}
	if err := l.AddNeighbour(ctx, Neighbour{ID: bob.ID(), Name: "Bobby"}); err != nil {
		t.Fatal(err)
	}
	ns, _ := l.Neighbours(ctx)
	if len(ns) != 2 || ns[0].Name != "Bob" || ns[1].Name != "Bobby" || !ns[1].Removed.IsZero() {
		t.Fatalf("neighbours = %+v", ns)
	}
}

func TestAppendConcurrentBatches(t *testing.T) {
	ctx := context.Background()
	self := newHousehold(t, 1)
	l, _ := openTest(t, self.ID())
	const authors, each = 4, 50
	feeds := make([][]*share.Message, authors)
	for a := range authors {
		h := newHousehold(t, byte(20+a))
		addNeighbour(t, l, h, fmt.Sprintf("n%d", a))
		for range each {
			feeds[a] = append(feeds[a], h.next(t, announce("x")))
		}
	}
	errs := make(chan error, authors)
	for a := range authors {
		go func() {
			// Each goroutine delivers its author's feed in batches of 10.
			for lo := 0; lo < each; lo += 10 {
				res, err := l.AppendMessages(ctx, feeds[a][lo:lo+10]...)
				if err != nil {
					errs <- err
					return
				}
				for _, r := range res {
					if r.Outcome != Stored {
						errs <- fmt.Errorf("outcome %v: %v", r.Outcome, r.Err)
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for range authors {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := l.Count(ctx); n != authors*each {
		t.Fatalf("stored %d, want %d", n, authors*each)
	}
	if rep, err := l.Verify(ctx); err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

func TestOpenBadFiles(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "ledger.db")
	if err := os.WriteFile(notDB, bytes.Repeat([]byte("not a database. "), 64), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, want string
	}{
		{"not a database", notDB, "not a commons ledger"},
		{"missing folder", filepath.Join(dir, "nope", FileName), "does not exist: run `commons init`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(context.Background(), tt.path, Options{Manifest: testManifest})
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want one line containing %q", err, tt.want)
			}
		})
	}
	// The file was not touched.
	if b, _ := os.ReadFile(notDB); !bytes.Equal(b, bytes.Repeat([]byte("not a database. "), 64)) {
		t.Fatal("opening a foreign file modified it")
	}
}

// TestMigrationStepsRunOnceInOrder upgrades a version-1 file with a
// hypothetical second step: only the new step runs, data stays, and a
// failing step leaves the file at the old version.
func TestMigrationStepsRunOnceInOrder(t *testing.T) {
	ctx := context.Background()
	self := newHousehold(t, 1)
	path := filepath.Join(t.TempDir(), FileName)
	opts := Options{Self: self.ID(), Manifest: testManifest, Now: func() time.Time { return t0.Add(time.Hour) }}
	l, err := Open(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, self.next(t, announce("a")))
	l.Close()

	saved := migrations
	t.Cleanup(func() { migrations = saved })

	// A failing step: rolled back as a whole, version unchanged.
	migrations = append(slices.Clone(saved), `CREATE TABLE notes (x INTEGER); INSERT INTO nowhere VALUES (1);`)
	if _, err := Open(ctx, path, opts); err == nil || !strings.Contains(err.Error(), "migrate ledger") {
		t.Fatalf("failing migration: %v", err)
	}
	migrations = saved
	l, err = Open(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := l.SchemaVersion(ctx); v != len(saved) {
		t.Fatalf("version after a failed step = %d", v)
	}
	if n := count(t, l, "SELECT count(*) FROM sqlite_schema WHERE name = 'notes'"); n != 0 {
		t.Fatal("half of a failed step was kept")
	}
	l.Close()

	// A good step runs once; reopening does not run it again.
	migrations = append(slices.Clone(saved), `CREATE TABLE notes (x INTEGER); INSERT INTO notes VALUES (1);`)
	for range 2 {
		l, err = Open(ctx, path, opts)
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := l.SchemaVersion(ctx); v != len(saved)+1 {
			t.Fatalf("version = %d", v)
		}
		if n := count(t, l, "SELECT count(*) FROM notes"); n != 1 {
			t.Fatalf("step ran %d times", n)
		}
		if n, _ := l.Count(ctx); n != 1 {
			t.Fatal("data lost by the migration")
		}
		l.Close()
	}
}
