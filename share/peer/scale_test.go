package peer

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"testing"
	"time"
)

var directNeighbours = flag.Int("peer.neighbours", 0, "how many direct neighbours TestHundredNeighbours gives its box (0: 100, or 25 under -race and with -short)")

// TestHundredNeighbours: one box with 100 direct neighbours (25 under
// -race, see below), every box a
// real ledger file, a real server on loopback TLS and a real Syncer. All
// neighbours pull from the box and the box from all of them at once
// (boxes started together, as after a power cut): every neighbour's feed
// reaches the box, the box's feed reaches every neighbour, a message the
// box writes afterwards is pushed to all, and no pull fails or times out
// and no connection is turned away. Before the connection budget followed
// the neighbour count, neighbours 65 and up timed out.
func TestHundredNeighbours(t *testing.T) {
	// Under -race every handshake and signature check costs several
	// times more: the suite runs 25 neighbours then, and the 100 are run
	// with -peer.neighbours=100 (docs/BENCHMARKS.md has its time).
	n := *directNeighbours
	if n <= 0 {
		n = 100
		if raceEnabled || testing.Short() {
			n = 25
		}
	}
	ctx := context.Background()
	ttl := time.Second
	start := time.Now()
	// Every neighbour dials from 127.0.0.1 here, and all start at once:
	// the per-address handshake budget is for distinct addresses, so it is
	// raised to the neighbour count (TestStrangersDoNotBlockNeighbours
	// covers it).
	// The handshake deadline is raised too: 100 handshakes at once under
	// -race on a loaded 2-core machine take longer than the 2 s a box on
	// its own needs (a few ms each).
	hub := newBoxTTL(t, "ledger", nil, Limits{MaxPendingPerAddr: n, Handshake: 20 * time.Second}, ttl)
	nbs := make([]*box, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range nbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					errs <- fmt.Errorf("neighbour %d: %v", i, r)
				}
			}()
			nbs[i] = newBoxTTL(t, "ledger", nil, Limits{Handshake: 20 * time.Second}, ttl)
			nbs[i].nb.add(hub.id(), hub.addr)
			nbs[i].appendOwn(t, 2)
		}()
		if i%8 == 7 {
			wg.Wait() // a few at a time: opening a ledger is a few fsyncs
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%v: %d neighbours' ledgers ready", time.Since(start).Round(time.Millisecond), n)
	for _, nb := range nbs {
		hub.nb.add(nb.id(), nb.addr)
	}
	hub.appendOwn(t, 1)

	cfg := SyncConfig{Refresh: 200 * time.Millisecond}
	hub.startSync(t, cfg)
	for _, nb := range nbs {
		nb.startSync(t, cfg)
	}
	diag := func() string {
		missing, failed, last := 0, 0, ""
		for _, nb := range nbs {
			if hub.store.count(nb.id()) != 2 || nb.store.count(hub.id()) < 1 {
				missing++
			}
		}
		for _, b := range append([]*box{hub}, nbs...) {
			for _, st := range b.syncer.State() {
				if st.Failed > 0 {
					failed++
					last = st.LastError
				}
			}
		}
		return fmt.Sprintf("%d neighbours not in step, %d pull workers failed at least once (one: %q), box server %+v", missing, failed, last, hub.srv.Stats())
	}
	waitForLong(t, diag, "every neighbour's feed at the box and the box's at every neighbour", func() bool {
		for _, nb := range nbs {
			if hub.store.count(nb.id()) != 2 || nb.store.count(hub.id()) != 1 {
				return false
			}
		}
		return true
	})
	t.Logf("%v: in step", time.Since(start).Round(time.Millisecond))
	// A new message of the box is pushed to every neighbour (their next
	// pull is 30 s away).
	raws := hub.appendOwn(t, 1)
	hub.syncer.Publish(raws...)
	waitForLong(t, diag, "the box's new message at every neighbour", func() bool {
		for _, nb := range nbs {
			if nb.store.count(hub.id()) != 2 {
				return false
			}
		}
		return true
	})
	t.Logf("%v: pushed", time.Since(start).Round(time.Millisecond))
	check := func(name string, b *box) {
		for _, st := range b.syncer.State() {
			if st.Failed > 0 || st.LastError != "" || st.LastOK.IsZero() {
				t.Errorf("%s: pull from %s: %d failed, last error %q", name, st.ID.Short(), st.Failed, st.LastError)
			}
			if st.Dropped > 0 {
				t.Errorf("%s: %d pushes to %s dropped", name, st.Dropped, st.ID.Short())
			}
		}
	}
	check("the box", hub)
	for i, nb := range nbs {
		check(fmt.Sprintf("neighbour %d", i), nb)
	}
	st := hub.srv.Stats()
	if st.ConnsOverBudget != 0 || st.Limited != 0 || st.Rejected != 0 {
		t.Errorf("the box turned neighbours away: %+v", st)
	}
	if got, _ := hub.srv.ConnBudget(); got != connBudget(64, n) {
		t.Errorf("connection budget %d, want %d", got, connBudget(64, n))
	}
	_ = ctx
	t.Logf("%d neighbours: box server %+v", n, st)
}

// waitForLong is waitFor with a deadline fit for a hundred boxes on a
// loaded machine under -race.
func waitForLong(t testing.TB, diag func() string, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %s", what, diag())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
