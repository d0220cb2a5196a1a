// Package daemon runs a household: the meter reader, the batched meter
// aggregates and the live ring (through the node), the peer transport
// (server and syncer), the signed ephemeral status, settlement rounds,
// auto-accept rules, and the local API on a Unix socket in the home folder
// that the CLI, the dashboard and SSH sessions use while it runs.
//
// One Runtime owns one household: it holds the home's exclusive lock, so
// it is the single writer of the household's feed. `commons daemon` runs
// one; `commons demo` runs several in one process, each in its own home.
// Connect returns a client of a running household's socket that
// implements household.Household.
package daemon

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charmbracelet/ssh"

	"github.com/commons-energy/commons/share"
	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/mqtt"
	"github.com/commons-energy/commons/share/node"
	"github.com/commons-energy/commons/share/peer"
	"github.com/commons-energy/commons/share/relay"
)

// ListenOff as Options.Listen runs no peer server: the household still
// dials its neighbours, but they cannot reach it.
const ListenOff = "off"

// Options configure Open.
type Options struct {
	// Owner is written in the home's lock file; another process finding
	// the home busy names it. Default "commons daemon".
	Owner string
	// Listen is the TCP address neighbours reach this household on. ""
	// means the config's listen address; ListenOff means none; a port 0
	// picks a free one (see Runtime.PeerAddr).
	Listen string
	// Socket serves the local API on the home's socket: mode 0600, or,
	// when group commons-owners or commons-viewers exists, 0666 with each
	// connection's role decided from its SO_PEERCRED (docs/DAEMON.md).
	Socket bool
	// Logger receives the runtime's logs; nil discards them.
	Logger *slog.Logger
	// AutoAccept accepts incoming pledges that match it; nil means the
	// config's auto_accept, and without one every incoming pledge waits
	// for the household (the default).
	AutoAccept *AutoAccept
	// StatusEvery is the longest time between two signed statuses while
	// the meter reads; default 5 minutes.
	StatusEvery time.Duration
	// PullEvery is how often the household pulls from each neighbour's
	// box; default 30 s (peer.SyncConfig.Interval).
	PullEvery time.Duration
	// SSHListen, when not "", is a TCP address where the dashboard is
	// served over SSH to the keys in SSHAuthorizedKeys (owners) and
	// SSHViewerKeys (viewers).
	SSHListen string
	// Dashboard makes each SSH session's dashboard; needed with SSHListen.
	Dashboard Dashboard
	// SSHAuthorizedKeys is the owners' authorized_keys file for
	// SSHListen; "" means AuthorizedKeysFile in the home's config folder.
	SSHAuthorizedKeys string
	// SSHViewerKeys is the viewers' key file for SSHListen; "" means
	// ViewerKeysFile in the home's config folder.
	SSHViewerKeys string
	// SSH bounds the SSH service: sessions, timeouts, connection rates.
	SSH SSHLimits
	// MetricsListen, when not "", is a TCP address where GET /metrics
	// answers in the Prometheus text format.
	MetricsListen string
	// MQTT, when set (commons daemon), publishes the household to Home
	// Assistant if MQTT.URL (from --mqtt) or the config's "mqtt" block
	// names a broker (share/mqtt). nil (the in-process dashboard, the
	// demo) publishes nothing, whatever the config says.
	MQTT *mqtt.Options
	// StatusCheck is how often the smoothed surplus is compared with the
	// last published one; default 10 s.
	StatusCheck time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// Readings, SettleEvery, FlushEvery and LedgerCacheKiB are passed to
	// the node (node.Options): a reading source besides the configured
	// meter port, the settlement round and aggregate write intervals,
	// and the ledger's page cache. The headless demo street sets them;
	// `commons daemon` leaves them zero.
	Readings       <-chan node.TimedReading
	SettleEvery    time.Duration
	FlushEvery     time.Duration
	LedgerCacheKiB int
	// OnSigned, when not nil, is called with every chain message this
	// household signs and stores, as it is handed to the transport;
	// OnStored with every message (chain or ephemeral) the transport
	// stored from a neighbour. Both must return quickly. The headless
	// demo measures delivery latency with them, so every transport (a
	// relay too) reports what it stored through Runtime.stored.
	OnSigned func(raw []byte)
	OnStored func(raw []byte)
}

// Runtime is one running household. Open it, Run it until its context
// ends, then Close it.
type Runtime struct {
	n      *node.Node
	opts   Options
	log    *slog.Logger
	relay  *fanout
	hub    *relay.Client // nil without a configured relay
	peerLn net.Listener
	sockLn net.Listener
	sync   *peer.Syncer
	server *peer.Server
	api    *http.Server

	metricsLn net.Listener
	mqtt      *mqtt.Publisher // nil: nothing published over MQTT
	metrics   *http.Server
	sshLn     net.Listener
	sshSrv    *ssh.Server
	sshKeys   sshKeys
	sshLimits SSHLimits
	sshGuard  *sshGuard
	roles     sockRoles

	statusMu sync.Mutex
	status   statusState
	// statusPolicy is the privacy setting and heartbeat of statuses.
	statusPolicy statusPolicy

	running atomic.Bool
	closed  atomic.Bool
}

// fanout forwards the node's new messages to the syncer (direct
// transport) and to the community hub, which exist only once the node
// (and its ledger) is open.
type fanout struct {
	s   atomic.Pointer[peer.Syncer]
	hub atomic.Pointer[relay.Client]
	// onSigned, when set, sees each of the household's own new chain
	// messages as it is handed to the transports (Options.OnSigned).
	onSigned func(raw []byte)
}

// Publish implements node.Transport.
func (t *fanout) Publish(raw ...[]byte) {
	if t.onSigned != nil {
		for _, r := range raw {
			t.onSigned(r)
		}
	}
	if s := t.s.Load(); s != nil {
		s.Publish(raw...)
	}
	if h := t.hub.Load(); h != nil {
		h.Kick() // it publishes from the ledger
	}
}

// PublishStatus implements node.Transport.
func (t *fanout) PublishStatus(raw []byte) {
	if s := t.s.Load(); s != nil {
		s.PublishStatus(raw)
	}
	if h := t.hub.Load(); h != nil {
		h.PublishStatus(raw)
	}
}

// Links implements node.LinkReporter from the syncer's workers.
func (t *fanout) Links() map[share.HouseholdID]household.Link {
	s := t.s.Load()
	if s == nil {
		return nil
	}
	out := map[share.HouseholdID]household.Link{}
	for _, st := range s.State() {
		out[st.ID] = household.Link{LastContact: st.LastOK, UnreachableSince: st.FailingSince, LastError: st.LastError}
	}
	return out
}

// RelayState implements node.RelayReporter.
func (t *fanout) RelayState() *household.RelayState {
	h := t.hub.Load()
	if h == nil {
		return nil
	}
	st := h.State()
	rs := &household.RelayState{
		URL: st.URL, Running: true, Connected: st.Connected, LastErrorAt: st.LastErrorAt, LastMessage: st.LastMessage,
		Cursor: st.Cursor, Received: st.Received, Stored: st.Stored, Duplicates: st.Duplicates, Refused: st.Refused, Skipped: st.Skipped, Published: st.Published,
	}
	if st.LastError != "" {
		rs.LastError = &st.LastError
	}
	return rs
}

// Open opens the household in home for running: it takes the home's
// exclusive lock (a busy home fails with an error that wraps
// ledger.ErrHomeInUse and names the holder), opens the ledger, binds the
// peer listener and, with opts.Socket, the local socket.
func Open(ctx context.Context, home node.Home, opts Options) (*Runtime, error) {
	if opts.Owner == "" {
		opts.Owner = "commons daemon"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.StatusEvery <= 0 {
		opts.StatusEvery = 5 * time.Minute
	}
	if opts.StatusCheck <= 0 {
		opts.StatusCheck = 10 * time.Second
	}
	if err := opts.AutoAccept.validate(); err != nil {
		return nil, err
	}
	rt := &Runtime{opts: opts, log: opts.Logger, relay: &fanout{onSigned: opts.OnSigned}}
	n, err := node.Open(ctx, home, node.Options{
		Owner: opts.Owner, Now: opts.Now, Logger: opts.Logger, Transport: rt.relay,
		Readings: opts.Readings, SettleEvery: opts.SettleEvery, FlushEvery: opts.FlushEvery, LedgerCacheKiB: opts.LedgerCacheKiB,
	})
	if err != nil {
		return nil, err
	}
	rt.n = n
	rt.statusPolicy = newStatusPolicy(n.Config().Status, opts.StatusEvery)
	if rt.opts.AutoAccept == nil {
		if a := n.Config().AutoAccept; a != nil {
			rt.opts.AutoAccept = &AutoAccept{MaxWh: a.MaxWh, From: a.From}
		}
	}
	if err := rt.setup(); err != nil {
		rt.closeListeners()
		n.Close()
		return nil, err
	}
	return rt, nil
}

// setup builds the peer transport and binds the listeners.
func (rt *Runtime) setup() error {
	n := rt.n
	key := ed25519.NewKeyFromSeed(n.Key().Seed())
	olds, err := n.RetiredKeys(context.Background())
	if err != nil {
		return err
	}
	// A neighbour that has not followed a key change yet knows only an
	// old key: each link starts by pushing the old keys' last messages
	// (their handovers, oldest first), so it follows at once.
	var (
		retired []ed25519.PrivateKey
		greet   [][]byte
	)
	for _, k := range olds {
		retired = append(retired, ed25519.NewKeyFromSeed(k.Seed()))
	}
	ctx := context.Background()
	for i := len(olds) - 1; i >= 0; i-- {
		if head, err := n.Ledger().Head(ctx, olds[i].ID()); err == nil && head.Seq > 0 {
			raws, _ := n.Ledger().Range(ctx, olds[i].ID(), head.Seq, 1)
			greet = append(greet, raws...)
		}
	}
	// Then the current key's first message, which continues an old key
	// (a recover message is not in the old key's feed).
	if len(olds) > 0 {
		raws, _ := n.Ledger().Range(ctx, n.Key().ID(), 1, 1)
		greet = append(greet, raws...)
	}
	led := n.Ledger()
	store := notifyStore{LedgerStore: peer.LedgerStore{L: led, Relay: rt.relayEphemeral}, rt: rt}
	nbs := &peer.LedgerNeighbours{L: led}
	verifier := peer.ShareVerifier{Community: n.Manifest().ID()}
	peerLog := rt.log.With("part", "peer")
	sy, err := peer.NewSyncer(peer.SyncConfig{
		Key: key, Retired: retired, Greet: greet, Store: store, Neighbours: nbs, Verifier: verifier, Logger: peerLog, OnAdded: rt.stored, Interval: rt.opts.PullEvery,
	})
	if err != nil {
		return err
	}
	rt.sync = sy
	rt.relay.s.Store(sy)

	if cfg := n.Config(); cfg.Relay != "" {
		if err := rt.setupHub(cfg, greet); err != nil {
			return err
		}
	}

	listen := rt.opts.Listen
	if listen == "" {
		cfg := n.Config()
		listen = cfg.ListenAddr()
	}
	if listen != "" && listen != ListenOff && listen != node.ListenNone {
		srv, err := peer.NewServer(peer.ServerConfig{
			Key: key, Retired: retired, Store: store, Neighbours: nbs, Verifier: verifier, Logger: peerLog,
			OnConflict: sy.Kick, OnAdded: rt.stored, OnContact: sy.Returned,
		})
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return fmt.Errorf("listen for neighbours on %s: %w: is another household using that address? set another \"listen\" in %s", listen, err, n.Home().ConfigPath())
		}
		rt.server, rt.peerLn = srv, ln
	}
	if rt.opts.SSHListen != "" {
		if err := rt.listenSSH(rt.opts.SSHListen); err != nil {
			return err
		}
	}
	if rt.opts.MetricsListen != "" {
		if err := rt.listenMetrics(rt.opts.MetricsListen); err != nil {
			return err
		}
	}
	if err := rt.setupMQTT(); err != nil {
		return err
	}
	if rt.opts.Socket {
		roles, err := systemSockRoles()
		if err != nil {
			return fmt.Errorf("local socket: %w", err)
		}
		rt.roles = roles
		ln, err := listenSocket(n.Home().SocketPath(), roles.socketMode())
		if err != nil {
			return err
		}
		rt.checkSocketReach()
		rt.sockLn = ln
		rt.api = newAPIServer(rt)
	}
	return nil
}

// notifyStore is the ledger store of the peer transport; it also tells the
// node about statuses neighbours push or we pull, which the transport's
// OnAdded does not report, so dashboards show them at once.
type notifyStore struct {
	peer.LedgerStore
	rt *Runtime
}

// PutStatus implements peer.Store.
func (s notifyStore) PutStatus(ctx context.Context, m peer.Message) error {
	if err := s.LedgerStore.PutStatus(ctx, m); err != nil {
		return err
	}
	s.rt.stored([]peer.Message{m})
	return nil
}

// RecordAck implements peer.Acker through the node, which tells the
// front ends when a pledge or answer reached its counterparty.
func (s notifyStore) RecordAck(ctx context.Context, neighbour share.HouseholdID, seq uint64) error {
	return s.rt.n.Acknowledged(ctx, neighbour, seq)
}

// stored tells the node about messages the peer transport stored.
func (rt *Runtime) stored(msgs []peer.Message) {
	parsed := make([]*share.Message, 0, len(msgs))
	for _, m := range msgs {
		if rt.opts.OnStored != nil {
			rt.opts.OnStored(m.Raw)
		}
		if pm, err := share.Parse(m.Raw); err == nil {
			parsed = append(parsed, pm)
		}
	}
	rt.n.Stored(context.Background(), parsed)
}

// Node returns the running household: it implements household.Household,
// for the in-process dashboard as for the CLI.
func (rt *Runtime) Node() *node.Node { return rt.n }

// PeerAddr is the address the peer server listens on ("" when none), with
// the port the system picked for a port 0.
func (rt *Runtime) PeerAddr() string {
	if rt.peerLn == nil {
		return ""
	}
	return rt.peerLn.Addr().String()
}

// Relay returns the community hub link, nil without a configured relay.
func (rt *Runtime) Relay() *relay.Client { return rt.hub }

// Syncer returns the peer syncer (its State lists each neighbour's link).
func (rt *Runtime) Syncer() *peer.Syncer { return rt.sync }

// Run runs the household until ctx ends, then stops every part: the
// pending meter aggregates are written before it returns. Run once.
func (rt *Runtime) Run(ctx context.Context) error {
	if !rt.running.CompareAndSwap(false, true) {
		return errors.New("run: this household runtime already ran")
	}
	if rt.closed.Load() {
		return errors.New("run: the household runtime is closed")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	id := rt.n.Identity()
	rt.log.Info("household running", "name", id.Name, "id", id.ID, "listen", rt.PeerAddr(), "relay", id.Relay, "home", rt.n.Home().String())

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	run := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	if rt.server != nil {
		run("peer server", func() error { return rt.server.Serve(rt.peerLn) })
	}
	if rt.api != nil {
		// Requests (event streams above all) end when the runtime stops.
		rt.api.BaseContext = func(net.Listener) context.Context { return ctx }
		run("local socket", func() error {
			if err := rt.api.Serve(rt.sockLn); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	if rt.sshSrv != nil {
		rt.log.Info("ssh dashboard listening", "addr", rt.SSHAddr(), "owners", rt.sshKeys.owners, "viewers", rt.sshKeys.viewers,
			"max_sessions", rt.sshLimits.MaxSessions, "idle_timeout", rt.sshLimits.IdleTimeout.String())
		run("ssh", func() error {
			if err := rt.sshSrv.Serve(rt.sshLn); !errors.Is(err, ssh.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	if rt.metrics != nil {
		run("metrics", func() error {
			if err := rt.metrics.Serve(rt.metricsLn); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	if rt.hub != nil {
		// Run returns only when ctx ends: a hub that is away, refuses
		// the credentials or is full shows in the status and never stops
		// the meter, the dashboard or the direct transport.
		run("relay", func() error { return rt.hub.Run(ctx) })
	}
	if rt.mqtt != nil {
		run("mqtt", func() error { return rt.mqtt.Run(ctx) })
	}
	run("peer sync", func() error { return rt.sync.Run(ctx) })
	run("re-offer", func() error { rt.reoffer(ctx); return nil })
	run("status", func() error { rt.statusLoop(ctx); return nil })
	if rt.opts.AutoAccept != nil {
		run("auto-accept", func() error { rt.acceptLoop(ctx); return nil })
	}
	// The household itself: its return writes the pending aggregates.
	var nodeErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		nodeErr = rt.n.Run(ctx)
		cancel()
	}()

	<-ctx.Done()
	rt.log.Info("stopping")
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if rt.server != nil {
		if err := rt.server.Shutdown(sctx); err != nil {
			rt.server.Close()
		}
	}
	if rt.sshSrv != nil {
		// Open dashboards end with the household. The listener is closed
		// too: a Close before Serve has registered it would miss it.
		rt.sshSrv.Close()
		rt.sshLn.Close()
	}
	if rt.metrics != nil {
		if err := rt.metrics.Shutdown(sctx); err != nil {
			rt.metrics.Close()
		}
	}
	if rt.api != nil {
		// Event streams never end by themselves: close them.
		if err := rt.api.Shutdown(sctx); err != nil {
			rt.api.Close()
		}
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if nodeErr != nil && !errors.Is(nodeErr, context.Canceled) {
		all = append(all, fmt.Errorf("household: %w", nodeErr))
	}
	if len(all) > 0 {
		return errors.Join(all...)
	}
	rt.log.Info("stopped")
	return nil
}

// Close releases what Open took: the listeners, the socket file, the
// ledger and the home lock. Call it after Run has returned (or instead of
// Run).
func (rt *Runtime) Close() error {
	if !rt.closed.CompareAndSwap(false, true) {
		return nil
	}
	rt.closeListeners()
	return rt.n.Close()
}

func (rt *Runtime) closeListeners() {
	if rt.peerLn != nil {
		rt.peerLn.Close()
	}
	if rt.metricsLn != nil {
		rt.metricsLn.Close()
	}
	if rt.sshLn != nil {
		rt.sshLn.Close()
	}
	if rt.sockLn != nil {
		// Closing a unix listener created by Listen removes its file.
		rt.sockLn.Close()
	}
}

// reofferTail is how many of its latest own messages a starting household
// offers its neighbours again.
const reofferTail = 32

// reoffer pushes the latest own messages once the syncer's neighbour links
// exist: a neighbour that missed them while this household was down (or
// that lacks earlier ones: it answers with a conflict and pulls) learns
// of them now instead of at its next periodic pull.
func (rt *Runtime) reoffer(ctx context.Context) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for len(rt.sync.State()) == 0 {
		if time.Now().After(deadline) {
			return // no neighbour with an address
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	led, self := rt.n.Ledger(), rt.n.Key().ID()
	head, err := led.Head(ctx, self)
	if err != nil {
		rt.log.Warn("re-offer own messages", "err", err)
		return
	}
	from := uint64(1)
	if head.Seq > reofferTail {
		from = head.Seq - reofferTail + 1
	}
	raws, err := led.Range(ctx, self, from, reofferTail)
	if err != nil {
		rt.log.Warn("re-offer own messages", "err", err)
		return
	}
	rt.sync.Publish(raws...)
}

// relayEphemeral passes a neighbour's ephemeral message of a kind this
// version does not interpret on to the other neighbours (docs/PROTOCOL.md
// §6.5, §13). The store calls it only for a message it kept as new, so a
// message already known stops travelling.
func (rt *Runtime) relayEphemeral(raw []byte) {
	if rt.sync != nil {
		rt.sync.Relay(raw)
	}
}
