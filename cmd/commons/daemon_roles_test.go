package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestDaemonSocketRefusesOtherUser: a real other user (nobody, through
// setpriv) who reaches the daemon's socket is refused by its SO_PEERCRED
// check with one line and exit 1, while the daemon's user is served. The
// socket is opened to others by hand here, as the group mode does (the
// groups do not exist on a test machine). Needs Linux, root and setpriv.
func TestDaemonSocketRefusesOtherUser(t *testing.T) {
	setpriv, err := exec.LookPath("setpriv")
	if runtime.GOOS != "linux" || os.Getuid() != 0 || err != nil {
		t.Skip("needs Linux, root and setpriv to act as another user")
	}
	dir := t.TempDir()
	bin := buildCommons(t, dir)
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	c := newCLI(t, bin)
	home := filepath.Join(dir, "home")
	c.ok("--home", home, "init", "--name", "Gate", "--listen", freeAddr(t))
	if err := os.Chmod(home, 0o711); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, c, home)
	sock := filepath.Join(home, "commons.sock")
	poll(t, "the daemon's socket", func() bool { _, err := os.Stat(sock); return err == nil })
	poll(t, "the daemon to answer its own user", func() bool { return c.run("", "--home", home, "status").code == 0 })
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}

	other := *c
	other.bin = setpriv
	r := other.run("", "--reuid=65534", "--regid=65534", "--clear-groups", bin, "--home", home, "status")
	msg := strings.TrimSpace(r.stderr)
	if r.code != exitFailure || !strings.Contains(msg, "not allowed") || !strings.Contains(msg, "uid 65534") || strings.Contains(msg, "\n") {
		t.Errorf("another user's status: exit %d, stderr %q; want exit 1 and one line saying uid 65534 is not allowed", r.code, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("another user got an answer: %q", r.stdout)
	}
	d.stop(t)
}
