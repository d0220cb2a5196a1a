package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/ssh"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/time/rate"

	"github.com/commons-energy/commons/share/household"
)

// SSHLimits bound the dashboard-over-SSH service. A zero field takes its
// default.
type SSHLimits struct {
	// MaxSessions is how many dashboards may be open at once; the next
	// person is told so. Default 8.
	MaxSessions int
	// IdleTimeout ends a dashboard without a key press for that long,
	// and a connection without any traffic for that long. Default 30 min.
	IdleTimeout time.Duration
	// HandshakeTimeout closes a connection that has not finished the SSH
	// handshake (key exchange and authentication) by then. Default 10 s.
	HandshakeTimeout time.Duration
	// MaxPendingPerAddr is how many connections from one address (an
	// IPv4 address, or an IPv6 /64) may be in the handshake at once.
	// Default 4.
	MaxPendingPerAddr int
	// MaxPending is how many connections from anywhere may be in the
	// handshake at once. Default 32.
	MaxPending int
	// ConnRate is how many new connections one address may open per
	// second on average, with bursts of ConnBurst. Defaults 0.2 (one
	// every 5 s) and 10.
	ConnRate  rate.Limit
	ConnBurst int
}

// withDefaults fills the zero fields.
func (l SSHLimits) withDefaults() SSHLimits {
	if l.MaxSessions <= 0 {
		l.MaxSessions = 8
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = 30 * time.Minute
	}
	if l.HandshakeTimeout <= 0 {
		l.HandshakeTimeout = 10 * time.Second
	}
	if l.MaxPendingPerAddr <= 0 {
		l.MaxPendingPerAddr = 4
	}
	if l.MaxPending <= 0 {
		l.MaxPending = 32
	}
	if l.ConnRate <= 0 {
		l.ConnRate = 0.2
	}
	if l.ConnBurst <= 0 {
		l.ConnBurst = 10
	}
	return l
}

// sshKeys are the two key files: owners' and viewers'.
type sshKeys struct{ owners, viewers string }

// maxKeyFile bounds a key file read.
const maxKeyFile = 1 << 20

// readKeys parses an authorized_keys-format file. A missing file holds no
// key. A file that group or others may write is refused as sshd refuses
// it: whoever can write it can let themselves in. A line that is not a
// key is an error naming the file and line; the other keys are returned.
func readKeys(path string) ([]gossh.PublicKey, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if m := fi.Mode().Perm(); m&0o022 != 0 {
		return nil, fmt.Errorf("%s is writable by group or others (mode %04o), so anyone who can change it can let themselves in; run chmod 600 %s", path, m, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var keys []gossh.PublicKey
	var bad error
	for i, line := range bytes.Split(b, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		pk, _, opts, _, err := gossh.ParseAuthorizedKey(line)
		if err == nil && len(opts) > 0 {
			// from=, command= and the like promise to restrict the key;
			// this server does not honour them, so rather than grant the
			// key more than its owner meant, it refuses the line.
			err = fmt.Errorf("key options (%s) are not supported; remove them", strings.Join(opts, ","))
		}
		if err != nil {
			if bad == nil {
				bad = fmt.Errorf("%s:%d: not a public key line as in ~/.ssh/authorized_keys: %v", path, i+1, err)
			}
			continue
		}
		keys = append(keys, pk)
	}
	return keys, bad
}

// check is the start-up check of the key files: at least one exists, and
// both are safe and well formed.
func (k sshKeys) check() error {
	found := false
	for _, p := range []string{k.owners, k.viewers} {
		if _, err := os.Stat(p); err == nil {
			found = true
		}
		if _, err := readKeys(p); err != nil {
			return err
		}
	}
	if !found {
		return fmt.Errorf("no %s: put the public keys of the people who may open the dashboard there, one per line as in ~/.ssh/authorized_keys (keys in %s may only look)", k.owners, k.viewers)
	}
	return nil
}

// roleOf returns the role of key, read from the files now: an owner's key
// first. A file that cannot be trusted (see readKeys) grants nothing.
func (k sshKeys) roleOf(key gossh.PublicKey) (Role, error) {
	want := key.Marshal()
	var errs []error
	for _, f := range []struct {
		path string
		role Role
	}{{k.owners, RoleOwner}, {k.viewers, RoleViewer}} {
		keys, err := readKeys(f.path) // an unsafe file gives no key
		if err != nil {
			errs = append(errs, err)
		}
		for _, pk := range keys {
			if bytes.Equal(pk.Marshal(), want) {
				return f.role, errors.Join(errs...)
			}
		}
	}
	return RoleNone, errors.Join(errs...)
}

// sshGuard admits SSH connections before their handshake: per address a
// rate of new connections and a cap on those still in the handshake, a
// cap on all of those, and a deadline for the handshake. It also logs a
// refused key once per address per minute.
type sshGuard struct {
	lim SSHLimits
	log *slog.Logger

	mu        sync.Mutex
	addrs     map[string]*addrState
	pending   int
	lastSweep time.Time
}

// addrState is what the guard remembers of one address.
type addrState struct {
	lim       *rate.Limiter
	pending   int
	seen      time.Time // last connection
	keyLogged time.Time // last refused key logged
	refLogged time.Time // last refused connection logged
}

// maxAddrs bounds the addresses the guard remembers; beyond it, new
// addresses are refused until old ones are forgotten.
const maxAddrs = 16384

func newSSHGuard(lim SSHLimits, log *slog.Logger) *sshGuard {
	return &sshGuard{lim: lim, log: log, addrs: make(map[string]*addrState)}
}

// addrKey groups a remote address: the IPv4 address, or the IPv6 /64 (a
// single host often has a whole /64).
func addrKey(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	if ip4 := ta.IP.To4(); ip4 != nil {
		return ip4.String()
	}
	return ta.IP.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// state returns addr's state, made on first sight; nil when the guard
// remembers too many addresses. Call with g.mu held.
func (g *sshGuard) state(addr string, now time.Time) *addrState {
	if st, ok := g.addrs[addr]; ok {
		return st
	}
	if len(g.addrs) >= maxAddrs/2 && now.Sub(g.lastSweep) > time.Second {
		g.sweep(now)
	}
	if len(g.addrs) >= maxAddrs {
		return nil
	}
	st := &addrState{lim: rate.NewLimiter(g.lim.ConnRate, g.lim.ConnBurst)}
	g.addrs[addr] = st
	return st
}

// sweep forgets the addresses that hold no connection in the handshake
// and whose limiter has refilled, so forgetting them changes nothing.
func (g *sshGuard) sweep(now time.Time) {
	g.lastSweep = now
	keep := time.Duration(float64(g.lim.ConnBurst) / float64(g.lim.ConnRate) * float64(time.Second))
	keep = max(keep, time.Minute)
	for a, st := range g.addrs {
		if st.pending == 0 && now.Sub(st.seen) > keep {
			delete(g.addrs, a)
		}
	}
}

// conn is the server's ConnCallback: it admits a new connection (nil
// closes it) and arms its handshake deadline.
func (g *sshGuard) conn(ctx ssh.Context, c net.Conn) net.Conn {
	now := time.Now()
	addr := addrKey(c.RemoteAddr())
	g.mu.Lock()
	st := g.state(addr, now)
	var why string
	switch {
	case st == nil:
		why = "too many addresses"
	case !st.lim.AllowN(now, 1):
		why = "too many new connections from this address"
	case st.pending >= g.lim.MaxPendingPerAddr:
		why = "too many connections from this address in the handshake"
	case g.pending >= g.lim.MaxPending:
		why = "too many connections in the handshake"
	}
	if why != "" {
		logIt := st == nil || now.Sub(st.refLogged) >= time.Minute
		if st != nil && logIt {
			st.refLogged = now
		}
		g.mu.Unlock()
		if logIt {
			g.log.Warn("ssh connection refused (logged once a minute per address)", "remote", c.RemoteAddr().String(), "reason", why)
		}
		return nil
	}
	st.seen = now
	st.pending++
	g.pending++
	g.mu.Unlock()
	gc := &guardedConn{Conn: c, g: g, addr: addr, ctx: ctx}
	gc.timer = time.AfterFunc(g.lim.HandshakeTimeout, gc.deadline)
	return gc
}

// release ends a connection's handshake accounting.
func (g *sshGuard) release(addr string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pending--
	if st, ok := g.addrs[addr]; ok {
		st.pending--
	}
}

// refusedKey logs a key that is in neither key file, once per address
// per minute.
func (g *sshGuard) refusedKey(remote net.Addr, fingerprint string) {
	now := time.Now()
	g.mu.Lock()
	st := g.state(addrKey(remote), now)
	logIt := st != nil && now.Sub(st.keyLogged) >= time.Minute
	if logIt {
		st.keyLogged = now
	}
	g.mu.Unlock()
	if logIt {
		g.log.Warn("ssh key refused (logged once a minute per address)", "key", fingerprint, "remote", remote.String())
	}
}

// pendingCount is how many connections are in the handshake.
func (g *sshGuard) pendingCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pending
}

// guardedConn is a connection the guard admitted. Until its handshake is
// done it counts as pending, and its deadline closes it.
type guardedConn struct {
	net.Conn
	g     *sshGuard
	addr  string
	ctx   ssh.Context
	timer *time.Timer
	once  sync.Once
	done  atomic.Bool
}

// handshook reports whether the SSH handshake is done: the server stores
// the connection in its context only then.
func (c *guardedConn) handshook() bool { return c.ctx.Value(ssh.ContextKeyConn) != nil }

// settle ends the pending state once.
func (c *guardedConn) settle() {
	c.once.Do(func() {
		c.done.Store(true)
		c.timer.Stop()
		c.g.release(c.addr)
	})
}

// deadline runs when the handshake time is up.
func (c *guardedConn) deadline() {
	if c.handshook() {
		c.settle()
		return
	}
	c.g.log.Debug("ssh handshake not finished in time: closed", "remote", c.RemoteAddr().String(), "after", c.g.lim.HandshakeTimeout.String())
	c.Conn.Close()
	c.settle()
}

// Read implements net.Conn; the first read after the handshake settles
// the connection.
func (c *guardedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if !c.done.Load() && c.handshook() {
		c.settle()
	}
	return n, err
}

// Close implements net.Conn.
func (c *guardedConn) Close() error {
	err := c.Conn.Close()
	c.settle()
	return err
}

// idleWatch fires when no key was pressed for d.
type idleWatch struct {
	d       time.Duration
	last    atomic.Int64 // unix ns of the last key
	t       *time.Timer
	expired chan struct{}
	once    sync.Once
	did     atomic.Bool
}

func newIdleWatch(d time.Duration) *idleWatch {
	w := &idleWatch{d: d, expired: make(chan struct{})}
	w.touch()
	w.t = time.AfterFunc(d, w.check)
	return w
}

func (w *idleWatch) touch() { w.last.Store(time.Now().UnixNano()) }

func (w *idleWatch) check() {
	if left := w.d - time.Since(time.Unix(0, w.last.Load())); left > 0 {
		w.t.Reset(left)
		return
	}
	w.did.Store(true)
	w.once.Do(func() { close(w.expired) })
}

func (w *idleWatch) stop()       { w.t.Stop() }
func (w *idleWatch) fired() bool { return w.did.Load() }

// idleModel notes each key press and mouse event of the dashboard it
// wraps.
type idleModel struct {
	tea.Model
	w *idleWatch
}

// Update implements tea.Model.
func (m idleModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg.(type) {
	case tea.KeyMsg, tea.MouseMsg:
		m.w.touch()
	}
	next, cmd := m.Model.Update(msg)
	return idleModel{Model: next, w: m.w}, cmd
}

// sessionBackend is an SSH session's household: it refuses a viewer's
// changes (pledge, accept, decline, cancel, neighbours, import, settle)
// whatever the view sends, as the local socket refuses a viewer's
// mutating requests, and logs every one with the session's key and role.
type sessionBackend struct {
	household.Household
	who    sshWho
	remote string
	rt     *Runtime
}

var _ household.Household = sessionBackend{}

// allow refuses a change unless the session is an owner's.
func (b sessionBackend) allow(action, target string) error {
	if b.who.role == RoleOwner {
		return nil
	}
	b.rt.log.Warn("ssh "+action+" refused: read-only session", "target", target, "key", b.who.key, "role", b.who.role.String(), "remote", b.remote)
	return errReadOnly
}

// logged logs a change's outcome.
func (b sessionBackend) logged(action, target string, err error) {
	if err != nil {
		b.rt.log.Warn("ssh "+action+" failed", "target", target, "key", b.who.key, "role", b.who.role.String(), "remote", b.remote, "err", err)
		return
	}
	b.rt.log.Info("ssh "+action, "target", target, "key", b.who.key, "role", b.who.role.String(), "remote", b.remote)
}

// Pledge implements household.Household.
func (b sessionBackend) Pledge(ctx context.Context, req household.PledgeRequest) (household.PledgeResult, error) {
	target := fmt.Sprintf("%d Wh to %s, %s to %s", req.EnergyWh, req.To, req.Start.Format(time.RFC3339), req.End.Format(time.RFC3339))
	if err := b.allow("pledge", target); err != nil {
		return household.PledgeResult{}, err
	}
	res, err := b.Household.Pledge(ctx, req)
	if err == nil {
		target = res.Pledge.ID + ": " + target
	}
	b.logged("pledge", target, err)
	return res, err
}

// Accept implements household.Household.
func (b sessionBackend) Accept(ctx context.Context, id string) (household.Pledge, error) {
	return b.answer(ctx, "accept", id, b.Household.Accept)
}

// Decline implements household.Household.
func (b sessionBackend) Decline(ctx context.Context, id string) (household.Pledge, error) {
	return b.answer(ctx, "decline", id, b.Household.Decline)
}

// Cancel implements household.Household.
func (b sessionBackend) Cancel(ctx context.Context, id string) (household.Pledge, error) {
	return b.answer(ctx, "cancel", id, b.Household.Cancel)
}

func (b sessionBackend) answer(ctx context.Context, action, id string, do func(context.Context, string) (household.Pledge, error)) (household.Pledge, error) {
	if err := b.allow(action, id); err != nil {
		return household.Pledge{}, err
	}
	p, err := do(ctx, id)
	b.logged(action, id, err)
	return p, err
}

// AddNeighbour implements household.Household.
func (b sessionBackend) AddNeighbour(ctx context.Context, invite, alias string) (household.Neighbour, error) {
	if err := b.allow("add neighbour", alias); err != nil {
		return household.Neighbour{}, err
	}
	nb, err := b.Household.AddNeighbour(ctx, invite, alias)
	b.logged("add neighbour", nb.ID, err)
	return nb, err
}

// RemoveNeighbour implements household.Household.
func (b sessionBackend) RemoveNeighbour(ctx context.Context, nameOrID string) (household.Neighbour, error) {
	if err := b.allow("remove neighbour", nameOrID); err != nil {
		return household.Neighbour{}, err
	}
	nb, err := b.Household.RemoveNeighbour(ctx, nameOrID)
	b.logged("remove neighbour", nameOrID, err)
	return nb, err
}

// Import implements household.Household.
func (b sessionBackend) Import(ctx context.Context, r io.Reader) (household.ImportReport, error) {
	if err := b.allow("import", ""); err != nil {
		return household.ImportReport{}, err
	}
	rep, err := b.Household.Import(ctx, r)
	b.logged("import", fmt.Sprintf("%d added", rep.Added), err)
	return rep, err
}

// Settle implements household.Household.
func (b sessionBackend) Settle(ctx context.Context) (household.SettleReport, error) {
	if err := b.allow("settle", ""); err != nil {
		return household.SettleReport{}, err
	}
	return b.Household.Settle(ctx)
}

// Close implements household.Household: a session does not close the
// household it shares.
func (b sessionBackend) Close() error { return nil }
