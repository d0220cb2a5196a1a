package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/commons-energy/commons/ledger"
	"github.com/commons-energy/commons/meter"
	"github.com/commons-energy/commons/share"
	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/relay"
)

// Options configure Open.
type Options struct {
	// Owner describes the process for the lock file, e.g. "commons pledge";
	// another process that finds the home busy names it.
	Owner string
	// ReadOnly opens without the exclusive lock: the caller only reads,
	// sharing the ledger with whichever process owns the household.
	// Operations that sign or store fail.
	ReadOnly bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives notes; nil discards them.
	Logger *slog.Logger
	// Transport delivers this household's new messages to its neighbours;
	// nil keeps them in the ledger until a transport or export-messages
	// carries them.
	Transport Transport

	// Readings, when not nil, feeds grid meter readings to Run besides
	// (or instead of) the configured meter port: the headless demo street
	// drives a thousand simulated meters' models this way without a
	// pseudo-terminal each. Run takes them as a reader's, filed at their
	// At (the box clock when the reading was taken), not at the moment
	// the run loop gets to them.
	Readings <-chan TimedReading
	// SettleEvery is how often Run runs a settlement round; 0 means
	// SettleEvery (a minute). A street on an accelerated clock settles
	// more often.
	SettleEvery time.Duration
	// FlushEvery is how much meter time may pass between aggregate
	// writes; 0 means the aggregator's default (a minute).
	FlushEvery time.Duration
	// LedgerCacheKiB caps the ledger's SQLite page cache per connection;
	// 0 keeps the default (see ledger.Options.CacheKiB).
	LedgerCacheKiB int
}

// TimedReading is a grid meter reading and the box clock's time when it
// was taken (Options.Readings).
type TimedReading struct {
	meter.Reading
	At time.Time
}

// Transport carries messages between this household and its neighbours.
// The peer package (direct TLS between boxes) and relays implement it; the
// node calls Publish after every message it signs and stores.
type Transport interface {
	// Publish offers newly stored chain messages (exact bytes) for
	// delivery. It must not block on the network: queue and return.
	Publish(raw ...[]byte)
	// PublishStatus offers an ephemeral signed status (latest wins).
	PublishStatus(raw []byte)
}

// LinkReporter is implemented by a Transport that links to neighbours'
// boxes directly; Neighbours shows each link's state.
type LinkReporter interface {
	Links() map[share.HouseholdID]household.Link
}

// RelayReporter is implemented by a Transport that carries messages
// through the community hub too; Status shows its state.
type RelayReporter interface {
	RelayState() *household.RelayState
}

// Node is an open household. It implements household.Household in-process. A
// writable Node holds the home's exclusive lock until Close.
type Node struct {
	home     Home
	cfg      Config
	loc      *time.Location
	manifest share.Manifest
	key      *share.Identity
	led      *ledger.Ledger
	lock     *ledger.HomeLock
	opts     Options
	log      *slog.Logger

	mu   sync.Mutex // serialises signing: one head at a time
	live live       // the running household's in-memory state (Run)

	sealedFailures atomic.Uint64 // sealed reports to this household that did not open
}

var _ household.Household = (*Node)(nil)

// Init creates a new household in home: the identity key (mode 0600), the
// recovery key (RecoveryKeyFile, mode 0600, to be moved offline), the
// ledger with the household's first messages (an announce of its name and
// address, and the recovery key's public half), and the config. The config is written last, so a home whose
// init was interrupted is not initialised and init can run again; an
// existing key is kept.
func Init(ctx context.Context, home Home, cfg Config) (household.Identity, error) {
	return InitWithClock(ctx, home, cfg, time.Now)
}

// InitWithClock is Init with the clock that dates the household's first
// message (its announce). A simulated street whose clock is not the
// machine's (commons demo) must date the announce by its own clock, or
// neighbours on that clock see it from the future and refuse it.
func InitWithClock(ctx context.Context, home Home, cfg Config, now func() time.Time) (household.Identity, error) {
	if err := cfg.Validate(); err != nil {
		return household.Identity{}, fmt.Errorf("%w: %w", household.ErrInvalid, err)
	}
	if home.Initialised() {
		c, _ := LoadConfig(home)
		return household.Identity{}, fmt.Errorf("home %s already holds the household %q: use another --home, or remove %s to start over", home, c.Name, home.ConfigPath())
	}
	if err := home.mkdirs(); err != nil {
		return household.Identity{}, err
	}
	lock, err := ledger.LockHome(home.DataDir, "commons init")
	if err != nil {
		return household.Identity{}, err
	}
	defer lock.Unlock()
	key, err := share.LoadIdentity(home.KeyPath())
	if errors.Is(err, fs.ErrNotExist) {
		if key, err = share.GenerateIdentity(nil); err == nil {
			err = key.Save(home.KeyPath())
		}
	}
	if err != nil {
		return household.Identity{}, err
	}
	n := &Node{home: home, cfg: cfg, manifest: cfg.Manifest(), key: key, lock: lock, opts: Options{Now: now}, log: slog.New(slog.DiscardHandler)}
	n.loc, _ = cfg.Location()
	n.led, err = ledger.Open(ctx, home.LedgerPath(), ledger.Options{Self: key.ID(), Manifest: n.manifest, Now: now, Quota: cfg.Storage.Quota()})
	if err != nil {
		return household.Identity{}, err
	}
	defer n.led.Close()
	head, err := n.head(ctx)
	if err != nil {
		return household.Identity{}, err
	}
	if head.Seq == 0 {
		if _, err := n.sign(ctx, &share.Announce{Name: cfg.Name, Addrs: n.addrs()}); err != nil {
			return household.Identity{}, err
		}
	}
	if err := n.announceRecoveryKey(ctx); err != nil {
		return household.Identity{}, err
	}
	if err := SaveConfig(home, cfg); err != nil {
		return household.Identity{}, err
	}
	return n.Identity(), nil
}

// Open opens the household in home. Unless opts.ReadOnly, it takes the
// home's exclusive lock first; when another process holds it the error
// names that process.
func Open(ctx context.Context, home Home, opts Options) (*Node, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Owner == "" {
		opts.Owner = "commons"
	}
	cfg, err := LoadConfig(home)
	if err != nil {
		return nil, err
	}
	loc, err := cfg.Location()
	if err != nil {
		return nil, err
	}
	key, err := share.LoadIdentity(home.KeyPath())
	if err != nil {
		return nil, err
	}
	n := &Node{home: home, cfg: cfg, loc: loc, manifest: cfg.Manifest(), key: key, opts: opts, log: opts.Logger}
	if !opts.ReadOnly {
		if n.lock, err = ledger.LockHome(home.DataDir, opts.Owner); err != nil {
			return nil, err
		}
	} else if _, err := os.Stat(home.LedgerPath()); err != nil {
		return nil, fmt.Errorf("open ledger: %w; the home %s looks damaged: run init in a new home", err, home)
	}
	n.led, err = ledger.Open(ctx, home.LedgerPath(), ledger.Options{Self: key.ID(), Manifest: n.manifest, Now: opts.Now, Logger: opts.Logger, Quota: cfg.Storage.Quota(), CacheKiB: opts.LedgerCacheKiB})
	if err != nil {
		n.lock.Unlock()
		return nil, err
	}
	if !opts.ReadOnly {
		// A key replacement interrupted before its key files were
		// swapped: finish it, then own the ledger as the new key.
		next, switched, err := finishKeyChange(ctx, home, n.led, key)
		if err == nil && switched {
			n.led.Close()
			n.key = next
			n.led, err = ledger.Open(ctx, home.LedgerPath(), ledger.Options{Self: next.ID(), Manifest: n.manifest, Now: opts.Now, Logger: opts.Logger, Quota: cfg.Storage.Quota(), CacheKiB: opts.LedgerCacheKiB})
		}
		if err != nil {
			if n.led != nil {
				n.led.Close()
			}
			n.lock.Unlock()
			return nil, err
		}
	}
	if !opts.ReadOnly {
		// Meter data an older version filed by a wrong meter clock; once
		// per ledger, by the single writer, before anything aggregates.
		if _, err := n.led.RepairFutureMeterData(ctx); err != nil {
			n.led.Close()
			n.lock.Unlock()
			return nil, err
		}
		// Sealed reports to this household stored while it was not
		// running (an import, an older program) are opened now.
		if err := n.catchUpSealed(ctx); err != nil {
			n.led.Close()
			n.lock.Unlock()
			return nil, err
		}
		// A household an older program ran says, once, that this one
		// reads version 2 (§13.1).
		if err := n.announceProtocol(ctx); err != nil {
			n.led.Close()
			n.lock.Unlock()
			return nil, err
		}
	}
	return n, nil
}

// Close closes the ledger and releases the lock.
func (n *Node) Close() error {
	err := n.led.Close()
	if uerr := n.lock.Unlock(); err == nil {
		err = uerr
	}
	return err
}

// Ledger returns the household's ledger (for the daemon and the peer
// transport's store adapter).
func (n *Node) Ledger() *ledger.Ledger { return n.led }

// Config returns the household's settings.
func (n *Node) Config() Config { return n.cfg }

// Home returns the household's home folders.
func (n *Node) Home() Home { return n.home }

// Key returns the household's signing identity. Only the owner of the
// home's lock may sign with it.
func (n *Node) Key() *share.Identity { return n.key }

// Manifest returns the community manifest.
func (n *Node) Manifest() share.Manifest { return n.manifest }

// Calendar implements household.Household.
func (n *Node) Calendar() household.Calendar {
	return household.Calendar{Location: n.loc, Slot: n.manifest.SlotDuration()}
}

func (n *Node) addrs() []string {
	if n.cfg.ListenAddr() == "" {
		return nil
	}
	return []string{n.cfg.ListenAddr()}
}

// Identity implements household.Household.
func (n *Node) Identity() household.Identity {
	inv, err := n.key.Invite(n.cfg.Name, n.addrs(), n.manifest)
	if err != nil {
		// The config was validated on load; an invite that cannot be
		// made means a field passes our checks but not the protocol's.
		inv = "(no invite: " + err.Error() + ")"
	}
	return household.Identity{
		ID: n.key.ID().String(), Name: n.cfg.Name, Invite: inv,
		Listen: n.cfg.Listen, Relay: relay.Redact(n.cfg.Relay), Community: n.manifest.ID().String(),
	}
}

// writable fails for a read-only node.
func (n *Node) writable(op string) error {
	if n.lock == nil {
		return fmt.Errorf("%s: the household is open read-only", op)
	}
	return nil
}

// sign signs c as this household's next message and appends it durably:
// when sign returns nil the message is in the ledger, fsynced. Then it is
// offered to the transport.
func (n *Node) sign(ctx context.Context, c share.Content) (*share.Message, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	head, err := n.head(ctx)
	if err != nil {
		return nil, err
	}
	created := n.opts.Now()
	if ms := created.UnixMilli(); ms < head.CreatedMs {
		// Never let a clock step back make our own chain invalid.
		created = time.UnixMilli(head.CreatedMs)
	}
	d, err := share.NewDraft(n.manifest.ID(), head, created, c)
	if err != nil {
		return nil, err
	}
	m, err := n.key.Sign(d)
	if err != nil {
		return nil, err
	}
	res, err := n.led.AppendMessages(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", c.Kind(), err)
	}
	if r := res[0]; r.Outcome != ledger.Stored && r.Outcome != ledger.Latest {
		return nil, fmt.Errorf("store own %s: %s: %w", c.Kind(), r.Outcome, r.Err)
	}
	n.publish(household.Event{Kind: household.EventState})
	if n.opts.Transport != nil {
		if c.Kind().Ephemeral() {
			n.opts.Transport.PublishStatus(m.Bytes())
		} else {
			n.opts.Transport.Publish(m.Bytes())
		}
	}
	return m, nil
}
