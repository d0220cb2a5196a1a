package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/commons-energy/commons/assets"
	"github.com/commons-energy/commons/share"
	"github.com/commons-energy/commons/share/node"
	"github.com/commons-energy/commons/share/peer"
)

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// lockedBuffer is a goroutine-safe buffer for a process's stderr.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// daemonProc is a running `commons daemon` process.
type daemonProc struct {
	cmd  *exec.Cmd
	logs *lockedBuffer
	done chan error
}

func startDaemon(t testing.TB, c *cli, home string) *daemonProc {
	t.Helper()
	return startDaemonIn(t, c, home, "")
}

// startDaemonIn starts the daemon inside network namespace ns ("" = this
// one) with `ip netns exec`, which execs it: the pid is the daemon's.
func startDaemonIn(t testing.TB, c *cli, home, ns string) *daemonProc {
	t.Helper()
	d := &daemonProc{logs: &lockedBuffer{}, done: make(chan error, 1)}
	args := []string{c.bin, "--home", home, "daemon", "--log-level", "debug"}
	if ns != "" {
		args = append([]string{"ip", "netns", "exec", ns}, args...)
	}
	d.cmd = exec.Command(args[0], args[1:]...)
	d.cmd.Env = c.env
	d.cmd.Stderr = d.logs
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			d.cmd.Process.Kill()
			<-d.done
		}
		if t.Failed() {
			t.Logf("daemon %s log:\n%s", filepath.Base(home), d.logs.String())
		}
	})
	return d
}

// stop sends SIGTERM and requires a clean exit 0.
func (d *daemonProc) stop(t testing.TB) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.done:
		if err != nil {
			t.Fatalf("daemon exit after SIGTERM: %v\n%s", err, d.logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon did not stop within 30 s of SIGTERM\n%s", d.logs.String())
	}
	if !strings.Contains(d.logs.String(), "msg=stopped") {
		t.Errorf("daemon log has no clean stop:\n%s", d.logs.String())
	}
}

// poll retries cond until it holds or a generous deadline passes.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func messageCount(t *testing.T, c *cli, home string) int {
	t.Helper()
	var v verifyJSON
	c.json(&v, "--home", home, "ledger", "verify", "--json")
	if !v.OK {
		t.Fatalf("ledger verify of %s: %+v", home, v)
	}
	return v.Messages
}

// TestDaemons: three households A, B, C as three real daemon processes
// on loopback. A's pledge to B reaches B; C, offline meanwhile, starts
// later and catches up; a stopped and restarted daemon resumes; bad
// traffic sent to a daemon is rejected and nothing is stored.
func TestDaemons(t *testing.T) {
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
	// A pledges to B from a script (before its daemon owns the home).
	var p pledgeJSON
	c.json(&p, "--home", homes["A"], "pledge", "--to", "house-B", "--energy", "1.5kWh", "--window", "next-hour", "--json")

	da := startDaemon(t, c, homes["A"])
	db := startDaemon(t, c, homes["B"])
	poll(t, "B to hold A's pledge", func() bool {
		var ps []pledgeJSON
		c.json(&ps, "--home", homes["B"], "pledges", "--json")
		return len(ps) == 1 && ps[0].ID == p.ID && ps[0].EnergyWh == 1500 && ps[0].From == ids["A"].ID
	})

	// C was offline: it starts and catches up with everything of A and B
	// (3 announces, 3 recovery keys + the pledge).
	dc := startDaemon(t, c, homes["C"])
	poll(t, "C to catch up", func() bool { return messageCount(t, c, homes["C"]) == 7 })

	// With the daemons running, a script on A pledges again: the command
	// goes through A's daemon (its socket), which signs, stores and pushes.
	var p2 pledgeJSON
	c.json(&p2, "--home", homes["A"], "pledge", "--to", "house-B", "--energy", "500Wh", "--window", "next-hour", "--json")
	poll(t, "B to hold A's second pledge", func() bool {
		var ps []pledgeJSON
		c.json(&ps, "--home", homes["B"], "pledges", "--json")
		for _, q := range ps {
			if q.ID == p2.ID && q.EnergyWh == 500 {
				return true
			}
		}
		return false
	})

	// B stops cleanly and resumes.
	db.stop(t)
	db = startDaemon(t, c, homes["B"])
	poll(t, "restarted B to serve again", func() bool {
		return strings.Contains(db.logs.String(), "household running")
	})

	// Bad traffic to B, sent as neighbour A (with A's key) and as a stranger.
	before := messageCount(t, c, homes["B"])
	rejectionsAgainst(t, c, homes, ids)
	if got := messageCount(t, c, homes["B"]); got != before {
		t.Errorf("B holds %d messages after the bad traffic, want %d", got, before)
	}
	da.stop(t)
	db.stop(t)
	dc.stop(t)
}

func rejectionsAgainst(t *testing.T, c *cli, homes map[string]string, ids map[string]idJSON) {
	t.Helper()
	ha, err := node.ResolveHome(homes["A"])
	if err != nil {
		t.Fatal(err)
	}
	identA, err := share.LoadIdentity(ha.KeyPath())
	if err != nil {
		t.Fatal(err)
	}
	keyA := ed25519.NewKeyFromSeed(identA.Seed())
	idB, err := share.ParseHouseholdID(ids["B"].ID)
	if err != nil {
		t.Fatal(err)
	}
	client, err := peer.NewClient(peer.ClientConfig{Key: keyA, Peer: idB, Addr: ids["B"].Listen, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()
	var cfg node.Config
	cfg, err = node.LoadConfig(ha)
	if err != nil {
		t.Fatal(err)
	}
	community := cfg.Manifest().ID()

	stranger, err := share.GenerateIdentity(nil)
	if err != nil {
		t.Fatal(err)
	}
	content, _ := share.EncodeContent(&share.Announce{Name: "stranger"})
	fromStranger, err := stranger.Sign(share.Draft{Community: community, Seq: 1, Created: time.Now(), Kind: share.KindAnnounce, Content: content})
	if err != nil {
		t.Fatal(err)
	}
	forged := bytes.Clone(fromStranger.Bytes())
	copy(forged[38:70], identA.ID().PublicKey()) // claim to be A; the signature no longer fits
	big := make([][]byte, 0, 200)
	for range 200 {
		big = append(big, bytes.Repeat([]byte{1}, share.MaxMessageSize))
	}

	cases := []struct {
		name string
		raws [][]byte
		code int
	}{
		{"forged", [][]byte{forged}, http.StatusBadRequest},
		{"unknown author", [][]byte{fromStranger.Bytes()}, http.StatusForbidden},
		{"oversized body", big, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range cases {
		_, err := client.Push(ctx, tt.raws)
		var se *peer.StatusError
		if !errors.As(err, &se) || se.Code != tt.code {
			t.Errorf("%s: err = %v, want HTTP %d", tt.name, err, tt.code)
		}
	}
	// A replay of A's own pledge is a duplicate, not a second copy.
	raws, err := exportOwn(t, c, homes["A"])
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.Push(ctx, raws)
	if err != nil || res.Added != 0 || res.Duplicates != len(raws) {
		t.Errorf("replay: %+v, %v; want all %d duplicates", res, err, len(raws))
	}

	// A stranger's TLS client is refused in the handshake.
	sc, err := peer.NewClient(peer.ClientConfig{Key: ed25519.NewKeyFromSeed(stranger.Seed()), Peer: idB, Addr: ids["B"].Listen, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Heads(ctx); err == nil {
		t.Error("a stranger's client got B's heads")
	}
	sc.Close()

	// Slow loris: a TLS connection that never finishes its headers is
	// closed by the daemon (default header timeout 5 s).
	cert, err := peer.Certificate(keyA)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", ids["B"].Listen, peer.ClientTLS(cert, idB))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	io.WriteString(conn, "GET /v1/heads HTTP/1.1\r\n")
	_, err = io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("slow-loris connection still open after 60 s")
	}
}

// exportOwn returns the exact bytes of home's own messages, read from its
// ledger file without taking the home's lock.
func exportOwn(t *testing.T, c *cli, home string) ([][]byte, error) {
	t.Helper()
	h, err := node.ResolveHome(home)
	if err != nil {
		return nil, err
	}
	n, err := node.Open(context.Background(), h, node.Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer n.Close()
	return n.Ledger().Range(context.Background(), n.Key().ID(), 1, 0)
}

// TestSystemdUnit: the embedded unit starts the daemon with flags the
// daemon command accepts, and systemd's own checker (where installed)
// finds nothing wrong with it.
func TestSystemdUnit(t *testing.T) {
	unit := string(assets.SystemdUnit())
	var execStart string
	for _, line := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			execStart = v
		}
	}
	fields := strings.Fields(execStart)
	if len(fields) < 2 || filepath.Base(fields[0]) != "commons" || fields[1] != "daemon" {
		t.Fatalf("ExecStart=%q: want commons daemon ...", execStart)
	}
	cmd := newDaemonCmd(&globalFlags{})
	if err := cmd.ParseFlags(fields[2:]); err != nil {
		t.Fatalf("ExecStart flags %v: %v", fields[2:], err)
	}
	if f := cmd.Flags().Lookup("log-format"); f == nil || f.Value.String() != "json" {
		t.Errorf("the unit should log JSON for the journal")
	}
	for _, want := range []string{"Restart=on-failure", "SupplementaryGroups=dialout", "ProtectSystem=strict", "Environment=COMMONS_HOME="} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %s", want)
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: unit syntax not checked by systemd")
		return
	}
	// systemd-analyze verify wants the ExecStart binary to exist; any
	// executable will do for checking the unit's syntax.
	bin, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no 'true' executable to stand in for the binary")
	}
	f := filepath.Join(t.TempDir(), "commons.service")
	if err := os.WriteFile(f, []byte(strings.Replace(unit, fields[0], bin, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", f).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
