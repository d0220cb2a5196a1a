package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/ssh"
	"github.com/charmbracelet/wish"
	"github.com/charmbracelet/wish/activeterm"
	wishtea "github.com/charmbracelet/wish/bubbletea"

	"github.com/commons-energy/commons/share/node"
	"github.com/commons-energy/commons/tui"
)

// Files of the dashboard-over-SSH service.
const (
	// AuthorizedKeysFile, in the home's config folder, lists the public
	// keys (authorized_keys format) allowed to open the dashboard over SSH.
	AuthorizedKeysFile = "authorized_keys"
	// HostKeyFile, in the home's data folder, is the SSH host key; it is
	// made (Ed25519, mode 0600) on first use.
	HostKeyFile = "ssh_host_ed25519"
)

// SSH service limits.
const (
	maxSSHSessions = 8
	sshIdleTimeout = 2 * time.Hour
)

// listenSSH prepares the dashboard-over-SSH server on addr. Only the keys
// in the home's authorized_keys file get in; without that file the
// service does not start.
func (rt *Runtime) listenSSH(addr string) error {
	home := rt.n.Home()
	keys := rt.opts.SSHAuthorizedKeys
	if keys == "" {
		keys = filepath.Join(home.ConfigDir, AuthorizedKeysFile)
	}
	if _, err := os.Stat(keys); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("ssh: no %s: put the public keys of the people who may open the dashboard there, one per line as in ~/.ssh/authorized_keys", keys)
	} else if err != nil {
		return fmt.Errorf("ssh: %w", err)
	}
	var sessions atomic.Int32
	limit := func(next ssh.Handler) ssh.Handler {
		return func(s ssh.Session) {
			if sessions.Add(1) > maxSSHSessions {
				sessions.Add(-1)
				wish.Fatalf(s, "commons: %d dashboards are open already; close one and try again\n", maxSSHSessions)
				return
			}
			defer sessions.Add(-1)
			rt.log.Info("ssh dashboard opened", "user", s.User(), "remote", s.RemoteAddr().String())
			next(s)
			rt.log.Info("ssh dashboard closed", "user", s.User(), "remote", s.RemoteAddr().String())
		}
	}
	srv, err := wish.NewServer(
		wish.WithAddress(addr),
		wish.WithHostKeyPath(filepath.Join(home.DataDir, HostKeyFile)),
		wish.WithAuthorizedKeys(keys),
		wish.WithIdleTimeout(sshIdleTimeout),
		// The last middleware runs first.
		wish.WithMiddleware(rt.sshProgram, activeterm.Middleware(), limit),
	)
	if err != nil {
		return fmt.Errorf("ssh: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("ssh listen %s: %w; choose another address with --ssh-listen", addr, err)
	}
	rt.sshSrv, rt.sshLn = srv, ln
	return nil
}

// newSSHModel makes a session's dashboard model; tests replace it with a
// model that panics.
var newSSHModel = func(b tui.Backend, opts tui.Options) tea.Model { return tui.New(b, opts) }

// sshCrashMessage is what a person whose dashboard crashed reads as the
// session ends.
const sshCrashMessage = "commons: the dashboard crashed (a bug; the household's daemon logged it and keeps running). Connect again to reopen it.\r\n"

// sshProgram is the middleware that runs one SSH session's dashboard. It
// does what wish's bubbletea middleware does (window changes become
// tea.WindowSizeMsg, the program ends with the session), and unlike it does
// not swallow a crash: Bubble Tea recovers a panic in the model or in one
// of its commands and returns tea.ErrProgramPanic, and a panic outside the
// program is recovered here. Either way the person is told, the daemon logs
// it with the session's user and address, and only this session ends.
func (rt *Runtime) sshProgram(next ssh.Handler) ssh.Handler {
	return func(s ssh.Session) {
		crashed := func(v any) {
			rt.log.Error("ssh dashboard crashed", "user", s.User(), "remote", s.RemoteAddr().String(), "panic", fmt.Sprint(v))
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
		m, opts := rt.sshDashboard(s)
		p := tea.NewProgram(m, append(opts, wishtea.MakeOptions(s)...)...)
		ctx, cancel := context.WithCancel(s.Context())
		defer cancel()
		go func() {
			for {
				select {
				case <-ctx.Done():
					p.Quit()
					return
				case w := <-windows:
					p.Send(tea.WindowSizeMsg{Width: w.Width, Height: w.Height})
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
			rt.log.Warn("ssh dashboard ended with an error", "user", s.User(), "remote", s.RemoteAddr().String(), "err", err)
		}
		next(s)
	}
}

// sshDashboard is one SSH session's dashboard: its own model and
// renderer (the session's terminal and colours) on the shared household.
func (rt *Runtime) sshDashboard(s ssh.Session) (tea.Model, []tea.ProgramOption) {
	pty, _, _ := s.Pty()
	m := newSSHModel(node.TUIBackend(rt.n), tui.Options{
		Context:  s.Context(),
		Renderer: wishtea.MakeRenderer(s),
		Location: rt.n.Calendar().Location,
		Width:    pty.Window.Width,
		Height:   pty.Window.Height,
	})
	return m, []tea.ProgramOption{tea.WithAltScreen()}
}

// SSHAddr is the address the dashboard-over-SSH service listens on (""
// when none), with the port the system picked for a port 0.
func (rt *Runtime) SSHAddr() string {
	if rt.sshLn == nil {
		return ""
	}
	return rt.sshLn.Addr().String()
}
