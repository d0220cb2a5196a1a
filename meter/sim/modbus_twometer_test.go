package sim_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commons-energy/commons/meter"
	"github.com/commons-energy/commons/meter/sim"
)

// frozenClock makes a simulator's clock stand still at start + offset:
// the first call (the server's start) returns base, every later one
// base + offset, so every frame shows the same instant.
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

type collected struct {
	mu       sync.Mutex
	readings []meter.Reading
}

func (c *collected) add(r meter.Reading) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readings = append(c.readings, r)
}

func (c *collected) snapshot() []meter.Reading {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]meter.Reading(nil), c.readings...)
}

func runReader(t *testing.T, ctx context.Context, cfg meter.ReaderConfig) (*meter.Reader, <-chan error) {
	t.Helper()
	r, err := meter.NewReader(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return r, done
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTwoMeterHome runs a German household with solar panels: the grid
// meter pushes SML on one pseudo-terminal, an SDM630 on the inverter line
// answers Modbus RTU on another. Two Readers read them through
// tarm/serial; the readings equal the model's, and production plus import
// minus export gives the household's consumption.
func TestTwoMeterHome(t *testing.T) {
	p, err := sim.LoadProfile("solar-roof")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2025, 6, 21, 0, 0, 0, 0, time.UTC)
	const at = 12 * time.Hour // 14:00 CEST: the sun is up
	simNow := start.Add(at)
	grid, gridTwin := sim.New(p, 11, start), sim.New(p, 11, start)
	prodMeter, prodTwinMeter := sim.New(p, 11, start), sim.New(p, 11, start)
	sdm, err := sim.NewSDM(prodMeter, "sdm630")
	if err != nil {
		t.Fatal(err)
	}
	sdmTwin, _ := sim.NewSDM(prodTwinMeter, "sdm630")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	smlSrv, err := sim.ServeSMLPTY(ctx, grid, sim.ServeOptions{Interval: 50 * time.Millisecond, Now: frozenClock(at)})
	if err != nil {
		t.Fatal(err)
	}
	mbSrv, err := sim.ServeModbusPTY(ctx, sdm, sim.ModbusServeOptions{Slave: 1, Now: frozenClock(at)})
	if err != nil {
		t.Fatal(err)
	}

	var gridGot, prodGot collected
	rctx, rcancel := context.WithCancel(ctx)
	_, gridDone := runReader(t, rctx, meter.ReaderConfig{
		Port: meter.PortConfig{Device: smlSrv.Path(), Baud: 9600, ReadTimeout: 100 * time.Millisecond},
		NewDecoder: func() meter.Decoder {
			d, _ := meter.NewDecoder("sml", meter.DecoderOptions{})
			return d
		},
		OnReading: gridGot.add,
	})
	_, prodDone := runReader(t, rctx, meter.ReaderConfig{
		Port: meter.PortConfig{Device: mbSrv.Path(), Baud: 9600, ReadTimeout: 50 * time.Millisecond},
		NewDecoder: func() meter.Decoder {
			d, err := meter.NewDecoder("modbus", meter.DecoderOptions{Modbus: meter.ModbusOptions{Slave: 1, Period: 20 * time.Millisecond, Timeout: time.Second}})
			if err != nil {
				t.Error(err)
			}
			return d
		},
		OnReading: prodGot.add,
	})
	waitFor(t, "three readings from each meter", func() bool {
		return len(gridGot.snapshot()) >= 3 && len(prodGot.snapshot()) >= 3
	})
	rcancel()
	for _, d := range []<-chan error{gridDone, prodDone} {
		if err := <-d; !errors.Is(err, context.Canceled) {
			t.Errorf("reader returned %v", err)
		}
	}

	wantGrid := gridTwin.SMLReading(simNow)
	wantProd := sdmTwin.Reading(simNow)
	load := gridTwin.Power(simNow).LoadW
	if wantProd.PowerImportW.V <= 0 {
		t.Fatalf("no production at %v: the test needs sun", simNow)
	}
	for _, g := range gridGot.snapshot() {
		if g.Protocol != "sml" || g.PowerImportW != wantGrid.PowerImportW || g.PowerExportW != wantGrid.PowerExportW ||
			g.EnergyImport != wantGrid.EnergyImport || g.EnergyExport != wantGrid.EnergyExport {
			t.Fatalf("grid reading %+v, want %+v", g, wantGrid)
		}
	}
	for _, pr := range prodGot.snapshot() {
		if pr.Protocol != "modbus" || pr.PowerImportW != wantProd.PowerImportW || pr.EnergyImport.Total != wantProd.EnergyImport.Total {
			t.Fatalf("production reading %+v, want %+v", pr, wantProd)
		}
		for i := range 3 {
			if !pr.Phases[i].VoltageMV.OK {
				t.Fatalf("phase %d voltage missing", i+1)
			}
		}
	}
	g, pr := gridGot.snapshot()[0], prodGot.snapshot()[0]
	consumption := pr.PowerImportW.V + g.PowerImportW.V - g.PowerExportW.V
	if consumption != load {
		t.Errorf("production %d + import %d - export %d = %d, household load is %d",
			pr.PowerImportW.V, g.PowerImportW.V, g.PowerExportW.V, consumption, load)
	}
	if mbSrv.Answers() == 0 || smlSrv.Telegrams() == 0 {
		t.Error("servers report no traffic")
	}
}

// A Modbus meter that does not answer (wrong slave id) shows as offline
// with an error naming the slave and the port.
func TestModbusWrongSlaveReportsPortAndSlave(t *testing.T) {
	p, err := sim.LoadProfile("solar-roof")
	if err != nil {
		t.Fatal(err)
	}
	sdm, _ := sim.NewSDM(sim.New(p, 1, time.Date(2025, 6, 21, 0, 0, 0, 0, time.UTC)), "sdm120")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := sim.ServeModbusPTY(ctx, sdm, sim.ModbusServeOptions{Slave: 1})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var last meter.Status
	r, done := runReader(t, ctx, meter.ReaderConfig{
		Port: meter.PortConfig{Device: srv.Path(), Baud: 2400, ReadTimeout: 20 * time.Millisecond},
		NewDecoder: func() meter.Decoder {
			d, _ := meter.NewDecoder("modbus", meter.DecoderOptions{Modbus: meter.ModbusOptions{Slave: 9, Model: "sdm120", Timeout: 50 * time.Millisecond, Tries: 2, MaxFailures: 1, Period: 10 * time.Millisecond}})
			return d
		},
		OnStatus: func(s meter.Status) { mu.Lock(); last = s; mu.Unlock() },
	})
	waitFor(t, "an offline status with the Modbus error", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(last.LastError, "no answer")
	})
	st := r.Status()
	cancel()
	<-done
	for _, want := range []string{"modbus slave 9", srv.Path(), "2 tries"} {
		if !strings.Contains(st.LastError, want) {
			t.Errorf("status error %q lacks %q", st.LastError, want)
		}
	}
	if st.Online {
		t.Error("a silent meter shows online")
	}
}
