package daemon

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/ssh"
	"github.com/charmbracelet/wish"
	"github.com/charmbracelet/wish/activeterm"
	wishtea "github.com/charmbracelet/wish/bubbletea"
	gossh "golang.org/x/crypto/ssh"

	"github.com/commons-energy/commons/share/household"
)

// Files of the dashboard-over-SSH service.
const (
	// AuthorizedKeysFile, in the home's config folder, lists the public
	// keys (authorized_keys format) of the owners: they may open the
	// dashboard over SSH and pledge, accept, decline and cancel in it.
	AuthorizedKeysFile = "authorized_keys"
	// ViewerKeysFile, in the home's config folder, lists in the same
	// format the keys of viewers: their dashboard only shows.
	ViewerKeysFile = "viewer_keys"
	// HostKeyFile, in the home's data folder, is the SSH host key; it is
	// made (Ed25519, mode 0600) on first use.
	HostKeyFile = "ssh_host_ed25519"
)

// listenSSH prepares the dashboard-over-SSH server on addr. Only the keys
// in the home's authorized_keys (owners) and viewer_keys (viewers) get
// in; without either file the service does not start, nor with one that
// others may write.
func (rt *Runtime) listenSSH(addr string) error {
	if rt.opts.Dashboard == nil {
		return errors.New("ssh: no dashboard to serve (Options.Dashboard is not set)")
	}
	home := rt.n.Home()
	keys := sshKeys{
		owners:  rt.opts.SSHAuthorizedKeys,
		viewers: rt.opts.SSHViewerKeys,
	}
	if keys.owners == "" {
		keys.owners = filepath.Join(home.ConfigDir, AuthorizedKeysFile)
	}
	if keys.viewers == "" {
		keys.viewers = filepath.Join(home.ConfigDir, ViewerKeysFile)
	}
	if err := keys.check(); err != nil {
		return fmt.Errorf("ssh: %w", err)
	}
	lim := rt.opts.SSH.withDefaults()
	hostKey := filepath.Join(home.DataDir, HostKeyFile)
	if err := rt.ensureHostKey(hostKey); err != nil {
		return fmt.Errorf("ssh: %w", err)
	}
	g := newSSHGuard(lim, rt.log)
	var sessions atomic.Int32
	limit := func(next ssh.Handler) ssh.Handler {
		return func(s ssh.Session) {
			who := rt.sshCaller(s, keys)
			if who.role == RoleNone {
				rt.log.Warn("ssh session refused: key no longer listed", "key", who.key, "remote", s.RemoteAddr().String())
				wish.Fatalf(s, "commons: your key is no longer in authorized_keys or viewer_keys\r\n")
				return
			}
			if n := sessions.Add(1); n > int32(lim.MaxSessions) {
				sessions.Add(-1)
				rt.log.Warn("ssh session refused: too many sessions", "key", who.key, "role", who.role.String(), "remote", s.RemoteAddr().String(), "max", lim.MaxSessions)
				wish.Fatalf(s, "commons: %d dashboards are open already (too many sessions); close one and try again\r\n", lim.MaxSessions)
				return
			}
			defer sessions.Add(-1)
			start := time.Now()
			rt.log.Info("ssh session started", "key", who.key, "role", who.role.String(), "remote", s.RemoteAddr().String(), "user", s.User())
			next(s)
			rt.log.Info("ssh session ended", "key", who.key, "role", who.role.String(), "remote", s.RemoteAddr().String(), "duration", time.Since(start).Round(time.Second).String())
		}
	}
	srv, err := wish.NewServer(
		wish.WithAddress(addr),
		ssh.HostKeyFile(hostKey),
		// Public keys only: no password, no keyboard-interactive.
		wish.WithPublicKeyAuth(func(ctx ssh.Context, key ssh.PublicKey) bool {
			role, err := keys.roleOf(key)
			if err != nil {
				rt.log.Error("ssh: cannot read the key files; refusing every key", "err", err)
			}
			if role == RoleNone {
				g.refusedKey(ctx.RemoteAddr(), gossh.FingerprintSHA256(key))
				return false
			}
			return true
		}),
		// Connection traffic: closes a connection that holds no session
		// (a dashboard's own idle timeout, on key presses, comes first).
		wish.WithIdleTimeout(lim.IdleTimeout+time.Minute),
		// The last middleware runs first.
		wish.WithMiddleware(rt.sshProgram, activeterm.Middleware(), limit),
		func(srv *ssh.Server) error {
			srv.ConnCallback = g.conn
			// A shell (the dashboard) only: no exec, no subsystem (sftp).
			srv.SessionRequestCallback = func(s ssh.Session, req string) bool {
				if req != "shell" {
					rt.log.Warn("ssh request refused", "request", req, "remote", s.RemoteAddr().String())
				}
				return req == "shell"
			}
			// Sessions only: no port forwarding channels, no global
			// requests (tcpip-forward), and no agent or X11 forwarding.
			srv.ChannelHandlers = map[string]ssh.ChannelHandler{"session": sessionNoForwarding}
			srv.RequestHandlers = map[string]ssh.RequestHandler{}
			srv.SubsystemHandlers = map[string]ssh.SubsystemHandler{}
			srv.LocalPortForwardingCallback = nil
			srv.ReversePortForwardingCallback = nil
			return nil
		},
	)
	if err != nil {
		return fmt.Errorf("ssh: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("ssh listen %s: %w; choose another address with --ssh-listen", addr, err)
	}
	rt.sshSrv, rt.sshLn, rt.sshKeys, rt.sshLimits, rt.sshGuard = srv, ln, keys, lim, g
	return nil
}

// ensureHostKey makes the SSH host key at path on first use (Ed25519,
// mode 0600), and repairs one that others could read: such a key may be
// copied, so the daemon says so.
func (rt *Runtime) ensureHostKey(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return fmt.Errorf("host key: %w", err)
		}
		block, err := gossh.MarshalPrivateKey(priv, "commons host key")
		if err != nil {
			return fmt.Errorf("host key: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("host key: %w", err)
		}
		if _, err := f.Write(pem.EncodeToMemory(block)); err != nil {
			f.Close()
			os.Remove(path)
			return fmt.Errorf("host key %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("host key %s: %w", path, err)
		}
		signer, _ := gossh.NewSignerFromKey(priv)
		rt.log.Info("ssh host key made", "path", path, "fingerprint", gossh.FingerprintSHA256(signer.PublicKey()))
		return nil
	case err != nil:
		return fmt.Errorf("host key: %w", err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("host key %s is not a regular file; move it away and a new key is made", path)
	case fi.Mode().Perm()&0o077 != 0:
		if err := os.Chmod(path, 0o600); err != nil {
			return fmt.Errorf("host key %s is readable by others (mode %04o) and cannot be made private: %w; run chmod 600 %s", path, fi.Mode().Perm(), err, path)
		}
		rt.log.Warn("ssh host key was readable by others; made it 0600 (someone may have copied it: to replace it, remove the file and restart, then tell the people who connect its new fingerprint)", "path", path, "was", fmt.Sprintf("%04o", fi.Mode().Perm()))
	}
	return nil
}

// sshWho is the caller of an SSH session: the role its authenticated key
// has, and the key's SHA256 fingerprint.
type sshWho struct {
	role Role
	key  string
}

type sshWhoKey struct{}

// sshCaller decides a session's role from the key the connection
// authenticated with, read from the key files now. (It is not taken
// from the authentication callback, which also runs for keys a client
// only offers without proving it holds them.)
func (rt *Runtime) sshCaller(s ssh.Session, keys sshKeys) sshWho {
	pk := s.PublicKey()
	if pk == nil {
		return sshWho{role: RoleNone, key: "none"}
	}
	who := sshWho{key: gossh.FingerprintSHA256(pk)}
	role, err := keys.roleOf(pk)
	if err != nil {
		rt.log.Error("ssh: cannot read the key files", "err", err)
	}
	who.role = role
	s.Context().SetValue(sshWhoKey{}, who)
	return who
}

// sessionNoForwarding is the session channel handler without agent or
// X11 forwarding: those requests are refused before the session sees
// them.
func sessionNoForwarding(srv *ssh.Server, conn *gossh.ServerConn, ch gossh.NewChannel, ctx ssh.Context) {
	ssh.DefaultSessionHandler(srv, conn, noForwardingChannel{ch}, ctx)
}

// noForwardingChannel filters a session channel's requests.
type noForwardingChannel struct{ gossh.NewChannel }

// Accept implements gossh.NewChannel.
func (c noForwardingChannel) Accept() (gossh.Channel, <-chan *gossh.Request, error) {
	ch, reqs, err := c.NewChannel.Accept()
	if err != nil {
		return ch, reqs, err
	}
	out := make(chan *gossh.Request)
	go func() {
		defer close(out)
		for r := range reqs {
			switch r.Type {
			case "auth-agent-req@openssh.com", "x11-req":
				if r.WantReply {
					r.Reply(false, nil)
				}
				continue
			}
			out <- r
		}
	}()
	return ch, out, nil
}

// DashboardSession is what an SSH session's dashboard is drawn for.
type DashboardSession struct {
	Context  context.Context    // ends with the session
	Renderer *lipgloss.Renderer // the session's terminal and colours
	Location *time.Location     // the household's zone
	Width    int
	Height   int
	// ReadOnly is true for a viewer's session: the dashboard offers no
	// changes, and the household it gets refuses them anyway.
	ReadOnly bool
	// Term is the session's TERM ("linux" has no braille).
	Term string
}

// Dashboard makes an SSH session's dashboard model on hh, and the program
// options it runs with (e.g. its frame-rate cap): the same that a local
// dashboard gets. The daemon adds the alternate screen and the session's
// input and output. It does not import the view: cmd/commons passes the
// tui's.
type Dashboard func(hh household.Household, s DashboardSession) (tea.Model, []tea.ProgramOption)

// sshCrashMessage is what a person whose dashboard crashed reads as the
// session ends.
const sshCrashMessage = "commons: the dashboard crashed (a bug; the household's daemon logged it and keeps running). Connect again to reopen it.\r\n"

// sshProgram is the middleware that runs one SSH session's dashboard. It
// does what wish's bubbletea middleware does (window changes become
// tea.WindowSizeMsg, the program ends with the session), and unlike it does
// not swallow a crash: Bubble Tea recovers a panic in the model or in one
// of its commands and returns tea.ErrProgramPanic, and a panic outside the
// program is recovered here. Either way the person is told, the daemon logs
// it with the session's key and address, and only this session ends. A
// session without a key press for the idle timeout ends too.
func (rt *Runtime) sshProgram(next ssh.Handler) ssh.Handler {
	return func(s ssh.Session) {
		who, _ := s.Context().Value(sshWhoKey{}).(sshWho)
		crashed := func(v any) {
			rt.log.Error("ssh dashboard crashed", "key", who.key, "role", who.role.String(), "user", s.User(), "remote", s.RemoteAddr().String(), "panic", fmt.Sprint(v))
			_, _ = io.WriteString(s.Stderr(), sshCrashMessage)
			_ = s.Exit(1)
		}
		defer func() {
			if v := recover(); v != nil {
				crashed(v)
			}
		}()
		_, windows, ok := s.Pty()
		if !ok {
			wish.Fatalln(s, "commons: the dashboard needs a terminal: connect with ssh -t")
			return
		}
		ctx, cancel := context.WithCancel(s.Context())
		defer cancel()
		// The idle watch runs from the start: making the renderer asks
		// the terminal for its colours, and on an SSH channel wish cannot
		// time that read out, so a client that never answers would hold
		// a session slot until it sends something.
		idle := newIdleWatch(rt.sshLimits.IdleTimeout)
		defer idle.stop()
		var idleOnce sync.Once
		idled := func() {
			idleOnce.Do(func() {
				rt.log.Info("ssh session idle: closed", "key", who.key, "role", who.role.String(), "remote", s.RemoteAddr().String(), "idle", rt.sshLimits.IdleTimeout.String())
				fmt.Fprintf(s.Stderr(), "commons: closed after %s without a key press\r\n", rt.sshLimits.IdleTimeout)
			})
		}
		var prog atomic.Pointer[tea.Program]
		go func() {
			select {
			case <-ctx.Done():
			case <-idle.expired:
			}
			if p := prog.Load(); p != nil {
				p.Quit()
				return
			}
			if idle.fired() {
				// still making the renderer: end the session, which
				// ends the read it waits in
				idled()
				_ = s.Exit(0)
			}
		}()
		m, opts := rt.sshDashboard(s, who)
		p := tea.NewProgram(idleModel{Model: m, w: idle}, append(opts, wishtea.MakeOptions(s)...)...)
		prog.Store(p)
		if ctx.Err() != nil || idle.fired() {
			// ended while the renderer was made; Kill also releases a
			// Quit sent meanwhile
			p.Kill()
			return
		}
		// Window changes are coalesced: the dashboard gets the latest
		// size once it is done with the previous one, so a storm of them
		// costs one redraw per redraw, not one per change.
		var latest atomic.Pointer[ssh.Window]
		resized := make(chan struct{}, 1)
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case w, ok := <-windows:
					if !ok {
						return
					}
					latest.Store(&w)
					select {
					case resized <- struct{}{}:
					default:
					}
				}
			}
		}()
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-resized:
					w := latest.Load()
					wd, ht := clampWindow(w.Width, w.Height)
					p.Send(tea.WindowSizeMsg{Width: wd, Height: ht})
				}
			}
		}()
		_, err := p.Run()
		p.Kill()
		switch {
		case errors.Is(err, tea.ErrProgramPanic):
			crashed(err)
			return
		case err != nil && !errors.Is(err, tea.ErrProgramKilled):
			rt.log.Warn("ssh dashboard ended with an error", "key", who.key, "remote", s.RemoteAddr().String(), "err", err)
		}
		if idle.fired() {
			idled()
		}
		next(s)
	}
}

// sshDashboard is one SSH session's dashboard: its own model and
// renderer (the session's terminal and colours) on the shared household,
// through a backend that refuses a viewer's changes and logs an owner's
// with the key.
func (rt *Runtime) sshDashboard(s ssh.Session, who sshWho) (tea.Model, []tea.ProgramOption) {
	pty, _, _ := s.Pty()
	w, h := clampWindow(pty.Window.Width, pty.Window.Height)
	b := sessionBackend{Household: rt.n, who: who, remote: s.RemoteAddr().String(), rt: rt}
	m, opts := rt.opts.Dashboard(b, DashboardSession{
		Context:  s.Context(),
		Renderer: wishtea.MakeRenderer(s),
		Location: rt.n.Calendar().Location,
		Width:    w,
		Height:   h,
		ReadOnly: who.role != RoleOwner,
		Term:     pty.Term,
	})
	return m, append([]tea.ProgramOption{tea.WithAltScreen()}, opts...)
}

// Largest terminal the dashboard draws for: a client may claim any size
// up to 65535 columns, and drawing costs with the area.
const maxTermWidth, maxTermHeight = 512, 256

// clampWindow bounds a terminal size the client claims.
func clampWindow(w, h int) (int, int) {
	return min(max(w, 0), maxTermWidth), min(max(h, 0), maxTermHeight)
}

// SSHAddr is the address the dashboard-over-SSH service listens on (""
// when none), with the port the system picked for a port 0.
func (rt *Runtime) SSHAddr() string {
	if rt.sshLn == nil {
		return ""
	}
	return rt.sshLn.Addr().String()
}
