package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/commons-energy/commons/ledger"
	"github.com/commons-energy/commons/share"
	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/node"
)

// statusWindow is how many seconds of live samples the published surplus
// averages over.
const statusWindow = 60 * time.Second

// statusState is what the status loop last published.
type statusState struct {
	published bool
	at        time.Time
	net       int64 // surplus (> 0) or need (< 0) in W, smoothed
}

// smoothed returns the mean surplus (export - import, W) over samples, in
// integer arithmetic (rounded towards zero).
func smoothed(ss []household.Sample) (avg int64, ok bool) {
	if len(ss) == 0 {
		return 0, false
	}
	var sum int64
	for _, s := range ss {
		sum += s.ExportW - s.ImportW
	}
	return sum / int64(len(ss)), true
}

// meaningful reports whether the surplus moved enough since the last
// published one to tell the neighbours: by at least 50 W, and by 10 % of
// the published value or across zero.
func meaningful(prev, cur int64) bool {
	d := abs(cur - prev)
	if d < 50 {
		return false
	}
	if (prev > 0) != (cur > 0) {
		return true
	}
	return d*10 >= abs(prev)
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// statusLoop signs and publishes the household's status on meaningful
// change and at least every StatusEvery while the meter reads.
func (rt *Runtime) statusLoop(ctx context.Context) {
	t := time.NewTicker(rt.opts.StatusCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := rt.maybePublishStatus(ctx); err != nil {
				rt.log.Warn("status not published", "err", err)
			}
		}
	}
}

// statusPolicy is when and how exactly the household tells its surplus:
// the config's privacy setting (node.StatusConfig) and the runtime's
// heartbeat.
type statusPolicy struct {
	off        bool
	precisionW int64         // published watts are rounded down to a multiple
	minGap     time.Duration // least time between two statuses
	every      time.Duration // most time between two statuses while the meter reads
}

// newStatusPolicy reads the privacy setting; the least gap never exceeds
// the heartbeat, so a runtime told to publish every second (tests, the
// demo's fast clock) does.
func newStatusPolicy(c *node.StatusConfig, every time.Duration) statusPolicy {
	return statusPolicy{off: !c.Publish(), precisionW: c.Precision(), minGap: min(c.MinInterval(), every), every: every}
}

// round rounds w towards zero to the policy's precision: a household
// exporting 1,234 W says 1,200 W at the default 100 W.
func (p statusPolicy) round(w int64) int64 {
	if p.precisionW <= 1 {
		return w
	}
	return w / p.precisionW * p.precisionW
}

// due reports whether a status saying cur is to be published at now,
// after prev.
func (p statusPolicy) due(prev statusState, cur int64, now time.Time) bool {
	switch {
	case p.off:
		return false
	case !prev.published:
		return true
	}
	since := now.Sub(prev.at)
	if since < p.minGap {
		return false
	}
	return since >= p.every || meaningful(prev.net, cur)
}

// maybePublishStatus publishes a status when one is due; it reports
// whether it did.
func (rt *Runtime) maybePublishStatus(ctx context.Context) (bool, error) {
	now := rt.opts.Now()
	samples, _ := rt.n.Samples(ctx, now.Add(-statusWindow)) // memory only: never fails
	avg, ok := smoothed(samples)
	if !ok {
		return false, nil // no recent reading: nothing true to say
	}
	avg = rt.statusPolicy.round(avg)
	rt.statusMu.Lock()
	prev := rt.status
	rt.statusMu.Unlock()
	if !rt.statusPolicy.due(prev, avg, now) {
		return false, nil
	}
	if err := rt.PublishStatus(ctx, avg); err != nil {
		return false, err
	}
	rt.statusMu.Lock()
	rt.status = statusState{published: true, at: now, net: avg}
	rt.statusMu.Unlock()
	return true, nil
}

// PublishStatus signs a status with the smoothed surplus surplusW (W;
// negative means need), stores it (only the latest is kept) and pushes it
// to every neighbour and to the community hub.
func (rt *Runtime) PublishStatus(ctx context.Context, surplusW int64) error {
	st := &share.Status{}
	if surplusW >= 0 {
		st.SurplusW, st.AvgSurplusW = surplusW, surplusW
	} else {
		st.NeedW, st.AvgNeedW = -surplusW, -surplusW
	}
	n := rt.n
	m, err := n.Key().Compose(n.Manifest().ID(), share.Head{}, rt.opts.Now(), st)
	if err != nil {
		return fmt.Errorf("sign status: %w", err)
	}
	res, err := n.Ledger().AppendMessages(ctx, m)
	if err != nil {
		return fmt.Errorf("store status: %w", err)
	}
	if o := res[0].Outcome; o != ledger.Latest && o != ledger.Stored {
		return fmt.Errorf("store own status: %s: %w", o, res[0].Err)
	}
	rt.relay.PublishStatus(m.Bytes()) // the neighbours directly and the hub
	return nil
}
