package node

import (
	"context"
	"fmt"
	"time"

	"github.com/commons-energy/commons/ledger"
	"github.com/commons-energy/commons/meter"
	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/input"
)

// maxStatePledges bounds the pledges State hands the dashboard: every open
// one plus the most recent closed ones up to this many.
const maxStatePledges = 300

// minuteRetention is how far back per-minute aggregates are kept; older
// spans come from slot aggregates.
const minuteRetention = 30 * 24 * time.Hour

// Pledge implements household.Household: nil error = signed and durable.
// Delivery to the neighbour follows (the peer transport, or by hand).
func (n *Node) Pledge(ctx context.Context, req household.PledgeRequest) (household.PledgeResult, error) {
	p, err := n.pledge(ctx, req)
	if err != nil {
		return household.PledgeResult{}, err
	}
	res := household.PledgeResult{Pledge: p, Delivery: household.Queued}
	if n.opts.Transport == nil {
		res.Note = fmt.Sprintf("stored; no network link configured: carry it to %s with 'commons export-messages'", p.ToName)
	} else {
		res.Note = fmt.Sprintf("stored; sending to %s", p.ToName)
	}
	return res, nil
}

// State implements household.Household: live values, the neighbours, and
// the pledges (every open one plus the most
// recent closed ones).
func (n *Node) State(ctx context.Context) (household.State, error) {
	st := household.State{Home: household.Home{ID: n.key.ID().String(), Name: n.cfg.Name, SlotLength: n.manifest.SlotDuration(),
		FuseA: n.cfg.FuseA, Production: n.cfg.ProductionMeter != nil}}
	var err error
	if st.Live, err = n.liveState(ctx); err != nil {
		return st, err
	}
	if st.Neighbours, err = n.Neighbours(ctx); err != nil {
		return st, err
	}
	ps, err := n.Pledges(ctx, false)
	if err != nil {
		return st, err
	}
	closed := 0
	for _, p := range ps {
		if !p.Open() {
			if closed >= maxStatePledges {
				continue
			}
			closed++
		}
		st.Pledges = append(st.Pledges, p)
	}
	st.Relay = n.relayState()
	return st, nil
}

// liveState is the part of the state that changes with every telegram.
func (n *Node) liveState(ctx context.Context) (household.Live, error) {
	var lv household.Live
	r, ok, h, running := n.Latest()
	lv.Reading, lv.HasReading = r, ok
	lv.Meter = household.MeterState{Protocol: n.cfg.Meter.Protocol, Port: n.cfg.Meter.Port, ClockOK: true}
	if running {
		lv.Meter.Online, lv.Meter.LastError = h.Online, h.LastError
		if !h.LastTelegram.IsZero() {
			t := h.LastTelegram
			lv.Meter.LastTelegram = &t
		}
		lv.Meter.CRCErrors = int(h.Rejected)
		if h.Protocol != "" {
			lv.Meter.Protocol = h.Protocol
		}
		if !h.Online && !h.Since.IsZero() {
			t := h.Since
			lv.Meter.OfflineSince = &t
		}
		lv.Meter.ClockSkewS, lv.Meter.ClockOK = n.meterClock()
	}
	// "auto" is a setting, not a protocol: once a reading names the one
	// the meter speaks, show that.
	if (lv.Meter.Protocol == "" || lv.Meter.Protocol == "auto") && ok && r.Protocol != "" {
		lv.Meter.Protocol = r.Protocol
	}
	if _, w, _, _, ok := n.Production(); ok {
		lv.ProductionW = w
	}
	tot, err := n.todayTotals(ctx)
	if err != nil {
		return lv, err
	}
	lv.Today = household.Today{ImportWh: tot.ImportWh, ExportWh: tot.ExportWh, ProductionWh: optPtr(tot.ProductionWh)}
	return lv, nil
}

// Aggregates implements household.Household: per-minute buckets where
// they are still kept, slot buckets before that.
func (n *Node) Aggregates(ctx context.Context, from, to time.Time) ([]household.Bucket, error) {
	cut := n.opts.Now().Add(-minuteRetention).Truncate(n.manifest.SlotDuration())
	var out []household.Bucket
	add := func(ivs []ledger.Interval) {
		for _, iv := range ivs {
			out = append(out, household.Bucket{Start: iv.Start, Length: iv.Length, ImportWh: iv.ImportWh, ExportWh: iv.ExportWh, ProductionWh: iv.ProductionWh})
		}
	}
	if from.Before(cut) {
		ivs, err := n.led.Slots(ctx, n.manifest.SlotDuration(), from, earlier(to, cut))
		if err != nil {
			return nil, err
		}
		add(ivs)
		from = cut
	}
	if from.Before(to) {
		ivs, err := n.led.Minutes(ctx, from, to)
		if err != nil {
			return nil, err
		}
		add(ivs)
	}
	return out, nil
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Preview implements household.Household: the aligned window, what this
// household already pledged in it, and as a forecast the export of the
// same slots 24 hours earlier (not OK when those slots were not all
// measured).
func (n *Node) Preview(ctx context.Context, req household.PledgeRequest) (household.Preview, error) {
	r, err := n.manifest.Align(req.Start, req.End)
	if err != nil {
		return household.Preview{}, err
	}
	start, end := n.manifest.Times(r)
	pv := household.Preview{Start: start.In(n.loc), End: end.In(n.loc)}
	if err := n.checkPlausible(req.EnergyWh, start, end); err != nil {
		return pv, err
	}
	ps, err := n.led.Pledges(ctx, ledger.PledgeFilter{OpenOnly: true, Involving: n.key.ID()})
	if err != nil {
		return pv, err
	}
	for _, p := range ps {
		if !p.Outgoing {
			continue
		}
		for slot := max(r.From, p.Window.From); slot < min(r.To, p.Window.To); slot++ {
			pledged, _ := p.Terms().SlotWh(slot)
			pv.PledgedWh += pledged
		}
	}
	// A plain forecast: the export of the same slots 24 hours earlier,
	// when all of them were measured.
	day := int64(24*time.Hour/time.Second) / n.manifest.SlotLen
	_, exp, measured, err := n.led.SlotEnergy(ctx, n.manifest.SlotDuration(), r.From-day, r.To-day)
	if err != nil {
		return pv, err
	}
	if indexFalse(measured) < 0 {
		var sum int64
		for _, v := range exp {
			sum += v
		}
		pv.ForecastSurplusWh = meter.Some(sum)
	}
	switch {
	case !start.After(n.opts.Now()):
		pv.Warning = "the window has started; pick a later one"
	case pv.ForecastSurplusWh.OK && req.EnergyWh+pv.PledgedWh > pv.ForecastSurplusWh.V:
		pv.Warning = fmt.Sprintf("with what is already pledged that is more than this home exported at this time yesterday (%s)", input.FormatEnergy(pv.ForecastSurplusWh.V))
	}
	return pv, nil
}
