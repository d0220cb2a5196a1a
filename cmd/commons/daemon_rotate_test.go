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
	neighbourIDs := func(home string) []string {
		var ns []struct {
			ID string `json:"id"`
		}
		c.json(&ns, "--home", home, "neighbours", "list", "--json")
		var ids []string
		for _, n := range ns {
			ids = append(ids, n.ID)
		}
		return ids
	}
	poll(t, "B to follow A to its new key", func() bool {
		ids := neighbourIDs(b)
		return len(ids) == 1 && ids[0] == rotated.ID
	})

	var p pledgeJSON
	c.json(&p, "--home", a, "pledge", "--to", "house-B", "--energy", "500Wh", "--window", "next-hour", "--json")
	poll(t, "B to hold the new key's pledge", func() bool {
		var ps []pledgeJSON
		c.json(&ps, "--home", b, "pledges", "--json")
		for _, q := range ps {
			if q.ID == p.ID && q.From == rotated.ID {
				return true
			}
		}
		return false
	})
	var q pledgeJSON
	c.json(&q, "--home", b, "pledge", "--to", "house-A", "--energy", "300Wh", "--window", "next-hour", "--json")
	poll(t, "A to hold B's pledge to its new key", func() bool {
		var ps []pledgeJSON
		c.json(&ps, "--home", a, "pledges", "--json")
		for _, x := range ps {
			if x.ID == q.ID && x.To == rotated.ID {
				return true
			}
		}
		return false
	})
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
	poll(t, "B to follow A's recovery", func() bool {
		ids := neighbourIDs(b)
		return len(ids) == 1 && ids[0] == recovered.ID
	})
	var r pledgeJSON
	c.json(&r, "--home", a, "pledge", "--to", "house-B", "--energy", "200Wh", "--window", "next-hour", "--json")
	poll(t, "B to hold the recovered key's pledge", func() bool {
		var ps []pledgeJSON
		c.json(&ps, "--home", b, "pledges", "--json")
		for _, x := range ps {
			if x.ID == r.ID && x.From == recovered.ID {
				return true
			}
		}
		return false
	})
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
