package main

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeyCLI: init writes the recovery key and says to move it; key
// rotate and key recover replace the key and the neighbour follows
// through export-messages and import; bad input exits with its code and a
// one-line error.
func TestKeyCLI(t *testing.T) {
	bin := buildCommons(t, t.TempDir())
	c := newCLI(t, bin)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "A"), filepath.Join(dir, "B")
	out := c.ok("--home", a, "init", "--name", "Alice")
	rk := filepath.Join(a, "recovery.key")
	if !strings.Contains(out, "recovery key: "+rk) || !strings.Contains(out, "Move this file off the box") {
		t.Fatalf("init output does not name the recovery key:\n%s", out)
	}
	if st, err := os.Stat(rk); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("recovery key file: %v, %v", st, err)
	}
	var ida, idb idJSON
	c.json(&ida, "--home", a, "id", "--json")
	c.ok("--home", b, "init", "--name", "Bob", "--listen", "none", "--join", ida.Invite)
	c.json(&idb, "--home", b, "id", "--json")
	c.ok("--home", a, "neighbours", "add", idb.Invite)
	carry(t, c, a, b)

	// Bad input: one line on stderr and the exit code.
	garbage := filepath.Join(dir, "garbage.key")
	if err := os.WriteFile(garbage, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no file given", []string{"key", "recover"}, 2, "--recovery-key FILE"},
		{"missing file", []string{"key", "recover", "--recovery-key", filepath.Join(dir, "nope")}, 2, "no such file"},
		{"not a key", []string{"key", "recover", "--recovery-key", garbage}, 2, "recovery key"},
		{"the identity key", []string{"key", "recover", "--recovery-key", filepath.Join(a, "identity.key")}, 2, "signing key, not its recovery key"},
		{"another household's recovery key", []string{"key", "recover", "--recovery-key", filepath.Join(b, "recovery.key")}, 1, "is not this household's"},
		{"no subcommand", []string{"key"}, 2, "rotate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.run("", append([]string{"--home", a}, tc.args...)...)
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if r.code != tc.code || len(lines) != 1 || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d (want %d), stderr %q (want one line with %q)", r.code, tc.code, r.stderr, tc.want)
			}
		})
	}

	out = c.ok("--home", a, "key", "rotate")
	var rotated idJSON
	c.json(&rotated, "--home", a, "id", "--json")
	if rotated.ID == ida.ID || !strings.Contains(out, "new id: "+rotated.ID) {
		t.Fatalf("after rotate: id %s, output:\n%s", rotated.ID, out)
	}
	carry(t, c, a, b)
	out = c.ok("--home", b, "neighbours", "list")
	if !strings.Contains(out, "Alice") || !strings.Contains(out, rotated.ID[:8]) {
		t.Fatalf("Bob's neighbours after the rotation:\n%s", out)
	}

	out = c.ok("--home", a, "key", "recover", "--recovery-key", rk)
	var recovered idJSON
	c.json(&recovered, "--home", a, "id", "--json")
	if recovered.ID == rotated.ID || !strings.Contains(out, "recovered") {
		t.Fatalf("after recover: id %s, output:\n%s", recovered.ID, out)
	}
	carry(t, c, a, b)
	out = c.ok("--home", b, "neighbours", "list")
	if !strings.Contains(out, recovered.ID[:8]) {
		t.Fatalf("Bob's neighbours after the recovery:\n%s", out)
	}
	for _, h := range []string{a, b} {
		var v verifyJSON
		c.json(&v, "--home", h, "ledger", "verify", "--json")
		if !v.OK {
			t.Fatalf("verify %s: %+v", h, v)
		}
	}

	// A handover the ledger's records do not back: verify exits 4 and
	// names it.
	db, err := sql.Open("sqlite", filepath.Join(b, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM successions WHERE via = 'rotate'`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	r := c.run("", "--home", b, "ledger", "verify")
	if r.code != 4 || !strings.Contains(r.stderr, "succession records do not hold") {
		t.Fatalf("verify with a handover unrecorded: exit %d, stderr %q", r.code, r.stderr)
	}
}

// A rotation with pledges still open is refused with one line that says
// what to do (exit 1), and goes ahead with --force.
func TestKeyRotateWithOpenPledges(t *testing.T) {
	c := newCLI(t, buildCommons(t, t.TempDir()))
	dir := t.TempDir()
	a, b := filepath.Join(dir, "A"), filepath.Join(dir, "B")
	var ida, idb idJSON
	c.ok("--home", a, "init", "--name", "Alice", "--listen", "none")
	c.json(&ida, "--home", a, "id", "--json")
	c.ok("--home", b, "init", "--name", "Bob", "--listen", "none", "--join", ida.Invite)
	c.json(&idb, "--home", b, "id", "--json")
	c.ok("--home", a, "neighbours", "add", idb.Invite)
	var p pledgeJSON
	c.json(&p, "--home", a, "pledge", "--to", "Bob", "--energy", "500Wh", "--window", "next-hour", "--json")
	r := c.run("", "--home", a, "key", "rotate")
	if lines := strings.Split(strings.TrimSpace(r.stderr), "\n"); r.code != 1 || len(lines) != 1 ||
		!strings.Contains(r.stderr, p.ID[:12]) || !strings.Contains(r.stderr, "--force") {
		t.Fatalf("rotate with an open pledge: exit %d, stderr %q", r.code, r.stderr)
	}
	var same idJSON
	c.json(&same, "--home", a, "id", "--json")
	if same.ID != ida.ID {
		t.Fatalf("a refused rotation changed the key: %s", same.ID)
	}
	c.ok("--home", a, "key", "rotate", "--force")
	var rotated idJSON
	c.json(&rotated, "--home", a, "id", "--json")
	if rotated.ID == ida.ID {
		t.Fatalf("rotate --force kept the key")
	}
}
