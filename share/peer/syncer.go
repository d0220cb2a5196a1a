package peer

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/commons-energy/commons/share"
)

// SyncConfig configures a Syncer. Zero durations and counts mean defaults.
type SyncConfig struct {
	Key ed25519.PrivateKey // this box's identity key
	// Retired are keys this household had before a key change, shown to
	// a neighbour that has not followed it yet (ClientConfig.Retired).
	Retired []ed25519.PrivateKey
	// Greet are chain messages pushed to each neighbour first when its
	// link starts, one per push: the retired keys' handovers and the
	// current key's first message, so that a neighbour that knows only an
	// old key follows the change at once.
	Greet      [][]byte
	Store      Store
	Neighbours Neighbours
	Verifier   Verifier
	Logger     *slog.Logger // nil: discard

	Interval   time.Duration // pull from each neighbour this often; default 30 s
	MinBackoff time.Duration // first retry after a failed pull; default 1 s
	MaxBackoff time.Duration // longest wait between pulls of an offline neighbour; default 5 min
	Refresh    time.Duration // how often the neighbour list is re-read; default 5 s
	PageSize   int           // messages asked per range request; default 500
	PushBatch  int           // messages per push request; default 256
	QueueLen   int           // messages waiting to be pushed per neighbour; default 256
	Timeout    time.Duration // per request; default 30 s
	// FullEvery makes every FullEvery-th pull from a neighbour ask for its
	// full list of heads instead of those that moved since the last
	// cursor: a safety net for cursors gone stale in ways neither side can
	// see (default 20: every 10 min at the default interval).
	FullEvery int

	// OnAdded, if set, is called with the messages stored by a pull.
	OnAdded func(msgs []Message)
}

// PeerState is what the Syncer knows about one neighbour's reachability.
type PeerState struct {
	ID        share.HouseholdID
	Addr      string
	LastOK    time.Time // last successful pull; zero if none yet
	LastError string    // last pull error; "" after a success
	// FailingSince is when the current run of failed pulls began; zero
	// after a success.
	FailingSince time.Time
	Failures     int    // consecutive failed pulls
	Failed       uint64 // failed pulls since the worker started
	Dropped      uint64 // messages not pushed because the queue was full or the push failed
}

// Syncer keeps this box and its neighbours in step: for each neighbour
// with an address it pulls what it lacks every Interval (backing off while
// the neighbour is offline) and pushes new local messages promptly. A push
// that cannot be delivered is dropped: the neighbour's own pulls catch up.
type Syncer struct {
	cfg  SyncConfig
	self share.HouseholdID
	log  *slog.Logger

	mu      sync.Mutex
	workers map[share.HouseholdID]*worker
	badAddr map[share.HouseholdID]string // neighbours whose address was refused, already logged

	// gen counts changes of the neighbour list: a neighbour's heads that
	// were skipped while its author was not admitted here must be asked
	// for again once it is, so a new generation restarts every cursor.
	gen      atomic.Uint64
	lastList []share.HouseholdID

	curMu   sync.Mutex
	cursors map[share.HouseholdID]peerCursor

	// This box's own heads, kept up to date through the store's cursor
	// when it has one (HeadsSincer), so a pull compares a few heads
	// instead of reading every author's.
	localMu     sync.Mutex
	local       map[share.HouseholdID]uint64
	localCursor uint64
}

// peerCursor is where the last complete pull from a neighbour left off.
type peerCursor struct {
	cursor uint64 // the neighbour's heads cursor
	gen    uint64 // the neighbour-list generation it was valid for
	pulls  int    // incremental pulls since the last full list
}

// NewSyncer checks cfg and returns a Syncer; Run starts it.
func NewSyncer(cfg SyncConfig) (*Syncer, error) {
	if cfg.Store == nil || cfg.Neighbours == nil || cfg.Verifier == nil {
		return nil, errors.New("peer syncer: Store, Neighbours and Verifier are required")
	}
	if len(cfg.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("peer syncer: identity key missing")
	}
	setd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	seti := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	setd(&cfg.Interval, 30*time.Second)
	setd(&cfg.MinBackoff, time.Second)
	setd(&cfg.MaxBackoff, 5*time.Minute)
	setd(&cfg.Refresh, 5*time.Second)
	setd(&cfg.Timeout, 30*time.Second)
	seti(&cfg.PageSize, 500)
	seti(&cfg.PushBatch, 256)
	seti(&cfg.QueueLen, 256)
	seti(&cfg.FullEvery, 20)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	self, _ := idFromKey(cfg.Key.Public().(ed25519.PublicKey))
	return &Syncer{cfg: cfg, self: self, log: cfg.Logger, workers: make(map[share.HouseholdID]*worker), badAddr: make(map[share.HouseholdID]string),
		cursors: make(map[share.HouseholdID]peerCursor)}, nil
}

// Run keeps one worker per neighbour until ctx is done, re-reading the
// neighbour list every Refresh. It returns nil when ctx is cancelled,
// after all workers have stopped.
func (s *Syncer) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Refresh)
	defer t.Stop()
	for {
		s.reconcile(ctx)
		select {
		case <-ctx.Done():
			s.stopAll()
			return nil
		case <-t.C:
		}
	}
}

// reconcile starts workers for new neighbours (or changed addresses) and
// stops those of removed ones.
func (s *Syncer) reconcile(ctx context.Context) {
	want := make(map[share.HouseholdID]string)
	list := s.cfg.Neighbours.List()
	s.noteList(list)
	for _, id := range list {
		if id == s.self {
			continue
		}
		if addr, ok := s.cfg.Neighbours.Addr(id); ok && addr != "" {
			want[id] = addr
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, w := range s.workers {
		if addr, ok := want[id]; !ok || addr != w.addr {
			w.stop()
			delete(s.workers, id)
		}
	}
	for id, addr := range want {
		if _, ok := s.workers[id]; ok {
			continue
		}
		w, err := s.startWorker(ctx, id, addr)
		if err != nil {
			if s.badAddr[id] != addr { // say it once, not every Refresh
				s.log.Warn("peer neighbour skipped", "peer", id.Short(), "addr", addr, "err", err)
				s.badAddr[id] = addr
			}
			continue
		}
		delete(s.badAddr, id)
		s.workers[id] = w
	}
}

// noteList starts a new cursor generation when a household joined the
// neighbour list.
func (s *Syncer) noteList(list []share.HouseholdID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	known := make(map[share.HouseholdID]bool, len(s.lastList))
	for _, id := range s.lastList {
		known[id] = true
	}
	for _, id := range list {
		if !known[id] {
			s.gen.Add(1)
			break
		}
	}
	s.lastList = slices.Clone(list)
}

func (s *Syncer) stopAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, w := range s.workers {
		w.stop()
		delete(s.workers, id)
	}
}

// Publish queues new local chain messages (exact signed bytes, already
// stored) for pushing to every neighbour. It never blocks: when a
// neighbour's queue is full the message is dropped for it and its next
// pull fetches it.
func (s *Syncer) Publish(raws ...[]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.workers {
		for _, raw := range raws {
			select {
			case w.queue <- raw:
			default:
				w.dropped.Add(1)
			}
		}
	}
}

// PublishStatus sends an ephemeral status message to every neighbour. Only
// the latest one waiting per neighbour is sent.
func (s *Syncer) PublishStatus(raw []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.workers {
		w.status.Store(&raw)
		select {
		case w.statusKick <- struct{}{}:
		default:
		}
	}
}

// Relay sends other households' ephemeral messages (of kinds this version
// does not interpret, docs/PROTOCOL.md §6.5) on to every neighbour but
// their author, with the next status push. Only the latest waiting per
// neighbour, author and kind is sent; messages that do not parse are
// skipped. Call it only for messages the store kept as new (the latest of
// their kind), so that relaying stops where a message is already known.
func (s *Syncer) Relay(raws ...[]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, raw := range raws {
		m, err := share.Parse(raw)
		if err != nil || !m.Ephemeral() {
			continue
		}
		for _, w := range s.workers {
			if w.id == m.Author {
				continue
			}
			w.relayMu.Lock()
			if w.relay == nil {
				w.relay = map[relayKey][]byte{}
			}
			w.relay[relayKey{m.Author, m.Kind}] = raw
			w.relayMu.Unlock()
			select {
			case w.statusKick <- struct{}{}:
			default:
			}
		}
	}
}

// relayKey names the latest relayed ephemeral message of one author and
// kind.
type relayKey struct {
	author share.HouseholdID
	kind   share.Kind
}

// Kick asks for a pull from neighbour id now, also while it is backing
// off (for example because it just pushed something that did not fit).
func (s *Syncer) Kick(id share.HouseholdID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w, ok := s.workers[id]; ok {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

// Returned tells the syncer that neighbour id just reached this box: if
// its worker is backing off after failed pulls, it pulls now.
func (s *Syncer) Returned(id share.HouseholdID) {
	s.mu.Lock()
	w, ok := s.workers[id]
	s.mu.Unlock()
	if !ok {
		return
	}
	w.mu.Lock()
	failing := w.state.Failures > 0
	w.mu.Unlock()
	if failing {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

// State reports every neighbour worker's state.
func (s *Syncer) State() []PeerState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]PeerState, 0, len(s.workers))
	for _, w := range s.workers {
		w.mu.Lock()
		st := w.state
		w.mu.Unlock()
		st.Dropped = w.dropped.Load()
		out = append(out, st)
	}
	return out
}

// Pull fetches from the neighbour at addr everything it holds that this
// box lacks and may accept, page by page, and returns how many messages
// were stored. Rejected pages stop that author's catch-up and are reported
// in the error after the other authors were tried.
//
// It asks only for the heads that moved since the cursor the neighbour
// gave at the last complete pull (GET /v1/heads?since=C), and for all of
// them the first time, every FullEvery-th time, after the neighbour list
// grew, or when the neighbour keeps no cursor. The cursor moves on only
// when every listed author was caught up without error.
func (s *Syncer) Pull(ctx context.Context, c *Client) (int, error) {
	peer := c.Peer()
	gen := s.gen.Load()
	s.curMu.Lock()
	pc := s.cursors[peer]
	s.curMu.Unlock()
	since := pc.cursor
	if pc.gen != gen || pc.pulls >= s.cfg.FullEvery {
		since = 0
	}
	page, err := c.HeadsSince(ctx, since)
	if err != nil {
		return 0, err
	}
	for _, h := range page.Heads {
		if h.Author == s.self {
			s.ack(ctx, peer, h.Seq)
		}
	}
	local, err := s.localHeads(ctx, page.Heads)
	if err != nil {
		return 0, fmt.Errorf("local heads: %w", err)
	}
	added, short := 0, false
	var errs []error
	for _, h := range page.Heads {
		if h.Author != s.self && !s.cfg.Neighbours.Known(h.Author) {
			continue
		}
		have := local[h.Author]
		if have >= h.Seq {
			continue
		}
		n, reached, fatal, err := s.pullAuthor(ctx, c, h.Author, have, h.Seq)
		added += n
		if reached < h.Seq {
			short = true // the neighbour listed more than it gave: ask again
		}
		if fatal {
			return added, errors.Join(append(errs, err)...)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("from %s: %w", peer.Short(), err))
		}
	}
	if len(errs) == 0 && !short {
		next := peerCursor{cursor: page.Cursor, gen: gen}
		if !page.Full {
			next.pulls = pc.pulls + 1
		}
		s.curMu.Lock()
		s.cursors[peer] = next
		s.curMu.Unlock()
	}
	return added, errors.Join(errs...)
}

// localHeads returns this box's seq for each author of heads (0 when it
// holds none).
func (s *Syncer) localHeads(ctx context.Context, heads []Head) (map[share.HouseholdID]uint64, error) {
	out := make(map[share.HouseholdID]uint64, len(heads))
	hs, ok := s.cfg.Store.(HeadsSincer)
	if !ok {
		all, err := s.cfg.Store.Heads(ctx)
		if err != nil {
			return nil, err
		}
		for _, h := range all {
			out[h.Author] = h.Seq
		}
		return out, nil
	}
	s.localMu.Lock()
	defer s.localMu.Unlock()
	moved, cursor, full, err := hs.HeadsSince(ctx, s.localCursor)
	if err != nil {
		return nil, err
	}
	if full || s.local == nil {
		s.local = make(map[share.HouseholdID]uint64, len(moved))
	}
	for _, h := range moved {
		s.local[h.Author] = max(s.local[h.Author], h.Seq)
	}
	s.localCursor = cursor
	for _, h := range heads {
		out[h.Author] = s.local[h.Author]
	}
	return out, nil
}

// page is one range answer.
type page struct {
	raws [][]byte
	err  error
}

// pullAuthor fetches author's messages after have up to (at least) upTo
// from c and stores them. The next page is fetched while the current one
// is verified and stored. fatal is true for errors that make the rest of
// the pull pointless (network, local store).
//
// reached is the seq this box holds of author afterwards, as far as the
// pages showed.
func (s *Syncer) pullAuthor(ctx context.Context, c *Client, author share.HouseholdID, have, upTo uint64) (added int, reached uint64, fatal bool, err error) {
	fctx, cancel := context.WithCancel(ctx)
	pages := make(chan page, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(pages)
		after := have
		for after < upTo {
			raws, err := c.Range(fctx, author, after, s.cfg.PageSize)
			select {
			case pages <- page{raws, err}:
			case <-fctx.Done():
				return
			}
			if err != nil || len(raws) == 0 {
				return
			}
			// The next page starts after this page's last seq (parsed
			// structurally here; verified by the consumer).
			m, perr := share.Parse(raws[len(raws)-1])
			if perr != nil || m.Seq <= after {
				return
			}
			after = m.Seq
		}
	}()
	defer func() {
		cancel()
		for range pages { // let the fetcher finish
		}
		wg.Wait()
	}()
	for pg := range pages {
		if pg.err != nil {
			return added, have, true, pg.err
		}
		if len(pg.raws) == 0 {
			return added, have, false, nil
		}
		res := accept(ctx, s.self, s.cfg.Verifier, s.cfg.Neighbours, s.cfg.Store, pg.raws, &author)
		added += res.Added
		if len(res.stored) > 0 && s.cfg.OnAdded != nil {
			s.cfg.OnAdded(res.stored)
		}
		if res.err != nil {
			// A storage refusal concerns this author only.
			return added, have, res.code >= 500 && res.code != http.StatusInsufficientStorage, res.err
		}
		if res.last <= have {
			return added, have, false, nil
		}
		have = res.last
	}
	return added, have, false, nil
}

// worker syncs with one neighbour.
type worker struct {
	id         share.HouseholdID
	addr       string
	client     *Client
	kick       chan struct{}
	statusKick chan struct{}
	queue      chan []byte
	status     atomic.Pointer[[]byte]
	relayMu    sync.Mutex
	relay      map[relayKey][]byte // other households' ephemeral messages to pass on
	dropped    atomic.Uint64
	cancel     context.CancelFunc
	wg         sync.WaitGroup

	mu    sync.Mutex
	state PeerState
}

func (s *Syncer) startWorker(ctx context.Context, id share.HouseholdID, addr string) (*worker, error) {
	// A connection stays open for 1.5 pull intervals (the next pull, at
	// most 10 % late, reuses it), but at most 50 s, under the server's
	// 60 s idle timeout, so the client is the one that closes it: with a
	// longer interval each round connects anew.
	idle := min(max(s.cfg.Interval*3/2, time.Second), 50*time.Second)
	c, err := NewClient(ClientConfig{Key: s.cfg.Key, Retired: s.cfg.Retired, Peer: id, Addr: addr, Timeout: s.cfg.Timeout, IdleTimeout: idle})
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &worker{
		id:         id,
		addr:       addr,
		client:     c,
		kick:       make(chan struct{}, 1),
		statusKick: make(chan struct{}, 1),
		queue:      make(chan []byte, s.cfg.QueueLen),
		cancel:     cancel,
		state:      PeerState{ID: id, Addr: addr},
	}
	w.wg.Add(2)
	go func() { defer w.wg.Done(); s.pullLoop(wctx, w) }()
	go func() { defer w.wg.Done(); s.pushLoop(wctx, w) }()
	return w, nil
}

func (w *worker) stop() {
	w.cancel()
	w.wg.Wait()
	w.client.Close()
}

// backoff returns the wait after n consecutive failures: MinBackoff
// doubling up to MaxBackoff, with ±20 % jitter so a street of boxes that
// lost power together does not retry in lockstep.
func (s *Syncer) backoff(n int) time.Duration {
	d := s.cfg.MinBackoff
	for i := 1; i < n && d < s.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.cfg.MaxBackoff)
	jitter := time.Duration(rand.Int64N(int64(d)/5 + 1))
	if rand.IntN(2) == 0 {
		return d - jitter
	}
	return d + jitter
}

// spread returns d ± 10 %, so that boxes started together (a street
// after a power cut) do not all pull from one neighbour in the same
// instant every round.
func (s *Syncer) spread(d time.Duration) time.Duration {
	j := int64(d) / 10
	if j <= 0 {
		return d
	}
	return d - time.Duration(j) + time.Duration(rand.Int64N(2*j+1))
}

func (s *Syncer) pullLoop(ctx context.Context, w *worker) {
	t := time.NewTimer(0) // first pull at once
	defer t.Stop()
	var kickQuiet time.Time // kicks are ignored until then
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.kick:
			if time.Now().Before(kickQuiet) {
				// The last pull was refused for storage: a kick (the
				// neighbour pushing past the refused message) would only
				// fetch the same refused page again.
				continue
			}
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
		n, err := s.Pull(ctx, w.client)
		if ctx.Err() != nil {
			return
		}
		w.mu.Lock()
		wasFailing := w.state.Failures
		if err != nil {
			if w.state.Failures == 0 {
				w.state.FailingSince = time.Now()
			}
			w.state.Failures++
			w.state.Failed++
			w.state.LastError = err.Error()
		} else {
			w.state.Failures = 0
			w.state.FailingSince = time.Time{}
			w.state.LastError = ""
			w.state.LastOK = time.Now()
		}
		failures := w.state.Failures
		w.mu.Unlock()
		next := s.spread(s.cfg.Interval)
		if err != nil {
			next = s.backoff(failures)
			var se *StatusError
			if errors.As(err, &se) && se.Code == http.StatusTooManyRequests && se.RetryAfter > next {
				next = se.RetryAfter
			}
			if errors.Is(err, ErrStorage) {
				next = max(next, s.cfg.Interval)
				kickQuiet = time.Now().Add(next)
			}
			// Info on the first failure and every tenth, so a neighbour
			// offline for a week does not fill the log.
			level := slog.LevelDebug
			if failures == 1 || failures%10 == 0 {
				level = slog.LevelInfo
			}
			s.log.Log(ctx, level, "peer pull failed", "peer", w.id.Short(), "addr", w.addr, "failures", failures, "retry_in", next.Round(time.Millisecond), "err", err)
		} else if wasFailing > 0 {
			s.log.Info("peer neighbour reachable again", "peer", w.id.Short(), "after_failures", wasFailing, "messages", n)
		} else if n > 0 {
			s.log.Debug("peer pulled", "peer", w.id.Short(), "messages", n)
		}
		t.Reset(next)
	}
}

func (s *Syncer) pushLoop(ctx context.Context, w *worker) {
	// Greet messages go one per push: a neighbour that does not know one
	// of them (an older key it has followed past) refuses that one only.
	for _, raw := range s.cfg.Greet {
		s.push(ctx, w, [][]byte{raw})
	}
	batch := make([][]byte, 0, s.cfg.PushBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.statusKick:
			var raws [][]byte
			if raw := w.status.Swap(nil); raw != nil {
				raws = append(raws, *raw)
			}
			w.relayMu.Lock()
			for _, raw := range w.relay {
				raws = append(raws, raw)
			}
			w.relay = nil
			w.relayMu.Unlock()
			if len(raws) > 0 {
				if err := w.client.PushStatus(ctx, raws...); err != nil && ctx.Err() == nil {
					s.log.Debug("peer status push failed", "peer", w.id.Short(), "err", err)
				}
			}
		case raw := <-w.queue:
			batch = append(batch[:0], raw)
		drain:
			for len(batch) < s.cfg.PushBatch {
				select {
				case raw := <-w.queue:
					batch = append(batch, raw)
				default:
					break drain
				}
			}
			s.push(ctx, w, batch)
		}
	}
}

// push sends one batch, retrying once after a 429 if the neighbour asks
// for a short wait. Failures drop the batch: the neighbour's pulls catch
// up.
func (s *Syncer) push(ctx context.Context, w *worker, batch [][]byte) {
	for attempt := 0; attempt < 2; attempt++ {
		res, err := w.client.Push(ctx, batch)
		if err == nil {
			if res.Added+res.Duplicates == len(batch) {
				s.ack(ctx, w.id, lastOwnSeq(s.self, batch))
			}
			return
		}
		var se *StatusError
		if errors.As(err, &se) && se.Code == http.StatusTooManyRequests && se.RetryAfter <= 5*time.Second && attempt == 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(se.RetryAfter):
			}
			continue
		}
		if ctx.Err() == nil {
			w.dropped.Add(uint64(len(batch) - res.Added - res.Duplicates))
			s.log.Debug("peer push failed", "peer", w.id.Short(), "messages", len(batch), "err", err)
		}
		return
	}
}

// ack reports to an Acker store that peer holds this box's feed up to seq.
func (s *Syncer) ack(ctx context.Context, peer share.HouseholdID, seq uint64) {
	a, ok := s.cfg.Store.(Acker)
	if !ok || seq == 0 {
		return
	}
	if err := a.RecordAck(ctx, peer, seq); err != nil && ctx.Err() == nil {
		s.log.Warn("record a neighbour's acknowledgement", "peer", peer.Short(), "err", err)
	}
}

// lastOwnSeq is the largest seq of self's chain messages in a pushed
// batch; a neighbour that took the batch holds the chain up to it (it
// stores a chain only without gaps).
func lastOwnSeq(self share.HouseholdID, batch [][]byte) uint64 {
	var seq uint64
	for _, raw := range batch {
		if m, err := share.Parse(raw); err == nil && m.Author == self {
			seq = max(seq, m.Seq)
		}
	}
	return seq
}
