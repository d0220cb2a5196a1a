package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/commons-energy/commons/meter/sim"
	"github.com/commons-energy/commons/share"
	"github.com/commons-energy/commons/share/daemon"
	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/input"
	"github.com/commons-energy/commons/share/node"
	"github.com/commons-energy/commons/share/relay"
)

// The headless street (`commons demo --headless`): N households, each a
// real runtime with its own key, ledger and simulated meter, on one
// accelerated clock, with bots that pledge surplus and auto-accept, run
// for a while without a screen; then the street drains (no new pledges,
// windows close, reports and settlements follow) and every ledger is
// checked against what was signed.
const (
	// HeadlessSpeed is the headless street's default clock speed: a
	// simulated minute per real second.
	HeadlessSpeed = 60
	// HeadlessSlot is the headless street's settlement slot: 5 simulated
	// minutes, 5 real seconds at HeadlessSpeed.
	HeadlessSlot = 5 * time.Minute
	// DefaultLinks is how many neighbours each household of a headless
	// street links with (and pledges to) at most: its nearest on a ring,
	// half on each side. A street of at most DefaultLinks+1 households is
	// a full mesh. Fewer links are used when the file-descriptor limit
	// demands it, never fewer than MinLinks.
	DefaultLinks = 8
	// MinLinks is the fewest links per household of a headless street.
	MinLinks = 2
	// HeadlessPTYMax is the largest street whose meters each write real
	// telegrams to a real pseudo-terminal; a larger street feeds the
	// simulator's model readings straight into each runtime (the node's
	// Readings input), without a terminal or decoder per household.
	HeadlessPTYMax = 50
	// MaxHouseholds bounds a headless street whatever the limits say.
	MaxHouseholds = 20000
	// headlessCacheKiB is each ledger's SQLite page cache per connection.
	headlessCacheKiB = 128
)

// HeadlessOptions configure RunHeadless.
type HeadlessOptions struct {
	// Households is the street's size, 2 to MaxHouseholds.
	Households int
	// Duration is how long (real time) the bots pledge. The street then
	// drains for up to Drain.
	Duration time.Duration
	// Drain bounds the real time after Duration spent waiting for open
	// pledges to be answered, settled and delivered; default 2 minutes.
	Drain time.Duration
	// Speed is simulated seconds per real second; 0 means HeadlessSpeed.
	Speed float64
	// Links is the number of neighbours per household (even, at least
	// MinLinks); 0 means min(N-1, DefaultLinks). See HeadlessLinks.
	Links int
	// Relay, when not "", is a community hub URL: every household gets it
	// as its config's relay and listens nowhere, so messages travel
	// through the hub only.
	Relay string
	// Seed makes the simulated meters and the bots reproducible.
	Seed int64
	// Start is the simulated start; zero means DefaultStart of now's year.
	Start time.Time
	// Dir is where the street's temporary folder is made.
	Dir string
	// Logger receives the households' logs; nil discards them.
	Logger *slog.Logger

	// modelMeters feeds model readings even to a street small enough for
	// pseudo-terminals (tests of that path).
	modelMeters bool
}

// Latency is a delivery latency distribution in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
}

// HeadlessResult is what `commons demo --headless --json` prints.
type HeadlessResult struct {
	Households int `json:"households"`
	// Messages counts the chain messages (pledge, accept, decline, cancel,
	// report, settle) the households signed while the street ran.
	Messages int `json:"messages"`
	// Converged: every household holds every message addressed to it
	// (Deliveries), and every settled pledge has the same state and
	// delivered energy in both parties' ledgers.
	Converged bool `json:"converged"`
	// LatencyMS is from the author's node handing a signed, stored
	// message to its transport until the counterparty's transport has
	// stored it, on the real monotonic clock, over every delivery.
	LatencyMS Latency `json:"latency_ms"`
	// RSSMB is the process's peak resident set (set by the caller: it is
	// the process's, not the street's).
	RSSMB float64 `json:"rss_mb"`

	Transport   string  `json:"transport"` // "direct" or "relay"
	Links       int     `json:"links"`     // neighbours per household
	Meters      string  `json:"meters"`    // "pty" or "model"
	Speed       float64 `json:"speed"`
	SlotSeconds int     `json:"slot_seconds"`
	// Deliveries are the (message, counterparty) pairs checked; Missing
	// of them were not in the counterparty's ledger at the end.
	Deliveries int `json:"deliveries"`
	Missing    int `json:"missing"`
	// Statuses counts signed statuses the households received.
	Statuses      int64 `json:"statuses"`
	Pledges       int   `json:"pledges"`
	Accepted      int   `json:"accepted"`
	Settled       int   `json:"settled"`
	Unsettled     int   `json:"unsettled"` // accepted but not settled when the drain ended
	Disagreements int   `json:"disagreements"`
	// OpenFiles is the process's open file descriptors at the end of the
	// run, before the households closed.
	OpenFiles int `json:"open_files"`
	// PushDropped counts pushes the households' syncers dropped (queue
	// full or push failed); the next pull delivers those messages.
	PushDropped uint64   `json:"push_dropped"`
	SetupS      float64  `json:"setup_s"`
	WarmUpS     float64  `json:"warmup_s"`
	RunS        float64  `json:"run_s"`
	DrainS      float64  `json:"drain_s"`
	Problems    []string `json:"problems,omitempty"` // the first few reasons when not converged
}

// HeadlessFDs estimates the file descriptors a headless street of n
// households with links neighbours each keeps open: per household its
// ledger (up to 4 SQLite connections with their WAL files, the shared
// memory file), the home lock, the peer listener, both ends of each
// link's connections (a pull and a push connection each way), and a
// pseudo-terminal pair when its meter has one; plus a margin for the
// process.
func HeadlessFDs(n, links int, pty bool) int {
	per := 10 + 4*links
	if pty {
		per += 3
	}
	return 64 + n*per
}

// HeadlessLinks picks the links per household for a street of n within
// a file-descriptor limit: min(n-1, want) (want 0 means DefaultLinks),
// rounded down to an even number unless it is a full mesh, lowered while
// the estimate exceeds limit. It fails when even MinLinks does not fit.
func HeadlessLinks(n, want, limit int) (int, error) {
	if want <= 0 {
		want = DefaultLinks
	}
	links := min(n-1, want)
	if links < n-1 && links%2 == 1 {
		links--
	}
	pty := n <= HeadlessPTYMax
	for links > MinLinks && HeadlessFDs(n, links, pty) > limit {
		links -= 2
	}
	if links < 1 || HeadlessFDs(n, links, pty) > limit {
		return 0, fmt.Errorf("%d households need about %d open files, more than this machine's limit of %d (RLIMIT_NOFILE): use fewer households or raise the hard limit (ulimit -Hn)",
			n, HeadlessFDs(n, max(links, 1), pty), limit)
	}
	return links, nil
}

// ValidateHeadless checks opts as given on a command line.
func ValidateHeadless(opts HeadlessOptions) error {
	if opts.Households < 2 || opts.Households > MaxHouseholds {
		return fmt.Errorf("--neighbours %d is out of range: a headless street needs 2 to %d households", opts.Households, MaxHouseholds)
	}
	if opts.Duration <= 0 {
		return fmt.Errorf("--duration %s is not positive: give how long the street runs, e.g. 30s or 5m", opts.Duration)
	}
	if opts.Speed != 0 && !(opts.Speed >= 1 && opts.Speed <= MaxSpeed) {
		return fmt.Errorf("--speed %v is out of range: use 1 (real time) to %d", opts.Speed, MaxSpeed)
	}
	if opts.Relay != "" {
		if err := relay.ValidateURL(opts.Relay); err != nil {
			return fmt.Errorf("--relay %s: %w", relay.Redact(opts.Relay), err)
		}
	}
	return nil
}

// headlessProfiles are the meter profiles the headless street cycles
// through.
var headlessProfiles = []string{sim.DefaultProfile, "solar-roof", "flat", "ev", "night-shift"}

// hh is one household of the headless street.
type hh struct {
	idx      int
	name     string
	home     node.Home
	id       share.HouseholdID
	invite   string
	listen   string
	meter    *sim.Meter // model-fed meters only
	pty      *sim.Server
	readings chan node.TimedReading
	rt       *daemon.Runtime
}

// headless is a running headless street.
type headless struct {
	opts     HeadlessOptions
	dir      string
	clock    *Clock
	slot     time.Duration
	genesis  string // the street's community genesis value: a new community each run
	slotReal time.Duration
	links    int
	pty      bool
	hs       []*hh
	byID     map[share.HouseholdID]int
	tr       *trace
	log      *slog.Logger
}

// RunHeadless runs a headless street for opts.Duration, drains it and
// checks it. The street's folder is removed before it returns. links is
// the neighbours per household (see HeadlessLinks).
func RunHeadless(ctx context.Context, opts HeadlessOptions, links int) (*HeadlessResult, error) {
	if err := ValidateHeadless(opts); err != nil {
		return nil, err
	}
	if opts.Speed == 0 {
		opts.Speed = HeadlessSpeed
	}
	if opts.Drain <= 0 {
		opts.Drain = 2 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if links < 1 || links > opts.Households-1 {
		return nil, fmt.Errorf("%d links per household do not fit a street of %d", links, opts.Households)
	}
	start, _, err := streetStart(opts.Start)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(opts.Dir, "commons-street-")
	if err != nil {
		return nil, fmt.Errorf("make the street's temporary folder: %w", err)
	}
	defer os.RemoveAll(dir)

	genesis, err := share.NewGenesis()
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	s := &headless{
		genesis: genesis,
		opts:    opts, dir: dir, clock: NewClock(start, opts.Speed), slot: HeadlessSlot,
		links: links, pty: opts.Households <= HeadlessPTYMax && !opts.modelMeters, byID: map[share.HouseholdID]int{},
		log: opts.Logger,
	}
	s.slotReal = time.Duration(float64(s.slot) / opts.Speed)
	s.tr = newTrace()
	simCtx, stopSims := context.WithCancel(context.Background())
	defer func() {
		stopSims()
		for _, h := range s.hs {
			if h.pty != nil {
				<-h.pty.Done()
			}
		}
	}()
	defer s.closeAll()
	if err := s.setup(ctx, simCtx); err != nil {
		return nil, err
	}
	res := &HeadlessResult{
		Households: opts.Households, Transport: "direct", Links: links, Meters: "model",
		Speed: opts.Speed, SlotSeconds: int(s.slot / time.Second), SetupS: secs(time.Since(t0)),
	}
	if opts.Relay != "" {
		res.Transport = "relay"
	}
	if s.pty {
		res.Meters = "pty"
	}

	// Run: every household, the model meters, the bots.
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	var wg sync.WaitGroup
	runErrs := make([]error, len(s.hs))
	for i, h := range s.hs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.rt.Run(runCtx); err != nil {
				runErrs[i] = fmt.Errorf("%s: %w", h.name, err)
			}
		}()
	}
	if !s.pty {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.feedMeters(runCtx)
		}()
	}
	// Warm up: every link's first pull done (TLS handshakes, catch-up of
	// the announces) before anyone pledges, so the latencies measured are
	// the street's, not its start's.
	tw := time.Now()
	if opts.Relay == "" {
		// Through a relay there are no links to pull from: the hub
		// carries everything.
		s.warmUp(ctx, time.Now().Add(warmUpMax))
	}
	res.WarmUpS = secs(time.Since(tw))
	botCtx, stopBots := context.WithCancel(runCtx)
	var bots sync.WaitGroup
	for _, h := range s.hs {
		bots.Add(1)
		go func() {
			defer bots.Done()
			s.bot(botCtx, h)
		}()
	}
	t1 := time.Now()
	select {
	case <-ctx.Done():
	case <-time.After(opts.Duration):
	}
	stopBots()
	bots.Wait()
	res.RunS = secs(time.Since(t1))

	// Drain: wait until every pledge is answered or expired, every
	// accepted one settled, and every message delivered, or Drain ends.
	t2 := time.Now()
	deadline := t2.Add(opts.Drain)
	for ctx.Err() == nil && time.Now().Before(deadline) && !s.tr.done(s.clock.Now(), s.slot) {
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	res.DrainS = secs(time.Since(t2))
	if err := ctx.Err(); err != nil {
		stopRun()
		wg.Wait()
		return nil, fmt.Errorf("the street was interrupted: %w", err)
	}
	// Stop the households (their ledgers stay open until closeAll) and
	// check what each holds.
	res.OpenFiles = openFiles()
	for _, h := range s.hs {
		for _, p := range h.rt.Syncer().State() {
			res.PushDropped += p.Dropped
		}
	}
	stopRun()
	wg.Wait()
	s.check(context.Background(), res)
	if err := errors.Join(runErrs...); err != nil {
		return res, err
	}
	return res, nil
}

func secs(d time.Duration) float64 { return float64(d.Milliseconds()) / 1000 }

// openFiles counts the process's open file descriptors (0 when unknown).
func openFiles() int {
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(es)
}

// warmUpMax bounds the warm-up: a street whose links are not all up by
// then runs anyway (the syncers keep retrying).
const warmUpMax = 2 * time.Minute

// warmUp waits until every household has pulled from each of its
// neighbours once, or until deadline.
func (s *headless) warmUp(ctx context.Context, deadline time.Time) {
	ready := func() bool {
		for _, h := range s.hs {
			st := h.rt.Syncer().State()
			if len(st) < s.links {
				return false
			}
			for _, p := range st {
				if p.LastOK.IsZero() {
					return false
				}
			}
		}
		return true
	}
	for ctx.Err() == nil && time.Now().Before(deadline) && !ready() {
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// setup makes every home (key, ledger, config, meter) and opens every
// runtime with its neighbours, several at a time.
func (s *headless) setup(ctx, simCtx context.Context) error {
	n := s.opts.Households
	ports, err := freePorts(n)
	if s.opts.Relay != "" {
		ports, err = make([]string, n), nil
	}
	if err != nil {
		return err
	}
	s.hs = make([]*hh, n)
	for i := range s.hs {
		s.hs[i] = &hh{idx: i, name: fmt.Sprintf("House %d", i+1), listen: ports[i]}
	}
	workers := 4
	if err := parallel(ctx, n, workers, func(i int) error { return s.initHousehold(ctx, simCtx, s.hs[i]) }); err != nil {
		return err
	}
	for i, h := range s.hs {
		s.byID[h.id] = i
	}
	return parallel(ctx, n, workers, func(i int) error { return s.openHousehold(ctx, s.hs[i]) })
}

// parallel runs f(0..n-1) on workers goroutines and returns the first
// error.
func parallel(ctx context.Context, n, workers int, f func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(i); err != nil {
					errs[w] = err
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return ctx.Err()
}

// freePorts returns n distinct loopback addresses that were free a moment
// ago (invites carry the address, so it is chosen before the home
// exists). All are held open together so none is handed out twice.
func freePorts(n int) ([]string, error) {
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	addrs := make([]string, n)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find %d free loopback ports: %w", n, err)
		}
		lns = append(lns, ln)
		addrs[i] = ln.Addr().String()
	}
	return addrs, nil
}

func (s *headless) initHousehold(ctx, simCtx context.Context, h *hh) error {
	home, err := node.ResolveHome(filepath.Join(s.dir, fmt.Sprintf("h%05d", h.idx+1)))
	if err != nil {
		return err
	}
	h.home = home
	prof, err := sim.LoadProfile(headlessProfiles[h.idx%len(headlessProfiles)])
	if err != nil {
		return err
	}
	m := sim.New(prof, s.opts.Seed+int64(h.idx), s.clock.Now())
	cfg := node.DefaultConfig(h.name)
	cfg.Listen = h.listen
	if s.opts.Relay != "" {
		cfg.Listen, cfg.Relay = "", s.opts.Relay
	}
	cfg.Timezone = Zone
	cfg.FuseA = 25
	cfg.Community.Name = "headless street"
	cfg.Community.Genesis = s.genesis
	cfg.Community.SlotSeconds = int(s.slot / time.Second)
	if s.pty {
		step := min(s.opts.Speed, 10)
		h.pty, err = sim.ServePTY(simCtx, m, sim.ServeOptions{
			Speed:    s.opts.Speed,
			Interval: time.Duration(step / s.opts.Speed * float64(time.Second)),
		})
		if err != nil {
			return fmt.Errorf("simulated meter for %s: %w", h.name, err)
		}
		cfg.Meter = node.MeterConfig{Port: h.pty.Path(), Protocol: "dsmr"}
	} else {
		h.meter = m
		h.readings = make(chan node.TimedReading, 1)
		cfg.Meter = node.MeterConfig{}
	}
	id, err := node.InitWithClock(ctx, home, cfg, s.clock.Now)
	if err != nil {
		return fmt.Errorf("initialise %s's home: %w", h.name, err)
	}
	h.invite = id.Invite
	h.id, err = share.ParseHouseholdID(id.ID)
	if err != nil {
		return fmt.Errorf("initialise %s's home: %w", h.name, err)
	}
	return nil
}

// linked returns the households i links with: the nearest on a ring,
// half of s.links on each side (one more after it when links is odd, as
// in a full mesh of an even street).
func (s *headless) linked(i int) []int {
	n := len(s.hs)
	if s.links >= n-1 {
		out := make([]int, 0, n-1)
		for j := range n {
			if j != i {
				out = append(out, j)
			}
		}
		return out
	}
	out := make([]int, 0, s.links)
	for d := 1; d <= s.links/2; d++ {
		out = append(out, (i+d)%n, (i-d+n)%n)
	}
	return out
}

func (s *headless) openHousehold(ctx context.Context, h *hh) error {
	i := h.idx
	o := daemon.Options{
		Owner:      "commons demo --headless",
		Logger:     s.log.With("household", h.name),
		Now:        s.clock.Now,
		AutoAccept: &daemon.AutoAccept{MaxWh: input.MaxPledgeWh},
		// A status at most once a slot (5 real seconds at the default
		// speed) on meaningful change, at least once a slot otherwise:
		// every one is a signed push to each link, and at an accelerated
		// clock the surplus changes meaningfully nearly every check.
		StatusCheck:    max(2*time.Second, s.slotReal),
		StatusEvery:    s.slot,
		Readings:       h.readings,
		SettleEvery:    max(time.Second, s.slotReal),
		FlushEvery:     s.slot,
		LedgerCacheKiB: headlessCacheKiB,
		OnSigned:       func(raw []byte) { s.tr.signed(i, raw, s.byID) },
		OnStored:       func(raw []byte) { s.tr.stored(i, raw) },
	}
	if s.opts.Relay != "" {
		o.Listen = daemon.ListenOff
	}
	rt, err := daemon.Open(ctx, h.home, o)
	if err != nil {
		return fmt.Errorf("open %s's household: %w", h.name, err)
	}
	h.rt = rt
	for _, j := range s.linked(i) {
		if _, err := rt.Node().AddNeighbour(ctx, s.hs[j].invite, s.hs[j].name); err != nil {
			return fmt.Errorf("introduce %s to %s: %w", s.hs[j].name, h.name, err)
		}
	}
	return nil
}

// closeAll closes every opened runtime.
func (s *headless) closeAll() {
	for _, h := range s.hs {
		if h != nil && h.rt != nil {
			if err := h.rt.Close(); err != nil {
				s.log.Warn("close household", "household", h.name, "err", err)
			}
		}
	}
}

// feedMeters gives every model-fed household a reading of its simulated
// meter every 10 simulated seconds (at most 4 times a real second). The
// model integrates every simulated second (about 4 µs each), so the
// households are split between GOMAXPROCS goroutines, each the only user
// of its meters (a sim.Meter is not safe for concurrent use). A reading
// the household has not taken yet is superseded, as a reader's would be.
func (s *headless) feedMeters(ctx context.Context) {
	shards := max(1, min(runtime.GOMAXPROCS(0), len(s.hs)))
	var wg sync.WaitGroup
	for k := range shards {
		lo, hi := k*len(s.hs)/shards, (k+1)*len(s.hs)/shards
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.feedShard(ctx, s.hs[lo:hi])
		}()
	}
	wg.Wait()
}

func (s *headless) feedShard(ctx context.Context, hs []*hh) {
	every := max(250*time.Millisecond, time.Duration(10/s.opts.Speed*float64(time.Second)))
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := s.clock.Now()
		for _, h := range hs {
			r := node.TimedReading{Reading: h.meter.Reading(now), At: now}
			select {
			case <-h.readings: // not taken yet: the new one supersedes it
			default:
			}
			select {
			case h.readings <- r:
			default:
			}
		}
	}
}

// Headless bot thresholds.
const (
	headlessMaxOpen = 2 // open outgoing pledges a household keeps at most
)

// bot pledges part of h's surplus, about twice a slot, to the linked
// neighbour with the largest signed need (or a random one without an open
// pledge from h).
func (s *headless) bot(ctx context.Context, h *hh) {
	rng := rand.New(rand.NewPCG(uint64(s.opts.Seed), uint64(h.idx)))
	every := max(time.Second, s.slotReal/2)
	// Spread the first looks over one interval.
	first := time.NewTimer(time.Duration(rng.Int64N(int64(every))))
	defer first.Stop()
	select {
	case <-ctx.Done():
		return
	case <-first.C:
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.act(ctx, h, rng)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *headless) act(ctx context.Context, h *hh, rng *rand.Rand) {
	n := h.rt.Node()
	now := s.clock.Now()
	samples, err := n.Samples(ctx, now.Add(-time.Minute))
	if err != nil {
		return
	}
	surplus, ok := meanSurplus(samples)
	if !ok || surplus < botMinSurplusW {
		return
	}
	open, err := n.Pledges(ctx, true)
	if err != nil {
		return
	}
	busy := map[string]bool{}
	for _, p := range open {
		if p.Outgoing && p.Open() {
			busy[p.To] = true
		}
	}
	if len(busy) >= headlessMaxOpen {
		return
	}
	nbs, err := n.Neighbours(ctx)
	if err != nil {
		return
	}
	var free []string
	best, need := "", int64(0)
	for _, nb := range nbs {
		if busy[nb.ID] {
			continue
		}
		free = append(free, nb.ID)
		if nb.Status != nil && -nb.Status.SurplusW > need {
			best, need = nb.ID, -nb.Status.SurplusW
		}
	}
	if best == "" && len(free) > 0 {
		best = free[rng.IntN(len(free))]
	}
	if best == "" {
		return
	}
	wh := surplus * int64(s.slot/time.Second) / 3600 / 2
	wh = max(botMinWh, wh/10*10)
	// At least a whole slot ahead, so the neighbour has time to accept.
	start := now.Add(s.slot).Truncate(s.slot).Add(s.slot)
	if _, err := n.Pledge(ctx, household.PledgeRequest{To: best, EnergyWh: wh, Start: start, End: start.Add(s.slot)}); err != nil && ctx.Err() == nil {
		s.log.Warn("headless bot: pledge", "household", h.name, "err", err)
	}
}

// trace records, on the real monotonic clock, when each chain message was
// signed and when each household's transport stored it.
type trace struct {
	base     time.Time
	mu       sync.Mutex
	sent     map[share.ID]*sentMsg
	order    []share.ID
	pledges  map[share.ID]*pledgeInfo
	arrived  map[arrival]time.Duration
	statuses atomic.Int64
}

type sentMsg struct {
	author int
	kind   share.Kind
	at     time.Duration
	pledge share.ID // the pledge it is about (a pledge: itself)
	from   int64    // a report's slots [from, to)
	to     int64
}

type pledgeInfo struct {
	from, to   int // household indexes; to is -1 when not in the street
	fromSlot   int64
	toSlot     int64
	expirySlot int64
	accepted   bool
	settled    bool
	closed     bool // declined or cancelled
}

type arrival struct {
	id share.ID
	at int // household index
}

func newTrace() *trace {
	return &trace{base: time.Now(), sent: map[share.ID]*sentMsg{}, pledges: map[share.ID]*pledgeInfo{}, arrived: map[arrival]time.Duration{}}
}

// signed records a chain message household i signed.
func (t *trace) signed(i int, raw []byte, byID map[share.HouseholdID]int) {
	at := time.Since(t.base)
	m, err := share.Parse(raw)
	if err != nil {
		return
	}
	c, err := m.Decode()
	if err != nil {
		return
	}
	sm := &sentMsg{author: i, kind: m.Kind, at: at}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch c := c.(type) {
	case *share.Pledge:
		to, ok := byID[c.To]
		if !ok {
			to = -1
		}
		sm.pledge = m.ID()
		t.pledges[m.ID()] = &pledgeInfo{from: i, to: to, fromSlot: c.FromSlot, toSlot: c.ToSlot, expirySlot: c.ExpirySlot}
	case *share.Accept:
		sm.pledge = c.Pledge
		if p := t.pledges[c.Pledge]; p != nil {
			p.accepted = true
		}
	case *share.Decline:
		sm.pledge = c.Pledge
		if p := t.pledges[c.Pledge]; p != nil {
			p.closed = true
		}
	case *share.Cancel:
		sm.pledge = c.Pledge
		if p := t.pledges[c.Pledge]; p != nil {
			p.closed = true
		}
	case *share.Settle:
		sm.pledge = c.Pledge
		if p := t.pledges[c.Pledge]; p != nil {
			p.settled = true
		}
	case *share.Settle2:
		sm.pledge = c.Pledge
		if p := t.pledges[c.Pledge]; p != nil {
			p.settled = true
		}
	case *share.Report:
		sm.from, sm.to = c.FromSlot, c.FromSlot+int64(len(c.ExportWh))
	case *share.SealedReport:
		sm.from, sm.to = c.FromSlot, c.FromSlot+c.Slots
	default:
		return // announces: addressed to no one in particular
	}
	t.sent[m.ID()] = sm
	t.order = append(t.order, m.ID())
}

// stored records a message household i's transport stored.
func (t *trace) stored(i int, raw []byte) {
	at := time.Since(t.base)
	m, err := share.Parse(raw)
	if err != nil {
		return
	}
	if m.Kind == share.KindStatus {
		t.statuses.Add(1)
		return
	}
	k := arrival{m.ID(), i}
	t.mu.Lock()
	if _, ok := t.arrived[k]; !ok {
		t.arrived[k] = at
	}
	t.mu.Unlock()
}

// counterparties returns the households message id is addressed to: the
// other party of the pledge it is about; for a report, the other party
// of each of the author's pledges whose window it covers. Call with t.mu
// held.
func (t *trace) counterparties(id share.ID) []int {
	sm := t.sent[id]
	other := func(p *pledgeInfo) int {
		if p.from == sm.author {
			return p.to
		}
		return p.from
	}
	if sm.kind != share.KindReport && sm.kind != share.KindSealedReport {
		p := t.pledges[sm.pledge]
		if p == nil || other(p) < 0 {
			return nil
		}
		return []int{other(p)}
	}
	var out []int
	seen := map[int]bool{}
	for _, p := range t.pledges {
		if (p.from != sm.author && p.to != sm.author) || !p.accepted || p.fromSlot < sm.from || p.toSlot > sm.to {
			continue
		}
		if o := other(p); o >= 0 && !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	}
	sort.Ints(out)
	return out
}

// done reports whether the street has nothing left in flight: every
// pledge answered (or past its expiry), every accepted one settled, and
// every message stored by its counterparties.
func (t *trace) done(now time.Time, slot time.Duration) bool {
	nowSlot := now.Unix() / int64(slot/time.Second)
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range t.pledges {
		switch {
		case p.closed, p.settled:
		case p.accepted:
			return false
		case nowSlot < p.expirySlot:
			return false
		}
	}
	for _, id := range t.order {
		for _, cp := range t.counterparties(id) {
			if _, ok := t.arrived[arrival{id, cp}]; !ok {
				return false
			}
		}
	}
	return true
}

// check fills res from the trace and every household's ledger.
func (s *headless) check(ctx context.Context, res *HeadlessResult) {
	t := s.tr
	t.mu.Lock()
	defer t.mu.Unlock()
	res.Messages = len(t.order)
	res.Statuses = t.statuses.Load()
	problem := func(format string, args ...any) {
		if len(res.Problems) < 10 {
			res.Problems = append(res.Problems, fmt.Sprintf(format, args...))
		}
	}
	var lat []time.Duration
	for _, id := range t.order {
		sm := t.sent[id]
		for _, cp := range t.counterparties(id) {
			res.Deliveries++
			if at, ok := t.arrived[arrival{id, cp}]; ok {
				lat = append(lat, at-sm.at)
			}
			if _, err := s.hs[cp].rt.Node().Ledger().Message(ctx, id); err != nil {
				res.Missing++
				problem("%s's %s %s is not in %s's ledger: %v", s.hs[sm.author].name, sm.kind, id.Short(), s.hs[cp].name, err)
			}
		}
	}
	for id, p := range t.pledges {
		res.Pledges++
		if p.accepted {
			res.Accepted++
			if !p.settled {
				res.Unsettled++
			}
		}
		if !p.settled || p.to < 0 {
			continue
		}
		res.Settled++
		a, errA := s.hs[p.from].rt.Node().FindPledge(ctx, id.String())
		b, errB := s.hs[p.to].rt.Node().FindPledge(ctx, id.String())
		if err := errors.Join(errA, errB); err != nil {
			res.Disagreements++
			problem("settled pledge %s: %v", id.Short(), err)
			continue
		}
		if a.State != b.State || !sameWh(a.DeliveredWh, b.DeliveredWh) {
			res.Disagreements++
			problem("settled pledge %s: %s says %s/%s, %s says %s/%s", id.Short(),
				s.hs[p.from].name, a.State, whText(a.DeliveredWh), s.hs[p.to].name, b.State, whText(b.DeliveredWh))
		}
	}
	res.Converged = res.Missing == 0 && res.Disagreements == 0
	res.LatencyMS = percentiles(lat)
}

func sameWh(a, b *int64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func whText(v *int64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%d Wh", *v)
}

// percentiles returns the 50th and 99th percentiles (nearest rank) in
// milliseconds, to 0.1 ms; zero without samples.
func percentiles(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(ds)))) - 1
		i = max(0, min(i, len(ds)-1))
		return float64(ds[i].Microseconds()/100) / 10
	}
	return Latency{P50: rank(0.50), P99: rank(0.99)}
}
