package node

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commons-energy/commons/ledger"
	"github.com/commons-energy/commons/meter"
	"github.com/commons-energy/commons/meter/sim"
	"github.com/commons-energy/commons/share"
)

// telegramFeeder writes DSMR 5 telegrams on a real pseudo-terminal, each
// with the registers and meter time the test chooses, and moves the box
// clock the node under test reads.
type telegramFeeder struct {
	t   *testing.T
	pty *sim.PTY
	box atomic.Int64 // the box clock, Unix ns
	imp int64        // import register, Wh
	exp int64        // export register, Wh
}

func (f *telegramFeeder) now() time.Time { return time.Unix(0, f.box.Load()) }

// telegram renders one telegram. stamp is the 0-0:1.0.0 value: a
// YYMMDDhhmmssX time, a placeholder, or "" for no time line at all.
// Without registers it is a warm-up telegram: power only, no energy.
func telegram(stamp string, registers bool, imp, exp int64) []byte {
	var b bytes.Buffer
	b.WriteString("/ISK5\\2M550T-1012\r\n\r\n1-3:0.2.8(50)\r\n")
	if stamp != "" {
		fmt.Fprintf(&b, "0-0:1.0.0(%s)\r\n", stamp)
	}
	b.WriteString("0-0:96.1.1(4530303435303033383139333935363139)\r\n")
	if registers {
		fmt.Fprintf(&b, "1-0:1.8.1(%06d.%03d*kWh)\r\n1-0:1.8.2(000000.000*kWh)\r\n", imp/1000, imp%1000)
		fmt.Fprintf(&b, "1-0:2.8.1(%06d.%03d*kWh)\r\n1-0:2.8.2(000000.000*kWh)\r\n", exp/1000, exp%1000)
	}
	b.WriteString("1-0:1.7.0(00.180*kW)\r\n1-0:2.7.0(00.000*kW)\r\n!")
	fmt.Fprintf(&b, "%04X\r\n", meter.CRC16ARC(b.Bytes()))
	return b.Bytes()
}

// dsmrStamp is t as a DSMR timestamp with its DST flag (t must be in
// CET or CEST).
func dsmrStamp(t time.Time) string {
	flag := "W"
	if _, off := t.Zone(); off == 2*3600 {
		flag = "S"
	}
	return t.Format("060102150405") + flag
}

// warmUp writes telegrams stamped stamp without registers until the node
// shows one, so the reader is known to have the port open before counted
// telegrams.
func (f *telegramFeeder) warmUp(n *Node, stamp string) {
	f.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := f.pty.Write(telegram(stamp, false, 0, 0)); err != nil {
			f.t.Fatal(err)
		}
		end := time.Now().Add(300 * time.Millisecond)
		for time.Now().Before(end) {
			if _, ok, _, _ := n.Latest(); ok {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		if time.Now().After(deadline) {
			f.t.Fatal("the node never read a warm-up telegram")
		}
	}
}

// send advances the box clock by step, adds imp and exp Wh to the
// registers, writes one telegram stamped by stamp(box time) and waits
// until the node has taken it.
func (f *telegramFeeder) send(n *Node, step time.Duration, imp, exp int64, stamp string) {
	f.t.Helper()
	f.box.Add(int64(step))
	f.imp += imp
	f.exp += exp
	if _, err := f.pty.Write(telegram(stamp, true, f.imp, f.exp)); err != nil {
		f.t.Fatal(err)
	}
	poll(f.t, "the node to take the telegram", 20*time.Second, func() bool {
		r, ok, _, _ := n.Latest()
		return ok && r.EnergyImport.Total == meter.Some(f.imp) && r.EnergyExport.Total == meter.Some(f.exp)
	})
}

// TestWrongMeterClockThroughPTY feeds a real pty read through tarm/serial
// into a running node and its SQLite ledger, with the meter's clock right,
// then a year ahead or behind (or absent, or never set) for a few
// telegrams, then right again; then the node restarts and reads on.
// Today's import and export by the box clock's day stay exact, every
// per-minute row survives, the status names the wrong clock while it
// lasts, and the log says so once per change.
func TestWrongMeterClockThroughPTY(t *testing.T) {
	brussels, err := time.LoadLocation("Europe/Brussels")
	if err != nil {
		t.Fatal(err)
	}
	year := func(box time.Time, years int) string { return dsmrStamp(box.AddDate(years, 0, 0).In(brussels)) }
	cases := []struct {
		name     string
		bad      func(box time.Time) string // the stamp of the wrong telegrams
		good     func(box time.Time) string // the stamp of the others
		skewS    int64                      // the clock_skew_s status shows during the wrong ones; 0: nil
		wantLogs []string
	}{
		{"a year ahead", func(b time.Time) string { return year(b, 1) }, func(b time.Time) string { return year(b, 0) },
			365 * 24 * 3600, []string{"meter_clock=\"1 year ahead\"", "agrees with this box again"}},
		{"a year behind", func(b time.Time) string { return year(b, -1) }, func(b time.Time) string { return year(b, 0) },
			-365 * 24 * 3600, []string{"meter_clock=\"1 year behind\"", "agrees with this box again"}},
		// A meter a minute ahead (within the limit) that loses its clock:
		// the box's times are behind the meter's last stamp.
		{"not set for a while", func(time.Time) string { return "000101000000W" }, func(b time.Time) string { return dsmrStamp(b.Add(time.Minute).In(brussels)) },
			0, []string{"meter sends no time", "agrees with this box again"}},
		{"no clock at all", func(time.Time) string { return "" }, func(time.Time) string { return "" },
			0, []string{"meter sends no time"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			p, err := sim.OpenPTY("")
			if err != nil {
				t.Fatalf("pty: %v", err)
			}
			defer p.Close()
			f := &telegramFeeder{t: t, pty: p, imp: 1_234_567, exp: 89_000}
			// 10:00 CEST, a summer day: the meter's flag is S.
			start := time.Date(2026, 7, 14, 10, 0, 0, 0, brussels)
			f.box.Store(start.UnixNano())

			var logBuf bytes.Buffer
			var logMu sync.Mutex
			logger := slog.New(slog.NewTextHandler(&syncWriter{w: &logBuf, mu: &logMu}, nil))
			h, _ := ResolveHome(t.TempDir())
			cfg := DefaultConfig("Alice")
			cfg.Timezone = "Europe/Brussels"
			cfg.Meter.Port, cfg.Meter.Protocol = p.Path(), "dsmr"
			if _, err := Init(ctx, h, cfg); err != nil {
				t.Fatal(err)
			}
			run := func() (*Node, func()) {
				n, err := Open(ctx, h, Options{Owner: "test", Now: f.now, Logger: logger})
				if err != nil {
					t.Fatal(err)
				}
				runCtx, stop := context.WithCancel(ctx)
				done := make(chan error, 1)
				go func() { done <- n.Run(runCtx) }()
				f.warmUp(n, tc.good(f.now()))
				return n, func() {
					stop()
					if err := <-done; err != nil {
						t.Errorf("run: %v", err)
					}
					if err := n.Close(); err != nil {
						t.Error(err)
					}
				}
			}

			n, stop := run()
			const step = 10 * time.Second
			var sent, wantImp, wantExp int64
			feed := func(k int, stamp func(time.Time) string) {
				for range k {
					box := f.now().Add(step)
					f.send(n, step, 3, 1, stamp(box))
					if sent > 0 {
						wantImp, wantExp = wantImp+3, wantExp+1
					}
					sent++
				}
			}
			feed(20, tc.good)
			st, err := n.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !st.Meter.ClockOK {
				t.Fatalf("status before the wrong clock: %+v", st.Meter)
			}
			feed(1, tc.bad)
			st, err = n.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.skewS == 0 && (st.Meter.ClockSkewS != nil || !st.Meter.ClockOK):
				t.Fatalf("status of a meter without a time: %+v", st.Meter)
			case tc.skewS != 0 && (st.Meter.ClockSkewS == nil || *st.Meter.ClockSkewS != tc.skewS || st.Meter.ClockOK):
				t.Fatalf("status with the meter clock off by %d s: skew %v, ok %v", tc.skewS, st.Meter.ClockSkewS, st.Meter.ClockOK)
			}
			if tc.skewS != 0 {
				lv, err := n.State(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if lv.Live.Meter.ClockOK || lv.Live.Meter.ClockSkewS == nil || *lv.Live.Meter.ClockSkewS != tc.skewS {
					t.Fatalf("dashboard meter health %+v", lv.Live.Meter)
				}
			}
			feed(4, tc.bad)
			feed(20, tc.good)
			checkToday := func(n *Node, when string) {
				t.Helper()
				poll(t, "today's totals "+when+" to include the last telegram", 10*time.Second, func() bool {
					st, err := n.Status(ctx)
					if err != nil {
						t.Fatal(err)
					}
					return st.Today.ImportWh == wantImp && st.Today.ExportWh == wantExp
				})
			}
			checkToday(n, "before the restart")
			stop()
			logMu.Lock()
			logs := logBuf.String()
			logBuf.Reset()
			logMu.Unlock()
			for _, want := range tc.wantLogs {
				if c := strings.Count(logs, want); c != 1 {
					t.Errorf("log has %q %d times, want once:\n%s", want, c, logs)
				}
			}

			// Restart: the stored baseline (box time) carries on.
			n, stop = run()
			feed(10, tc.good)
			checkToday(n, "after the restart")
			stop()

			rn, err := Open(ctx, h, Options{ReadOnly: true, Now: f.now})
			if err != nil {
				t.Fatal(err)
			}
			defer rn.Close()
			l := rn.Ledger()
			last := f.now()
			today, err := l.Today(ctx, last, brussels)
			if err != nil {
				t.Fatal(err)
			}
			if today.ImportWh != wantImp || today.ExportWh != wantExp {
				t.Fatalf("stored today = %+v, want import %d, export %d Wh", today, wantImp, wantExp)
			}
			var rows, readings, lo, hi int64
			if err := l.DB().QueryRow(`SELECT count(*), coalesce(sum(readings), 0), coalesce(min(start_unix), 0), coalesce(max(start_unix), 0) FROM meter_minutes`).
				Scan(&rows, &readings, &lo, &hi); err != nil {
				t.Fatal(err)
			}
			first := start.Add(step)
			if lo != first.Truncate(time.Minute).Unix() || hi != last.Truncate(time.Minute).Unix() || rows != (hi-lo)/60+1 {
				t.Fatalf("minute rows %d from %s to %s; want every minute from %s to %s", rows,
					time.Unix(lo, 0).In(brussels), time.Unix(hi, 0).In(brussels), first, last.In(brussels))
			}
			if readings != sent {
				t.Fatalf("minutes count %d readings, %d telegrams were sent: some were dropped", readings, sent)
			}
			if lt, ok, err := l.LastSample(ctx); err != nil || !ok || !lt.Equal(last) {
				t.Fatalf("stored baseline at %v (%v, %v), want the box time %v", lt, ok, err, last)
			}
			logMu.Lock()
			logs += logBuf.String()
			logMu.Unlock()
			if strings.Contains(logBuf.String(), "disagrees") {
				t.Errorf("a right clock after the restart logged as wrong:\n%s", logs)
			}
			if strings.Contains(logs, "stamped outside the box clock") || strings.Contains(logs, "meter data gap") {
				t.Errorf("samples clamped or a gap:\n%s", logs)
			}
		})
	}
}

type syncWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// TestOpenRepairsFutureMeterData: a home whose ledger an older version
// poisoned (a telegram stamped a year ahead left minute, slot and
// baseline rows there) is repaired when the household opens for writing:
// status no longer reports a last telegram a year ahead as online, and
// the future rows are gone.
func TestOpenRepairsFutureMeterData(t *testing.T) {
	ctx := context.Background()
	brussels, err := time.LoadLocation("Europe/Brussels")
	if err != nil {
		t.Fatal(err)
	}
	h, _ := ResolveHome(t.TempDir())
	cfg := DefaultConfig("Alice")
	cfg.Timezone = "Europe/Brussels"
	if _, err := Init(ctx, h, cfg); err != nil {
		t.Fatal(err)
	}
	key, err := share.LoadIdentity(h.KeyPath())
	if err != nil {
		t.Fatal(err)
	}
	var box time.Time
	now := func() time.Time { return box }
	l, err := ledger.Open(ctx, h.LedgerPath(), ledger.Options{Self: key.ID(), Manifest: cfg.Manifest(), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	// Init stamps its first message with the real clock, and the repair
	// trusts only a box clock not behind the stored messages: the box
	// clock here is an hour after the household's first message, in
	// whatever season that is.
	var initMS int64
	if err := l.DB().QueryRow(`SELECT max(received_ms) FROM messages`).Scan(&initMS); err != nil {
		t.Fatal(err)
	}
	box = time.UnixMilli(initMS).Add(time.Hour).In(brussels)
	// Poison it as the old code did: samples stamped by the meter, one of
	// them a year ahead.
	agg, err := l.NewAggregator(ledger.AggregatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i <= 12; i++ {
		at := box.Add(-2*time.Minute + time.Duration(i)*10*time.Second)
		if i == 12 {
			at = at.AddDate(1, 0, 0)
		}
		if _, err := agg.Add(ctx, ledger.Sample{Time: at, MeterID: "M1", ImportWh: meter.Some(100 + i), ExportWh: meter.Some(0)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := agg.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	l.Close()

	n, err := Open(ctx, h, Options{Owner: "test", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	st, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Meter.LastTelegram != nil && st.Meter.LastTelegram.After(box) {
		t.Fatalf("status: last telegram %s, after the box clock %s (online %v)", st.Meter.LastTelegram, box, st.Meter.Online)
	}
	var future int64
	if err := n.Ledger().DB().QueryRow(`SELECT (SELECT count(*) FROM meter_minutes WHERE start_unix > ?) + (SELECT count(*) FROM meter_slots WHERE start_unix > ?)`,
		box.Unix(), box.Unix()).Scan(&future); err != nil || future != 0 {
		t.Fatalf("%d future aggregate rows left (%v)", future, err)
	}
}
