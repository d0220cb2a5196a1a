package demo

import (
	"context"
	"time"

	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/node"
)

// Clock is the street's simulated clock: it starts at a chosen instant and
// runs Speed times faster than the real one. Every household, meter and
// the dashboard read the same Clock, so slots, windows and message times
// agree.
type Clock struct {
	real0 time.Time
	sim0  time.Time
	speed float64
}

// NewClock returns a clock that reads start now and runs speed times
// faster than real time.
func NewClock(start time.Time, speed float64) *Clock {
	return &Clock{real0: time.Now(), sim0: start, speed: speed}
}

// Now returns the simulated time.
func (c *Clock) Now() time.Time {
	e := time.Since(c.real0)
	return c.sim0.Add(time.Duration(float64(e) * c.speed)).Round(time.Millisecond)
}

// Bot thresholds.
const (
	botMinSurplusW = 150 // below this a neighbour keeps its power
	botMaxOpen     = 2   // open outgoing pledges a neighbour keeps at most
	botMinWh       = 10  // smallest pledge

	botFirstLook = 5 * time.Second // real time before a neighbour's first look
)

// bot is a neighbour that pledges part of its surplus: first to the user,
// then to whichever neighbour needs power most.
type bot struct {
	s      *Street
	h      *Household
	n      *node.Node
	userID string
	every  time.Duration // real time between looks
}

func newBot(s *Street, h *Household) *bot {
	// About twice a slot, but not more often than every 3 s.
	every := max(3*time.Second, time.Duration(float64(s.slot)/s.clock.speed/2))
	return &bot{s: s, h: h, n: h.Runtime.Node(), userID: s.User.Runtime.Node().Identity().ID, every: every}
}

func (b *bot) run(ctx context.Context) {
	// The first look comes soon, so the street comes alive at once.
	first := time.NewTimer(botFirstLook)
	defer first.Stop()
	select {
	case <-ctx.Done():
		return
	case <-first.C:
		b.act(ctx)
	}
	t := time.NewTicker(b.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			b.act(ctx)
		}
	}
}

// act pledges once when the household has a surplus and room for
// another open pledge.
func (b *bot) act(ctx context.Context) {
	now := b.s.clock.Now()
	samples, _ := b.n.Samples(ctx, now.Add(-time.Minute)) // memory only: never fails
	surplus, ok := meanSurplus(samples)
	if !ok || surplus < botMinSurplusW {
		return
	}
	open, err := b.n.Pledges(ctx, true)
	if err != nil {
		return
	}
	busy := map[string]bool{}
	nOpen := 0
	for _, p := range open {
		if p.Outgoing && p.Open() {
			busy[p.To] = true
			nOpen++
		}
	}
	if nOpen >= botMaxOpen {
		return
	}
	to := b.target(ctx, busy)
	if to == "" {
		return
	}
	slot := b.s.slot
	// Half of what the surplus would give over one slot, in tens of Wh.
	wh := surplus * int64(slot/time.Second) / 3600 / 2
	wh = max(botMinWh, wh/10*10)
	start := now.Truncate(slot).Add(slot)
	res, err := b.n.Pledge(ctx, household.PledgeRequest{To: to, EnergyWh: wh, Start: start, End: start.Add(slot)})
	if err != nil {
		b.s.log.Warn("demo bot: pledge", "household", b.h.Name, "err", err)
		return
	}
	b.s.log.Info("demo bot pledged", "household", b.h.Name, "to", res.Pledge.ToName, "energy_wh", wh, "start", res.Pledge.Window.Start)
}

// target is the user when no pledge to them is open, otherwise the
// neighbour with the largest signed need that has no open pledge from us.
func (b *bot) target(ctx context.Context, busy map[string]bool) string {
	if !busy[b.userID] {
		return b.userID
	}
	nbs, err := b.n.Neighbours(ctx)
	if err != nil {
		return ""
	}
	best, need := "", int64(0)
	for _, nb := range nbs {
		if busy[nb.ID] || nb.Status == nil || nb.Status.SurplusW >= 0 {
			continue
		}
		if -nb.Status.SurplusW > need {
			best, need = nb.ID, -nb.Status.SurplusW
		}
	}
	return best
}

// meanSurplus is the mean export minus import over samples, in W.
func meanSurplus(ss []household.Sample) (int64, bool) {
	if len(ss) == 0 {
		return 0, false
	}
	var sum int64
	for _, s := range ss {
		sum += s.ExportW - s.ImportW
	}
	return sum / int64(len(ss)), true
}
