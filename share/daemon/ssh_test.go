package daemon

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// syncBuffer collects a session's output from its reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func sshKey(t *testing.T) gossh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSSHDashboard: the household serves its dashboard over SSH to an
// authorized key only, in a real SSH session with a pseudo-terminal; the
// host key is made on first use and pinned by the client; q ends the
// session.
func TestSSHDashboard(t *testing.T) {
	h := initHome(t, "Erin", "")
	user, stranger := sshKey(t), sshKey(t)

	// Without an authorized_keys file the service does not start.
	if rt, err := Open(context.Background(), h, Options{Listen: ListenOff, SSHListen: "127.0.0.1:0"}); err == nil {
		rt.Close()
		t.Fatal("SSH started without an authorized_keys file")
	} else if !strings.Contains(err.Error(), AuthorizedKeysFile) {
		t.Errorf("error %q does not name the authorized_keys file", err)
	}

	keys := filepath.Join(h.ConfigDir, AuthorizedKeysFile)
	if err := os.WriteFile(keys, append([]byte("# the household\n"), gossh.MarshalAuthorizedKey(user.PublicKey())...), 0o600); err != nil {
		t.Fatal(err)
	}
	r := start(t, h, Options{Listen: ListenOff, SSHListen: "127.0.0.1:0"})
	hostPEM, err := os.ReadFile(filepath.Join(h.DataDir, HostKeyFile))
	if err != nil {
		t.Fatalf("host key not made: %v", err)
	}
	hostKey, err := gossh.ParsePrivateKey(hostPEM)
	if err != nil {
		t.Fatal(err)
	}
	cfg := func(s gossh.Signer) *gossh.ClientConfig {
		return &gossh.ClientConfig{User: "erin", Auth: []gossh.AuthMethod{gossh.PublicKeys(s)},
			HostKeyCallback: gossh.FixedHostKey(hostKey.PublicKey()), Timeout: 20 * time.Second}
	}

	if c, err := gossh.Dial("tcp", r.rt.SSHAddr(), cfg(stranger)); err == nil {
		c.Close()
		t.Fatal("a key not in authorized_keys got in")
	}

	c, err := gossh.Dial("tcp", r.rt.SSHAddr(), cfg(user))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestPty("xterm-256color", 24, 80, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	s.Stdout = &out
	in, err := s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	// Answer the session's terminal queries (background colour, device
	// attributes) as a dark xterm does.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "\x1b[c") {
		if time.Now().After(deadline) {
			t.Fatalf("no terminal query; the session printed:\n%q", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := in.Write([]byte("\x1b]11;rgb:0000/0000/0000\x07\x1b[?62;22c")); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(out.String(), "Erin") {
		if time.Now().After(deadline) {
			t.Fatalf("no dashboard with the household's name over SSH; the session printed:\n%q", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := in.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("session end after q: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("q did not end the SSH session within 30 s")
	}
}
