package node

import (
	"context"
	"fmt"
	"time"

	"github.com/commons-energy/commons/ledger"
	"github.com/commons-energy/commons/meter"
	"github.com/commons-energy/commons/tui"
)

// maxStatePledges bounds the pledges State hands the dashboard: every open
// one plus the most recent closed ones up to this many.
const maxStatePledges = 300

// minuteRetention is how far back per-minute aggregates are kept; older
// spans come from slot aggregates.
const minuteRetention = 30 * 24 * time.Hour

// Backend adapts a Node to the dashboard's tui.Backend.
type Backend struct {
	n *Node
}

var _ tui.Backend = Backend{}

// TUIBackend returns the dashboard's view of n. Run n for live readings.
func TUIBackend(n *Node) Backend { return Backend{n: n} }

// State implements tui.Backend.
func (b Backend) State(ctx context.Context) (tui.State, error) {
	n := b.n
	st := tui.State{Home: tui.Home{ID: n.key.ID().String(), Name: n.cfg.Name, SlotLength: n.manifest.SlotDuration(),
		FuseA: n.cfg.FuseA, Production: n.cfg.ProductionMeter != nil}}
	var err error
	if st.Live, err = b.live(ctx); err != nil {
		return st, err
	}
	nbs, err := n.Neighbours(ctx)
	if err != nil {
		return st, err
	}
	bal, err := n.led.Balances(ctx, n.loc)
	if err != nil {
		return st, err
	}
	byID := map[string]ledger.Balance{}
	for _, x := range bal {
		byID[x.Neighbour.String()] = x
	}
	for _, nb := range nbs {
		x := byID[nb.ID]
		v := tui.Neighbour{ID: nb.ID, Name: nb.Name, OpenPledges: x.OpenPledges,
			GivenWh: x.GivenWh, ReceivedWh: x.ReceivedWh, MonthGivenWh: x.MonthGivenWh, MonthReceivedWh: x.MonthReceivedWh,
			Forked: nb.Frozen}
		if nb.Status != nil {
			v.Status = &tui.NeighbourStatus{SurplusW: nb.Status.SurplusW, Time: nb.Status.Time}
		}
		if nb.LastSeen != nil {
			v.LastSeen = *nb.LastSeen
		}
		if v.Forked {
			v.Problem = fmt.Sprintf("signed two different messages with sequence number %d: its feed is frozen", nb.ForkSeq)
		}
		st.Neighbours = append(st.Neighbours, v)
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
		st.Pledges = append(st.Pledges, tuiPledge(p))
	}
	return st, nil
}

func (b Backend) live(ctx context.Context) (tui.Live, error) {
	n := b.n
	var lv tui.Live
	r, ok, h, running := n.Latest()
	lv.Reading, lv.HasReading = r, ok
	lv.Meter = tui.MeterHealth{Protocol: n.cfg.Meter.Protocol, Port: n.cfg.Meter.Port}
	if running {
		lv.Meter.Online, lv.Meter.LastTelegram, lv.Meter.LastError = h.Online, h.LastTelegram, h.LastError
		lv.Meter.CRCErrors = int(h.Rejected)
		if h.Protocol != "" {
			lv.Meter.Protocol = h.Protocol
		}
		if !h.Online {
			lv.Meter.OfflineSince = h.Since
		}
		if skewS, ok := n.meterClock(); skewS != nil {
			lv.Meter.ClockSkewS, lv.Meter.ClockWrong = meter.Some(*skewS), !ok
		}
	}
	if _, w, _, _, ok := n.Production(); ok {
		lv.ProductionW = w
	}
	tot, err := n.todayTotals(ctx)
	if err != nil {
		return lv, err
	}
	lv.Today = tui.Today{ImportWh: tot.ImportWh, ExportWh: tot.ExportWh, ProductionWh: tot.ProductionWh}
	return lv, nil
}

func tuiSample(s Sample) tui.Sample {
	return tui.Sample{Time: s.Time, ImportW: s.ImportW, ExportW: s.ExportW, ProductionW: s.ProductionW}
}

func tuiPledge(p Pledge) tui.Pledge {
	v := tui.Pledge{ID: p.ID, From: p.From, To: p.To, FromName: p.FromName, ToName: p.ToName, Outgoing: p.Outgoing,
		EnergyWh: p.EnergyWh, Start: p.Window.Start, End: p.Window.End, State: tui.PledgeState(p.State),
		Verified: tui.VerifyOK, Created: p.Created}
	if p.AcceptedWh != nil {
		v.AcceptedWh = meter.Some(*p.AcceptedWh)
	}
	if p.DeliveredWh != nil {
		v.DeliveredWh = meter.Some(*p.DeliveredWh)
	}
	return v
}

// Samples implements tui.Backend.
func (b Backend) Samples(ctx context.Context, since time.Time) ([]tui.Sample, error) {
	ss := b.n.Samples(since)
	out := make([]tui.Sample, len(ss))
	for i, s := range ss {
		out[i] = tuiSample(s)
	}
	return out, nil
}

// Aggregates implements tui.Backend: per-minute buckets where they are
// still kept, slot buckets before that.
func (b Backend) Aggregates(ctx context.Context, from, to time.Time) ([]tui.Bucket, error) {
	n := b.n
	cut := n.opts.Now().Add(-minuteRetention).Truncate(n.manifest.SlotDuration())
	var out []tui.Bucket
	add := func(ivs []ledger.Interval) {
		for _, iv := range ivs {
			out = append(out, tui.Bucket{Start: iv.Start, Length: iv.Length, ImportWh: iv.ImportWh, ExportWh: iv.ExportWh, ProductionWh: iv.ProductionWh})
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

// Preview implements tui.Backend: the aligned window, what this household
// already pledged in it, and as a forecast the export of the same slots
// 24 hours earlier (not OK when those slots were not all measured).
func (b Backend) Preview(ctx context.Context, req tui.PledgeRequest) (tui.Preview, error) {
	n := b.n
	r, err := n.manifest.Align(req.Start, req.End)
	if err != nil {
		return tui.Preview{}, err
	}
	start, end := n.manifest.Times(r)
	pv := tui.Preview{Start: start.In(n.loc), End: end.In(n.loc)}
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
		pv.Warning = fmt.Sprintf("with what is already pledged that is more than this home exported at this time yesterday (%s)", FormatEnergy(pv.ForecastSurplusWh.V))
	}
	return pv, nil
}

// Pledge implements tui.Backend.
func (b Backend) Pledge(ctx context.Context, req tui.PledgeRequest) (tui.PledgeResult, error) {
	p, err := b.n.Pledge(ctx, PledgeRequest{To: req.To, EnergyWh: req.EnergyWh, Start: req.Start, End: req.End})
	if err != nil {
		return tui.PledgeResult{}, err
	}
	res := tui.PledgeResult{Pledge: tuiPledge(p), Delivery: tui.Queued}
	if b.n.opts.Transport == nil {
		res.Note = fmt.Sprintf("stored; no network link configured: carry it to %s with 'commons export-messages'", p.ToName)
	} else {
		res.Note = fmt.Sprintf("stored; sending to %s", p.ToName)
	}
	return res, nil
}

// Accept implements tui.Backend.
func (b Backend) Accept(ctx context.Context, id string) error {
	_, err := b.n.Accept(ctx, id)
	return err
}

// Decline implements tui.Backend.
func (b Backend) Decline(ctx context.Context, id string) error {
	_, err := b.n.Decline(ctx, id)
	return err
}

// Cancel implements tui.Backend.
func (b Backend) Cancel(ctx context.Context, id string) error {
	_, err := b.n.Cancel(ctx, id)
	return err
}

// Subscribe implements tui.Backend.
func (b Backend) Subscribe(ctx context.Context) <-chan tui.Event {
	in := b.n.Subscribe(ctx)
	out := make(chan tui.Event)
	go func() {
		defer close(out)
		for ev := range in {
			var te tui.Event
			switch ev.Kind {
			case EventLive:
				lv, err := b.live(ctx)
				if err != nil {
					continue
				}
				te = tui.Event{Kind: tui.EventLive, Live: lv, Sample: tuiSample(ev.Sample)}
			case EventState:
				te = tui.Event{Kind: tui.EventState}
			case EventAggregates:
				te = tui.Event{Kind: tui.EventAggregates}
			case EventIncoming:
				p := tuiPledge(*ev.Pledge)
				te = tui.Event{Kind: tui.EventIncoming, Pledge: &p}
			default:
				continue
			}
			select {
			case out <- te:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}
