package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	var st node.Status
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
