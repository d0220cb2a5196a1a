package peer

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/commons-energy/commons/share"
)

// TestHeadsSinceWire: GET /v1/heads?since=C answers exactly the authors
// whose head moved after C, with the next cursor; without since it is
// the version 1 array of all heads.
func TestHeadsSinceWire(t *testing.T) {
	ctx := context.Background()
	srv := newBox(t, "ledger", nil, Limits{})
	x, y, z := newBox(t, "mem", nil, Limits{}), newBox(t, "mem", nil, Limits{}), newBox(t, "mem", nil, Limits{})
	for _, nb := range []*box{x, y, z} {
		befriend(nb, srv)
	}
	c := x.client(t, srv)
	push := func(b *box, n int) {
		t.Helper()
		if _, err := b.client(t, srv).Push(ctx, b.appendOwn(t, n)); err != nil {
			t.Fatal(err)
		}
	}
	names := map[share.HouseholdID]string{srv.id(): "srv", x.id(): "x", y.id(): "y", z.id(): "z"}
	var cursors []uint64
	for i, step := range []struct {
		name  string
		act   func()
		since int // cursor after step since; -1: 0
		want  map[string]uint64
		full  bool
	}{
		{"empty, since 0", func() {}, -1, map[string]uint64{}, true},
		{"x and y push", func() { push(x, 2); push(y, 1) }, 0, map[string]uint64{"x": 2, "y": 1}, true},
		{"nothing moved", func() {}, 1, map[string]uint64{}, false},
		{"y moves", func() { push(y, 3) }, 2, map[string]uint64{"y": 4}, false},
		{"z and the box itself", func() { push(z, 1); srv.appendOwn(t, 1) }, 3, map[string]uint64{"z": 1, "srv": 1}, false},
		{"since an older cursor", func() {}, 2, map[string]uint64{"y": 4, "z": 1, "srv": 1}, false},
		{"since 0: everything", func() {}, -1, map[string]uint64{"x": 2, "y": 4, "z": 1, "srv": 1}, true},
	} {
		step.act()
		since := uint64(0)
		if step.since >= 0 {
			since = cursors[step.since]
		}
		page, err := c.HeadsSince(ctx, since)
		if err != nil {
			t.Fatalf("step %d %s: %v", i, step.name, err)
		}
		got := map[string]uint64{}
		for _, h := range page.Heads {
			got[names[h.Author]] = h.Seq
		}
		if !mapsEqual(got, step.want) || page.Full != step.full {
			t.Errorf("step %d %s: since %d got %v full %v, want %v full %v", i, step.name, since, got, page.Full, step.want, step.full)
		}
		if page.Cursor < since {
			t.Errorf("step %d: cursor %d went back from %d", i, page.Cursor, since)
		}
		cursors = append(cursors, page.Cursor)
	}
	// Without since: the version 1 answer, a JSON array of every head.
	all, err := c.Heads(ctx)
	if err != nil || len(all) != 4 {
		t.Fatalf("version 1 heads: %d, %v", len(all), err)
	}
	// A cursor the box never gave: the full list.
	page, err := c.HeadsSince(ctx, cursors[len(cursors)-1]+100)
	if err != nil || !page.Full || len(page.Heads) != 4 {
		t.Fatalf("unknown cursor: %+v, %v", page, err)
	}
	// A store without cursors answers the full list with cursor 0.
	m, w := newBox(t, "mem", nil, Limits{}), newBox(t, "mem", nil, Limits{})
	befriend(w, m)
	if _, err := w.client(t, m).Push(ctx, w.appendOwn(t, 1)); err != nil {
		t.Fatal(err)
	}
	page, err = w.client(t, m).HeadsSince(ctx, 7)
	if err != nil || !page.Full || page.Cursor != 0 || len(page.Heads) != 1 {
		t.Fatalf("store without cursors: %+v, %v", page, err)
	}
}

func mapsEqual(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestHeadsSinceOldServer: a server from before cursors ignores since and
// answers the array; the client takes it as the full list, cursor 0, and
// a Syncer pulls from it as before.
func TestHeadsSinceOldServer(t *testing.T) {
	ctx := context.Background()
	a := newAuthor(t)
	b := newBox(t, "ledger", nil, Limits{})
	raws := [][]byte{a.next(t), a.next(t), a.next(t)}
	cert, err := Certificate(a.key)
	if err != nil {
		t.Fatal(err)
	}
	// The old server: the version 1 heads array and feed pages.
	old := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == PathHeads:
			json.NewEncoder(w).Encode([]headJSON{{Author: a.id().String(), Seq: 3}})
		case r.URL.Path == PathFeeds+a.id().String():
			w.Header().Set("Content-Type", BatchContentType)
			WriteBatch(w, raws)
		default:
			http.NotFound(w, r)
		}
	}))
	old.TLS = ServerTLS(cert, a.id(), func(share.HouseholdID) bool { return true })
	old.TLS.NextProtos = []string{"http/1.1"}
	old.Config.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	old.StartTLS()
	defer old.Close()

	addr := old.Listener.Addr().String()
	b.nb.add(a.id(), addr)
	c, err := NewClient(ClientConfig{Key: b.key, Peer: a.id(), Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	page, err := c.HeadsSince(ctx, 5)
	if err != nil || !page.Full || page.Cursor != 0 || len(page.Heads) != 1 || page.Heads[0].Seq != 3 {
		t.Fatalf("old server: %+v, %v", page, err)
	}
	sy, err := NewSyncer(SyncConfig{Key: b.key, Store: b.store, Neighbours: b.nb, Verifier: ShareVerifier{Community: testCommunity}})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := sy.Pull(ctx, c); err != nil || n != 3 {
		t.Fatalf("pull from the old server: %d, %v", n, err)
	}
}

// TestPullIncremental: a Syncer asks each neighbour only for the heads
// that moved since its last complete pull, asks for all of them again
// when its neighbour list grew (an author it skipped may now be admitted)
// and every FullEvery pulls, and does not move its cursor past a failed
// pull.
func TestPullIncremental(t *testing.T) {
	ctx := context.Background()
	hub := newBox(t, "ledger", nil, Limits{})
	b := newBox(t, "ledger", nil, Limits{})
	x, y := newBox(t, "mem", nil, Limits{}), newBox(t, "mem", nil, Limits{})
	befriend(hub, b)
	befriend(hub, x)
	befriend(hub, y)
	// hub holds x's and y's feeds; b knows x but not (yet) y.
	if _, err := x.client(t, hub).Push(ctx, x.appendOwn(t, 3)); err != nil {
		t.Fatal(err)
	}
	if _, err := y.client(t, hub).Push(ctx, y.appendOwn(t, 2)); err != nil {
		t.Fatal(err)
	}
	b.nb.add(x.id(), "")
	sy, err := NewSyncer(SyncConfig{Key: b.key, Store: b.store, Neighbours: b.nb, Verifier: ShareVerifier{Community: testCommunity}, FullEvery: 3})
	if err != nil {
		t.Fatal(err)
	}
	sy.noteList(b.nb.List())
	c := b.client(t, hub)
	cursorOf := func() peerCursor {
		sy.curMu.Lock()
		defer sy.curMu.Unlock()
		return sy.cursors[hub.id()]
	}
	if n, err := sy.Pull(ctx, c); err != nil || n != 3 {
		t.Fatalf("first pull: %d, %v; want x's 3", n, err)
	}
	first := cursorOf()
	if first.cursor == 0 || first.pulls != 0 {
		t.Fatalf("after the first (full) pull: %+v", first)
	}
	// Nothing moved: the next answer is empty.
	page, err := c.HeadsSince(ctx, first.cursor)
	if err != nil || len(page.Heads) != 0 || page.Full {
		t.Fatalf("nothing moved: %+v, %v", page, err)
	}
	if n, err := sy.Pull(ctx, c); err != nil || n != 0 || cursorOf().pulls != 1 {
		t.Fatalf("idle pull: %d, %v, %+v", n, err, cursorOf())
	}
	// x moves: only x is listed and fetched.
	if _, err := x.client(t, hub).Push(ctx, x.appendOwn(t, 1)); err != nil {
		t.Fatal(err)
	}
	page, err = c.HeadsSince(ctx, cursorOf().cursor)
	if err != nil || len(page.Heads) != 1 || page.Heads[0].Author != x.id() {
		t.Fatalf("after x moved: %+v, %v", page, err)
	}
	if n, err := sy.Pull(ctx, c); err != nil || n != 1 {
		t.Fatalf("pull after x moved: %d, %v", n, err)
	}
	// b admits y: y's heads, which did not move, must be asked for again.
	b.nb.add(y.id(), "")
	waitFor(t, "y admitted", func() bool { return b.nb.Known(y.id()) && slices.Contains(b.nb.List(), y.id()) })
	sy.noteList(b.nb.List())
	if n, err := sy.Pull(ctx, c); err != nil || n != 2 {
		t.Fatalf("pull after admitting y: %d, %v; want y's 2", n, err)
	}
	if got := b.store.count(y.id()); got != 2 {
		t.Fatalf("b holds %d of y's messages", got)
	}
	// Every FullEvery-th pull asks for the full list.
	for i := range 4 {
		if _, err := sy.Pull(ctx, c); err != nil {
			t.Fatal(err)
		}
		// 1, 2, 3 incremental pulls, then a full one.
		if want := (i + 1) % 4; cursorOf().pulls != want {
			t.Errorf("pull %d after the full one: pulls = %d, want %d", i+1, cursorOf().pulls, want)
		}
	}
	// A failed pull (the neighbour is gone) keeps the cursor.
	before := cursorOf()
	hub.halt()
	if _, err := sy.Pull(ctx, c); err == nil {
		t.Fatal("pull from a stopped neighbour succeeded")
	}
	if after := cursorOf(); after != before {
		t.Errorf("cursor moved on a failed pull: %+v -> %+v", before, after)
	}
}
