package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// netns runs `ip` with args and fails the test on error.
func netns(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestDaemonsAcrossNetworkNamespaces: households A, B and C run in three
// network namespaces joined by veth pairs on a bridge in a fourth, so
// their traffic really crosses network interfaces. A's pledge reaches B,
// and C, started later, catches up. Needs root and iproute2 (as in CI);
// skipped with the reason otherwise.
func TestDaemonsAcrossNetworkNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces (ip netns); run the tests as root, as CI does")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip command to create network namespaces")
	}
	tag := strconv.Itoa(os.Getpid() % 100000)
	hub := "cm" + tag + "-hub"
	if out, err := exec.Command("ip", "netns", "add", hub).CombinedOutput(); err != nil {
		t.Skipf("this machine does not allow network namespaces (ip netns add: %v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", hub).Run() })
	netns(t, "-n", hub, "link", "add", "br0", "type", "bridge")
	netns(t, "-n", hub, "link", "set", "br0", "up")

	bin := buildCommons(t, t.TempDir())
	c := newCLI(t, bin)
	dir := t.TempDir()
	names := []string{"A", "B", "C"}
	homes, ids, spaces := map[string]string{}, map[string]idJSON{}, map[string]string{}
	for i, n := range names {
		ns := fmt.Sprintf("cm%s-%s", tag, strings.ToLower(n))
		netns(t, "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		host, peerEnd := "eth0", fmt.Sprintf("v%s", strings.ToLower(n))
		netns(t, "-n", hub, "link", "add", peerEnd, "type", "veth", "peer", "name", host, "netns", ns)
		netns(t, "-n", hub, "link", "set", peerEnd, "master", "br0", "up")
		ip := fmt.Sprintf("10.77.0.%d", i+1)
		netns(t, "-n", ns, "addr", "add", ip+"/24", "dev", host)
		netns(t, "-n", ns, "link", "set", host, "up")
		netns(t, "-n", ns, "link", "set", "lo", "up")
		spaces[n] = ns
		homes[n] = filepath.Join(dir, n)
		args := []string{"--home", homes[n], "init", "--name", "house-" + n, "--listen", ip + ":7420"}
		if n != "A" { // A starts the community, the others join it
			args = append(args, "--join", ids["A"].Invite)
		}
		c.ok(args...)
		var id idJSON
		c.json(&id, "--home", homes[n], "id", "--json")
		ids[n] = id
	}
	for _, a := range names {
		for _, b := range names {
			if a != b {
				c.ok("--home", homes[a], "neighbours", "add", ids[b].Invite)
			}
		}
	}
	var p pledgeJSON
	c.json(&p, "--home", homes["A"], "pledge", "--to", "house-B", "--energy", "2kWh", "--window", "next-hour", "--json")

	da := startDaemonIn(t, c, homes["A"], spaces["A"])
	db := startDaemonIn(t, c, homes["B"], spaces["B"])
	poll(t, "B to hold A's pledge across namespaces", func() bool {
		var ps []pledgeJSON
		c.json(&ps, "--home", homes["B"], "pledges", "--json")
		return len(ps) == 1 && ps[0].ID == p.ID && ps[0].EnergyWh == 2000
	})
	dc := startDaemonIn(t, c, homes["C"], spaces["C"])
	poll(t, "C to catch up across namespaces", func() bool { return messageCount(t, c, homes["C"]) == 7 }) // 3 announces, 3 recovery keys, the pledge

	// The bytes went through C's veth interface.
	out, err := exec.Command("ip", "netns", "exec", spaces["C"], "cat", "/sys/class/net/eth0/statistics/rx_bytes").Output()
	if err != nil {
		t.Fatal(err)
	}
	if rx, _ := strconv.Atoi(strings.TrimSpace(string(out))); rx < 1000 {
		t.Errorf("C's eth0 received %d bytes, want the TLS traffic of a catch-up", rx)
	}
	da.stop(t)
	db.stop(t)
	dc.stop(t)
}
