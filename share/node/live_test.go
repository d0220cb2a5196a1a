package node

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/commons-energy/commons/meter"
	"github.com/commons-energy/commons/meter/sim"
	"github.com/commons-energy/commons/share/household"
)

// TestRunReadsMeterOverPTY runs a household whose meter is the simulator
// speaking real DSMR telegrams on a pseudo-terminal read through
// tarm/serial, and checks the dashboard backend sees live readings, the
// status shows them and the aggregates reach the ledger.
func TestRunReadsMeterOverPTY(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := sim.LoadProfile("solar-roof")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	m := sim.New(p, 7, start)
	srv, err := sim.ServePTY(ctx, m, sim.ServeOptions{Speed: 60, Interval: 100 * time.Millisecond})
	if err != nil {
		t.Skipf("no pseudo-terminal on this machine: %v", err)
	}
	h, _ := ResolveHome(t.TempDir())
	cfg := DefaultConfig("Alice")
	cfg.Meter.Port, cfg.Meter.Protocol = srv.Path(), "dsmr"
	if _, err := Init(ctx, h, cfg); err != nil {
		t.Fatal(err)
	}
	n, err := Open(ctx, h, Options{Owner: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	b := n
	subCtx, stopSub := context.WithCancel(ctx)
	events := b.Subscribe(subCtx)
	runCtx, stopRun := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- n.Run(runCtx) }()

	deadline := time.After(20 * time.Second)
	var live household.Event
	for live.Kind != household.EventLive {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("subscription closed early")
			}
			live = ev
		case <-deadline:
			t.Fatal("no live reading from the simulated meter within 20 s")
		}
	}
	if !live.Live.HasReading || !live.Live.Meter.Online || live.Live.Reading.Protocol != "dsmr" || !live.Live.Reading.EnergyImport.Total.OK {
		t.Fatalf("live event = %+v", live.Live)
	}
	st, err := n.Status(ctx)
	if err != nil || st.Reading == nil || !st.Meter.Online || st.Meter.LastTelegram == nil || st.Meter.Port != srv.Path() {
		t.Fatalf("status = %+v, %v", st, err)
	}
	if ss, _ := b.Samples(ctx, start.Add(-time.Minute)); len(ss) == 0 {
		t.Fatal("no live samples")
	}
	stopSub()
	for range events {
		// drain until the subscription closes
	}
	stopRun()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	// Run wrote the pending aggregates on its way out.
	buckets, err := b.Aggregates(ctx, start.Add(-time.Hour), start.Add(24*time.Hour))
	if err != nil || len(buckets) == 0 {
		t.Fatalf("aggregates after run = %v, %v", buckets, err)
	}
	if _, ok := n.lastAggregated(ctx); !ok {
		t.Fatal("no meter baseline stored")
	}
}

func TestBackendStateAndPreview(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t0 := testT0
	clk := &clock{t: t0}
	a, b := newHome(t, "Alice", clk), newHome(t, "Bob", clk)
	befriend(t, a, b)
	win := t0.Add(time.Hour)
	be := a
	events := be.Subscribe(ctx)
	res, err := be.Pledge(ctx, household.PledgeRequest{To: b.Identity().ID, EnergyWh: 1000, Start: win.Add(5 * time.Minute), End: win.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Delivery != household.Queued || !res.Pledge.Window.Start.Equal(win) || res.Pledge.State != household.StatePledged || !res.Pledge.Outgoing {
		t.Fatalf("pledge result = %+v", res)
	}
	select {
	case ev := <-events:
		if ev.Kind != household.EventState {
			t.Fatalf("event after pledge = %v, want state", ev.Kind)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no state event after a pledge")
	}
	st, err := be.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Home.Name != "Alice" || st.Home.SlotLength != 15*time.Minute || len(st.Neighbours) != 1 || st.Neighbours[0].OpenPledges != 1 || len(st.Pledges) != 1 {
		t.Fatalf("state = %+v", st)
	}
	// 1000 Wh over four slots is 250 each; a preview of the last half
	// hour sees 500 Wh already pledged.
	pv, err := be.Preview(ctx, household.PledgeRequest{To: b.Identity().ID, EnergyWh: 1, Start: win.Add(30 * time.Minute), End: win.Add(time.Hour)})
	if err != nil || pv.PledgedWh != 500 || !pv.Start.Equal(win.Add(30*time.Minute)) {
		t.Fatalf("preview = %+v, %v", pv, err)
	}
	if pv.ForecastSurplusWh.OK {
		t.Fatalf("forecast without any meter data: %+v", pv)
	}
	// With yesterday's export of the same slots measured (2 x 300 Wh),
	// the forecast is 600 Wh, and asking for 200 more than the 500 already
	// pledged warns.
	meterSlots(t, a, win.Add(-24*time.Hour+30*time.Minute), []int64{0, 0}, []int64{300, 300})
	pv, err = be.Preview(ctx, household.PledgeRequest{To: b.Identity().ID, EnergyWh: 200, Start: win.Add(30 * time.Minute), End: win.Add(time.Hour)})
	if err != nil || !pv.ForecastSurplusWh.OK || pv.ForecastSurplusWh.V != 600 || !strings.Contains(pv.Warning, "more than this home exported at this time yesterday (600 Wh)") {
		t.Fatalf("preview with history = %+v, %v", pv, err)
	}
	// Bob is told of the incoming pledge when it is imported.
	bevents := b.Subscribe(ctx)
	carry(t, a, b)
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev := <-bevents:
			if ev.Kind == household.EventIncoming {
				if ev.Pledge.ID != res.Pledge.ID || ev.Pledge.Outgoing {
					t.Fatalf("incoming = %+v", ev.Pledge)
				}
				return
			}
		case <-deadline:
			t.Fatal("no incoming event at Bob")
		}
	}
}

// A reading from Options.Readings is filed at the box time it was taken
// (its At), not when the run loop gets to it; one stamped after the box's
// clock is filed at the clock. No meter port is needed.
func TestRunTakesTimedReadings(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: testT0.Add(10 * time.Minute)}
	h, err := ResolveHome(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig("Alice")
	cfg.Timezone = "UTC"
	if _, err := InitWithClock(ctx, h, cfg, clk.Now); err != nil {
		t.Fatal(err)
	}
	readings := make(chan TimedReading)
	n, err := Open(ctx, h, Options{Owner: "test", Now: clk.Now, Readings: readings})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- n.Run(runCtx) }()

	reading := func(importW, importWh int64) meter.Reading {
		return meter.Reading{Protocol: "dsmr", PowerImportW: meter.Some(importW), PowerExportW: meter.Some(int64(0)),
			EnergyImport: meter.Registers{Total: meter.Some(importWh)}, EnergyExport: meter.Registers{Total: meter.Some(int64(0))}}
	}
	ats := []time.Time{testT0, testT0.Add(30 * time.Second), testT0.Add(time.Hour)}
	for i, at := range ats {
		// Unbuffered: each send returns once Run took the reading, and
		// Run handles one at a time.
		readings <- TimedReading{Reading: reading(100*int64(i+1), 1000+int64(i)), At: at}
	}
	// Once the next one is taken, the three above are filed.
	readings <- TimedReading{Reading: reading(400, 1003), At: clk.Now()}
	ss, err := n.Samples(context.Background(), testT0.Add(-time.Minute))
	if err != nil || len(ss) < 3 {
		t.Fatalf("samples = %+v; want the readings", ss)
	}
	want := []time.Time{ats[0], ats[1], clk.Now()} // the third is from the future: filed now
	for i, w := range want {
		if !ss[i].Time.Equal(w) || ss[i].ImportW != 100*int64(i+1) {
			t.Errorf("sample %d = %+v; want %d W at %s", i, ss[i], 100*(i+1), w)
		}
	}
	if r, ok, st, running := n.Latest(); !ok || !running || !st.Online || r.PowerImportW.V < 300 {
		t.Errorf("latest = %+v, %v, %+v, %v", r, ok, st, running)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}
