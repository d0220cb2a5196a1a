package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/commons-energy/commons/share/relay/relaytest"
)

// TestDaemonsFollowKeyRotation: A and B replicate as real daemons; A's
// daemon stops, A rotates its key and starts again. B's daemon, which
// still pins A's old key, reaches A's box (it answers with the retired
// key's certificate when asked for it by name), reads the handover and
// follows A to the new key; then a pledge signed by A's new key reaches B
// and B's pledge to the new key reaches A, with no export or import. A
// recovery with the recovery key is followed the same way; through the
// hub even when the box has lost its old keys.
//
// Through a community hub (both households listen nowhere) the same
// holds: A's daemon publishes the old key's handover on the old key's
// subject, which B reads.
func TestDaemonsFollowKeyRotation(t *testing.T) {
	bin := buildCommons(t, t.TempDir())
	for _, via := range []string{"direct", "hub"} {
		t.Run(via, func(t *testing.T) { testFollowKeyRotation(t, bin, via) })
	}
}

func testFollowKeyRotation(t *testing.T, bin, via string) {
	c := newCLI(t, bin)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "A"), filepath.Join(dir, "B")
	link := func() []string { return []string{"--listen", freeAddr(t)} }
	if via == "hub" {
		hub := relaytest.Start(t, relaytest.Options{})
		link = func() []string { return []string{"--listen", "none", "--relay", hub.URL()} }
	}
	var ida, idb idJSON
	c.ok(append([]string{"--home", a, "init", "--name", "house-A"}, link()...)...)
	c.json(&ida, "--home", a, "id", "--json")
	c.ok(append([]string{"--home", b, "init", "--name", "house-B", "--join", ida.Invite}, link()...)...)
	c.json(&idb, "--home", b, "id", "--json")
	c.ok("--home", a, "neighbours", "add", idb.Invite)

	da := startDaemon(t, c, a)
	db := startDaemon(t, c, b)
	poll(t, "B to hold A's first messages", func() bool { return messageCount(t, c, b) == 4 })

	da.stop(t)
	out := c.ok("--home", a, "key", "rotate")
	var rotated idJSON
	c.json(&rotated, "--home", a, "id", "--json")
	if rotated.ID == ida.ID || !strings.Contains(out, rotated.ID) {
		t.Fatalf("rotate: id %s, output:\n%s", rotated.ID, out)
	}
	da = startDaemon(t, c, a)
	// follows waits until B's only neighbour is A under id.
	follows := func(what, id string) {
		t.Helper()
		poll(t, what, func() bool {
			var ns []struct {
				ID string `json:"id"`
			}
			c.json(&ns, "--home", b, "neighbours", "list", "--json")
			return len(ns) == 1 && ns[0].ID == id
		})
	}
	// holds pledges energy from one home to the other's house and waits
	// until the other home holds it with from and to as given.
	holds := func(what, fromHome, toHome, toName, energy, from, to string) {
		t.Helper()
		var p pledgeJSON
		c.json(&p, "--home", fromHome, "pledge", "--to", toName, "--energy", energy, "--window", "next-hour", "--json")
		poll(t, what, func() bool {
			var ps []pledgeJSON
			c.json(&ps, "--home", toHome, "pledges", "--json")
			for _, q := range ps {
				if q.ID == p.ID && q.From == from && q.To == to {
					return true
				}
			}
			return false
		})
	}
	follows("B to follow A to its new key", rotated.ID)

	holds("B to hold the new key's pledge", a, b, "house-B", "500Wh", rotated.ID, idb.ID)
	holds("A to hold B's pledge to its new key", b, a, "house-A", "300Wh", idb.ID, rotated.ID)
	// A recovery (the key forked, say, after a restore from a backup):
	// the recover message starts the newest key's feed; B reads it from a
	// key it does not know yet, checks it against A's old feed and
	// follows again.
	da.stop(t)
	c.ok("--home", a, "key", "recover", "--recovery-key", filepath.Join(a, "recovery.key"))
	var recovered idJSON
	c.json(&recovered, "--home", a, "id", "--json")
	if recovered.ID == rotated.ID {
		t.Fatalf("recover kept the id %s", recovered.ID)
	}
	if via == "hub" {
		// Through the hub the recovery reaches B even when the box no
		// longer holds any old key (lost with a stolen box, say).
		olds, err := filepath.Glob(filepath.Join(a, "identity.key.retired-*"))
		if err != nil || len(olds) != 2 {
			t.Fatalf("retired keys: %v, %v", olds, err)
		}
		for _, f := range olds {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
	}
	da = startDaemon(t, c, a)
	follows("B to follow A's recovery", recovered.ID)
	holds("B to hold the recovered key's pledge", a, b, "house-B", "200Wh", recovered.ID, idb.ID)
	for _, h := range []string{a, b} {
		var v verifyJSON
		c.json(&v, "--home", h, "ledger", "verify", "--json")
		if !v.OK {
			t.Fatalf("verify %s: %+v", filepath.Base(h), v)
		}
	}
	da.stop(t)
	db.stop(t)
}
