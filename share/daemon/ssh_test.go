package daemon

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	gossh "golang.org/x/crypto/ssh"

	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/tui"
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
	if rt, err := Open(context.Background(), h, Options{Listen: ListenOff, SSHListen: "127.0.0.1:0", Dashboard: testDashboard}); err == nil {
		rt.Close()
		t.Fatal("SSH started without an authorized_keys file")
	} else if !strings.Contains(err.Error(), AuthorizedKeysFile) {
		t.Errorf("error %q does not name the authorized_keys file", err)
	}

	keys := filepath.Join(h.ConfigDir, AuthorizedKeysFile)
	if err := os.WriteFile(keys, append([]byte("# the household\n"), gossh.MarshalAuthorizedKey(user.PublicKey())...), 0o600); err != nil {
		t.Fatal(err)
	}
	r := start(t, h, Options{Listen: ListenOff, SSHListen: "127.0.0.1:0", Dashboard: testDashboard})
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

// panicky is a dashboard that panics when x is pressed: in Update, or in
// the command Update returns (Bubble Tea runs commands on goroutines).
type panicky struct {
	tea.Model
	inCmd bool
}

func (p panicky) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if k, ok := msg.(tea.KeyMsg); ok && k.String() == "x" {
		if p.inCmd {
			return p, func() tea.Msg { panic("boom in a command") }
		}
		panic("boom in Update")
	}
	m, cmd := p.Model.Update(msg)
	return panicky{Model: m, inCmd: p.inCmd}, cmd
}

// sshSession is a client session with a pseudo-terminal on the dashboard.
type sshSession struct {
	s        *gossh.Session
	in       io.Writer
	out, err syncBuffer
}

func openSSH(t *testing.T, c *gossh.Client) *sshSession {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.RequestPty("xterm-256color", 24, 80, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	ss := &sshSession{s: s}
	s.Stdout, s.Stderr = &ss.out, &ss.err
	if ss.in, err = s.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	ss.waitFor(t, "\x1b[c")
	// answer the terminal queries as a dark xterm does
	if _, err := ss.in.Write([]byte("\x1b]11;rgb:0000/0000/0000\x07\x1b[?62;22c")); err != nil {
		t.Fatal(err)
	}
	return ss
}

func (ss *sshSession) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(ss.out.String()+ss.err.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q; the session printed:\n%q", want, ss.out.String()+ss.err.String())
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
}

func (ss *sshSession) wait(t *testing.T) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- ss.s.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("the SSH session did not end within 30 s")
		return nil
	}
}

// TestSSHDashboardPanicEndsOnlyThatSession: a panic in one SSH session's
// dashboard ends that session with a message to its user and exit status
// 1, is logged with the user and address, and leaves the daemon and the
// other sessions running.
func TestSSHDashboardPanicEndsOnlyThatSession(t *testing.T) {
	for _, inCmd := range []bool{false, true} {
		name := map[bool]string{false: "in_update", true: "in_command"}[inCmd]
		t.Run(name, func(t *testing.T) {
			crash := func(hh household.Household, s DashboardSession) (tea.Model, []tea.ProgramOption) {
				m, opts := testDashboard(hh, s)
				return panicky{Model: m, inCmd: inCmd}, opts
			}

			h := initHome(t, "Erin", "")
			user := sshKey(t)
			if err := os.WriteFile(filepath.Join(h.ConfigDir, AuthorizedKeysFile), gossh.MarshalAuthorizedKey(user.PublicKey()), 0o600); err != nil {
				t.Fatal(err)
			}
			var logs syncBuffer
			r := start(t, h, Options{Listen: ListenOff, SSHListen: "127.0.0.1:0", Dashboard: crash, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			hostPEM, err := os.ReadFile(filepath.Join(h.DataDir, HostKeyFile))
			if err != nil {
				t.Fatal(err)
			}
			hostKey, err := gossh.ParsePrivateKey(hostPEM)
			if err != nil {
				t.Fatal(err)
			}
			c, err := gossh.Dial("tcp", r.rt.SSHAddr(), &gossh.ClientConfig{User: "erin", Auth: []gossh.AuthMethod{gossh.PublicKeys(user)},
				HostKeyCallback: gossh.FixedHostKey(hostKey.PublicKey()), Timeout: 20 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()

			other, crashing := openSSH(t, c), openSSH(t, c)
			other.waitFor(t, "Erin")
			crashing.waitFor(t, "Erin")
			if _, err := crashing.in.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			err = crashing.wait(t)
			var exit *gossh.ExitError
			if !errors.As(err, &exit) || exit.ExitStatus() != 1 {
				t.Errorf("crashed session ended with %v, want exit status 1", err)
			}
			crashing.waitFor(t, "the dashboard crashed")
			deadline := time.Now().Add(20 * time.Second)
			for !strings.Contains(logs.String(), "ssh dashboard crashed") {
				if time.Now().After(deadline) {
					t.Fatalf("no log line for the crash; logs:\n%s", logs.String())
				}
				time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
			}
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, "ssh dashboard crashed") && !(strings.Contains(l, "user=erin") && strings.Contains(l, "remote=127.0.0.1:") && strings.Contains(l, "panic=")) {
					t.Errorf("the crash log line lacks the user, address or panic: %s", l)
				}
			}

			// the other session still works, and ends normally
			if _, err := other.in.Write([]byte("2")); err != nil {
				t.Fatal(err)
			}
			other.waitFor(t, "History")
			if _, err := other.in.Write([]byte("q")); err != nil {
				t.Fatal(err)
			}
			if err := other.wait(t); err != nil {
				t.Errorf("the other session ended with %v after q", err)
			}
			// and the daemon still serves new sessions
			again := openSSH(t, c)
			again.waitFor(t, "Erin")
		})
	}
}

// testDashboard is the dashboard the daemon serves in tests, as
// cmd/commons wires it (without the settings file).
func testDashboard(hh household.Household, s DashboardSession) (tea.Model, []tea.ProgramOption) {
	return tui.New(hh, tui.Options{Context: s.Context, Renderer: s.Renderer, Location: s.Location,
		Width: s.Width, Height: s.Height, ReadOnly: s.ReadOnly}), []tea.ProgramOption{tea.WithFPS(10)}
}
