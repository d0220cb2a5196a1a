package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/commons-energy/commons/ledger"
	"github.com/commons-energy/commons/meter/sim"
	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/node"
)

func TestSmoothed(t *testing.T) {
	tests := []struct {
		name string
		in   []household.Sample
		avg  int64
		ok   bool
	}{
		{"none", nil, 0, false},
		{"export", []household.Sample{{ExportW: 1000}, {ExportW: 2000}}, 1500, true},
		{"import", []household.Sample{{ImportW: 300}, {ImportW: 400}}, -350, true},
		{"mixed rounds toward zero", []household.Sample{{ExportW: 100}, {ImportW: 50}, {ImportW: 51}}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			avg, ok := smoothed(tt.in)
			if avg != tt.avg || ok != tt.ok {
				t.Errorf("smoothed = %d, %v; want %d, %v", avg, ok, tt.avg, tt.ok)
			}
		})
	}
}

func TestMeaningful(t *testing.T) {
	tests := []struct {
		prev, cur int64
		want      bool
	}{
		{0, 0, false},
		{0, 49, false}, // below 50 W
		{0, 50, true},  // 50 W from nothing
		{1000, 1049, false},
		{1000, 1099, false}, // 99 W < 10 % of 1000
		{1000, 1100, true},  // 10 %
		{5000, 5400, false},
		{30, -30, true},  // crosses zero by 60 W
		{20, -20, false}, // crosses zero but only 40 W
		{-2000, -2300, true},
	}
	for _, tt := range tests {
		if got := meaningful(tt.prev, tt.cur); got != tt.want {
			t.Errorf("meaningful(%d, %d) = %v, want %v", tt.prev, tt.cur, got, tt.want)
		}
	}
}

// The status privacy setting: watts rounded towards zero to the precision,
// no two statuses closer than the least gap whatever the power does, a
// heartbeat after every, nothing at all when off.
func TestStatusPolicy(t *testing.T) {
	t0 := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	def := newStatusPolicy(nil, 5*time.Minute)
	if def.precisionW != node.DefaultStatusPrecisionW || def.minGap != node.DefaultStatusMinInterval || def.off {
		t.Fatalf("defaults %+v", def)
	}
	for _, tt := range []struct {
		prec, in, want int64
	}{{100, 1234, 1200}, {100, -1234, -1200}, {100, 99, 0}, {100, -99, 0}, {1, 1234, 1234}, {250, 1000, 1000}, {250, 999, 750}} {
		if got := (statusPolicy{precisionW: tt.prec}).round(tt.in); got != tt.want {
			t.Errorf("round(%d) at %d W = %d, want %d", tt.in, tt.prec, got, tt.want)
		}
	}
	pub := statusState{published: true, at: t0, net: 1000}
	tests := []struct {
		name string
		p    statusPolicy
		prev statusState
		cur  int64
		at   time.Duration
		want bool
	}{
		{"first status at once", def, statusState{}, 0, 0, true},
		{"big change inside the gap waits", def, pub, 3000, time.Minute, false},
		{"big change after the gap", def, pub, 3000, 2 * time.Minute, true},
		{"small change after the gap waits", def, pub, 1000, 3 * time.Minute, false},
		{"heartbeat", def, pub, 1000, 5 * time.Minute, true},
		{"off: never", newStatusPolicy(&node.StatusConfig{Off: true}, 5*time.Minute), statusState{}, 3000, time.Hour, false},
		{"gap capped by a fast heartbeat", newStatusPolicy(nil, time.Second), pub, 1000, time.Second, true},
		{"configured gap", newStatusPolicy(&node.StatusConfig{MinIntervalS: 30}, 5*time.Minute), pub, 3000, 30 * time.Second, true},
	}
	for _, tt := range tests {
		if got := tt.p.due(tt.prev, tt.cur, t0.Add(tt.at)); got != tt.want {
			t.Errorf("%s: due = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestAutoAcceptMatches(t *testing.T) {
	in := household.Pledge{ID: "ab12", From: "idalice", FromName: "Alice", EnergyWh: 1500, State: "pledged"}
	tests := []struct {
		name string
		rule *AutoAccept
		p    func(household.Pledge) household.Pledge
		want bool
	}{
		{"no rule", nil, nil, false},
		{"anyone", &AutoAccept{MaxWh: 1500}, nil, true},
		{"too big", &AutoAccept{MaxWh: 1499}, nil, false},
		{"any size", &AutoAccept{}, nil, true},
		{"by name, any case", &AutoAccept{MaxWh: 2000, From: []string{"alice"}}, nil, true},
		{"by id", &AutoAccept{MaxWh: 2000, From: []string{"idalice"}}, nil, true},
		{"someone else", &AutoAccept{MaxWh: 2000, From: []string{"Bob"}}, nil, false},
		{"outgoing", &AutoAccept{MaxWh: 2000}, func(p household.Pledge) household.Pledge { p.Outgoing = true; return p }, false},
		{"answered", &AutoAccept{MaxWh: 2000}, func(p household.Pledge) household.Pledge { p.State = "accepted"; return p }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := in
			if tt.p != nil {
				p = tt.p(p)
			}
			if got := tt.rule.Matches(p); got != tt.want {
				t.Errorf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
	if err := (&AutoAccept{MaxWh: -1}).validate(); !errors.Is(err, household.ErrInvalid) {
		t.Errorf("a rule with max_wh -1 validates: %v", err)
	}
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// initHome creates a household in a new temporary home.
func initHome(t *testing.T, name, meterPort string) node.Home {
	t.Helper()
	h, err := node.ResolveHome(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	cfg := node.DefaultConfig(name)
	cfg.Listen = freeAddr(t)
	if meterPort != "" {
		cfg.Meter.Port, cfg.Meter.Protocol = meterPort, "dsmr"
	}
	if _, err := node.Init(context.Background(), h, cfg); err != nil {
		t.Fatal(err)
	}
	return h
}

// befriend makes a and b neighbours of each other.
func befriend(t *testing.T, a, b node.Home) {
	t.Helper()
	ctx := context.Background()
	for _, pair := range [][2]node.Home{{a, b}, {b, a}} {
		n, err := node.Open(ctx, pair[1], node.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		inv := n.Identity().Invite
		n.Close()
		m, err := node.Open(ctx, pair[0], node.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.AddNeighbour(ctx, inv, ""); err != nil {
			t.Fatal(err)
		}
		m.Close()
	}
}

// running is a runtime running in the background.
type running struct {
	rt   *Runtime
	stop context.CancelFunc
	done chan error
}

func start(t *testing.T, h node.Home, opts Options) *running {
	t.Helper()
	opts.Socket = true
	rt, err := Open(context.Background(), h, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{rt: rt, stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- rt.Run(ctx) }()
	t.Cleanup(func() { r.shutdown(t) })
	return r
}

// shutdown stops the runtime and requires a clean stop.
func (r *running) shutdown(t *testing.T) {
	t.Helper()
	if r.stop == nil {
		return
	}
	r.stop()
	r.stop = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30 s of cancel")
	}
	if err := r.rt.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func connect(t *testing.T, h node.Home) *Client {
	t.Helper()
	c, err := Connect(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestStreet runs two households in one process, as the demo does: Alice
// with a simulated meter on a real pseudo-terminal, Bob without a meter
// but with an auto-accept rule. They talk over real mutual TLS on
// loopback, and the test drives Alice only through her local socket.
func TestStreet(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := sim.LoadProfile("solar-roof")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sim.ServePTY(ctx, sim.New(p, 7, time.Now()), sim.ServeOptions{Speed: 60, Interval: 100 * time.Millisecond})
	if err != nil {
		t.Skipf("no pseudo-terminal on this machine: %v", err)
	}
	ha := initHome(t, "Alice", srv.Path())
	hb := initHome(t, "Bob", "")
	befriend(t, ha, hb)

	a := start(t, ha, Options{StatusEvery: time.Second, StatusCheck: 100 * time.Millisecond, MetricsListen: "127.0.0.1:0"})
	b := start(t, hb, Options{AutoAccept: &AutoAccept{MaxWh: 2000, From: []string{"alice"}}})

	// The socket is private, and the home has one owner.
	fi, err := os.Stat(ha.SocketPath())
	if err != nil || fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %s: %v, mode %v; want a socket with mode 0600", ha.SocketPath(), err, fi.Mode())
	}
	if rt, err := Open(ctx, ha, Options{Socket: true}); !errors.Is(err, ledger.ErrHomeInUse) {
		if rt != nil {
			rt.Close()
		}
		t.Fatalf("second runtime on Alice's home: %v; want ErrHomeInUse", err)
	}

	ca := connect(t, ha)
	if got, want := asJSON(t, ca.Identity()), asJSON(t, a.rt.Node().Identity()); got != want {
		t.Errorf("identity over the socket %s, in-process %s", got, want)
	}
	if cal := ca.Calendar(); cal.Slot != 15*time.Minute || cal.Location == nil {
		t.Errorf("calendar over the socket: %+v", cal)
	}

	// Live readings stream through the socket to an attached dashboard.
	tb := ca
	subCtx, stopSub := context.WithCancel(ctx)
	events := tb.Subscribe(subCtx)
	var live household.Event
	eventually(t, "a live event over the socket", func() bool {
		select {
		case ev := <-events:
			if ev.Kind == household.EventLive {
				live = ev
				return true
			}
		default:
		}
		return false
	})
	if !live.Live.HasReading || live.Live.Reading.Protocol != "dsmr" || !live.Live.Reading.EnergyImport.Total.OK || live.Sample.Time.IsZero() {
		t.Errorf("live event lost its reading on the way: %+v", live)
	}
	st, err := tb.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Home.Name != "Alice" || len(st.Neighbours) != 1 || st.Neighbours[0].Name != "Bob" || !st.Live.Meter.Online {
		t.Errorf("dashboard state over the socket: %+v", st)
	}
	samples, err := tb.Samples(ctx, time.Now().Add(-time.Hour))
	if err != nil || len(samples) == 0 {
		t.Errorf("samples over the socket: %d, %v", len(samples), err)
	}

	// Alice's smoothed status reaches Bob, signed.
	cb := connect(t, hb)
	var aliceStatus household.NeighbourStatus
	eventually(t, "Bob to hold Alice's status", func() bool {
		ns, err := cb.Neighbours(ctx)
		if err == nil && len(ns) == 1 && ns[0].Status != nil {
			aliceStatus = *ns[0].Status
			return true
		}
		return false
	})
	// at the default privacy setting the watts are in 100 W steps
	if aliceStatus.SurplusW%node.DefaultStatusPrecisionW != 0 {
		t.Errorf("Alice's status says %d W, not a multiple of %d W", aliceStatus.SurplusW, node.DefaultStatusPrecisionW)
	}

	// A new status from Alice reaches Bob's attached dashboard as a state
	// change at once (Alice re-publishes every second here).
	bctx, stopB := context.WithCancel(ctx)
	bEvents := cb.Subscribe(bctx)
	t0 := time.Now()
	eventually(t, "a state event on Bob's dashboard for a newer status of Alice", func() bool {
		select {
		case ev := <-bEvents:
			if ev.Kind != household.EventState {
				return false
			}
			ns, err := cb.Neighbours(ctx)
			return err == nil && len(ns) == 1 && ns[0].Status != nil && ns[0].Status.Time.After(t0)
		default:
			return false
		}
	})
	stopB()

	// A pledge through Alice's socket reaches Bob, whose rule accepts it,
	// and the acceptance comes back to Alice.
	startW, endW, err := node.ParseWindow("next-hour", time.Now(), ca.Calendar())
	if err != nil {
		t.Fatal(err)
	}
	res, err := ca.Pledge(ctx, household.PledgeRequest{To: "Bob", EnergyWh: 1500, Start: startW, End: endW})
	if err != nil {
		t.Fatal(err)
	}
	pl := res.Pledge
	if pl.State != "pledged" || !pl.Outgoing || pl.EnergyWh != 1500 || pl.ToName != "Bob" {
		t.Errorf("pledge over the socket: %+v", pl)
	}
	eventually(t, "Bob's automatic acceptance to reach Alice", func() bool {
		q, err := ca.FindPledge(ctx, pl.ID)
		return err == nil && q.State == "accepted" && q.AcceptedWh != nil && *q.AcceptedWh == 1500
	})
	gotState := false
	eventually(t, "a state event for the answer", func() bool {
		select {
		case ev := <-events:
			gotState = gotState || ev.Kind == household.EventState
		default:
		}
		return gotState
	})
	stopSub()
	checkMetrics(t, a.rt, ca)

	// Every read is the same over the socket as in-process.
	inproc, err := a.rt.Node().Pledges(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	remote, err := ca.Pledges(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := asJSON(t, remote), asJSON(t, inproc); g != w {
		t.Errorf("pledges over the socket\n%s\nin-process\n%s", g, w)
	}
	var bufR, bufL bytes.Buffer
	nr, err := ca.ExportMessages(ctx, &bufR, "")
	if err != nil {
		t.Fatal(err)
	}
	nl, err := a.rt.Node().ExportMessages(ctx, &bufL, "")
	if err != nil {
		t.Fatal(err)
	}
	if nr != nl || nr != 3 || bufR.String() != bufL.String() {
		t.Errorf("export-messages over the socket: %d messages, in-process %d (want 3: announce, recovery key, pledge); same text %v", nr, nl, bufR.String() == bufL.String())
	}
	rep, err := ca.Verify(ctx)
	if err != nil || !rep.OK {
		t.Errorf("verify over the socket: %+v, %v", rep, err)
	}
	sta, err := ca.Status(ctx)
	if err != nil || sta.Reading == nil || sta.Reading.MeterID == "" || !sta.Meter.Online || sta.Neighbours != 1 || sta.OpenPledges != 1 {
		t.Errorf("status over the socket: %+v, %v", sta, err)
	}
	var csv bytes.Buffer
	if err := ca.ExportLedger(ctx, &csv, "csv", ""); err != nil || !strings.Contains(csv.String(), pl.ID) {
		t.Errorf("ledger export over the socket: %v\n%s", err, csv.String())
	}

	// Errors keep their kind across the socket (the CLI's exit codes).
	errTests := []struct {
		name string
		err  error
		kind error
	}{
		{"bad id", func() error { _, err := ca.FindPledge(ctx, "zz"); return err }(), household.ErrInvalid},
		{"unknown id", func() error { _, err := ca.FindPledge(ctx, "abcdef"); return err }(), household.ErrNotFound},
		{"unknown neighbour", func() error {
			_, err := ca.Pledge(ctx, household.PledgeRequest{To: "Nobody", EnergyWh: 1, Start: startW, End: endW})
			return err
		}(), household.ErrNotFound},
		{"accept own pledge", func() error { _, err := ca.Accept(ctx, pl.ID); return err }(), household.ErrInvalid},
		{"garbage import", func() error { _, err := ca.Import(ctx, strings.NewReader("not a message block")); return err }(), household.ErrIntegrity},
		{"bad export format", ca.ExportLedger(ctx, &bytes.Buffer{}, "xml", ""), household.ErrInvalid},
	}
	for _, tt := range errTests {
		if !errors.Is(tt.err, tt.kind) || tt.err.Error() == "" {
			t.Errorf("%s: %v; want an error wrapping %v", tt.name, tt.err, tt.kind)
		}
	}

	// An idempotency key crosses the socket: a retry returns the first
	// pledge, other parameters under the same key are refused.
	keyed := household.PledgeRequest{To: "Bob", EnergyWh: 700, Start: startW, End: endW, IdempotencyKey: "socket-1"}
	k1, err := ca.Pledge(ctx, keyed)
	if err != nil {
		t.Fatal(err)
	}
	if k2, err := ca.Pledge(ctx, keyed); err != nil || k2.Pledge.ID != k1.Pledge.ID {
		t.Errorf("retry over the socket = %s, %v; want the first pledge %s", k2.Pledge.ID, err, k1.Pledge.ID)
	}
	keyed.EnergyWh = 800
	if _, err := ca.Pledge(ctx, keyed); !errors.Is(err, household.ErrInvalid) || !strings.Contains(err.Error(), k1.Pledge.ID) {
		t.Errorf("same key, other energy over the socket: %v; want ErrInvalid naming %s", err, k1.Pledge.ID)
	}
	// Force crosses it too.
	if _, err := ca.Pledge(ctx, household.PledgeRequest{To: "Bob", EnergyWh: 1_500_000, Start: startW, End: endW}); !errors.Is(err, household.ErrInvalid) {
		t.Errorf("1.5 MWh in an hour over the socket: %v; want ErrInvalid", err)
	}
	if _, err := ca.Pledge(ctx, household.PledgeRequest{To: "Bob", EnergyWh: 1_500_000, Start: startW, End: endW, Force: true}); err != nil {
		t.Errorf("1.5 MWh forced over the socket: %v", err)
	}

	// A clean stop removes the socket; then there is no daemon to talk to.
	a.shutdown(t)
	if _, err := os.Lstat(ha.SocketPath()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left behind after the stop: %v", err)
	}
	if _, err := Connect(ctx, ha); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("Connect after the stop: %v; want ErrNoDaemon", err)
	}
	b.shutdown(t)
}

// TestStaleSocket: a socket left by a crashed daemon is recognised as
// no daemon and replaced by the next one; a file of another kind in its
// place is not touched.
func TestStaleSocket(t *testing.T) {
	ctx := context.Background()
	h := initHome(t, "Carol", "")
	ln, err := net.Listen("unix", h.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // as if the process had died: the file stays, nobody answers
	if _, err := Connect(ctx, h); !errors.Is(err, ErrNoDaemon) {
		t.Fatalf("Connect to a stale socket: %v; want ErrNoDaemon", err)
	}
	r := start(t, h, Options{Listen: ListenOff})
	c := connect(t, h)
	if c.Identity().Name != "Carol" {
		t.Errorf("identity through the replaced socket: %+v", c.Identity())
	}
	r.shutdown(t)

	if err := os.WriteFile(h.SocketPath(), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if rt, err := Open(ctx, h, Options{Socket: true, Listen: ListenOff}); err == nil {
		rt.Close()
		t.Fatal("a runtime replaced a regular file at the socket path")
	} else if !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("error = %v; want it to say the file is not a socket", err)
	}
	if b, err := os.ReadFile(h.SocketPath()); err != nil || string(b) != "mine" {
		t.Errorf("the file in the way was changed: %q, %v", b, err)
	}
}

// checkMetrics scrapes the runtime's metrics listener until the values
// agree with the household; every line must be in the Prometheus text
// format.
func checkMetrics(t *testing.T, rt *Runtime, c *Client) {
	t.Helper()
	ns, err := c.Neighbours(context.Background())
	if err != nil || len(ns) != 1 {
		t.Fatalf("neighbours: %v, %v", ns, err)
	}
	count, err := rt.Node().Ledger().Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		key string
		ok  func(int64) bool
	}{
		{"commons_meter_online", func(v int64) bool { return v == 1 }},
		{"commons_meter_telegrams_total", func(v int64) bool { return v > 0 }},
		{"commons_meter_clock_skew_seconds", func(int64) bool { return true }}, // the simulator's clock is its own
		{"commons_energy_import_wh_total", func(v int64) bool { return v > 0 }},
		{"commons_status_published_timestamp_seconds", func(v int64) bool { return v > 0 }},
		{"commons_ledger_messages", func(v int64) bool { return v > 0 && v <= count }},
		{"commons_sealed_reports_unopened_total", func(v int64) bool { return v == int64(rt.Node().SealedFailures()) }},
		{"commons_peer_requests_total", func(v int64) bool { return v > 0 }},
		{`commons_neighbour_pull_failures{neighbour="` + ns[0].ID + `"}`, func(v int64) bool { return v == 0 }},
		{`commons_neighbour_last_pull_timestamp_seconds{neighbour="` + ns[0].ID + `"}`, func(v int64) bool { return v > 0 }},
	}
	var failed string
	eventually(t, "the metrics to agree with the household", func() bool {
		resp, err := http.Get("http://" + rt.MetricsAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("metrics: status %d", resp.StatusCode)
		}
		// The Prometheus text parser itself checks the exposition format.
		parser := expfmt.NewTextParser(model.LegacyValidation)
		families, err := parser.TextToMetricFamilies(resp.Body)
		if err != nil {
			t.Fatalf("metrics are not in the text format: %v", err)
		}
		values := map[string]int64{}
		for name, f := range families {
			for _, m := range f.GetMetric() {
				key := name
				for _, lp := range m.GetLabel() {
					key += `{` + lp.GetName() + `="` + lp.GetValue() + `"}`
				}
				var v float64
				switch {
				case m.GetGauge() != nil:
					v = m.GetGauge().GetValue()
				case m.GetCounter() != nil:
					v = m.GetCounter().GetValue()
				}
				values[key] = int64(v)
				if float64(values[key]) != v {
					t.Fatalf("metric %s = %v is not a whole number", key, v)
				}
			}
		}
		for _, ck := range checks {
			if v, ok := values[ck.key]; !ok || !ck.ok(v) {
				if f := fmt.Sprintf("%s = %d (present %v)", ck.key, v, ok); f != failed {
					failed = f
					t.Log("metrics not there yet: " + f)
				}
				return false
			}
		}
		return true
	})
}

// TestDeliveredWhenNeighbourReturns: a pledge to a neighbour whose box is
// down says it is not delivered and the neighbour shows as unreachable
// since the first failed pull; once the box is back, the pledge says
// delivered, over the socket as in-process, and the link is fine again.
func TestDeliveredWhenNeighbourReturns(t *testing.T) {
	ctx := context.Background()
	ha := initHome(t, "Alice", "")
	hb := initHome(t, "Bob", "")
	befriend(t, ha, hb)
	a := start(t, ha, Options{PullEvery: 500 * time.Millisecond})
	n := a.rt.Node()
	start0, end0, err := node.ParseWindow("next-hour", time.Now(), n.Calendar())
	if err != nil {
		t.Fatal(err)
	}
	res, err := n.Pledge(ctx, household.PledgeRequest{To: "bob", EnergyWh: 700, Start: start0, End: end0})
	if err != nil {
		t.Fatal(err)
	}
	if res.Pledge.Delivered {
		t.Fatal("a pledge to a box that is down says delivered")
	}
	find := func(h household.Household) household.Pledge {
		t.Helper()
		ps, err := h.Pledges(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if p.ID == res.Pledge.ID {
				return p
			}
		}
		t.Fatalf("pledge %s not listed", res.Pledge.ID)
		return household.Pledge{}
	}
	bob := func() household.Neighbour {
		t.Helper()
		ns, err := n.Neighbours(ctx)
		if err != nil || len(ns) != 1 {
			t.Fatalf("neighbours: %+v, %v", ns, err)
		}
		return ns[0]
	}
	eventually(t, "Bob to show as unreachable", func() bool { return bob().UnreachableSince != nil })
	if nb := bob(); nb.LinkError == "" || nb.Acknowledged != 0 {
		t.Errorf("unreachable Bob: link error %q, acknowledged %d", nb.LinkError, nb.Acknowledged)
	}
	ca := connect(t, ha)
	if p := find(ca); p.Delivered || p.State != household.StatePledged {
		t.Fatalf("over the socket, before Bob is back: %+v", p)
	}
	out, err := json.Marshal(find(ca))
	if err != nil || !strings.Contains(string(out), `"delivered":false`) || !strings.Contains(string(out), `"limited_by":null`) {
		t.Errorf("pledge JSON %s (%v): want delivered false and limited_by null", out, err)
	}

	start(t, hb, Options{PullEvery: 500 * time.Millisecond})
	eventually(t, "the pledge to say delivered", func() bool { return find(n).Delivered })
	if p := find(ca); !p.Delivered {
		t.Errorf("over the socket the pledge is still not delivered: %+v", p)
	}
	eventually(t, "Bob's link to be fine again", func() bool {
		nb := bob()
		return nb.UnreachableSince == nil && nb.LastContact != nil && nb.Acknowledged > 0
	})
}
