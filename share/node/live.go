package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/commons-energy/commons/ledger"
	"github.com/commons-energy/commons/meter"
	"github.com/commons-energy/commons/share"
	"github.com/commons-energy/commons/share/household"
)

// SettleEvery is how often a running node runs a settlement round.
const SettleEvery = time.Minute

// live is the in-memory state of a running household: the latest reading,
// the meter's health, the last hour of samples and the subscribers.
type live struct {
	mu      sync.Mutex
	reading meter.Reading
	has     bool
	health  meter.Status
	running bool
	// reader is the grid meter's reader while Run runs: its counters
	// (telegrams, rejections, reconnects) move with every telegram and
	// are read from it, as health is only told about online/offline.
	reader *meter.Reader
	ring   *household.Ring // the last hour of samples; nil until the first
	agg    *ledger.Aggregator
	subs   map[*subscriber]struct{}

	// The grid meter's clock against this box's at the latest reading.
	clockSkew  time.Duration
	clockKnown bool       // the latest reading carried a time
	clockState clockState // for logging changes only

	// The production meter, when one is configured.
	prod       meter.Reading
	prodAt     time.Time // when prod was received (node clock); zero = none yet
	prodSeen   time.Time // when prod was received, real time: the meter is polled in real time
	prodHealth meter.Status
	// The production register of the reading before prod and when it
	// arrived (node clock), to pace the register between polls.
	prevWh meter.Optional
	prevAt time.Time
}

// paceRegister returns the production register to aggregate with a grid
// sample taken at t: the register moves from the previous production
// reading's value to the latest one over one polling interval after the
// latest arrived, so each grid sample carries a share of the production
// even when the meter is polled far less often than the grid meter pushes
// (a fast simulated clock). The values never go down and reach the
// latest reading's register; energy is conserved.
func paceRegister(prev meter.Optional, prevAt time.Time, latest meter.Optional, latestAt, t time.Time) meter.Optional {
	if !latest.OK || !prev.OK || latest.V < prev.V || !latestAt.After(prevAt) {
		return latest
	}
	step := latestAt.Sub(prevAt)
	since := t.Sub(latestAt)
	switch {
	case since <= 0:
		return prev
	case since >= step:
		return latest
	}
	// Exact integer share: (latest - prev) * since / step, in ms.
	return meter.Some(prev.V + (latest.V-prev.V)*since.Milliseconds()/max(step.Milliseconds(), 1))
}

// productionMaxAge is how long ago (real time, as the meter is polled in
// real time even when the node's clock is simulated) the production
// meter's last reading may have arrived for it to count as the production
// now: three polling periods, at least ten seconds.
func (n *Node) productionMaxAge() time.Duration {
	d := 10 * time.Second
	if pm := n.cfg.ProductionMeter; pm != nil && pm.PollMS > 0 {
		d = max(d, 3*time.Duration(pm.PollMS)*time.Millisecond)
	}
	return d
}

// production returns the production power and production register of the
// production meter's reading r: forward power and the import register, or
// with invert the reverse ones.
func production(r *meter.Reading, invert bool) (w, wh meter.Optional) {
	imp, exp := r.PowerImportW, r.PowerExportW
	whReg := r.EnergyImport.Total
	if invert {
		imp, exp = exp, imp
		whReg = r.EnergyExport.Total
	}
	switch {
	case imp.OK && exp.OK:
		w = meter.Some(imp.V - exp.V)
	case imp.OK:
		w = imp
	case exp.OK:
		w = meter.Some(-exp.V)
	}
	return w, whReg
}

// Production returns the production meter's latest reading (ok false when
// there is none or it is older than a few polling periods), the production
// power and register it gives, and the meter's health (zero when no
// production meter runs).
func (n *Node) Production() (r meter.Reading, w, wh meter.Optional, health meter.Status, ok bool) {
	l := &n.live
	l.mu.Lock()
	defer l.mu.Unlock()
	return n.productionLocked()
}

func (n *Node) productionLocked() (r meter.Reading, w, wh meter.Optional, health meter.Status, ok bool) {
	l := &n.live
	health = l.prodHealth
	if n.cfg.ProductionMeter == nil || l.prodSeen.IsZero() || time.Since(l.prodSeen) > n.productionMaxAge() {
		return r, w, wh, health, false
	}
	w, wh = production(&l.prod, n.cfg.ProductionMeter.Invert)
	return l.prod, w, wh, health, true
}

func (l *live) push(s household.Sample) {
	if l.ring == nil {
		l.ring = household.NewRing(household.RingCap)
	}
	l.ring.Append(s)
}

// Samples returns the live samples at or after since, oldest first.
func (n *Node) Samples(ctx context.Context, since time.Time) ([]household.Sample, error) {
	l := &n.live
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ring == nil {
		return []household.Sample{}, nil
	}
	return l.ring.Since(since), nil
}

// Latest returns the latest reading (ok false when none yet) and the
// meter's health as the running reader sees it (zero when not running).
func (n *Node) Latest() (r meter.Reading, ok bool, health meter.Status, running bool) {
	l := &n.live
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reading, l.has, withCounters(l.health, l.reader), l.running
}

// withCounters returns h with the counters the reader rd keeps now (h as
// it is when rd is nil).
func withCounters(h meter.Status, rd *meter.Reader) meter.Status {
	if rd != nil {
		st := rd.Status()
		h.Telegrams, h.Rejected, h.Reconnects = st.Telegrams, st.Rejected, st.Reconnects
	}
	return h
}

// todayTotals returns today's energy, including what a running
// aggregator has not written yet.
func (n *Node) todayTotals(ctx context.Context) (ledger.Totals, error) {
	n.live.mu.Lock()
	agg := n.live.agg
	n.live.mu.Unlock()
	if agg != nil {
		return agg.Today(ctx, n.opts.Now(), n.loc)
	}
	return n.led.Today(ctx, n.opts.Now(), n.loc)
}

// Run runs the household until ctx ends: it reads the configured meter
// (reconnecting as needed), aggregates its readings into the ledger in
// batches, keeps the last hour of samples in memory, and runs a
// settlement round every SettleEvery. It needs a writable node. On return
// the pending aggregates are written.
func (n *Node) Run(ctx context.Context) error {
	if err := n.writable("run"); err != nil {
		return err
	}
	agg, err := n.led.NewAggregator(ledger.AggregatorOptions{SlotLength: n.manifest.SlotDuration(), FlushEvery: n.opts.FlushEvery, Now: n.opts.Now})
	if err != nil {
		return err
	}
	n.live.mu.Lock()
	if n.live.running {
		n.live.mu.Unlock()
		return errors.New("run: the household is already running")
	}
	n.live.running, n.live.agg = true, agg
	n.live.mu.Unlock()
	defer func() {
		n.live.mu.Lock()
		n.live.health = withCounters(n.live.health, n.live.reader)
		n.live.running, n.live.reader = false, nil
		n.live.mu.Unlock()
	}()

	readings := make(chan meter.Reading, 16)
	prodReadings := make(chan meter.Reading, 4)
	var readers []*meter.Reader
	if n.cfg.Meter.Port != "" {
		rd, err := n.newReader(readings)
		if err != nil {
			return err
		}
		readers = append(readers, rd)
		n.live.mu.Lock()
		n.live.reader = rd
		n.live.mu.Unlock()
	}
	if n.cfg.ProductionMeter != nil {
		rd, err := n.newProductionReader(prodReadings)
		if err != nil {
			return err
		}
		readers = append(readers, rd)
	}
	var wg sync.WaitGroup
	for _, rd := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rd.Run(ctx)
		}()
	}
	settleEvery := n.opts.SettleEvery
	if settleEvery <= 0 {
		settleEvery = SettleEvery
	}
	tick := time.NewTicker(settleEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			// Write what is pending even though ctx is done.
			ferr := agg.Flush(context.WithoutCancel(ctx))
			n.live.mu.Lock()
			n.live.agg = nil
			n.live.mu.Unlock()
			return ferr
		case r := <-readings:
			n.onReading(ctx, agg, r, n.opts.Now())
		case r := <-n.opts.Readings: // nil: never
			at := n.opts.Now()
			if !r.At.IsZero() && r.At.Before(at) {
				at = r.At
			}
			n.onReading(ctx, agg, r.Reading, at)
		case r := <-prodReadings:
			n.live.mu.Lock()
			now := n.opts.Now()
			if !n.live.prodAt.IsZero() {
				_, n.live.prevWh = production(&n.live.prod, n.cfg.ProductionMeter.Invert)
				n.live.prevAt = n.live.prodAt
			}
			n.live.prod, n.live.prodAt, n.live.prodSeen = r, now, time.Now()
			n.live.prodHealth.Online, n.live.prodHealth.LastTelegram = true, n.live.prodAt
			n.live.mu.Unlock()
		case <-tick.C:
			rep, err := n.Settle(ctx)
			if err != nil {
				n.log.Warn("settlement round failed", "err", err)
			} else if len(rep.Reported)+len(rep.Settled) > 0 {
				n.log.Info("settlement round", "reported", len(rep.Reported), "settled", len(rep.Settled))
				n.publish(household.Event{Kind: household.EventState})
			}
		}
	}
}

// newReader builds the meter reader for the configured port.
func (n *Node) newReader(out chan<- meter.Reading) (*meter.Reader, error) {
	proto := n.cfg.Meter.Protocol
	if proto == "" {
		proto = "auto"
	}
	pc, err := meter.SerialSettings(proto)
	if err != nil {
		return nil, fmt.Errorf("meter: %w", err)
	}
	pc.Device = n.cfg.Meter.Port
	if n.cfg.Meter.Baud > 0 {
		pc.Baud = n.cfg.Meter.Baud
	}
	decName := proto
	if _, err := meter.NewDecoder(decName, meter.DecoderOptions{}); err != nil {
		if proto != "auto" {
			return nil, fmt.Errorf("meter: %w", err)
		}
		decName = "dsmr"
	}
	return n.reader(pc, decName, meter.DecoderOptions{}, out, func(st meter.Status) { n.live.health = st }, n.log)
}

// newProductionReader builds the reader of the production meter.
func (n *Node) newProductionReader(out chan<- meter.Reading) (*meter.Reader, error) {
	pm := n.cfg.ProductionMeter
	proto := pm.Protocol
	if proto == "" {
		proto = "modbus"
	}
	pc, err := meter.SerialSettings(proto)
	if err != nil {
		return nil, fmt.Errorf("production meter: %w", err)
	}
	pc.Device = pm.Port
	if proto == "modbus" && pm.Model == "sdm120" {
		pc.Baud = 2400 // the SDM120's factory setting
	}
	if pm.Baud > 0 {
		pc.Baud = pm.Baud
	}
	if pm.Format != "" {
		if pc, err = pc.WithFormat(pm.Format); err != nil {
			return nil, fmt.Errorf("production meter: %w", err)
		}
	}
	opts := meter.DecoderOptions{Modbus: meter.ModbusOptions{Slave: byte(pm.Slave), Model: pm.Model, Period: time.Duration(pm.PollMS) * time.Millisecond}}
	if _, err := meter.NewDecoder(proto, opts); err != nil {
		return nil, fmt.Errorf("production meter: %w", err)
	}
	return n.reader(pc, proto, opts, out, func(st meter.Status) { n.live.prodHealth = st }, n.log.With("meter", "production"))
}

// reader builds a meter reader on pc that decodes with the named decoder,
// hands readings to out (dropping one when the run loop is behind: the
// next supersedes it) and keeps its status with setHealth, which runs
// under n.live.mu.
func (n *Node) reader(pc meter.PortConfig, decoder string, opts meter.DecoderOptions, out chan<- meter.Reading, setHealth func(meter.Status), log *slog.Logger) (*meter.Reader, error) {
	return meter.NewReader(meter.ReaderConfig{
		Port: pc,
		NewDecoder: func() meter.Decoder {
			d, _ := meter.NewDecoder(decoder, opts)
			return d
		},
		OnReading: func(r meter.Reading) {
			select {
			case out <- r:
			default:
			}
		},
		OnStatus: func(st meter.Status) {
			n.live.mu.Lock()
			setHealth(st)
			n.live.mu.Unlock()
			n.publish(household.Event{Kind: household.EventState})
		},
		Logger: log,
		Now:    n.opts.Now,
	})
}

// onReading takes one grid meter reading: live state, sample, aggregates.
// A recent production reading adds production and consumption to the
// sample and its production register to the aggregates.
func (n *Node) onReading(ctx context.Context, agg *ledger.Aggregator, r meter.Reading, now time.Time) {
	s := household.Sample{Time: now, ImportW: r.PowerImportW.V, ExportW: r.PowerExportW.V}
	n.live.mu.Lock()
	_, pw, pwh, _, prodOK := n.productionLocked()
	if prodOK && pw.OK {
		s.ProductionW = pw
		s.ConsumptionW = meter.Some(pw.V + s.ImportW - s.ExportW)
	}
	n.live.reading, n.live.has = r, true
	n.live.health.Online, n.live.health.LastTelegram = true, now
	n.live.push(s)
	n.live.clockSkew, n.live.clockKnown = meter.ClockSkew(&r, now, n.loc)
	clockChanged := n.live.clockState.update(n.live.clockSkew, n.live.clockKnown)
	clock, skew := n.live.clockState, n.live.clockSkew
	n.live.mu.Unlock()
	if clockChanged {
		n.logMeterClock(clock, skew, r.Time, now)
	}
	n.publish(household.Event{Kind: household.EventLive, Sample: s})
	if smp, ok := ledger.SampleFromReading(&r, now); ok {
		if prodOK {
			n.live.mu.Lock()
			smp.ProductionWh = paceRegister(n.live.prevWh, n.live.prevAt, pwh, n.live.prodAt, now)
			n.live.mu.Unlock()
		}
		flushed, err := agg.Add(ctx, smp)
		if err != nil {
			n.log.Warn("write meter aggregates", "err", err)
		}
		if flushed {
			n.publish(household.Event{Kind: household.EventAggregates})
		}
	}
}

// subscriber is one Subscribe channel. Live events supersede each other;
// other kinds are never dropped: state and aggregate changes coalesce into
// flags, incoming pledges queue (bounded; beyond it they coalesce into a
// state change).
type subscriber struct {
	mu       sync.Mutex
	live     *household.Event
	state    bool
	aggs     bool
	incoming []*household.Pledge
	wake     chan struct{}
}

// maxQueuedIncoming bounds a subscriber's queue of incoming pledges.
const maxQueuedIncoming = 64

// Subscribe returns a channel of change notifications, closed when ctx
// ends. A slow reader never blocks the household.
func (n *Node) Subscribe(ctx context.Context) <-chan household.Event {
	s := &subscriber{wake: make(chan struct{}, 1)}
	out := make(chan household.Event)
	n.live.mu.Lock()
	if n.live.subs == nil {
		n.live.subs = map[*subscriber]struct{}{}
	}
	n.live.subs[s] = struct{}{}
	n.live.mu.Unlock()
	go func() {
		defer close(out)
		defer func() {
			n.live.mu.Lock()
			delete(n.live.subs, s)
			n.live.mu.Unlock()
		}()
		for {
			ev, ok := s.take()
			if !ok {
				select {
				case <-ctx.Done():
					return
				case <-s.wake:
				}
				continue
			}
			if ev.Kind == household.EventLive {
				// The live values as of delivery: a superseded event costs nothing.
				lv, err := n.liveState(ctx)
				if err != nil {
					continue
				}
				ev.Live = lv
			}
			select {
			case <-ctx.Done():
				return
			case out <- ev:
			}
		}
	}()
	return out
}

// take removes the next event to deliver: incoming first, then state,
// aggregates, live.
func (s *subscriber) take() (household.Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case len(s.incoming) > 0:
		p := s.incoming[0]
		s.incoming = s.incoming[1:]
		return household.Event{Kind: household.EventIncoming, Pledge: p}, true
	case s.state:
		s.state = false
		return household.Event{Kind: household.EventState}, true
	case s.aggs:
		s.aggs = false
		return household.Event{Kind: household.EventAggregates}, true
	case s.live != nil:
		ev := *s.live
		s.live = nil
		return ev, true
	}
	return household.Event{}, false
}

// publish hands ev to every subscriber without blocking.
func (n *Node) publish(ev household.Event) {
	n.live.mu.Lock()
	subs := make([]*subscriber, 0, len(n.live.subs))
	for s := range n.live.subs {
		subs = append(subs, s)
	}
	n.live.mu.Unlock()
	for _, s := range subs {
		s.mu.Lock()
		switch ev.Kind {
		case household.EventLive:
			e := ev
			s.live = &e
		case household.EventState:
			s.state = true
		case household.EventAggregates:
			s.aggs = true
		case household.EventIncoming:
			if len(s.incoming) < maxQueuedIncoming {
				s.incoming = append(s.incoming, ev.Pledge)
			} else {
				s.state = true
			}
		}
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Stored tells the node about messages stored by someone else on its
// behalf (the peer transport): sealed reports addressed to this household
// are opened, subscribers learn of new state and of pledges to this
// household, and an answer or cancel that arrived after the deadline it
// is dated before is noted as late (noteLate).
func (n *Node) Stored(ctx context.Context, msgs []*share.Message) {
	n.openSealed(ctx, msgs)
	n.noteLate(ctx, msgs)
	changed := false
	for _, m := range msgs {
		if m.Kind.Ephemeral() {
			changed = true
			continue
		}
		changed = true
		if m.Kind != share.KindPledge {
			continue
		}
		c, err := m.Decode()
		if p, ok := c.(*share.Pledge); err == nil && ok && p.To == n.key.ID() {
			if pl, err := n.FindPledge(ctx, m.ID().String()); err == nil {
				n.publish(household.Event{Kind: household.EventIncoming, Pledge: &pl})
			}
		}
	}
	if changed {
		n.publish(household.Event{Kind: household.EventState})
	}
}
