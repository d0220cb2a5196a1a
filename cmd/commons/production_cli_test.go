package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/node"
)

// init --production-meter writes a validated production meter into the
// config, status reports it, and a bad slave id is refused with exit 2.
func TestInitProductionMeterCLI(t *testing.T) {
	c := newCLI(t, buildCommons(t, t.TempDir()))
	home := filepath.Join(t.TempDir(), "sun")
	c.ok("--home", home, "init", "--name", "Sun", "--production-meter", "/dev/ttyUSB9", "--production-model", "sdm120", "--production-slave", "4", "--fuse", "25")
	b, err := os.ReadFile(filepath.Join(home, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg node.Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	want := node.ProductionMeterConfig{Port: "/dev/ttyUSB9", Protocol: "modbus", Slave: 4, Model: "sdm120"}
	if cfg.ProductionMeter == nil || *cfg.ProductionMeter != want || cfg.FuseA != 25 {
		t.Fatalf("config = %s", b)
	}
	var st household.Status
	c.json(&st, "--home", home, "status", "--json")
	if st.Production == nil || st.Production.Port != "/dev/ttyUSB9" || st.Production.Online || st.Production.PowerW != nil {
		t.Fatalf("status production = %+v", st.Production)
	}
	if out := c.ok("--home", home, "status"); !strings.Contains(out, "production:  modbus on /dev/ttyUSB9, offline") {
		t.Fatalf("status output:\n%s", out)
	}
	r := c.run("", "--home", filepath.Join(t.TempDir(), "bad"), "init", "--name", "X", "--production-meter", "/dev/x", "--production-slave", "999")
	if r.code != exitUsage || !strings.Contains(r.stderr, "production_meter slave 999 is out of range") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("bad slave: exit %d, stderr %q", r.code, r.stderr)
	}
}

// startSimulator runs `commons meter simulate` with args as a process and
// waits for its pty link.
func startSimulator(t *testing.T, c *cli, link string, args ...string) {
	t.Helper()
	cmd := exec.Command(c.bin, append([]string{"meter", "simulate", "--link", link}, args...)...)
	cmd.Env = c.env
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	poll(t, "the simulated meter at "+link, func() bool { _, err := os.Stat(link); return err == nil })
}

// A two-meter home as real processes: a DSMR grid meter and an SDM630
// production meter (`commons meter simulate --protocol modbus`) on two
// ptys, `commons daemon` reading both, and `commons status` through the
// daemon's socket showing production and consumption = production +
// import - export.
func TestTwoMeterDaemonCLI(t *testing.T) {
	c := newCLI(t, buildCommons(t, t.TempDir()))
	dir := t.TempDir()
	sun := []string{"--profile", "solar-roof", "--seed", "3", "--start", "2025-06-21T10:00:00Z"}
	startSimulator(t, c, filepath.Join(dir, "grid"), sun...)
	startSimulator(t, c, filepath.Join(dir, "inverter"), append(sun, "--protocol", "modbus")...)
	home := filepath.Join(dir, "home")
	c.ok("--home", home, "init", "--name", "Sun", "--meter", filepath.Join(dir, "grid"), "--protocol", "dsmr",
		"--production-meter", filepath.Join(dir, "inverter"), "--listen", "127.0.0.1:0")
	d := startDaemon(t, c, home)
	type statusJSON struct {
		Reading *struct {
			PowerImportW *int64 `json:"power_import_w"`
			PowerExportW *int64 `json:"power_export_w"`
		} `json:"reading"`
		Production *struct {
			Online       bool   `json:"online"`
			Protocol     string `json:"protocol"`
			PowerW       *int64 `json:"power_w"`
			ConsumptionW *int64 `json:"consumption_w"`
		} `json:"production"`
	}
	var st statusJSON
	poll(t, "status with production and a grid reading", func() bool {
		st = statusJSON{}
		r := c.run("", "--home", home, "status", "--json")
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil {
			return false
		}
		return st.Reading != nil && st.Production != nil && st.Production.PowerW != nil
	})
	p, g := st.Production, st.Reading
	if !p.Online || p.Protocol != "modbus" || *p.PowerW <= 0 || g.PowerImportW == nil || g.PowerExportW == nil {
		t.Fatalf("status: production %+v, reading %+v", *p, *g)
	}
	if *p.ConsumptionW != *p.PowerW+*g.PowerImportW-*g.PowerExportW || *p.ConsumptionW <= 0 {
		t.Fatalf("consumption %d W, production %d + import %d - export %d", *p.ConsumptionW, *p.PowerW, *g.PowerImportW, *g.PowerExportW)
	}
	out := c.ok("--home", home, "status")
	if !strings.Contains(out, "production:  modbus on "+filepath.Join(dir, "inverter")+", online") || !strings.Contains(out, "producing ") {
		t.Fatalf("status output:\n%s", out)
	}
	d.stop(t)
}

// The text status names today's shares with the words the dashboard's
// Overview uses, and prints every energy with its unit.
func TestPrintStatusShares(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	st := household.Status{
		Meter: household.MeterState{Port: "/dev/ttyUSB0", Protocol: "dsmr", Online: true},
		Today: household.Today{ImportWh: 1500, ExportWh: 750, ProductionWh: i64(6000), ConsumptionWh: i64(6750)},
		Production: &household.ProductionState{
			MeterState:         household.MeterState{Port: "/dev/ttyUSB1", Protocol: "modbus", Online: true},
			SelfConsumptionPct: i64(87), SelfSufficiencyPct: i64(77),
		},
	}
	var out strings.Builder
	printStatus(&out, household.Identity{Name: "Sun", ID: "abc"}, st)
	for _, want := range []string{
		"today:       imported 1.5 kWh, exported 750 Wh\n",
		"today:       produced 6 kWh, consumed 6.75 kWh\n",
		"self-consumption: 87 % of solar used at home\n",
		"self-sufficiency: 77 % of home use from own solar\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
}
