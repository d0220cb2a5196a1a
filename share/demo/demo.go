// Package demo runs a simulated street of households in one process: the
// user's household and a few neighbours, each a real household runtime
// (share/daemon) in its own temporary home, each read from a simulated
// DSMR meter that writes real telegrams to a real pseudo-terminal, linked
// to each other over TLS on loopback with invites exchanged up front.
// Small neighbour bots pledge surplus to others, and the neighbours accept
// pledges by themselves, so a dashboard on the user's household sees
// statuses, incoming pledges, accepts and settlements without any setup.
//
// Everything lives in one temporary folder that Close removes.
package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/commons-energy/commons/meter/sim"
	"github.com/commons-energy/commons/share"
	"github.com/commons-energy/commons/share/daemon"
	"github.com/commons-energy/commons/share/input"
	"github.com/commons-energy/commons/share/node"
)

// MaxNeighbours bounds Options.Neighbours.
const MaxNeighbours = 12

// MaxSpeed bounds Options.Speed.
const MaxSpeed = 3600

// Zone is the time zone of the simulated street: the meter simulator's
// profiles follow Dutch (CET/CEST) days.
const Zone = "Europe/Amsterdam"

// Options configure Open.
type Options struct {
	// Neighbours is how many simulated neighbours join the user; 0 means
	// none, at most MaxNeighbours. The profiles cycle through solar-roof,
	// flat, ev and night-shift.
	Neighbours int
	// Speed is simulated seconds per real second (1 = real time, at most
	// MaxSpeed); 0 means 1. Every household, meter and the dashboard share
	// the one simulated clock.
	Speed float64
	// Seed makes the simulated meters reproducible.
	Seed int64
	// Start is the simulated time the street starts at; zero means
	// DefaultStart of the current year. Tests always set it, so what they
	// see does not depend on the day they run.
	Start time.Time
	// Dir is where the street's temporary folder is made; "" means
	// os.TempDir().
	Dir string
	// Logger receives the households' logs; nil discards them.
	Logger *slog.Logger
}

// streetStart returns the simulated time a street starts at (start, or
// DefaultStart when start is zero) and the street's time zone.
func streetStart(start time.Time) (time.Time, *time.Location, error) {
	loc, err := time.LoadLocation(Zone)
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("time zone %s: %w", Zone, err)
	}
	if start.IsZero() {
		start = DefaultStart(time.Now(), loc)
	}
	return start, loc, nil
}

// DefaultStart is where the street's clock starts when Options.Start is
// zero: 11:00 on 21 June of now's year in loc. The simulated sun follows
// the calendar, and on a winter morning the solar roof exports a few tens
// of watts at most, too little for anyone to pledge; a long summer day
// shows what the commons does whatever the season the demo is run in.
// `commons demo --start` picks another instant.
func DefaultStart(now time.Time, loc *time.Location) time.Time {
	return time.Date(now.In(loc).Year(), time.June, 21, 11, 0, 0, 0, loc)
}

// Household is one household of the street.
type Household struct {
	Name    string // display name
	Profile string // meter simulator profile
	Home    node.Home
	Runtime *daemon.Runtime
	Meter   *sim.Server // the simulated meter's pseudo-terminal
	// Production is the user's simulated production meter (an SDM630 on
	// the inverter line, Modbus over its own pseudo-terminal); nil for
	// the neighbours, which have a grid meter only.
	Production *sim.ModbusServer
	bot        bool
}

// Street is a running simulated street. Open it, Run it, then Close it.
type Street struct {
	// Dir is the temporary folder holding every home; Close removes it.
	Dir string
	// User is the household the dashboard runs on (profile "home").
	User *Household
	// Neighbours are the simulated neighbours, in order.
	Neighbours []*Household

	clock    *Clock
	loc      *time.Location
	slot     time.Duration
	genesis  string // the street's community genesis value: a new community each run
	log      *slog.Logger
	stopSims context.CancelFunc
	closeMu  sync.Mutex
	closed   bool
}

// neighbourProfiles are the neighbours' profiles and names, in order.
var neighbourProfiles = []struct{ name, profile string }{
	{"Sofia", "solar-roof"},
	{"Femi", "flat"},
	{"Eva", "ev"},
	{"Nico", "night-shift"},
}

// UserName is the display name of the user's household in the demo.
const UserName = "You"

// Open builds the street: a temporary folder with one home per household,
// a simulated meter on a pseudo-terminal for each, every household
// initialised with its own key and ledger and introduced to every other
// one. It fails with a clear error and leaves nothing behind when any
// step fails.
func Open(ctx context.Context, opts Options) (s *Street, err error) {
	if opts.Neighbours < 0 || opts.Neighbours > MaxNeighbours {
		return nil, fmt.Errorf("%d neighbours is out of range: use 0 to %d", opts.Neighbours, MaxNeighbours)
	}
	if opts.Speed == 0 {
		opts.Speed = 1
	}
	if !(opts.Speed >= 1 && opts.Speed <= MaxSpeed) {
		return nil, fmt.Errorf("speed %v is out of range: use 1 (real time) to %d simulated seconds per second", opts.Speed, MaxSpeed)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	start, loc, err := streetStart(opts.Start)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(opts.Dir, "commons-demo-")
	if err != nil {
		return nil, fmt.Errorf("make the demo's temporary folder: %w", err)
	}
	genesis, err := share.NewGenesis()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	simCtx, stopSims := context.WithCancel(context.Background())
	s = &Street{
		Dir: dir, clock: NewClock(start, opts.Speed), loc: loc, slot: slotFor(opts.Speed), genesis: genesis,
		log: opts.Logger, stopSims: stopSims,
	}
	defer func() {
		if err != nil {
			s.Close()
			s = nil
		}
	}()

	s.User = &Household{Name: UserName, Profile: sim.DefaultProfile}
	all := []*Household{s.User}
	for i := 0; i < opts.Neighbours; i++ {
		p := neighbourProfiles[i%len(neighbourProfiles)]
		name := p.name
		if i >= len(neighbourProfiles) {
			name = fmt.Sprintf("%s %d", p.name, i/len(neighbourProfiles)+1)
		}
		h := &Household{Name: name, Profile: p.profile, bot: true}
		s.Neighbours = append(s.Neighbours, h)
		all = append(all, h)
	}

	invites := make([]string, len(all))
	for i, h := range all {
		if invites[i], err = s.initHousehold(ctx, simCtx, h, opts.Seed+int64(i)); err != nil {
			return s, err
		}
	}
	for i, h := range all {
		o := daemon.Options{
			Owner:       "commons demo",
			Logger:      opts.Logger.With("household", h.Name),
			Now:         s.clock.Now,
			StatusCheck: 2 * time.Second,
			StatusEvery: 5 * time.Minute,
		}
		if h == s.User {
			// The user answers incoming pledges in the dashboard, and
			// `commons --home DIR ...` reaches the household meanwhile.
			o.Socket = true
		} else {
			o.AutoAccept = &daemon.AutoAccept{MaxWh: input.MaxPledgeWh}
		}
		if h.Runtime, err = daemon.Open(ctx, h.Home, o); err != nil {
			return s, fmt.Errorf("open %s's household: %w", h.Name, err)
		}
		for j, other := range all {
			if j == i {
				continue
			}
			if _, err := h.Runtime.Node().AddNeighbour(ctx, invites[j], other.Name); err != nil {
				return s, fmt.Errorf("introduce %s to %s: %w", other.Name, h.Name, err)
			}
		}
	}
	return s, nil
}

// initHousehold starts h's simulated meter and initialises its home; it
// returns h's invite.
func (s *Street) initHousehold(ctx, simCtx context.Context, h *Household, seed int64) (string, error) {
	home, err := node.ResolveHome(filepath.Join(s.Dir, strings.ToLower(strings.ReplaceAll(h.Name, " ", "-"))))
	if err != nil {
		return "", err
	}
	h.Home = home
	prof, err := sim.LoadProfile(h.Profile)
	if err != nil {
		return "", err
	}
	m := sim.New(prof, seed, s.clock.Now())
	// One telegram per real second up to speed 10, then more often so a
	// telegram never covers more than 10 simulated seconds (the reader
	// counts the meter silent after 30 s of its clock).
	step := min(s.clock.speed, 10)
	h.Meter, err = sim.ServePTY(simCtx, m, sim.ServeOptions{
		Speed:    s.clock.speed,
		Interval: time.Duration(step / s.clock.speed * float64(time.Second)),
	})
	if err != nil {
		return "", fmt.Errorf("simulated meter for %s: %w", h.Name, err)
	}
	var pm *node.ProductionMeterConfig
	if h == s.User {
		// The user's home is a two-meter home, so the dashboard shows
		// production and consumption as measured. The production meter
		// gets its own simulator (same profile, seed and start): a Meter
		// is not safe for concurrent use.
		sdm, err := sim.NewSDM(sim.New(prof, seed, s.clock.Now()), "sdm630")
		if err != nil {
			return "", err
		}
		h.Production, err = sim.ServeModbusPTY(simCtx, sdm, sim.ModbusServeOptions{Speed: s.clock.speed, Slave: 1})
		if err != nil {
			return "", fmt.Errorf("simulated production meter for %s: %w", h.Name, err)
		}
		// A poll every 2 simulated seconds, at most 4 a real second.
		pm = &node.ProductionMeterConfig{Port: h.Production.Path(), Protocol: "modbus", Slave: 1, Model: "sdm630",
			PollMS: max(250, int(2000/s.clock.speed))}
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	cfg := node.DefaultConfig(h.Name)
	cfg.Listen = port
	cfg.Timezone = Zone
	cfg.Meter = node.MeterConfig{Port: h.Meter.Path(), Protocol: "dsmr"}
	cfg.ProductionMeter = pm
	cfg.FuseA = 25
	cfg.Community.Name = "demo street"
	cfg.Community.Genesis = s.genesis
	cfg.Community.SlotSeconds = int(s.slot / time.Second)
	id, err := node.InitWithClock(ctx, home, cfg, s.clock.Now)
	if err != nil {
		return "", fmt.Errorf("initialise %s's home: %w", h.Name, err)
	}
	return id.Invite, nil
}

// slotFor picks the settlement slot for a speed: a minute at real time,
// so pledges settle within minutes, and longer when the clock runs fast
// so a slot still lasts a few real seconds.
func slotFor(speed float64) time.Duration {
	for _, s := range []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour} {
		if float64(s) >= 60*speed*float64(time.Second) {
			return s
		}
	}
	return time.Hour
}

// freePort returns a loopback address with a port that was free a moment
// ago: invites carry the address, so it is chosen before the home exists.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free loopback port: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

// Now is the street's simulated time.
func (s *Street) Now() time.Time { return s.clock.Now() }

// Location is the street's time zone.
func (s *Street) Location() *time.Location { return s.loc }

// Slot is the community's settlement slot length in the demo.
func (s *Street) Slot() time.Duration { return s.slot }

// Speed is simulated seconds per real second.
func (s *Street) Speed() float64 { return s.clock.speed }

// Run runs every household and the neighbour bots until ctx ends, then
// waits for all of them to stop (their pending meter aggregates written).
func (s *Street) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	all := append([]*Household{s.User}, s.Neighbours...)
	var wg sync.WaitGroup
	errs := make([]error, len(all))
	for i, h := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.Runtime.Run(ctx); err != nil {
				errs[i] = fmt.Errorf("%s: %w", h.Name, err)
				cancel()
			}
		}()
		if h.bot {
			b := newBot(s, h)
			wg.Add(1)
			go func() {
				defer wg.Done()
				b.run(ctx)
			}()
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close stops the simulated meters (closing their pseudo-terminals),
// closes every household and removes the temporary folder. Call it after
// Run has returned; it is safe to call more than once.
func (s *Street) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for _, h := range append([]*Household{s.User}, s.Neighbours...) {
		if h != nil && h.Runtime != nil {
			if err := h.Runtime.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close %s: %w", h.Name, err))
			}
		}
	}
	s.stopSims()
	for _, h := range append([]*Household{s.User}, s.Neighbours...) {
		if h != nil && h.Meter != nil {
			<-h.Meter.Done()
		}
		if h != nil && h.Production != nil {
			<-h.Production.Done()
		}
	}
	if err := os.RemoveAll(s.Dir); err != nil {
		errs = append(errs, fmt.Errorf("remove the demo folder: %w", err))
	}
	return errors.Join(errs...)
}
