package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/commons-energy/commons/ledger"
)

// buildCommons builds the commons binary into dir.
func buildCommons(tb testing.TB, dir string) string {
	tb.Helper()
	bin := filepath.Join(dir, "commons")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// cli runs the built binary as a real process.
type cli struct {
	tb  testing.TB
	bin string
	env []string
}

func newCLI(tb testing.TB, bin string) *cli {
	// Keep the user's real folders out of reach: no COMMONS_HOME, XDG
	// folders inside the test's temporary folder.
	tmp := tb.TempDir()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + tmp, "XDG_CONFIG_HOME=" + filepath.Join(tmp, "config"), "XDG_DATA_HOME=" + filepath.Join(tmp, "data"), "TZ=Europe/Brussels"}
	return &cli{tb: tb, bin: bin, env: env}
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs commons with args and stdin; it never fails the test itself.
func (c *cli) run(stdin string, args ...string) result {
	c.tb.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = c.env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		c.tb.Fatalf("run %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// ok runs commons and fails the test unless it exits 0.
func (c *cli) ok(args ...string) string {
	c.tb.Helper()
	r := c.run("", args...)
	if r.code != 0 {
		c.tb.Fatalf("commons %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func (c *cli) json(v any, args ...string) {
	c.tb.Helper()
	out := c.ok(args...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.tb.Fatalf("commons %s: bad JSON %q: %v", strings.Join(args, " "), out, err)
	}
}

type idJSON struct {
	ID, Name, Invite, Listen, Community string
}

type pledgeJSON struct {
	ID       string `json:"id"`
	From     string `json:"from"`
	To       string `json:"to"`
	FromName string `json:"from_name"`
	ToName   string `json:"to_name"`
	EnergyWh int64  `json:"energy_wh"`
	Window   struct {
		Start, End time.Time
	} `json:"window"`
	State       string `json:"state"`
	DeliveredWh *int64 `json:"delivered_wh"`
}

type verifyJSON struct {
	OK       bool `json:"ok"`
	Messages int  `json:"messages"`
	Problems []struct {
		ID, Reason string
	} `json:"problems"`
}

// twoHomes initialises homes A (Alice) and B (Bob) that know each other
// through their invites, as the README shows.
func twoHomes(t *testing.T, c *cli) (a, b string, ida, idb idJSON) {
	dir := t.TempDir()
	a, b = filepath.Join(dir, "A"), filepath.Join(dir, "B")
	c.ok("--home", a, "init", "--name", "Alice")
	c.json(&ida, "--home", a, "id", "--json")
	c.ok("--home", b, "init", "--name", "Bob", "--listen", "127.0.0.1:7421", "--join", ida.Invite)
	c.json(&idb, "--home", b, "id", "--json")
	if ida.Name != "Alice" || idb.Name != "Bob" || ida.ID == idb.ID || !strings.HasPrefix(ida.Invite, "commons2") || idb.Listen != "127.0.0.1:7421" || ida.Community != idb.Community {
		t.Fatalf("id --json: %+v %+v", ida, idb)
	}
	c.ok("--home", a, "neighbours", "add", idb.Invite)
	return a, b, ida, idb
}

// carry moves from's messages to to through a file, like e-mail would.
func carry(t *testing.T, c *cli, from, to string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "messages.txt")
	if err := os.WriteFile(f, []byte(c.ok("--home", from, "export-messages")), 0o600); err != nil {
		t.Fatal(err)
	}
	return c.ok("--home", to, "import", f)
}

func TestHouseholdCLI(t *testing.T) {
	bin := buildCommons(t, t.TempDir())

	t.Run("two homes", func(t *testing.T) {
		t.Parallel()
		c := newCLI(t, bin)
		a, b, ida, idb := twoHomes(t, c)

		var nbs []struct {
			ID, Name string
			LastSeen *time.Time `json:"last_seen"`
		}
		c.json(&nbs, "--home", a, "neighbours", "list", "--json")
		if len(nbs) != 1 || nbs[0].ID != idb.ID || nbs[0].Name != "Bob" {
			t.Fatalf("neighbours list --json = %+v", nbs)
		}

		var p pledgeJSON
		c.json(&p, "--home", a, "pledge", "--to", "Bob", "--energy", "1.5kWh", "--window", "next-hour", "--json")
		if p.EnergyWh != 1500 || p.From != ida.ID || p.To != idb.ID || p.State != "pledged" || p.ToName != "Bob" ||
			p.Window.End.Sub(p.Window.Start) != time.Hour || p.Window.Start.Minute() != 0 || len(p.ID) != 64 {
			t.Fatalf("pledge --json = %+v", p)
		}
		if out := carry(t, c, a, b); !strings.Contains(out, "imported 3 new messages") { // announce, recovery key, pledge
			t.Fatalf("import at B: %q", out)
		}
		var nbb []struct {
			Name        string
			StoredBytes int64            `json:"stored_bytes"`
			Refused     map[string]int64 `json:"refused"`
		}
		c.json(&nbb, "--home", b, "neighbours", "list", "--json")
		if len(nbb) != 1 || nbb[0].StoredBytes <= 0 || nbb[0].Refused == nil || len(nbb[0].Refused) != 0 {
			t.Fatalf("B neighbours list --json after the import = %+v; want Alice's stored bytes and no refusals", nbb)
		}
		if out := c.ok("--home", b, "neighbours", "list"); !strings.Contains(out, "STORED") || !strings.Contains(out, " B ") && !strings.Contains(out, "KiB") {
			t.Fatalf("B neighbours list:\n%s", out)
		}
		var bs []pledgeJSON
		c.json(&bs, "--home", b, "pledges", "--json")
		if len(bs) != 1 || bs[0].ID != p.ID || bs[0].State != "pledged" || bs[0].FromName != "Alice" {
			t.Fatalf("B pledges --json = %+v", bs)
		}
		c.ok("--home", b, "accept", p.ID)
		if out := c.ok("--home", b, "accept", p.ID); !strings.Contains(out, "is already accepted") {
			t.Fatalf("second accept: %q; want exit 0 and already accepted", out)
		}
		carry(t, c, b, a)
		for _, h := range []string{a, b} {
			var v verifyJSON
			c.json(&v, "--home", h, "ledger", "verify", "--json")
			if !v.OK || v.Messages != 6 || len(v.Problems) != 0 { // 2 announces, 2 recovery keys, pledge, accept
				t.Fatalf("ledger verify --json in %s = %+v", h, v)
			}
			var ps []pledgeJSON
			c.json(&ps, "--home", h, "pledges", "--json")
			if len(ps) != 1 || ps[0].ID != p.ID || ps[0].State != "accepted" || ps[0].EnergyWh != 1500 || ps[0].From != ida.ID || ps[0].To != idb.ID {
				t.Fatalf("pledges --json in %s = %+v", h, ps)
			}
			var open []pledgeJSON
			c.json(&open, "--home", h, "pledges", "--json", "--open")
			if len(open) != 1 {
				t.Fatalf("pledges --open in %s = %+v", h, open)
			}
		}
		// Re-importing is idempotent.
		if out := carry(t, c, a, b); !strings.Contains(out, "imported 0 new messages, 3 already stored") { // announce, recovery key, pledge
			t.Fatalf("second import: %q", out)
		}
		// Exports for spreadsheets carry the pledge.
		csv := c.ok("--home", a, "ledger", "export", "--format", "csv")
		if lines := strings.Split(strings.TrimSpace(csv), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], p.ID+","+ida.ID+","+idb.ID+",Alice,Bob,1500,1500,,") || !strings.Contains(lines[1], ",accepted,") {
			t.Fatalf("csv export:\n%s", csv)
		}
		out := filepath.Join(t.TempDir(), "ledger.jsonl")
		c.ok("--home", b, "ledger", "export", "--format", "jsonl", "--table", "pledges", "--out", out)
		data, err := os.ReadFile(out)
		var row pledgeJSON
		if err != nil || json.Unmarshal(data, &row) != nil || row.ID != p.ID || row.State != "accepted" {
			t.Fatalf("jsonl export %q: %v", data, err)
		}
		// Cancel before the window: both sides see it once carried.
		c.ok("--home", b, "cancel", p.ID[:12])
		carry(t, c, b, a)
		var ps []pledgeJSON
		c.json(&ps, "--home", a, "pledges", "--json")
		if ps[0].State != "cancelled" {
			t.Fatalf("after cancel: %+v", ps)
		}
		var st struct {
			Reading    json.RawMessage `json:"reading"`
			Meter      struct{ Online bool }
			Today      struct{ ImportWh, ExportWh int64 } `json:"today"`
			Neighbours int                                `json:"neighbours"`
			Open       int                                `json:"open_pledges"`
		}
		c.json(&st, "--home", a, "status", "--json")
		if st.Neighbours != 1 || st.Open != 0 || string(st.Reading) != "null" || st.Meter.Online {
			t.Fatalf("status --json = %+v", st)
		}
	})

	t.Run("idempotency key", func(t *testing.T) {
		t.Parallel()
		c := newCLI(t, bin)
		a, _, _, _ := twoHomes(t, c)
		pledge := func(energy string, extra ...string) result {
			return c.run("", append([]string{"--home", a, "pledge", "--to", "Bob", "--energy", energy, "--window", "next-hour", "--json", "--idempotency-key", "job-42"}, extra...)...)
		}
		var first, again pledgeJSON
		r := pledge("1,5 kWh")
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &first) != nil || first.EnergyWh != 1500 {
			t.Fatalf("first pledge: exit %d, %q, %q", r.code, r.stdout, r.stderr)
		}
		r = pledge("1500Wh")
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &again) != nil || again.ID != first.ID {
			t.Fatalf("retry: exit %d, %q, %q; want the first pledge %s", r.code, r.stdout, r.stderr, first.ID)
		}
		r = pledge("2kWh")
		if r.code != 2 || !strings.Contains(r.stderr, "already used for pledge "+first.ID) {
			t.Fatalf("same key, other energy: exit %d, %q; want exit 2 naming %s", r.code, r.stderr, first.ID)
		}
		var ps []pledgeJSON
		c.json(&ps, "--home", a, "pledges", "--json")
		if len(ps) != 1 {
			t.Fatalf("%d pledges after the retries, want 1", len(ps))
		}
		// --force lets an implausible pledge through.
		r = c.run("", "--home", a, "pledge", "--to", "Bob", "--energy", "1.5MWh", "--window", "next-hour", "--force", "--json")
		var big pledgeJSON
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &big) != nil || big.EnergyWh != 1_500_000 {
			t.Fatalf("--force: exit %d, %q, %q", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		t.Parallel()
		c := newCLI(t, bin)
		a, b, _, idb := twoHomes(t, c)
		c.ok("--home", a, "pledge", "--to", "Bob", "--energy", "2kWh", "--window", "next-hour")
		good := c.ok("--home", a, "export-messages")
		dir := t.TempDir()
		write := func(name, s string) string {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}
		// Flip one base64 character inside the second message's (the
		// recovery key's; the pledge after it is then a gap) signature: bytes 158..221, on the message's third
		// 76-column line (bytes 114..170), column 64 = byte 162.
		lines := strings.Split(good, "\n")
		second := 0
		for i, l := range lines {
			if l == "" {
				second = i + 1
				break
			}
		}
		l := []byte(lines[second+2])
		l[64] = map[bool]byte{true: 'B', false: 'A'}[l[64] == 'A']
		lines[second+2] = string(l)
		forged := write("forged.txt", strings.Join(lines, "\n"))
		truncated := write("truncated.txt", good[:len(good)/2])
		empty := filepath.Join(t.TempDir(), "never-initialised")

		tests := []struct {
			name   string
			args   []string
			code   int
			stderr string
		}{
			{"unknown neighbour", []string{"--home", a, "pledge", "--to", "Zoe", "--energy", "1kWh", "--window", "next-hour"}, 3, "no neighbour called \"Zoe\""},
			{"energy without unit", []string{"--home", a, "pledge", "--to", "Bob", "--energy", "1.5", "--window", "next-hour"}, 2, "finer than 1 Wh"},
			{"fractional Wh", []string{"--home", a, "pledge", "--to", "Bob", "--energy", "1.0005kWh", "--window", "next-hour"}, 2, "finer than 1 Wh"},
			{"window without end", []string{"--home", a, "pledge", "--to", "Bob", "--energy", "1kWh", "--window", "12:00"}, 2, "START/END"},
			{"reversed window", []string{"--home", a, "pledge", "--to", "Bob", "--energy", "1kWh", "--window", "14:00/13:00"}, 2, "the window ends before it starts: \"14:00/13:00\""},
			{"reversed dash window", []string{"--home", a, "pledge", "--to", "Bob", "--energy", "1kWh", "--window", "14:00-13:00"}, 2, "the window ends before it starts"},
			{"zero window", []string{"--home", a, "pledge", "--to", "Bob", "--energy", "1kWh", "--window", "14:00/14:00"}, 2, "the window ends before it starts"},
			{"MWh above the connection", []string{"--home", a, "pledge", "--to", "Bob", "--energy", "1.5MWh", "--window", "next-hour"}, 2, "1.5 MWh is more than this home can export in 1h0m0s (25 A × 3 phases × 230 V: at most 17.25 kWh); pass --force"},
			{"above the pledge maximum", []string{"--home", a, "pledge", "--to", "Bob", "--energy", "1001MWh", "--window", "next-hour"}, 2, "at most 1000 MWh"},
			{"pledge to yourself", []string{"--home", a, "pledge", "--to", "alice", "--energy", "1kWh", "--window", "next-hour"}, 2, "that is you"},
			{"window bad clock", []string{"--home", a, "pledge", "--to", "Bob", "--energy", "1kWh", "--window", "25:00/26:00"}, 2, "hours run 00-23"},
			{"window in the past", []string{"--home", a, "pledge", "--to", "Bob", "--energy", "1kWh", "--window", "2020-01-01T10:00:00Z/2020-01-01T11:00:00Z"}, 2, "ends in the future"},
			{"missing flag", []string{"--home", a, "pledge", "--to", "Bob", "--window", "next-hour"}, 2, "pledge needs --energy"},
			{"unknown flag", []string{"--home", a, "pledge", "--fast"}, 2, "unknown flag: --fast"},
			{"uninitialised home", []string{"--home", empty, "pledges"}, 1, "household not initialised: no " + filepath.Join(empty, "config.json") + "; run 'commons --home " + empty + " init --name NAME' first"},
			{"init without name", []string{"--home", empty, "init"}, 2, "init needs a display name"},
			{"unknown pledge", []string{"--home", b, "accept", "abcdef0123"}, 3, "no pledge abcdef0123"},
			{"bad pledge id", []string{"--home", b, "accept", "zz"}, 2, "give the hex id"},
			{"bad invite", []string{"--home", a, "neighbours", "add", "commons1xyz"}, 2, "invite"},
			{"remove unknown", []string{"--home", a, "neighbours", "remove", "Zoe"}, 3, "no neighbour called \"Zoe\""},
			{"missing import file", []string{"--home", b, "import", filepath.Join(dir, "nope.txt")}, 1, "no such file or directory"},
			{"truncated import", []string{"--home", b, "import", truncated}, 4, "truncated, export it again; nothing was imported"},
			{"export format", []string{"--home", a, "ledger", "export", "--format", "xml"}, 2, "use csv or jsonl"},
			{"unknown since", []string{"--home", a, "export-messages", "--since", "abcd1234"}, 3, "no stored message has that id"},
		}
		for _, tt := range tests {
			r := c.run("", tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", tt.name, r.code, r.stderr, tt.code, tt.stderr)
			}
			if n := strings.Count(strings.TrimSuffix(r.stderr, "\n"), "\n"); tt.name != "unknown flag" && n != 0 {
				t.Errorf("%s: stderr has %d lines, want one: %q", tt.name, n+1, r.stderr)
			}
			if strings.Contains(r.stderr, "goroutine") || strings.Contains(r.stderr, "panic") {
				t.Errorf("%s: stack trace on stderr: %s", tt.name, r.stderr)
			}
		}

		// A home owned by another process: one line naming it, exit 1.
		lock, err := ledger.LockHome(a, "commons daemon")
		if err != nil {
			t.Fatal(err)
		}
		r0 := c.run("", "--home", a, "pledge", "--to", "Bob", "--energy", "1kWh", "--window", "next-hour")
		lock.Unlock()
		if r0.code != 1 || !strings.Contains(r0.stderr, "is in use by process") || !strings.Contains(r0.stderr, "(commons daemon)") || strings.Count(r0.stderr, "\n") != 1 {
			t.Fatalf("pledge on a busy home: %+v", r0)
		}

		// A forged message is rejected with its reason and stored nowhere;
		// the genuine one beside it (the announce) is stored.
		before := c.ok("--home", b, "ledger", "verify")
		r := c.run("", "--home", b, "import", forged)
		if r.code != 4 || !strings.Contains(r.stderr, "rejected message 2 ") || !strings.Contains(r.stderr, "[bad_signature]") ||
			!strings.Contains(r.stdout, "imported 1 new messages, 0 already stored, 2 rejected") {
			t.Fatalf("forged import: exit %d, stderr %q", r.code, r.stderr)
		}
		var v verifyJSON
		c.json(&v, "--home", b, "ledger", "verify", "--json")
		if !v.OK {
			t.Fatalf("verify after forged import: %+v (before: %s)", v, before)
		}
		var ps []pledgeJSON
		c.json(&ps, "--home", b, "pledges", "--json")
		if len(ps) != 0 {
			t.Fatalf("a forged pledge was stored: %+v", ps)
		}
		// The genuine block still imports afterwards, from stdin.
		if r := c.run(good, "--home", b, "import", "-"); r.code != 0 || !strings.Contains(r.stdout, "imported 2 new messages, 1 already stored") {
			t.Fatalf("genuine import after forged one: %+v", r)
		}
		_ = idb
	})

	t.Run("pledge --wait", func(t *testing.T) {
		t.Parallel()
		c := newCLI(t, bin)
		a, b, _, _ := twoHomes(t, c)
		// No answer: exit 5, the pledge stays stored.
		r := c.run("", "--home", a, "pledge", "--to", "Bob", "--energy", "1kWh", "--window", "next-hour", "--wait", "600ms")
		if r.code != 5 || !strings.Contains(r.stderr, "no answer from Bob within 600ms") {
			t.Fatalf("--wait without answer: %+v", r)
		}
		// An answer imported while the command waits ends the wait: the
		// waiting pledge does not hold the home's lock.
		cmd := exec.Command(bin, "--home", a, "pledge", "--to", "Bob", "--energy", "2kWh", "--window", "next-hour", "--wait", "60s")
		cmd.Env = c.env
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		var out bytes.Buffer
		buf := make([]byte, 4096)
		id := ""
		for id == "" {
			k, err := stdout.Read(buf)
			out.Write(buf[:k])
			if err != nil {
				t.Fatalf("pledge --wait printed no id: %q, %v, stderr %q", out.String(), err, errb.String())
			}
			for _, l := range strings.Split(out.String(), "\n") {
				if v, ok := strings.CutPrefix(l, "id: "); ok && len(v) == 64 {
					id = v
				}
			}
		}
		carry(t, c, a, b)
		c.ok("--home", b, "accept", id)
		carry(t, c, b, a)
		rest, _ := io.ReadAll(stdout)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("pledge --wait after the answer: %v, stderr %q", err, errb.String())
		}
		if !strings.Contains(string(rest), "Bob answered: accepted") {
			t.Fatalf("pledge --wait output: %q", out.String()+string(rest))
		}
	})

	t.Run("xdg folders", func(t *testing.T) {
		t.Parallel()
		c := newCLI(t, bin)
		c.ok("init", "--name", "Carol")
		var id idJSON
		c.json(&id, "id", "--json")
		if id.Name != "Carol" {
			t.Fatalf("id without --home: %+v", id)
		}
		var cfgDir, dataDir string
		for _, e := range c.env {
			if v, ok := strings.CutPrefix(e, "XDG_CONFIG_HOME="); ok {
				cfgDir = filepath.Join(v, "commons")
			}
			if v, ok := strings.CutPrefix(e, "XDG_DATA_HOME="); ok {
				dataDir = filepath.Join(v, "commons")
			}
		}
		for _, f := range []string{filepath.Join(cfgDir, "config.json"), filepath.Join(cfgDir, "identity.key"), filepath.Join(dataDir, "ledger.db")} {
			if _, err := os.Stat(f); err != nil {
				t.Errorf("expected %s: %v", f, err)
			}
		}
		if st, err := os.Stat(filepath.Join(cfgDir, "identity.key")); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("identity key mode: %v, %v", st, err)
		}
		// COMMONS_HOME stands for --home.
		home := filepath.Join(t.TempDir(), "D")
		c2 := &cli{tb: t, bin: bin, env: append(append([]string{}, c.env...), "COMMONS_HOME="+home)}
		c2.ok("init", "--name", "Dave")
		if _, err := os.Stat(filepath.Join(home, "config.json")); err != nil {
			t.Errorf("COMMONS_HOME: %v", err)
		}
	})

	t.Run("crash loop", func(t *testing.T) {
		t.Parallel()
		c := newCLI(t, bin)
		a, _, _, _ := twoHomes(t, c)
		seed := uint64(time.Now().UnixNano())
		t.Logf("seed %d", seed)
		rng := rand.New(rand.NewPCG(seed, 1))
		// Calibrate: kill points spread over 0..2x one pledge's run time,
		// so some kills land before, during and after the commit.
		// The median of three runs resists a load spike.
		var runs []time.Duration
		for range 3 {
			start := time.Now()
			c.ok("--home", a, "pledge", "--to", "Bob", "--energy", "1Wh", "--window", "next-hour")
			runs = append(runs, time.Since(start))
		}
		slices.Sort(runs)
		span := runs[1] * 2
		var returned []string
		killed := 0
		for i := 0; i < 40; i++ {
			cmd := exec.Command(bin, "--home", a, "pledge", "--to", "Bob", "--energy", "1Wh", "--window", "next-hour", "--json")
			cmd.Env = c.env
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			delay := time.Duration(rng.Int64N(int64(span)))
			var err error
			select {
			case err = <-done:
			case <-time.After(delay):
				cmd.Process.Signal(syscall.SIGKILL)
				err = <-done
			}
			if err == nil {
				var p pledgeJSON
				if jerr := json.Unmarshal(out.Bytes(), &p); jerr != nil {
					t.Fatalf("exit 0 without a pledge on stdout: %q", out.String())
				}
				returned = append(returned, p.ID)
				continue
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatal(err)
			}
			if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
				t.Fatalf("pledge %d failed without being killed: %v\n%s", i, err, errb.String())
			}
			killed++
		}
		t.Logf("%d pledges returned 0, %d killed (kill points up to %s)", len(returned), killed, span)
		if len(returned) == 0 || killed == 0 {
			t.Fatalf("the kill points missed: %d returned, %d killed; the loop tested nothing", len(returned), killed)
		}
		var v verifyJSON
		c.json(&v, "--home", a, "ledger", "verify", "--json")
		if !v.OK {
			t.Fatalf("ledger verify after the crash loop: %+v", v)
		}
		var ps []pledgeJSON
		c.json(&ps, "--home", a, "pledges", "--json")
		have := map[string]bool{}
		for _, p := range ps {
			have[p.ID] = true
		}
		for _, id := range returned {
			if !have[id] {
				t.Errorf("pledge %s returned 0 but is not in the ledger", id)
			}
		}
		// Every message in the ledger is whole and verified: the announce
		// and the recovery key, plus one per stored pledge (the
		// calibration one included).
		if v.Messages != 2+len(ps) {
			t.Errorf("ledger holds %d messages, want announce + recovery key + %d pledges", v.Messages, len(ps))
		}
	})
}

// BenchmarkPledgeCommand measures `commons pledge` as a script runs it:
// from process start to its durable exit (the pledge signed and fsynced in
// the ledger), wall time per op, plus the process's CPU time (user+sys)
// per op, which is steadier than wall time on a busy machine.
func BenchmarkPledgeCommand(b *testing.B) {
	bin := buildCommons(b, b.TempDir())
	c := newCLI(b, bin)
	dir := b.TempDir()
	a, bob := filepath.Join(dir, "A"), filepath.Join(dir, "B")
	c.ok("--home", a, "init", "--name", "Alice")
	var ida idJSON
	c.json(&ida, "--home", a, "id", "--json")
	c.ok("--home", bob, "init", "--name", "Bob", "--join", ida.Invite)
	var idb idJSON
	c.json(&idb, "--home", bob, "id", "--json")
	c.ok("--home", a, "neighbours", "add", idb.Invite)
	var cpu time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(bin, "--home", a, "pledge", "--to", "Bob", "--energy", "1.5kWh", "--window", "next-hour")
		cmd.Env = c.env
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("pledge: %v\n%s", err, out)
		}
		cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// init without an invite starts a new community, so two streets that keep
// the default settings are still two communities; init --join takes the
// inviter's community and neighbour; a bad --join writes nothing.
func TestInitStartsOrJoinsCommunity(t *testing.T) {
	c := newCLI(t, buildCommons(t, t.TempDir()))
	dir := t.TempDir()
	a, b, other, bad := filepath.Join(dir, "A"), filepath.Join(dir, "B"), filepath.Join(dir, "C"), filepath.Join(dir, "D")
	out := c.ok("--home", a, "init", "--name", "Alice")
	if !strings.Contains(out, "This is a new community") || !strings.Contains(out, "--join INVITE") {
		t.Fatalf("init output:\n%s", out)
	}
	c.ok("--home", other, "init", "--name", "Carol")
	var ida, idb, idc idJSON
	c.json(&ida, "--home", a, "id", "--json")
	c.json(&idc, "--home", other, "id", "--json")
	if ida.Community == idc.Community || !strings.HasPrefix(ida.Invite, "commons2") {
		t.Fatalf("two inits with the same settings: communities %s and %s, invite %s", ida.Community, idc.Community, ida.Invite)
	}
	r := c.run("", "--home", other, "neighbours", "add", ida.Invite)
	if r.code != exitUsage || !strings.Contains(r.stderr, "init --join INVITE") || !strings.Contains(r.stderr, ida.Community[:12]) || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("add across communities: exit %d, %q", r.code, r.stderr)
	}

	out = c.ok("--home", b, "init", "--name", "Bob", "--join", ida.Invite)
	if !strings.Contains(out, "Joined community \"commons\" with neighbour Alice") {
		t.Fatalf("init --join output:\n%s", out)
	}
	c.json(&idb, "--home", b, "id", "--json")
	var ns []struct{ ID, Name string }
	c.json(&ns, "--home", b, "neighbours", "list", "--json")
	if idb.Community != ida.Community || len(ns) != 1 || ns[0].ID != ida.ID {
		t.Fatalf("after --join: community %s (Alice's %s), neighbours %+v", idb.Community, ida.Community, ns)
	}

	r = c.run("", "--home", bad, "init", "--name", "Dan", "--join", ida.Invite[:40])
	if r.code != exitUsage || !strings.Contains(r.stderr, "--join: invite") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("bad --join: exit %d, %q", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(bad, "config.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a refused --join left a config: %v", err)
	}
}
