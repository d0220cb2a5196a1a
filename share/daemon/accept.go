package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/commons-energy/commons/share/household"
)

// AutoAccept is a rule for accepting incoming pledges without asking the
// household. A pledge is accepted when it is still pledged, its total is
// at most MaxWh, and its author is in From (by neighbour name, compared
// case-insensitively, or by household id); an empty From matches every
// neighbour.
type AutoAccept struct {
	MaxWh int64    `json:"max_wh"`
	From  []string `json:"from,omitempty"`
}

// acceptScanEvery is how often the auto-accept loop looks at every open
// incoming pledge, in case a notification was coalesced away.
const acceptScanEvery = time.Minute

func (a *AutoAccept) validate() error {
	if a == nil {
		return nil
	}
	if a.MaxWh < 0 {
		return fmt.Errorf("%w: auto-accept max_wh %d: give the largest pledge to accept without asking, in Wh (0: any size)", household.ErrInvalid, a.MaxWh)
	}
	return nil
}

// Matches reports whether the rule accepts p on this household's behalf.
func (a *AutoAccept) Matches(p household.Pledge) bool {
	if a == nil || p.Outgoing || p.State != "pledged" || (a.MaxWh > 0 && p.EnergyWh > a.MaxWh) {
		return false
	}
	if len(a.From) == 0 {
		return true
	}
	for _, f := range a.From {
		if strings.EqualFold(f, p.FromName) || f == p.From {
			return true
		}
	}
	return false
}

// acceptLoop accepts matching incoming pledges as they arrive, and in a
// full scan at start and every acceptScanEvery.
func (rt *Runtime) acceptLoop(ctx context.Context) {
	events := rt.n.Subscribe(ctx)
	rt.acceptScan(ctx)
	t := time.NewTicker(acceptScanEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if ev.Kind == household.EventIncoming && ev.Pledge != nil {
				rt.tryAccept(ctx, *ev.Pledge)
			}
		case <-t.C:
			rt.acceptScan(ctx)
		}
	}
}

func (rt *Runtime) acceptScan(ctx context.Context) {
	ps, err := rt.n.Pledges(ctx, true)
	if err != nil {
		rt.log.Warn("auto-accept: list pledges", "err", err)
		return
	}
	for _, p := range ps {
		rt.tryAccept(ctx, p)
	}
}

func (rt *Runtime) tryAccept(ctx context.Context, p household.Pledge) {
	if !rt.opts.AutoAccept.Matches(p) {
		return
	}
	_, err := rt.n.Accept(ctx, p.ID)
	switch {
	case err == nil:
		rt.log.Info("auto-accepted pledge", "pledge", p.ID, "from", p.FromName, "energy_wh", p.EnergyWh)
	case errors.Is(err, household.ErrInvalid):
		// Answered meanwhile (by the household through the socket), or expired.
	default:
		rt.log.Warn("auto-accept failed", "pledge", p.ID, "err", err)
	}
}
