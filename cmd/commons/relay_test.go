package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/commons-energy/commons/share/relay/relaytest"
)

type relayStatusJSON struct {
	Relay *struct {
		URL       string  `json:"url"`
		Running   bool    `json:"running"`
		Connected bool    `json:"connected"`
		LastError *string `json:"last_error"`
		Cursor    uint64  `json:"cursor"`
	} `json:"relay"`
}

// TestRelayDaemons: households made with `init --listen none --relay URL`
// run as real daemon processes against a real nats-server that wants a
// password. A and B reach each other through the hub only; C's password
// is wrong: its daemon runs on and its status says why it is not linked.
// No password shows in a status, an id or a log.
func TestRelayDaemons(t *testing.T) {
	const pass = "s3cret-hub-pass"
	hub := relaytest.Start(t, relaytest.Options{User: "street", Password: pass})
	good := strings.Replace(hub.URL(), "nats://", "nats://street:"+pass+"@", 1)
	wrong := strings.Replace(hub.URL(), "nats://", "nats://street:wr0ng-pass@", 1)

	bin := buildCommons(t, t.TempDir())
	c := newCLI(t, bin)
	dir := t.TempDir()
	homes := map[string]string{}
	ids := map[string]idJSON{}
	urls := map[string]string{"A": good, "B": good, "C": wrong}
	for _, n := range []string{"A", "B", "C"} {
		url := urls[n]
		homes[n] = filepath.Join(dir, n)
		args := []string{"--home", homes[n], "init", "--name", "house-" + n, "--listen", "none", "--relay", url}
		if n != "A" { // A starts the community, the others join it
			args = append(args, "--join", ids["A"].Invite)
		}
		c.ok(args...)
		var id idJSON
		c.json(&id, "--home", homes[n], "id", "--json")
		if id.Listen != "none" || strings.Contains(id.Invite, "127.0.0.1") {
			t.Errorf("%s: id %+v; want listen none and an invite without an address", n, id)
		}
		ids[n] = id
		if out := c.ok("--home", homes[n], "id"); strings.Contains(out, "pass") || !strings.Contains(out, hub.URL()) {
			t.Errorf("%s: id shows the relay as:\n%s", n, out)
		}
	}
	for _, a := range []string{"A", "B", "C"} {
		for _, b := range []string{"A", "B", "C"} {
			if a != b {
				c.ok("--home", homes[a], "neighbours", "add", ids[b].Invite)
			}
		}
	}
	// Not running: the status names the relay, unlinked.
	var st relayStatusJSON
	c.json(&st, "--home", homes["A"], "status", "--json")
	if st.Relay == nil || st.Relay.Running || st.Relay.URL != hub.URL() {
		t.Errorf("status of a stopped household: %+v", st.Relay)
	}

	da, db, dc := startDaemon(t, c, homes["A"]), startDaemon(t, c, homes["B"]), startDaemon(t, c, homes["C"])
	for _, d := range []*daemonProc{da, db, dc} {
		poll(t, "the daemons to serve their sockets", func() bool { return strings.Contains(d.logs.String(), "household running") })
	}
	var p pledgeJSON
	c.json(&p, "--home", homes["A"], "pledge", "--to", "house-B", "--energy", "1.5kWh", "--window", "next-hour", "--json")
	poll(t, "B to hold A's pledge through the hub", func() bool {
		var ps []pledgeJSON
		c.json(&ps, "--home", homes["B"], "pledges", "--json")
		return len(ps) == 1 && ps[0].ID == p.ID && ps[0].From == ids["A"].ID
	})
	poll(t, "A's status to show the hub connected", func() bool {
		var st relayStatusJSON
		c.json(&st, "--home", homes["A"], "status", "--json")
		return st.Relay != nil && st.Relay.Running && st.Relay.Connected && st.Relay.URL == hub.URL()
	})
	if out := c.ok("--home", homes["A"], "status"); !strings.Contains(out, "relay:       "+hub.URL()+", connected") {
		t.Errorf("text status of A:\n%s", out)
	}

	poll(t, "C's status to show the refused credentials", func() bool {
		var st relayStatusJSON
		c.json(&st, "--home", homes["C"], "status", "--json")
		return st.Relay != nil && !st.Relay.Connected && st.Relay.LastError != nil &&
			strings.Contains(strings.ToLower(*st.Relay.LastError), "authorization")
	})
	out := c.run("", "--home", homes["C"], "status", "--json")
	if out.code != 0 || strings.Contains(out.stdout, "wr0ng") {
		t.Errorf("C's status: exit %d\n%s", out.code, out.stdout)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out.stdout), &raw); err != nil || raw["relay"] == nil {
		t.Errorf("status --json has no relay key: %s", out.stdout)
	}
	if text := c.ok("--home", homes["C"], "status"); !strings.Contains(text, "not connected") || !strings.Contains(strings.ToLower(text), "authorization") {
		t.Errorf("text status of C:\n%s", text)
	}
	// C still works: its pledge is signed and stored.
	c.ok("--home", homes["C"], "pledge", "--to", "house-A", "--energy", "200Wh", "--window", "next-hour")

	da.stop(t)
	db.stop(t)
	dc.stop(t)
	for n, d := range map[string]*daemonProc{"A": da, "B": db, "C": dc} {
		if logs := d.logs.String(); strings.Contains(logs, pass) || strings.Contains(logs, "wr0ng") {
			t.Errorf("daemon %s logged a password:\n%s", n, logs)
		}
	}
}
