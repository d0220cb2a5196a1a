package node

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commons-energy/commons/meter"
	"github.com/commons-energy/commons/meter/sim"
	"github.com/commons-energy/commons/share/household"
)

// frozenClock stands a simulator's clock still at its start + offset: the
// first call (the server's start) returns base, every later one base +
// offset, so every telegram and every Modbus answer shows one instant.
func frozenClock(offset time.Duration) func() time.Time {
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var started atomic.Bool
	return func() time.Time {
		if started.Swap(true) {
			return base.Add(offset)
		}
		return base
	}
}

// poll calls cond until it is true or the deadline passes.
func poll(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// twoMeterHome starts the node of a household whose grid meter is the
// DSMR simulator on one pty and whose production meter is a simulated
// SDM630 answering Modbus RTU on another, both read through tarm/serial.
func twoMeterHome(t *testing.T, ctx context.Context, gridSrv *sim.Server, prodSrv *sim.ModbusServer, now func() time.Time) (*Node, func() error) {
	t.Helper()
	h, _ := ResolveHome(t.TempDir())
	cfg := DefaultConfig("Alice")
	cfg.Timezone = "UTC"
	cfg.FuseA = 25
	cfg.Meter.Port, cfg.Meter.Protocol = gridSrv.Path(), "dsmr"
	cfg.ProductionMeter = &ProductionMeterConfig{Port: prodSrv.Path(), Protocol: "modbus", Slave: 1, Model: "sdm630", PollMS: 50}
	if _, err := Init(ctx, h, cfg); err != nil {
		t.Fatal(err)
	}
	n, err := Open(ctx, h, Options{Owner: "test", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- n.Run(runCtx) }()
	return n, func() error { stop(); return <-done }
}

// TestTwoMeterHomeLive: with both simulators frozen at one sunny instant,
// the node's live state, samples, dashboard backend and status show the
// model's production, grid import/export and consumption to the watt.
func TestTwoMeterHomeLive(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := sim.LoadProfile("solar-roof")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2025, 6, 21, 0, 0, 0, 0, time.UTC)
	const at = 12 * time.Hour // 14:00 in Amsterdam: the sun is up
	simNow := start.Add(at)
	grid, gridTwin := sim.New(p, 5, start), sim.New(p, 5, start)
	sdm, err := sim.NewSDM(sim.New(p, 5, start), "sdm630")
	if err != nil {
		t.Fatal(err)
	}
	sdmTwin, _ := sim.NewSDM(sim.New(p, 5, start), "sdm630")
	gridSrv, err := sim.ServePTY(ctx, grid, sim.ServeOptions{Interval: 50 * time.Millisecond, Now: frozenClock(at)})
	if err != nil {
		t.Fatalf("grid meter pty: %v", err)
	}
	prodSrv, err := sim.ServeModbusPTY(ctx, sdm, sim.ModbusServeOptions{Slave: 1, Now: frozenClock(at)})
	if err != nil {
		t.Fatalf("production meter pty: %v", err)
	}
	n, stop := twoMeterHome(t, ctx, gridSrv, prodSrv, nil)

	wantGrid := gridTwin.Reading(simNow)
	wantProd := sdmTwin.Reading(simNow).PowerImportW
	model := gridTwin.Power(simNow)
	if !wantProd.OK || wantProd.V <= 0 || model.SolarW != wantProd.V {
		t.Fatalf("model production %+v, solar %d W: the test needs sun", wantProd, model.SolarW)
	}
	var last household.Sample
	poll(t, "a live sample with production", 20*time.Second, func() bool {
		ss, _ := n.Samples(ctx, time.Time{})
		if len(ss) == 0 {
			return false
		}
		last = ss[len(ss)-1]
		return last.ProductionW.OK
	})
	if last.ImportW != wantGrid.PowerImportW.V || last.ExportW != wantGrid.PowerExportW.V || last.ProductionW.V != wantProd.V {
		t.Fatalf("sample %+v; model: import %d, export %d, production %d", last, wantGrid.PowerImportW.V, wantGrid.PowerExportW.V, wantProd.V)
	}
	if !last.ConsumptionW.OK || last.ConsumptionW.V != model.LoadW {
		t.Fatalf("consumption %+v, the model's household load is %d W", last.ConsumptionW, model.LoadW)
	}

	b := n
	st, err := b.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Home.Production || st.Home.FuseA != 25 {
		t.Fatalf("home = %+v, want production meter and a 25 A fuse", st.Home)
	}
	if st.Live.ProductionW != wantProd || st.Live.Reading.PowerImportW != wantGrid.PowerImportW || st.Live.Reading.PowerExportW != wantGrid.PowerExportW {
		t.Fatalf("live = production %+v, import %+v, export %+v", st.Live.ProductionW, st.Live.Reading.PowerImportW, st.Live.Reading.PowerExportW)
	}
	ss, err := b.Samples(ctx, time.Time{})
	if err != nil || len(ss) == 0 || ss[len(ss)-1].ProductionW != wantProd {
		t.Fatalf("backend samples end %v, %v", ss[len(ss)-1:], err)
	}
	stat, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pr := stat.Production
	if pr == nil || !pr.Online || pr.Port != prodSrv.Path() || pr.Protocol != "modbus" || pr.PowerW == nil || *pr.PowerW != wantProd.V ||
		pr.ConsumptionW == nil || *pr.ConsumptionW != model.LoadW {
		t.Fatalf("status production = %+v", pr)
	}
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
}

// TestTwoMeterHomeAggregates: with simulated time running at 30x, the
// node aggregates the production meter's register next to the grid
// meter's, the dashboard's buckets and today's totals carry production,
// and what settlement reads (SlotEnergy) stays the grid meter's import and
// export.
func TestTwoMeterHomeAggregates(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := sim.LoadProfile("solar-roof")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2025, 6, 21, 10, 0, 0, 0, time.UTC) // noon in Amsterdam
	const speed = 30
	grid, gridTwin := sim.New(p, 9, start), sim.New(p, 9, start)
	sdm, err := sim.NewSDM(sim.New(p, 9, start), "sdm630")
	if err != nil {
		t.Fatal(err)
	}
	sdmTwin, _ := sim.NewSDM(sim.New(p, 9, start), "sdm630")
	realStart := time.Now()
	simClock := func() time.Time { return start.Add(speed * time.Since(realStart)) }
	srvCtx, stopServers := context.WithCancel(ctx)
	defer stopServers()
	gridSrv, err := sim.ServePTY(srvCtx, grid, sim.ServeOptions{Speed: speed, Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("grid meter pty: %v", err)
	}
	prodSrv, err := sim.ServeModbusPTY(srvCtx, sdm, sim.ModbusServeOptions{Slave: 1, Speed: speed})
	if err != nil {
		t.Fatalf("production meter pty: %v", err)
	}
	n, stop := twoMeterHome(t, ctx, gridSrv, prodSrv, simClock)
	b := n

	// Wait for three stored minutes with production.
	poll(t, "stored minutes with production", 30*time.Second, func() bool {
		ivs, err := n.Ledger().Minutes(ctx, start, start.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		k := 0
		for _, iv := range ivs {
			if iv.ProductionWh.OK && iv.ProductionWh.V > 0 {
				k++
			}
		}
		return k >= 3
	})
	st, err := b.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Live.Today.ProductionWh == nil || *st.Live.Today.ProductionWh <= 0 {
		t.Fatalf("today = %+v, want production", st.Live.Today)
	}
	// Stop the meters first: every simulated instant served lies before end.
	stopServers()
	<-gridSrv.Done()
	<-prodSrv.Done()
	end := simClock()
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}

	buckets, err := b.Aggregates(ctx, start, start.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var prodWh, expWh, impWh int64
	for _, bk := range buckets {
		if bk.ProductionWh.OK {
			prodWh += bk.ProductionWh.V
		}
		expWh += bk.ExportWh
		impWh += bk.ImportWh
	}
	p0 := sdmTwin.Reading(start) // the twins' times must not go backwards
	wantProd := sdmTwin.Reading(end).EnergyImport.Total.V - p0.EnergyImport.Total.V
	r0 := gridTwin.Reading(start)
	r1 := gridTwin.Reading(end)
	gridExp := r1.EnergyExport.Total.V - r0.EnergyExport.Total.V
	gridImp := r1.EnergyImport.Total.V - r0.EnergyImport.Total.V
	if prodWh <= 0 || prodWh > wantProd {
		t.Fatalf("aggregated production %d Wh, the production register advanced %d Wh in the run", prodWh, wantProd)
	}
	// Settlement's input: the grid meter's registers only. Production
	// exceeds the grid export, so production leaking into it would show.
	slot := n.Manifest().SlotDuration()
	from, to := start.Unix()/int64(slot/time.Second), end.Unix()/int64(slot/time.Second)+1
	imp, exp, _, err := n.Ledger().SlotEnergy(ctx, slot, from, to)
	if err != nil {
		t.Fatal(err)
	}
	var sImp, sExp int64
	for i := range imp {
		sImp += imp[i]
		sExp += exp[i]
	}
	if sExp != expWh || sImp != impWh {
		t.Fatalf("settlement slots: import %d export %d Wh; minutes: import %d export %d Wh", sImp, sExp, impWh, expWh)
	}
	if sExp <= 0 || sExp > gridExp || sImp > gridImp {
		t.Fatalf("settlement export %d Wh (grid register advanced %d), import %d Wh (grid %d)", sExp, gridExp, sImp, gridImp)
	}
	if prodWh <= gridExp {
		t.Fatalf("production %d Wh not above the grid export %d Wh: the test cannot tell them apart", prodWh, gridExp)
	}
	t.Logf("run to %s: aggregated production %d Wh, grid export %d Wh, import %d Wh; registers advanced: production %d, export %d, import %d Wh",
		end.Format(time.TimeOnly), prodWh, sExp, sImp, wantProd, gridExp, gridImp)
}

func TestProductionMeterConfig(t *testing.T) {
	for _, tc := range []struct {
		name, json, want string
	}{
		{"ok", `{"port": "/dev/ttyUSB1", "protocol": "modbus", "slave": 3, "model": "sdm120", "baud": 2400, "format": "8E1", "invert": true}`, ""},
		{"no port", `{"protocol": "modbus"}`, "production_meter port is empty"},
		{"bad protocol", `{"port": "/dev/x", "protocol": "smarty"}`, `production_meter protocol "smarty" is not supported`},
		{"bad slave", `{"port": "/dev/x", "slave": 300}`, "production_meter slave 300 is out of range"},
		{"bad model", `{"port": "/dev/x", "model": "sdm72"}`, `production_meter model "sdm72" is unknown`},
		{"bad format", `{"port": "/dev/x", "format": "9X1"}`, `production_meter format "9X1"`},
		{"bad poll", `{"port": "/dev/x", "poll_ms": 5}`, "production_meter poll_ms 5 is out of range"},
		{"unknown field", `{"port": "/dev/x", "speed": 1}`, `unknown field "speed"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := ResolveHome(t.TempDir())
			if err := os.MkdirAll(filepath.Dir(h.ConfigPath()), 0o700); err != nil {
				t.Fatal(err)
			}
			cfg := `{"name": "Alice", "meter": {}, "community": {"name": "commons", "slot_seconds": 900, "allocation_key": "pro-rata"}, "fuse_a": 35, "production_meter": ` + tc.json + "}"
			if err := os.WriteFile(h.ConfigPath(), []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := LoadConfig(h)
			if tc.want == "" {
				if err != nil || c.ProductionMeter == nil || c.ProductionMeter.Slave != 3 || !c.ProductionMeter.Invert || c.FuseA != 35 {
					t.Fatalf("LoadConfig = %+v, %v", c, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), h.ConfigPath()) {
				t.Fatalf("LoadConfig error %v, want %q and the file name", err, tc.want)
			}
		})
	}
}

func TestBalance(t *testing.T) {
	for _, tc := range []struct {
		prod, imp, exp         int64
		cons, self             int64
		selfPct, sufficientPct meter.Optional
	}{
		{3000, 0, 2000, 1000, 1000, meter.Some(33), meter.Some(100)},
		{1000, 500, 0, 1500, 1000, meter.Some(100), meter.Some(66)},
		{0, 400, 0, 400, 0, meter.Optional{}, meter.Some(0)},
		{-5, 400, 0, 395, 0, meter.Optional{}, meter.Some(0)}, // an idle inverter draws a little
		{0, 0, 0, 0, 0, meter.Optional{}, meter.Optional{}},
	} {
		b := NewBalance(tc.prod, tc.imp, tc.exp)
		if b.Consumption != tc.cons || b.SelfConsumed != tc.self || b.SelfConsumptionPct != tc.selfPct || b.SelfSufficiencyPct != tc.sufficientPct {
			t.Errorf("NewBalance(%d, %d, %d) = %+v", tc.prod, tc.imp, tc.exp, b)
		}
	}
}

// The production meter's direction: forward by default, reversed with
// invert; a signed reading's opposite direction counts negative.
func TestProductionDirection(t *testing.T) {
	r := meter.Reading{PowerImportW: meter.Some(1200), PowerExportW: meter.Some(0)}
	r.EnergyImport.Total, r.EnergyExport.Total = meter.Some(5000), meter.Some(7)
	if w, wh := production(&r, false); w != meter.Some(1200) || wh != meter.Some(5000) {
		t.Errorf("forward: %+v %+v", w, wh)
	}
	if w, wh := production(&r, true); w != meter.Some(-1200) || wh != meter.Some(7) {
		t.Errorf("inverted: %+v %+v", w, wh)
	}
}

// paceRegister spreads a production register step over the polling
// interval after it arrived: never down, reaching the latest value, exact
// integers.
func TestPaceRegister(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	prevAt, latestAt := t0, t0.Add(10*time.Second)
	prev, latest := meter.Some(1000), meter.Some(1100)
	for _, tc := range []struct {
		name string
		at   time.Duration // after latestAt
		want meter.Optional
	}{
		{"at arrival", 0, prev},
		{"a quarter", 2500 * time.Millisecond, meter.Some(1025)},
		{"half", 5 * time.Second, meter.Some(1050)},
		{"almost", 9999 * time.Millisecond, meter.Some(1099)},
		{"one interval later", 10 * time.Second, latest},
		{"long after", time.Hour, latest},
	} {
		if got := paceRegister(prev, prevAt, latest, latestAt, latestAt.Add(tc.at)); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
	// Without a usable previous reading (first reading, reset, no
	// register) the latest value is used as it is.
	for _, tc := range []struct {
		name string
		prev meter.Optional
		at   time.Time
	}{
		{"no previous", meter.Optional{}, prevAt},
		{"register went down", meter.Some(2000), prevAt},
		{"same instant", prev, latestAt},
	} {
		if got := paceRegister(tc.prev, tc.at, latest, latestAt, latestAt.Add(time.Second)); got != latest {
			t.Errorf("%s: %+v, want the latest %+v", tc.name, got, latest)
		}
	}
	// Grid samples every second over three 10 s polls: the values never
	// go down and end at the last register.
	regs := []int64{1000, 1100, 1130, 1400}
	last := int64(0)
	for i := 1; i < len(regs); i++ {
		pAt, lAt := t0.Add(time.Duration(i-1)*10*time.Second), t0.Add(time.Duration(i)*10*time.Second)
		for s := 0; s < 10; s++ {
			v := paceRegister(meter.Some(regs[i-1]), pAt, meter.Some(regs[i]), lAt, lAt.Add(time.Duration(s)*time.Second))
			if v.V < last {
				t.Fatalf("poll %d second %d: %d after %d", i, s, v.V, last)
			}
			last = v.V
		}
	}
	if got := paceRegister(meter.Some(1130), t0.Add(20*time.Second), meter.Some(1400), t0.Add(30*time.Second), t0.Add(40*time.Second)); got.V != 1400 {
		t.Fatalf("end %d, want 1400", got.V)
	}
}
