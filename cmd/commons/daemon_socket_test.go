package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	daemonpkg "github.com/commons-energy/commons/share/daemon"
	"github.com/commons-energy/commons/share/node"
)

// waitSocket polls until home's daemon answers on its socket.
func waitSocket(t *testing.T, home string) {
	t.Helper()
	h, err := node.ResolveHome(home)
	if err != nil {
		t.Fatal(err)
	}
	poll(t, "the daemon of "+filepath.Base(home)+" to answer on its socket", func() bool {
		c, err := daemonpkg.Connect(context.Background(), h)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

func pledgesOf(t *testing.T, c *cli, home string) map[string]pledgeJSON {
	t.Helper()
	var ps []pledgeJSON
	c.json(&ps, "--home", home, "pledges", "--json")
	m := map[string]pledgeJSON{}
	for _, p := range ps {
		m[p.ID] = p
	}
	return m
}

// TestDaemonSocket: three households as three real `commons daemon`
// processes on loopback, driven only by the CLI while the daemons run:
// every command goes through the home's socket (the daemon holds the home
// lock, so a command that opened the home itself would fail). A pledges
// to B from a script, B accepts, C starts late and catches up, concurrent
// clients and cron pledges on one home neither fork its feed nor get a
// "home in use" error, and a stopped and restarted daemon resumes.
func TestDaemonSocket(t *testing.T) {
	bin := buildCommons(t, t.TempDir())
	c := newCLI(t, bin)
	dir := t.TempDir()
	homes := map[string]string{}
	ids := map[string]idJSON{}
	for _, n := range []string{"A", "B", "C"} {
		homes[n] = filepath.Join(dir, n)
		args := []string{"--home", homes[n], "init", "--name", "house-" + n, "--listen", freeAddr(t)}
		if n != "A" { // A starts the community, the others join it
			args = append(args, "--join", ids["A"].Invite)
		}
		c.ok(args...)
		var id idJSON
		c.json(&id, "--home", homes[n], "id", "--json")
		ids[n] = id
	}
	for _, a := range []string{"A", "B", "C"} {
		for _, b := range []string{"A", "B", "C"} {
			if a != b {
				c.ok("--home", homes[a], "neighbours", "add", ids[b].Invite)
			}
		}
	}
	da := startDaemon(t, c, homes["A"])
	db := startDaemon(t, c, homes["B"])
	waitSocket(t, homes["A"])
	waitSocket(t, homes["B"])

	// A's socket is private to its user.
	fi, err := os.Stat(filepath.Join(homes["A"], node.SocketFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("A's socket: %v, mode %v; want 0600", err, fi.Mode())
	}
	// A second daemon on a running home is refused and names the first.
	r := c.run("", "--home", homes["A"], "daemon")
	if r.code != exitFailure || !strings.Contains(r.stderr, "in use by process") {
		t.Errorf("second daemon on A: exit %d, %q; want exit 1 naming the running one", r.code, r.stderr)
	}

	// A pledges to B from a script, through A's daemon.
	var p pledgeJSON
	c.json(&p, "--home", homes["A"], "pledge", "--to", "house-B", "--energy", "1.5kWh", "--window", "next-hour", "--json")
	if p.State != "pledged" || p.EnergyWh != 1500 || p.From != ids["A"].ID || p.To != ids["B"].ID {
		t.Fatalf("pledge through A's daemon: %+v", p)
	}
	poll(t, "B's daemon to hold A's pledge", func() bool {
		q, ok := pledgesOf(t, c, homes["B"])[p.ID]
		return ok && q.State == "pledged" && q.EnergyWh == 1500 && q.From == ids["A"].ID
	})
	var acc pledgeJSON
	c.json(&acc, "--home", homes["B"], "accept", p.ID[:10], "--json")
	if acc.ID != p.ID || acc.State != "accepted" {
		t.Fatalf("accept through B's daemon: %+v", acc)
	}
	poll(t, "A to learn of B's acceptance", func() bool { return pledgesOf(t, c, homes["A"])[p.ID].State == "accepted" })

	// C was stopped during all this: it starts and catches up every
	// message it is entitled to (A: announce, recovery key, pledge; B:
	// announce, recovery key, accept; its own announce and recovery key).
	dc := startDaemon(t, c, homes["C"])
	waitSocket(t, homes["C"])
	poll(t, "C to catch up", func() bool { return messageCount(t, c, homes["C"]) == 8 })

	// Two clients reading at once and three cron-style pledges on A at
	// the same moment: all succeed, no fork, no "in use".
	own := func() int {
		n := 0
		for _, q := range pledgesOf(t, c, homes["A"]) {
			if q.From == ids["A"].ID {
				n++
			}
		}
		return n
	}
	before := own()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	runBg := func(args ...string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := c.run("", args...)
			if r.code != 0 {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("commons %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr))
				mu.Unlock()
			}
		}()
	}
	for range 2 {
		for range 3 {
			runBg("--home", homes["A"], "status", "--json")
			runBg("--home", homes["A"], "pledges", "--json")
		}
		runBg("--home", homes["A"], "neighbours", "list", "--json")
	}
	for i := range 3 {
		runBg("--home", homes["A"], "pledge", "--to", "house-C", "--energy", fmt.Sprintf("%dWh", 100+i), "--window", "next-hour", "--json")
	}
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	if got := own(); got != before+3 {
		t.Errorf("A holds %d own pledges after 3 concurrent pledges, want %d", got, before+3)
	}
	messageCount(t, c, homes["A"]) // ledger verify passes: one unbroken chain, no fork
	poll(t, "C to hold A's three new pledges", func() bool {
		n := 0
		for _, q := range pledgesOf(t, c, homes["C"]) {
			if q.From == ids["A"].ID && q.State == "pledged" {
				n++
			}
		}
		return n == 3
	})

	// A stops cleanly (socket gone); a cron pledge meanwhile opens the
	// home itself; the restarted daemon delivers it.
	da.stop(t)
	if _, err := os.Lstat(filepath.Join(homes["A"], node.SocketFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("A's socket is still there after the stop: %v", err)
	}
	var offline pledgeJSON
	c.json(&offline, "--home", homes["A"], "pledge", "--to", "house-B", "--energy", "200Wh", "--window", "next-hour", "--json")
	da = startDaemon(t, c, homes["A"])
	waitSocket(t, homes["A"])
	poll(t, "B to receive the pledge A made while its daemon was stopped", func() bool {
		_, ok := pledgesOf(t, c, homes["B"])[offline.ID]
		return ok
	})
	// B dies without cleaning up (kill -9, a power cut): its socket file
	// stays. Commands fall back to opening the home themselves, and the
	// next daemon replaces the stale socket.
	db.cmd.Process.Kill()
	<-db.done
	if _, err := os.Lstat(filepath.Join(homes["B"], node.SocketFile)); err != nil {
		t.Fatalf("after kill -9 the socket file should still be there: %v", err)
	}
	var accB pledgeJSON
	c.json(&accB, "--home", homes["B"], "accept", offline.ID, "--json") // in-process, under the lock
	if accB.State != "accepted" {
		t.Errorf("accept with B's daemon dead: %+v", accB)
	}
	db = startDaemon(t, c, homes["B"])
	waitSocket(t, homes["B"])
	poll(t, "A to learn of the acceptance B signed while its daemon was dead", func() bool {
		return pledgesOf(t, c, homes["A"])[offline.ID].State == "accepted"
	})
	for _, n := range []string{"A", "B", "C"} {
		messageCount(t, c, homes[n]) // ledger verify passes
	}
	da.stop(t)
	db.stop(t)
	dc.stop(t)
}
