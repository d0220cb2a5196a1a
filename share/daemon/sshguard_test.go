package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	gossh "golang.org/x/crypto/ssh"

	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/node"
)

// sshHome is a household serving its dashboard over SSH to one owner key
// and one viewer key.
type sshHome struct {
	h             node.Home
	r             *running
	owner, viewer gossh.Signer
	host          gossh.PublicKey
	logs          *syncBuffer
}

func newSSHHome(t *testing.T, lim SSHLimits) *sshHome {
	t.Helper()
	sh := &sshHome{h: initHome(t, "Erin", ""), owner: sshKey(t), viewer: sshKey(t), logs: &syncBuffer{}}
	writeKeys(t, filepath.Join(sh.h.ConfigDir, AuthorizedKeysFile), sh.owner)
	writeKeys(t, filepath.Join(sh.h.ConfigDir, ViewerKeysFile), sh.viewer)
	log := slog.New(slog.NewTextHandler(sh.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sh.r = start(t, sh.h, Options{Listen: ListenOff, SSHListen: "127.0.0.1:0", Dashboard: testDashboard, SSH: lim, Logger: log})
	pem, err := os.ReadFile(filepath.Join(sh.h.DataDir, HostKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	k, err := gossh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	sh.host = k.PublicKey()
	return sh
}

func writeKeys(t *testing.T, path string, keys ...gossh.Signer) {
	t.Helper()
	var b []byte
	for _, k := range keys {
		b = append(b, gossh.MarshalAuthorizedKey(k.PublicKey())...)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (sh *sshHome) config(auth ...gossh.AuthMethod) *gossh.ClientConfig {
	return &gossh.ClientConfig{User: "erin", Auth: auth, HostKeyCallback: gossh.FixedHostKey(sh.host), Timeout: 20 * time.Second}
}

// dial connects with key from local (e.g. 127.0.0.2; "" for any).
func (sh *sshHome) dial(t *testing.T, key gossh.Signer, local string) *gossh.Client {
	t.Helper()
	c, err := sh.dialErr(key, local)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (sh *sshHome) dialErr(key gossh.Signer, local string) (*gossh.Client, error) {
	d := net.Dialer{Timeout: 20 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	addr := sh.r.rt.SSHAddr()
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	cc, chans, reqs, err := gossh.NewClientConn(nc, addr, sh.config(gossh.PublicKeys(key)))
	if err != nil {
		nc.Close()
		return nil, err
	}
	return gossh.NewClient(cc, chans, reqs), nil
}

// logCount counts log lines holding every one of subs.
func (sh *sshHome) logCount(subs ...string) int {
	n := 0
	for _, l := range strings.Split(sh.logs.String(), "\n") {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(l, s)
		}
		if all && l != "" {
			n++
		}
	}
	return n
}

func (sh *sshHome) waitLog(t *testing.T, subs ...string) {
	t.Helper()
	eventually(t, fmt.Sprintf("a log line with %q; logs:\n%s", subs, sh.logs.String()), func() bool { return sh.logCount(subs...) > 0 })
}

// openSSHSize is openSSH with a terminal of w x h.
func openSSHSize(t *testing.T, c *gossh.Client, w, h int) *sshSession {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.RequestPty("xterm-256color", h, w, gossh.TerminalModes{}); err != nil {
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
	return ss
}

// answer answers the session's terminal queries as a dark xterm does.
func (ss *sshSession) answer(t *testing.T) {
	t.Helper()
	ss.waitFor(t, "\x1b[c")
	if _, err := ss.in.Write([]byte("\x1b]11;rgb:0000/0000/0000\x07\x1b[?62;22c")); err != nil {
		t.Fatal(err)
	}
}

// plain is what the session printed, without escape sequences.
func (ss *sshSession) plain() string { return ansi.Strip(ss.out.String() + ss.err.String()) }

func (ss *sshSession) quit(t *testing.T) {
	t.Helper()
	if _, err := ss.in.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	if err := ss.wait(t); err != nil {
		t.Errorf("session ended with %v after q, want a clean exit", err)
	}
}

// TestSSHRoles: a key in authorized_keys opens an owner's dashboard with
// the pledge keys; a key in viewer_keys a viewer's, without them; each
// session's start and end are logged with the key's fingerprint and role.
func TestSSHRoles(t *testing.T) {
	sh := newSSHHome(t, SSHLimits{})
	sh.waitLog(t, "ssh dashboard listening", "addr=127.0.0.1:")

	for _, tt := range []struct {
		key  gossh.Signer
		role string
	}{{sh.owner, "owner"}, {sh.viewer, "viewer"}} {
		t.Run(tt.role, func(t *testing.T) {
			ss := openSSHSize(t, sh.dial(t, tt.key, ""), 100, 30)
			ss.answer(t)
			ss.waitFor(t, "Erin")
			ss.waitFor(t, "quit")
			if _, err := ss.in.Write([]byte("?")); err != nil {
				t.Fatal(err)
			}
			ss.waitFor(t, "close help")
			out := ss.plain()
			hasPledge := strings.Contains(out, "p pledge") && strings.Contains(out, "accept incoming")
			if tt.role == "owner" && !hasPledge {
				t.Errorf("the owner's hint line and help lack the pledge keys:\n%s", out)
			}
			if tt.role == "viewer" {
				for _, bad := range []string{"p pledge", "accept incoming", "decline incoming", "cancel own"} {
					if strings.Contains(out, bad) {
						t.Errorf("the viewer's dashboard shows %q", bad)
					}
				}
			}
			if _, err := ss.in.Write([]byte("?")); err != nil {
				t.Fatal(err)
			}
			ss.quit(t)
			fp := gossh.FingerprintSHA256(tt.key.PublicKey())
			sh.waitLog(t, "ssh session started", "key="+fp, "role="+tt.role, "remote=127.0.0.1:")
			sh.waitLog(t, "ssh session ended", "key="+fp, "role="+tt.role)
		})
	}
}

// TestSSHViewerCannotChange: a viewer session's backend refuses pledge,
// accept, decline and cancel whatever the view sends, and logs it; an
// owner's goes through and is logged with its key and role.
func TestSSHViewerCannotChange(t *testing.T) {
	sh := newSSHHome(t, SSHLimits{})
	ctx := context.Background()
	be := sh.r.rt.Node()
	viewer := sessionBackend{Household: be, who: sshWho{role: RoleViewer, key: "SHA256:viewerkey"}, remote: "192.0.2.7:5000", rt: sh.r.rt}
	calls := map[string]func(b sessionBackend) error{
		"pledge": func(b sessionBackend) error {
			_, err := b.Pledge(ctx, household.PledgeRequest{To: "Bob", EnergyWh: 500})
			return err
		},
		"accept":  func(b sessionBackend) error { _, err := b.Accept(ctx, "p2anna0001"); return err },
		"decline": func(b sessionBackend) error { _, err := b.Decline(ctx, "p2anna0001"); return err },
		"cancel":  func(b sessionBackend) error { _, err := b.Cancel(ctx, "p2anna0001"); return err },
	}
	// The session's household is a whole household.Household: its other
	// changes are refused to a viewer too, as on the local socket.
	viewerOnly := map[string]func(b sessionBackend) error{
		"add neighbour":    func(b sessionBackend) error { _, err := b.AddNeighbour(ctx, "commons1abc", "x"); return err },
		"remove neighbour": func(b sessionBackend) error { _, err := b.RemoveNeighbour(ctx, "Bob"); return err },
		"import":           func(b sessionBackend) error { _, err := b.Import(ctx, strings.NewReader("")); return err },
		"settle":           func(b sessionBackend) error { _, err := b.Settle(ctx); return err },
	}
	for _, set := range []map[string]func(b sessionBackend) error{calls, viewerOnly} {
		for name, call := range set {
			if err := call(viewer); !errors.Is(err, ErrForbidden) {
				t.Errorf("viewer's %s: %v, want ErrForbidden", name, err)
			}
			sh.waitLog(t, "ssh "+name+" refused", "key=SHA256:viewerkey", "role=viewer", "remote=192.0.2.7:5000")
		}
	}
	owner := viewer
	owner.who = sshWho{role: RoleOwner, key: "SHA256:ownerkey"}
	for name, call := range calls {
		// No neighbour Bob and no such pledge: the household refuses, the
		// role does not.
		if err := call(owner); err == nil || errors.Is(err, ErrForbidden) {
			t.Errorf("owner's %s: %v, want the household's own error", name, err)
		}
		sh.waitLog(t, "ssh "+name+" failed", "key=SHA256:ownerkey", "role=owner")
	}
}

// TestSSHRefusesAllButAShell: no password or keyboard-interactive login,
// no exec, no subsystem, no port or agent forwarding; a key in neither
// file is refused and logged once per address per minute.
func TestSSHRefusesAllButAShell(t *testing.T) {
	sh := newSSHHome(t, SSHLimits{})
	addr := sh.r.rt.SSHAddr()
	for name, auth := range map[string]gossh.AuthMethod{
		"password": gossh.Password("erin"),
		"keyboard-interactive": gossh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) {
			return []string{"erin"}, nil
		}),
	} {
		if c, err := gossh.Dial("tcp", addr, sh.config(auth)); err == nil {
			c.Close()
			t.Errorf("%s login got in", name)
		} else if !strings.Contains(err.Error(), "[none]") && !strings.Contains(err.Error(), "[none publickey]") {
			t.Errorf("%s login: %v, want only publickey offered", name, err)
		}
	}

	c := sh.dial(t, sh.owner, "")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	// with a terminal, so only the refusal of exec itself stops it
	if err := s.RequestPty("xterm", 24, 80, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Start("cat /etc/passwd"); err == nil {
		t.Error("an exec request was accepted")
	}
	s.Close()
	s, err = c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RequestSubsystem("sftp"); err == nil {
		t.Error("the sftp subsystem was granted")
	}
	s.Close()
	s, err = c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.SendRequest("auth-agent-req@openssh.com", true, nil); ok || err != nil {
		t.Errorf("agent forwarding: ok %v, err %v; want refused", ok, err)
	}
	s.Close()
	if conn, err := c.Dial("tcp", addr); err == nil {
		conn.Close()
		t.Error("local port forwarding (direct-tcpip) was granted")
	}
	if ln, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
		t.Error("remote port forwarding (tcpip-forward) was granted")
	}
	sh.waitLog(t, "ssh request refused", "request=exec")

	// A stranger's key, three times from one address: logged once.
	stranger := sshKey(t)
	for range 3 {
		if c, err := sh.dialErr(stranger, ""); err == nil {
			c.Close()
			t.Fatal("a key in neither file got in")
		}
	}
	fp := gossh.FingerprintSHA256(stranger.PublicKey())
	sh.waitLog(t, "ssh key refused", "key="+fp)
	if n := sh.logCount("ssh key refused"); n != 1 {
		t.Errorf("a refused key from one address was logged %d times, want once a minute", n)
	}
}

// TestSSHWindowChangeStorm: thousands of window changes, down to 1x1 and
// up to 1000x500, leave the dashboard working and the daemon serving.
func TestSSHWindowChangeStorm(t *testing.T) {
	sh := newSSHHome(t, SSHLimits{})
	ss := openSSHSize(t, sh.dial(t, sh.owner, ""), 80, 24)
	ss.answer(t)
	ss.waitFor(t, "Erin")
	sizes := [][2]int{{1, 1}, {0, 0}, {1000, 500}, {2, 80}, {80, 2}, {65535, 1}, {13, 7}}
	for i := range 2000 {
		sz := sizes[i%len(sizes)]
		if err := ss.s.WindowChange(sz[1], sz[0]); err != nil {
			t.Fatalf("window change %d: %v", i, err)
		}
	}
	if err := ss.s.WindowChange(24, 80); err != nil {
		t.Fatal(err)
	}
	// The dashboard ignores keys while a size from the storm says the
	// terminal is too small, and the key can overtake the last window
	// change, so press 2 until the Charts tab answers.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(ss.out.String(), "History") {
		if time.Now().After(deadline) {
			t.Fatalf("no \"History\" after the storm; the session printed:\n%q", ss.out.String()+ss.err.String())
		}
		if _, err := ss.in.Write([]byte("2")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // polling a condition with a deadline
	}
	ss.quit(t)
	if n := sh.logCount("crashed"); n != 0 {
		t.Errorf("the storm crashed a dashboard:\n%s", sh.logs.String())
	}
	again := openSSHSize(t, sh.dial(t, sh.owner, ""), 80, 24)
	again.answer(t)
	again.waitFor(t, "Erin")
}

// TestSSHTinyTerminal: a 1x1 terminal gets a dashboard that says it is
// too small (what fits of it) and quits cleanly.
func TestSSHTinyTerminal(t *testing.T) {
	sh := newSSHHome(t, SSHLimits{})
	ss := openSSHSize(t, sh.dial(t, sh.owner, ""), 1, 1)
	ss.answer(t)
	ss.waitFor(t, "\x1b[?1049h") // the dashboard took the screen
	if err := ss.s.WindowChange(24, 80); err != nil {
		t.Fatal(err)
	}
	ss.waitFor(t, "Erin")
	if err := ss.s.WindowChange(1, 1); err != nil {
		t.Fatal(err)
	}
	ss.quit(t)
	if n := sh.logCount("crashed"); n != 0 {
		t.Errorf("a 1x1 terminal crashed the dashboard:\n%s", sh.logs.String())
	}
}

// stalled opens a TCP connection that never finishes the SSH handshake:
// with hello it sends the version line and stops in the key exchange.
func stalled(t *testing.T, addr string, hello bool) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if hello {
		if _, err := io.WriteString(c, "SSH-2.0-stall\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// closedByServer waits until the server closes c.
func closedByServer(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.Copy(io.Discard, c); !closedErr(err) {
		t.Fatalf("the server did not close a stalled connection: %v", err)
	}
}

// closedErr reports whether a read's end means the peer closed: EOF, or a
// reset when it closed with our bytes unread.
func closedErr(err error) bool { return err == nil || errors.Is(err, syscall.ECONNRESET) }

// TestSSHHandshakeDeadline: connections that never finish the handshake
// are closed by the deadline; beyond the per-address cap they are closed
// at once; meanwhile a person from another address gets a dashboard; and
// once they are gone nothing is counted as pending.
func TestSSHHandshakeDeadline(t *testing.T) {
	sh := newSSHHome(t, SSHLimits{HandshakeTimeout: 3 * time.Second, MaxPendingPerAddr: 4})
	addr := sh.r.rt.SSHAddr()
	var held []net.Conn
	for i := range 4 {
		held = append(held, stalled(t, addr, i%2 == 0))
	}
	eventually(t, "4 pending connections", func() bool { return sh.r.rt.sshGuard.pendingCount() == 4 })
	extra := stalled(t, addr, true)
	closedByServer(t, extra)
	sh.waitLog(t, "ssh connection refused", "too many connections from this address in the handshake")

	ss := openSSHSize(t, sh.dial(t, sh.owner, "127.0.0.2"), 80, 24)
	ss.answer(t)
	ss.waitFor(t, "Erin")

	for _, c := range held {
		closedByServer(t, c)
	}
	eventually(t, "no pending connection", func() bool { return sh.r.rt.sshGuard.pendingCount() == 0 })
	// the person's session outlived the handshake deadline
	if _, err := ss.in.Write([]byte("2")); err != nil {
		t.Fatal(err)
	}
	ss.waitFor(t, "History")
	ss.quit(t)
}

// TestSSHConnectionRate: an address that opens connections faster than
// the rate is refused beyond the burst, and logged once a minute.
func TestSSHConnectionRate(t *testing.T) {
	sh := newSSHHome(t, SSHLimits{ConnRate: 0.001, ConnBurst: 3})
	for range 3 {
		c := sh.dial(t, sh.viewer, "")
		c.Close()
	}
	if c, err := sh.dialErr(sh.viewer, ""); err == nil {
		c.Close()
		t.Fatal("a fourth connection within the burst's refill got in")
	}
	if c, err := sh.dialErr(sh.viewer, ""); err == nil {
		c.Close()
		t.Fatal("a fifth connection within the burst's refill got in")
	}
	sh.waitLog(t, "ssh connection refused", "too many new connections from this address")
	if n := sh.logCount("ssh connection refused"); n != 1 {
		t.Errorf("refused connections from one address logged %d times, want once a minute", n)
	}
	// another address is not affected
	c := sh.dial(t, sh.viewer, "127.0.0.3")
	c.Close()
}

// TestSSHSessionLimit: of 20 people connecting at once, the limit's worth
// get a dashboard and the rest are told there are too many sessions;
// when one leaves, the next gets in.
func TestSSHSessionLimit(t *testing.T) {
	const people, limit = 20, 8
	sh := newSSHHome(t, SSHLimits{MaxSessions: limit, ConnBurst: 100, MaxPendingPerAddr: people, MaxPending: people})
	var mu sync.Mutex
	var in, refused []*sshSession
	var wg sync.WaitGroup
	for range people {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := sh.dialErr(sh.owner, "")
			if err != nil {
				t.Error(err)
				return
			}
			t.Cleanup(func() { c.Close() })
			s, err := c.NewSession()
			if err != nil {
				t.Error(err)
				return
			}
			ss := &sshSession{s: s}
			s.Stdout, s.Stderr = &ss.out, &ss.err
			ss.in, _ = s.StdinPipe()
			if err := s.RequestPty("xterm-256color", 24, 80, gossh.TerminalModes{}); err != nil {
				t.Error(err)
				return
			}
			if err := s.Shell(); err != nil {
				t.Error(err)
				return
			}
			deadline := time.Now().Add(60 * time.Second)
			for {
				out := ss.out.String() + ss.err.String()
				switch {
				case strings.Contains(out, "too many sessions"):
					mu.Lock()
					refused = append(refused, ss)
					mu.Unlock()
					return
				case strings.Contains(out, "\x1b[c"):
					mu.Lock()
					in = append(in, ss)
					mu.Unlock()
					return
				case time.Now().After(deadline):
					t.Errorf("a session neither opened nor was refused:\n%q", out)
					return
				}
				time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
			}
		}()
	}
	wg.Wait()
	if len(in) != limit || len(refused) != people-limit {
		t.Fatalf("%d dashboards opened and %d refused, want %d and %d", len(in), len(refused), limit, people-limit)
	}
	for _, ss := range refused {
		var exit *gossh.ExitError
		if err := ss.wait(t); !errors.As(err, &exit) || exit.ExitStatus() != 1 {
			t.Errorf("a refused session ended with %v, want exit status 1", err)
		}
	}
	for _, ss := range in {
		if _, err := ss.in.Write([]byte("\x1b]11;rgb:0000/0000/0000\x07\x1b[?62;22c")); err != nil {
			t.Fatal(err)
		}
	}
	for _, ss := range in {
		ss.waitFor(t, "Erin")
	}
	in[0].quit(t)
	next := openSSHSize(t, sh.dial(t, sh.viewer, ""), 80, 24)
	next.answer(t)
	next.waitFor(t, "Erin")
	if n := sh.logCount("ssh session refused: too many sessions", "role=owner", "key=SHA256:"); n != people-limit {
		t.Errorf("%d refusals logged, want %d", n, people-limit)
	}
}

// TestSSHIdleTimeout: a dashboard without a key press for the idle
// timeout ends, saying why; so does a session whose terminal never
// answers the colour query (wish cannot time that read out on an SSH
// channel, so it would otherwise hold a session slot).
func TestSSHIdleTimeout(t *testing.T) {
	for _, answer := range []bool{true, false} {
		t.Run(map[bool]string{true: "dashboard", false: "unanswered_query"}[answer], func(t *testing.T) {
			sh := newSSHHome(t, SSHLimits{IdleTimeout: 2 * time.Second})
			ss := openSSHSize(t, sh.dial(t, sh.viewer, ""), 80, 24)
			if answer {
				ss.waitFor(t, "\x1b[c")
				// the session may already have ended under load
				_, _ = ss.in.Write([]byte("\x1b]11;rgb:0000/0000/0000\x07\x1b[?62;22c"))
			}
			if err := ss.wait(t); err != nil {
				t.Errorf("idle session ended with %v, want a clean end", err)
			}
			ss.waitFor(t, "without a key press")
			sh.waitLog(t, "ssh session idle: closed", "role=viewer")
		})
	}
}

// TestSSHKeyFiles: a key file that group or others may write stops the
// service with one line naming it and chmod 600, as does a line that is
// not a key; a host key others may read is made 0600 with a warning.
func TestSSHKeyFiles(t *testing.T) {
	h := initHome(t, "Erin", "")
	owner := sshKey(t)
	ak := filepath.Join(h.ConfigDir, AuthorizedKeysFile)
	vk := filepath.Join(h.ConfigDir, ViewerKeysFile)
	writeKeys(t, ak, owner)
	open := func() error {
		rt, err := Open(context.Background(), h, Options{Listen: ListenOff, SSHListen: "127.0.0.1:0", Dashboard: testDashboard})
		if err == nil {
			rt.Close()
		}
		return err
	}
	for _, tt := range []struct {
		path string
		mode os.FileMode
	}{{ak, 0o666}, {ak, 0o620}, {vk, 0o602}} {
		writeKeys(t, tt.path, owner)
		if err := os.Chmod(tt.path, tt.mode); err != nil {
			t.Fatal(err)
		}
		err := open()
		if err == nil || !strings.Contains(err.Error(), "chmod 600 "+tt.path) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s mode %04o: %v, want one line naming chmod 600 and the file", tt.path, tt.mode, err)
		}
		os.Chmod(tt.path, 0o600)
	}
	if err := os.WriteFile(vk, []byte("# viewers\nssh-ed25519 notbase64 bob\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := open(); err == nil || !strings.Contains(err.Error(), vk+":2:") {
		t.Errorf("a bad key line: %v, want an error naming %s:2", err, vk)
	}
	// options would be taken to restrict the key; they are refused
	restricted := append([]byte(`from="10.0.0.0/8" `), gossh.MarshalAuthorizedKey(owner.PublicKey())...)
	if err := os.WriteFile(vk, restricted, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := open(); err == nil || !strings.Contains(err.Error(), vk+":1:") || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("a key with options: %v, want an error naming %s:1 and options not supported", err, vk)
	}
	os.Remove(vk)

	// the host key: made 0600, and repaired when others may read it
	if err := open(); err != nil {
		t.Fatal(err)
	}
	hk := filepath.Join(h.DataDir, HostKeyFile)
	fi, err := os.Stat(hk)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("host key made with %v, %v; want mode 0600", fi.Mode(), err)
	}
	if err := os.Chmod(hk, 0o644); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	rt, err := Open(context.Background(), h, Options{Listen: ListenOff, SSHListen: "127.0.0.1:0", Dashboard: testDashboard, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	rt.Close()
	if fi, _ := os.Stat(hk); fi.Mode().Perm() != 0o600 {
		t.Errorf("a world-readable host key was left %04o", fi.Mode().Perm())
	}
	if !strings.Contains(logs.String(), "host key was readable by others") {
		t.Errorf("no warning for the repaired host key; logs:\n%s", logs.String())
	}
}

// TestSSHUnauthenticatedFlood: many connections that never finish the
// handshake hold at most the pending caps; the rest are closed at once,
// and heap growth stays bounded. COMMONS_SSH_FLOOD=N sets how many
// (default 200); docs/BENCHMARKS.md has a run with 3000.
func TestSSHUnauthenticatedFlood(t *testing.T) {
	n := 200
	if v := os.Getenv("COMMONS_SSH_FLOOD"); v != "" {
		fmt.Sscan(v, &n)
	}
	lim := SSHLimits{ConnBurst: n} // the rate would refuse them first; test the pending caps
	sh := newSSHHome(t, lim)
	addr := sh.r.rt.SSHAddr()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	conns := make([]net.Conn, 0, n)
	for range n {
		conns = append(conns, stalled(t, addr, true))
	}
	lim = sh.r.rt.sshLimits
	// All but MaxPendingPerAddr are closed by the server at once, those
	// by the handshake deadline.
	var closed atomic.Int64
	for _, c := range conns {
		go func() {
			if _, err := io.Copy(io.Discard, c); closedErr(err) {
				closed.Add(1)
			}
		}()
	}
	eventually(t, "the server to close the stalled connections beyond the cap", func() bool {
		return closed.Load() >= int64(n-lim.MaxPendingPerAddr)
	})
	held := sh.r.rt.sshGuard.pendingCount()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if held > lim.MaxPendingPerAddr {
		t.Errorf("%d connections in the handshake held from one address, want at most %d", held, lim.MaxPendingPerAddr)
	}
	t.Logf("%d stalled connections: %d held, %d closed at once; heap in use %+d KiB (client and server in one process)",
		n, held, closed.Load(), (int64(after.HeapInuse)-int64(before.HeapInuse))/1024)
}
