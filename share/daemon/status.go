package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/commons-energy/commons/ledger"
	"github.com/commons-energy/commons/share"
	"github.com/commons-energy/commons/share/household"
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

// maybePublishStatus publishes a status when one is due; it reports
// whether it did.
func (rt *Runtime) maybePublishStatus(ctx context.Context) (bool, error) {
	now := rt.opts.Now()
	samples, _ := rt.n.Samples(ctx, now.Add(-statusWindow)) // memory only: never fails
	avg, ok := smoothed(samples)
	if !ok {
		return false, nil // no recent reading: nothing true to say
	}
	rt.statusMu.Lock()
	prev := rt.status
	rt.statusMu.Unlock()
	if prev.published && !meaningful(prev.net, avg) && now.Sub(prev.at) < rt.opts.StatusEvery {
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
