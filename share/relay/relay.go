// Package relay is the community hub transport: households that cannot
// (or would rather not) reach each other directly exchange their signed
// messages through a NATS JetStream server the community runs, next to
// the direct transport of package peer.
//
// Each community has two streams on the hub. Chain messages go to
// commons.<community>.msg.<author> in the stream COMMONS_<community>,
// kept as long as the hub keeps them; the message id is the JetStream
// de-duplication id (Nats-Msg-Id), so publishing again after a reconnect
// is idempotent. Statuses and other ephemeral messages go to
// commons.<community>.status.<author> in COMMONS_<community>_STATUS,
// which keeps the latest per author for StatusMaxAge (15 minutes).
//
// A household publishes its own chain from the ledger: it asks the hub
// for the last message of its own subject and publishes what follows, so
// nothing is lost while the hub is away and nothing is sent twice. It
// consumes the community's stream with an ordered consumer that starts
// after the last stream sequence it handled (the cursor, kept in a file
// in the home), so a restarted household catches up from where it was.
//
// The hub is untrusted: it can drop, replay, reorder or forge anything.
// Every message that arrives goes through the same Sink as a message a
// neighbour pushes (verify, admission, chain rules, quotas, rejection
// counters in the ledger), so a forged or altered message is refused and
// counted, and a replayed one is a harmless duplicate.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/commons-energy/commons/share"
)

// StatusMaxAge is how long the hub keeps a status message.
const StatusMaxAge = 15 * time.Minute

// maxBatch is the most messages handed to the Sink at once.
const maxBatch = 256

// Outcome is what the Sink did with one message.
type Outcome int

// Outcomes of Sink.Append.
const (
	Stored    Outcome = iota + 1 // new, stored
	Duplicate                    // already held
	Refused                      // not stored: Result.Err and Result.Reason say why
)

// Result is the Sink's answer for one message.
type Result struct {
	Outcome Outcome
	Reason  string // for Refused: a short stable code (ledger.Reason)
	Err     error  // for Refused
}

// Sink verifies and stores what arrives from the hub, exactly as the
// household does with what a neighbour pushes.
type Sink interface {
	// Append verifies and durably stores chain messages given in their
	// exact wire form, one result per message in order. The error is for
	// a store that failed: then nothing was stored and the messages come
	// again.
	Append(ctx context.Context, raws [][]byte) ([]Result, error)
	// PutStatus verifies and keeps an ephemeral message.
	PutStatus(ctx context.Context, raw []byte) (Result, error)
}

// Feed is the household's own chain, which it publishes.
type Feed interface {
	Head(ctx context.Context, author share.HouseholdID) (share.Head, error)
	Range(ctx context.Context, author share.HouseholdID, fromSeq uint64, limit int) ([][]byte, error)
}

// Auth is how the household proves itself to the hub, and how it checks
// the hub's TLS certificate. Credentials in the URL's userinfo
// (nats://user:password@hub or nats://token@hub) work too.
type Auth struct {
	User      string
	Password  string
	Token     string
	CredsFile string // a NATS .creds file (JWT and NKey seed)
	CAFile    string // PEM CA certificates the hub's certificate must chain to
	CertFile  string // client certificate, when the hub asks for one
	KeyFile   string
}

// Config configures a Client.
type Config struct {
	// URL is the hub, e.g. nats://hub.example:4222 or tls://hub:4222;
	// several may be given separated by commas.
	URL  string
	Auth Auth
	// Domain is the hub's JetStream domain, "" for none. A household
	// behind a leaf node reaches the hub's JetStream through it.
	Domain    string
	Community share.CommunityID
	Self      share.HouseholdID
	Feed      Feed
	// Greet are chain messages of this household's earlier keys (their
	// handovers), published on their authors' subjects at every
	// connection, so that a neighbour that reads only an old key's
	// subject follows a key change (docs/PROTOCOL.md §12.1).
	Greet [][]byte
	Sink  Sink
	// CursorPath is the file that keeps the last stream sequence handled.
	CursorPath string
	// Known reports whether an author is a neighbour now; an author
	// whose messages were refused as unknown is read again once it is.
	// nil: every author is tried again.
	Known func(share.HouseholdID) bool
	// OnStored is called after messages from the hub were stored.
	OnStored func(raws [][]byte)
	Logger   *slog.Logger
	// Now is the clock for the times in State; nil means time.Now.
	Now func() time.Time
	// ReconnectWait is the first wait before a reconnect; it doubles up
	// to MaxReconnectWait. Defaults 500 ms and 1 minute.
	ReconnectWait    time.Duration
	MaxReconnectWait time.Duration
	// Retry is how often a publish that failed is tried again; default 5 s.
	Retry time.Duration
}

// State is the relay at a glance.
type State struct {
	URL         string     // the hub, credentials removed
	Connected   bool       // connected to the hub now
	LastError   string     // the last problem, "" when none since connecting
	LastErrorAt *time.Time // when
	LastMessage *time.Time // when the last message arrived from the hub
	Cursor      uint64     // the last stream sequence handled
	Received    uint64     // messages that arrived
	Stored      uint64     // of those, stored as new
	Duplicates  uint64     // of those, already held
	Refused     uint64     // of those, refused (counted in the ledger too)
	Skipped     uint64     // of those, of households that are not neighbours: not read
	Published   uint64     // own messages the hub took
}

// Client is a household's link to the hub.
type Client struct {
	cfg        Config
	log        *slog.Logger
	url        string // redacted
	stream     string
	statusName string
	msgSubj    string // own chain subject
	statusSubj string // own status subject

	kick       chan struct{}
	behindKick chan struct{}
	conn       atomic.Pointer[nats.Conn] // the current connection

	mu            sync.Mutex
	st            State
	pendingStatus []byte
	savedCursor   uint64
	savedAt       time.Time
	behind        map[share.HouseholdID]bool // authors to read again
}

// StreamName is the name of a community's message stream.
func StreamName(c share.CommunityID) string { return "COMMONS_" + c.String() }

// StatusStreamName is the name of a community's status stream.
func StatusStreamName(c share.CommunityID) string { return "COMMONS_" + c.String() + "_STATUS" }

// MsgSubject is the subject of author's chain messages.
func MsgSubject(c share.CommunityID, author share.HouseholdID) string {
	return "commons." + c.String() + ".msg." + author.String()
}

// StatusSubject is the subject of author's ephemeral messages.
func StatusSubject(c share.CommunityID, author share.HouseholdID) string {
	return "commons." + c.String() + ".status." + author.String()
}

// New checks cfg and returns a Client that is not yet connected.
func New(cfg Config) (*Client, error) {
	if cfg.URL == "" || cfg.Feed == nil || cfg.Sink == nil {
		return nil, errors.New("relay: URL, Feed and Sink are required")
	}
	if err := ValidateURL(cfg.URL); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ReconnectWait <= 0 {
		cfg.ReconnectWait = 500 * time.Millisecond
	}
	if cfg.MaxReconnectWait <= 0 {
		cfg.MaxReconnectWait = time.Minute
	}
	if cfg.Retry <= 0 {
		cfg.Retry = 5 * time.Second
	}
	c := &Client{
		cfg:        cfg,
		url:        Redact(cfg.URL),
		stream:     StreamName(cfg.Community),
		statusName: StatusStreamName(cfg.Community),
		msgSubj:    MsgSubject(cfg.Community, cfg.Self),
		statusSubj: StatusSubject(cfg.Community, cfg.Self),
		kick:       make(chan struct{}, 1),
		behindKick: make(chan struct{}, 1),
	}
	c.log = cfg.Logger.With("relay", c.url)
	c.st.URL = c.url
	if cfg.CursorPath != "" {
		cur, err := ReadCursor(cfg.CursorPath, c.stream)
		if err != nil {
			c.log.Warn("relay cursor unreadable: catching up from the start of the stream (stored messages are skipped as duplicates)", "err", err)
		}
		c.st.Cursor, c.savedCursor = cur, cur
	}
	return c, nil
}

// withScheme adds nats:// to a hub address without a scheme, as nats.go
// does (host:port is a valid relay).
func withScheme(s string) string {
	s = strings.TrimSpace(s)
	if s != "" && !strings.Contains(s, "://") {
		return "nats://" + s
	}
	return s
}

// ValidateURL checks a hub URL (or a comma-separated list of them); a
// bare host:port means nats://host:port.
func ValidateURL(raw string) error {
	for _, part := range strings.Split(raw, ",") {
		u, err := url.Parse(withScheme(part))
		if err != nil {
			return fmt.Errorf("relay %q is not a URL; use e.g. nats://hub.example:4222", Redact(part))
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return fmt.Errorf("relay %q: scheme %q is not a NATS one; use nats://HOST:4222 (or tls://, ws://, wss://)", Redact(part), u.Scheme)
		}
		if u.Hostname() == "" {
			return fmt.Errorf("relay %q has no host; use e.g. nats://hub.example:4222", Redact(part))
		}
	}
	return nil
}

// Redact returns the hub URL(s) without the userinfo, for logs and
// status: passwords and tokens never leave the config.
func Redact(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if u, err := url.Parse(withScheme(p)); err == nil {
			u.User = nil
			parts[i] = u.String()
			continue
		}
		if at := strings.LastIndex(p, "@"); at >= 0 {
			p = "***" + p[at:]
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}

// State returns the relay's state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

// Kick tells the client the household's feed grew: it publishes the new
// messages when connected.
func (c *Client) Kick() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// PublishStatus offers an ephemeral message (latest wins) to the hub.
func (c *Client) PublishStatus(raw []byte) {
	c.mu.Lock()
	c.pendingStatus = raw
	c.mu.Unlock()
	c.Kick()
}

// opErr records the failure of an operation on the hub (a request, a
// publish, a consumer) unless the connection is down: then the
// connection's own reason (refused credentials, unreachable) stays the
// one shown, and the operation is retried once it is back.
func (c *Client) opErr(err error) {
	if err == nil {
		return
	}
	if nc := c.conn.Load(); nc != nil && !nc.IsConnected() {
		c.log.Debug("relay operation failed while disconnected", "err", err)
		return
	}
	c.setErr(err)
}

func (c *Client) setErr(err error) {
	if err == nil {
		return
	}
	now := c.cfg.Now()
	c.mu.Lock()
	changed := c.st.LastError != err.Error()
	c.st.LastError, c.st.LastErrorAt = err.Error(), &now
	c.mu.Unlock()
	if changed {
		// A hub that is away must not fill the SD card with lines: only
		// a new kind of problem is logged at Warn.
		c.log.Warn("relay problem", "err", err)
	} else {
		c.log.Debug("relay problem", "err", err)
	}
}

func (c *Client) setConnected(ok bool) {
	c.mu.Lock()
	c.st.Connected = ok
	if ok {
		c.st.LastError, c.st.LastErrorAt = "", nil
	}
	c.mu.Unlock()
}

func (c *Client) options() []nats.Option {
	a := c.cfg.Auth
	opts := []nats.Option{
		nats.Name("commons " + c.cfg.Self.Short()),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		// A hub that refuses the credentials may be fixed by its admin;
		// keep trying, slowly.
		nats.IgnoreAuthErrorAbort(),
		nats.CustomReconnectDelay(func(attempts int) time.Duration { return c.backoff(attempts) }),
		nats.ConnectHandler(func(*nats.Conn) { c.setConnected(true); c.log.Info("relay connected"); c.Kick() }),
		nats.ReconnectHandler(func(*nats.Conn) { c.setConnected(true); c.log.Info("relay reconnected"); c.Kick() }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			c.setConnected(false)
			if err != nil {
				c.setErr(fmt.Errorf("disconnected: %w", err))
			}
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) { c.setErr(err) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { c.setErr(err) }),
	}
	if a.User != "" {
		opts = append(opts, nats.UserInfo(a.User, a.Password))
	}
	if a.Token != "" {
		opts = append(opts, nats.Token(a.Token))
	}
	if a.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(a.CredsFile))
	}
	if a.CAFile != "" {
		opts = append(opts, nats.RootCAs(a.CAFile))
	}
	if a.CertFile != "" {
		opts = append(opts, nats.ClientCert(a.CertFile, a.KeyFile))
	}
	return opts
}

// backoff is the wait before reconnect attempt n (from 1).
func (c *Client) backoff(n int) time.Duration {
	d := c.cfg.ReconnectWait
	for i := 1; i < n && d < c.cfg.MaxReconnectWait; i++ {
		d *= 2
	}
	return min(d, c.cfg.MaxReconnectWait)
}

// wait waits d or until ctx ends; false when ctx ended.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Run keeps the household linked to the hub until ctx ends: it connects
// (and reconnects with backoff), sets up the community's streams,
// publishes the household's messages and consumes the community's. A hub
// that is away, refuses the credentials or is full shows in State; Run
// returns only when ctx ends, with nil.
func (c *Client) Run(ctx context.Context) error {
	defer c.saveCursor(true)
	for attempt := 1; ; attempt++ {
		nc, err := nats.Connect(c.cfg.URL, c.options()...)
		if err != nil {
			// Only configuration errors end up here (RetryOnFailedConnect).
			c.setErr(err)
		} else {
			c.conn.Store(nc)
			if nc.IsConnected() {
				c.setConnected(true)
			}
			c.session(ctx, nc)
			nc.Close()
			c.setConnected(false)
			attempt = 0
		}
		if !wait(ctx, c.backoff(attempt)) {
			return nil
		}
	}
}

// session runs while nc lives (nats.go reconnects it underneath).
func (c *Client) session(ctx context.Context, nc *nats.Conn) {
	js, err := jetstream.New(nc)
	if c.cfg.Domain != "" {
		js, err = jetstream.NewWithDomain(nc, c.cfg.Domain)
	}
	if err != nil {
		c.setErr(err)
		return
	}
	// Wait for the first connection (RetryOnFailedConnect returns at
	// once); the handlers record why it does not come.
	for !nc.IsConnected() {
		if nc.IsClosed() || !wait(ctx, 100*time.Millisecond) {
			return
		}
	}
	// The streams: found, or created by the first household (a hub admin
	// may create them with other limits beforehand).
	var msgs, statuses jetstream.Stream
	for attempt := 1; ; attempt++ {
		if nc.IsClosed() {
			return
		}
		msgs, statuses, err = c.streams(ctx, js)
		if err == nil {
			break
		}
		c.opErr(err)
		if !wait(ctx, c.backoff(attempt)) {
			return
		}
	}
	var wg sync.WaitGroup
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, f := range []func(context.Context){
		func(ctx context.Context) { c.consumeMessages(ctx, js, msgs) },
		func(ctx context.Context) { c.consumeStatuses(ctx, js, statuses) },
		func(ctx context.Context) { c.publish(ctx, js, msgs) },
		func(ctx context.Context) { c.backfillLoop(ctx, msgs) },
	} {
		wg.Add(1)
		go func() { defer wg.Done(); f(sctx) }()
	}
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if nc.IsClosed() {
		cancel()
	}
	select {
	case <-ctx.Done():
	case <-closed:
	}
	cancel()
	wg.Wait()
}

func (c *Client) streams(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, jetstream.Stream, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	comm := c.cfg.Community.String()
	msgs, err := ensureStream(ctx, js, jetstream.StreamConfig{
		Name:        c.stream,
		Description: "commons: signed chain messages of community " + comm,
		Subjects:    []string{"commons." + comm + ".msg.*"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew, // a full hub refuses; it never drops history
		Duplicates:  2 * time.Minute,
		MaxMsgSize:  int32(share.MaxMessageSize),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("message stream %s: %w", c.stream, err)
	}
	statuses, err := ensureStream(ctx, js, jetstream.StreamConfig{
		Name:              c.statusName,
		Description:       "commons: latest signed status per household of community " + comm,
		Subjects:          []string{"commons." + comm + ".status.*"},
		Storage:           jetstream.FileStorage,
		Retention:         jetstream.LimitsPolicy,
		MaxAge:            StatusMaxAge,
		MaxMsgsPerSubject: 1,
		Duplicates:        time.Minute,
		MaxMsgSize:        int32(share.MaxMessageSize),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("status stream %s: %w", c.statusName, err)
	}
	return msgs, statuses, nil
}

func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = js.Stream(ctx, cfg.Name)
		}
	}
	return s, err
}
