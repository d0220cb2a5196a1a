package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A meter whose clock is a year ahead of the box, as real processes: the
// simulator on a pty started a year after this machine's clock, `commons
// daemon` reading it, and `commons status` through the socket. Status
// names the wrong clock: meter.clock_ok false, meter.clock_skew_s about a
// year, and a line of text. The data is stored at the box's time.
func TestMeterClockAheadCLI(t *testing.T) {
	c := newCLI(t, buildCommons(t, t.TempDir()))
	dir := t.TempDir()
	// The daemon runs on this machine's clock, so the meter's is set
	// relative to it: the test means "a year ahead", on any date.
	ahead := time.Now().AddDate(1, 0, 0)
	startSimulator(t, c, filepath.Join(dir, "grid"), "--profile", "home", "--seed", "5", "--start", ahead.UTC().Format(time.RFC3339))
	home := filepath.Join(dir, "home")
	c.ok("--home", home, "init", "--name", "Clock", "--meter", filepath.Join(dir, "grid"), "--protocol", "dsmr", "--listen", "127.0.0.1:0")
	d := startDaemon(t, c, home)
	type statusJSON struct {
		Reading *struct {
			Time *time.Time `json:"time"`
		} `json:"reading"`
		Meter struct {
			Online     bool   `json:"online"`
			ClockSkewS *int64 `json:"clock_skew_s"`
			ClockOK    *bool  `json:"clock_ok"`
		} `json:"meter"`
	}
	var st statusJSON
	var last string
	defer func() {
		if t.Failed() {
			t.Logf("last status: %s", last)
		}
	}()
	poll(t, "status with energy today and the meter's clock", func() bool {
		st = statusJSON{}
		r := c.run("", "--home", home, "status", "--json")
		last = r.stdout + r.stderr
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil {
			return false
		}
		return st.Reading != nil && st.Meter.ClockSkewS != nil
	})
	year := int64(ahead.Sub(ahead.AddDate(-1, 0, 0)) / time.Second)
	if skew := *st.Meter.ClockSkewS; skew < year-600 || skew > year+600 {
		t.Fatalf("clock_skew_s %d, want about %d (a year)", skew, year)
	}
	if st.Meter.ClockOK == nil || *st.Meter.ClockOK || !st.Meter.Online {
		t.Fatalf("meter %+v: want online with clock_ok false", st.Meter)
	}
	if st.Reading.Time == nil || st.Reading.Time.Before(ahead.Add(-time.Hour)) {
		t.Fatalf("the reading's time %v should still be the meter's own (%s)", st.Reading.Time, ahead)
	}
	out := c.ok("--home", home, "status")
	if !strings.Contains(out, "meter clock: 1 year ahead of this box") {
		t.Fatalf("status output:\n%s", out)
	}
	d.stop(t)
	if logs := d.logs.String(); strings.Count(logs, "meter clock disagrees") != 1 {
		t.Fatalf("want the wrong clock logged once:\n%s", logs)
	}
	// With the daemon stopped, status reads the ledger: the meter data is
	// stored at the box's time, not a year ahead.
	var stopped struct {
		Meter struct {
			LastTelegram *time.Time `json:"last_telegram"`
		} `json:"meter"`
	}
	if err := json.Unmarshal([]byte(c.ok("--home", home, "status", "--json")), &stopped); err != nil {
		t.Fatal(err)
	}
	if lt := stopped.Meter.LastTelegram; lt == nil || lt.After(time.Now().Add(time.Hour)) {
		t.Fatalf("stored meter data up to %v: filed by the meter's clock, a year ahead", lt)
	}
}
