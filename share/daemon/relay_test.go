package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/commons-energy/commons/meter/sim"
	"github.com/commons-energy/commons/share"
	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/node"
	"github.com/commons-energy/commons/share/relay"
	"github.com/commons-energy/commons/share/relay/relaytest"
)

// hubClock is the households' shared clock in the relay tests: a fixed
// date, moved only by the test.
type hubClock struct {
	mu sync.Mutex
	t  time.Time
}

func newHubClock() *hubClock {
	return &hubClock{t: time.Date(2026, 3, 2, 10, 7, 0, 0, time.UTC)}
}

func (c *hubClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *hubClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// initHubHome creates a household that reaches its neighbours through the
// hub only: no peer server (listen none), relay hubURL.
func initHubHome(t *testing.T, clk *hubClock, name, hubURL string, auth *node.RelayAuthConfig) node.Home {
	t.Helper()
	h, err := node.ResolveHome(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	cfg := node.DefaultConfig(name)
	cfg.Listen = node.ListenNone
	cfg.Relay = hubURL
	cfg.RelayAuth = auth
	cfg.Timezone = "UTC"
	if _, err := node.InitWithClock(context.Background(), h, cfg, clk.Now); err != nil {
		t.Fatal(err)
	}
	return h
}

// hubStreet makes households that all know each other, reachable through
// the hub only.
func hubStreet(t *testing.T, clk *hubClock, hubURL string, names ...string) []node.Home {
	t.Helper()
	hs := make([]node.Home, len(names))
	for i, n := range names {
		hs[i] = initHubHome(t, clk, n, hubURL, nil)
	}
	for i := range hs {
		for j := i + 1; j < len(hs); j++ {
			befriend(t, hs[i], hs[j])
		}
	}
	return hs
}

// startHub starts a household on the test clock and checks it has no
// peer server.
func startHub(t *testing.T, h node.Home, clk *hubClock) *running {
	t.Helper()
	r := start(t, h, Options{Now: clk.Now})
	if r.rt.PeerAddr() != "" {
		t.Fatalf("a household with listen none listens on %s", r.rt.PeerAddr())
	}
	if r.rt.Relay() == nil {
		t.Fatal("a household with a relay has no hub link")
	}
	return r
}

// headOf is the last seq of author's chain in r's ledger.
func headOf(t *testing.T, r *running, author share.HouseholdID) uint64 {
	t.Helper()
	h, err := r.rt.Node().Ledger().Head(context.Background(), author)
	if err != nil {
		t.Fatal(err)
	}
	return h.Seq
}

// converged waits until every household holds every other's chain up to
// the author's own head.
func converged(t *testing.T, what string, rs ...*running) {
	t.Helper()
	eventually(t, what, func() bool {
		for _, a := range rs {
			id := a.rt.Node().Key().ID()
			want := headOf(t, a, id)
			for _, b := range rs {
				if headOf(t, b, id) != want {
					return false
				}
			}
		}
		return true
	})
}

func pledge(t *testing.T, r *running, clk *hubClock, to string, wh int64) household.Pledge {
	t.Helper()
	n := r.rt.Node()
	start, end, err := node.ParseWindow("next-hour", clk.Now(), n.Calendar())
	if err != nil {
		t.Fatal(err)
	}
	p, err := n.Pledge(context.Background(), household.PledgeRequest{To: to, EnergyWh: wh, Start: start, End: end})
	if err != nil {
		t.Fatal(err)
	}
	return p.Pledge
}

func pledgeState(t *testing.T, r *running, id string) string {
	t.Helper()
	ps, err := r.rt.Node().Pledges(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.ID == id {
			return string(p.State)
		}
	}
	return ""
}

// hubStream opens the community's message stream with a raw client, as
// anyone with access to the hub can.
func hubStream(t *testing.T, url string, c share.CommunityID) (jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(context.Background(), relay.StreamName(c))
	if err != nil {
		t.Fatal(err)
	}
	return js, s
}

// TestRelayStreet: three households that listen nowhere converge through
// the hub: Alice pledges to Bob, Bob accepts, Carol holds every message.
func TestRelayStreet(t *testing.T) {
	hub := relaytest.Start(t, relaytest.Options{})
	clk := newHubClock()
	hs := hubStreet(t, clk, hub.URL(), "Alice", "Bob", "Carol")
	a, b, c := startHub(t, hs[0], clk), startHub(t, hs[1], clk), startHub(t, hs[2], clk)
	ctx := context.Background()

	p := pledge(t, a, clk, "Bob", 1500)
	eventually(t, "Bob to see Alice's pledge through the hub", func() bool { return pledgeState(t, b, p.ID) == "pledged" })
	if _, err := b.rt.Node().Accept(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Alice to see Bob's acceptance through the hub", func() bool { return pledgeState(t, a, p.ID) == "accepted" })
	converged(t, "Carol to hold Alice's and Bob's messages", a, b, c)
	if headOf(t, c, a.rt.Node().Key().ID()) == 0 || headOf(t, c, b.rt.Node().Key().ID()) == 0 {
		t.Fatal("Carol holds nothing of Alice's or Bob's")
	}

	// The status shows the link, without credentials.
	for _, r := range []*running{a, b, c} {
		st, err := r.rt.Node().Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Relay == nil || !st.Relay.Running || st.Relay.URL != hub.URL() {
			t.Fatalf("%s: relay status %+v", r.rt.Node().Identity().Name, st.Relay)
		}
	}
	eventually(t, "every household connected, with a cursor", func() bool {
		for _, r := range []*running{a, b, c} {
			s := r.rt.Relay().State()
			if !s.Connected || s.Cursor == 0 || s.Refused != 0 {
				return false
			}
		}
		return true
	})
	// Over the local socket too, as `commons status --json` reads it.
	st, err := connect(t, hs[2]).Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Relay == nil || !st.Relay.Connected || st.Relay.Cursor == 0 {
		t.Errorf("relay status over the socket: %+v", st.Relay)
	}
}

// TestRelayCatchUp: a household stopped for a day of the injected clock resumes from its
// cursor: it reads only what the hub got since, and misses nothing.
func TestRelayCatchUp(t *testing.T) {
	hub := relaytest.Start(t, relaytest.Options{})
	clk := newHubClock()
	hs := hubStreet(t, clk, hub.URL(), "Alice", "Bob")
	a, b := startHub(t, hs[0], clk), startHub(t, hs[1], clk)
	pledge(t, a, clk, "Bob", 1000)
	pledge(t, a, clk, "Bob", 1100)
	converged(t, "Bob to hold Alice's first pledges", a, b)
	eventually(t, "Bob's cursor past Alice's pledges", func() bool { return b.rt.Relay().State().Cursor >= 2 })
	b.shutdown(t)
	cursor, err := relay.ReadCursor(hs[1].RelayCursorPath(), relay.StreamName(a.rt.Node().Manifest().ID()))
	if err != nil || cursor < 2 {
		t.Fatalf("Bob's saved cursor %d, %v; want at least 2", cursor, err)
	}

	// Alice goes on for a whole day while Bob is away.
	var ids []string
	for i := range 12 {
		clk.Add(2 * time.Hour)
		ids = append(ids, pledge(t, a, clk, "Bob", int64(500+i)).ID)
	}
	_, s := hubStream(t, hub.URL(), a.rt.Node().Manifest().ID())
	eventually(t, "the hub to hold Alice's new pledges", func() bool {
		info, err := s.Info(context.Background())
		return err == nil && info.State.LastSeq >= cursor+12
	})
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	b = startHub(t, hs[1], clk)
	converged(t, "restarted Bob to catch up with Alice", a, b)
	for _, id := range ids {
		if st := pledgeState(t, b, id); st != pledgeState(t, a, id) || st == "" {
			t.Errorf("Bob sees pledge %s as %q after catching up, Alice as %q", id, st, pledgeState(t, a, id))
		}
	}
	want := info.State.LastSeq - cursor
	eventually(t, "Bob's relay counters to follow his ledger", func() bool { return b.rt.Relay().State().Received >= want })
	st := b.rt.Relay().State()
	// From the cursor, Bob reads exactly what came after it; from the
	// start he would read at least cursor (>= 2) messages more.
	if st.Received != want {
		t.Errorf("restarted Bob read %d messages from the hub; %d came after his cursor", st.Received, want)
	}
	if st.Refused != 0 {
		t.Errorf("restarted Bob refused %d messages", st.Refused)
	}
}

// TestRelayHubRestart: the hub killed and started again on the same store
// loses nothing, and a message signed while it was down arrives once.
func TestRelayHubRestart(t *testing.T) {
	hub := relaytest.Start(t, relaytest.Options{})
	clk := newHubClock()
	hs := hubStreet(t, clk, hub.URL(), "Alice", "Bob")
	a, b := startHub(t, hs[0], clk), startHub(t, hs[1], clk)
	before := pledge(t, a, clk, "Bob", 1000)
	converged(t, "Bob to hold the pledge made before the restart", a, b)

	hub.Kill()
	eventually(t, "Alice to notice the hub is gone", func() bool { return !a.rt.Relay().State().Connected })
	during := pledge(t, a, clk, "Bob", 1200) // durable at Alice, the hub is away
	st, err := a.rt.Node().Status(context.Background())
	if err != nil || st.Relay == nil || st.Relay.Connected {
		t.Fatalf("Alice's status with the hub down: %+v, %v", st.Relay, err)
	}

	hub.Restart()
	eventually(t, "Alice to reconnect", func() bool { return a.rt.Relay().State().Connected })
	after := pledge(t, a, clk, "Bob", 1400)
	converged(t, "Bob to hold every pledge", a, b)
	for _, id := range []string{before.ID, during.ID, after.ID} {
		if pledgeState(t, b, id) != "pledged" {
			t.Errorf("Bob lacks pledge %s", id)
		}
	}
	// Each of Alice's messages is on the hub exactly once.
	alice := a.rt.Node().Key().ID()
	subj := relay.MsgSubject(a.rt.Node().Manifest().ID(), alice)
	_, s := hubStream(t, hub.URL(), a.rt.Node().Manifest().ID())
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(subj))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := info.State.Subjects[subj], headOf(t, a, alice); got != want {
		t.Errorf("the hub holds %d messages of Alice's; she signed %d", got, want)
	}
}

// TestRelayForged: messages injected straight into the hub's stream, one
// with a broken signature, one with altered content, one replayed, are
// refused (or skipped) by every household and counted.
func TestRelayForged(t *testing.T) {
	hub := relaytest.Start(t, relaytest.Options{})
	clk := newHubClock()
	hs := hubStreet(t, clk, hub.URL(), "Alice", "Bob", "Carol")
	rs := []*running{startHub(t, hs[0], clk), startHub(t, hs[1], clk), startHub(t, hs[2], clk)}
	a := rs[0]
	pledge(t, a, clk, "Bob", 1000)
	converged(t, "the street to converge", rs...)
	ctx := context.Background()
	alice := a.rt.Node().Key().ID()
	raws, err := a.rt.Node().Ledger().Range(ctx, alice, 1, 10)
	if err != nil || len(raws) == 0 {
		t.Fatalf("Alice's chain: %d messages, %v", len(raws), err)
	}
	orig := raws[len(raws)-1]
	rejectedBefore := make([]int64, len(rs))
	for i, r := range rs {
		rejectedBefore[i] = rejections(t, r)
	}

	forged := append([]byte(nil), orig...)
	forged[share.HeaderSize+7] ^= 0x40 // a bit of the signature
	altered := append([]byte(nil), orig...)
	altered[len(altered)-2] ^= 0x01 // a byte of the content
	js, _ := hubStream(t, hub.URL(), a.rt.Node().Manifest().ID())
	subj := relay.MsgSubject(a.rt.Node().Manifest().ID(), alice)
	for i, raw := range [][]byte{forged, altered, orig} {
		if _, err := js.Publish(ctx, subj, raw, jetstream.WithMsgID(fmt.Sprintf("injected-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	heads := make([]uint64, len(rs))
	for i, r := range rs {
		heads[i] = headOf(t, r, alice)
	}
	for i, r := range rs {
		name := r.rt.Node().Identity().Name
		eventually(t, name+" to refuse the forged and the altered message", func() bool {
			s := r.rt.Relay().State()
			return s.Refused == 2 && rejections(t, r) == rejectedBefore[i]+2
		})
		if got := headOf(t, r, alice); got != heads[i] {
			t.Errorf("%s: Alice's head moved from %d to %d", name, heads[i], got)
		}
		eventually(t, name+" to skip the replayed message as a duplicate", func() bool { return r.rt.Relay().State().Duplicates >= 1 })
		rep, err := r.rt.Node().Verify(ctx)
		if err != nil || !rep.OK {
			t.Errorf("%s: ledger verify after the injection: %+v, %v", name, rep, err)
		}
		reasons := map[string]bool{}
		rc, _ := r.rt.Node().Ledger().Rejections(ctx)
		for _, c := range rc {
			reasons[c.Reason] = true
		}
		if len(reasons) < 2 {
			t.Errorf("%s: rejection reasons %v; want the signature and the content hash", name, rc)
		}
	}
}

func rejections(t *testing.T, r *running) int64 {
	t.Helper()
	rc, err := r.rt.Node().Ledger().Rejections(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, c := range rc {
		n += c.Count
	}
	return n
}

// TestRelayWrongCredentials: a hub that refuses the household's
// credentials shows in the status; the household keeps running and never
// shows the password.
func TestRelayWrongCredentials(t *testing.T) {
	hub := relaytest.Start(t, relaytest.Options{User: "street", Password: "s3cret-pass"})
	clk := newHubClock()
	bad := strings.Replace(hub.URL(), "nats://", "nats://street:wr0ng-pass@", 1)
	ha := initHubHome(t, clk, "Alice", bad, nil)
	hb := initHubHome(t, clk, "Bob", hub.URL(), &node.RelayAuthConfig{User: "street", Password: "s3cret-pass"})
	befriend(t, ha, hb)
	a, b := startHub(t, ha, clk), startHub(t, hb, clk)

	ca := connect(t, ha)
	ctx := context.Background()
	eventually(t, "Alice's status to show the refusal", func() bool {
		st, err := ca.Status(ctx)
		return err == nil && st.Relay != nil && st.Relay.LastError != nil &&
			strings.Contains(strings.ToLower(*st.Relay.LastError), "authorization")
	})
	st, err := ca.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Relay.Connected || strings.Contains(st.Relay.URL, "wr0ng") || st.Relay.URL != hub.URL() {
		t.Errorf("relay status %+v", st.Relay)
	}
	// Alice still works: she pledges, and her runtime runs on.
	pledge(t, a, clk, "Bob", 700)
	select {
	case err := <-a.done:
		t.Fatalf("Alice's runtime stopped: %v", err)
	default:
	}
	// Bob, with the right credentials in relay_auth, is connected.
	eventually(t, "Bob to connect with relay_auth", func() bool { return b.rt.Relay().State().Connected })
	if headOf(t, b, a.rt.Node().Key().ID()) != 0 {
		t.Error("Bob got Alice's pledge through a hub that refuses her")
	}
}

// TestRelayLateNeighbour: Carol learns of Alice only after the hub
// carried Alice's messages past Carol's cursor (skipped then, as a
// stranger's: not read, not stored, not counted as refused); once Carol adds her, Carol reads Alice's subject again and
// holds her whole chain.
func TestRelayLateNeighbour(t *testing.T) {
	hub := relaytest.Start(t, relaytest.Options{})
	clk := newHubClock()
	hs := hubStreet(t, clk, hub.URL(), "Alice", "Bob")
	hc := initHubHome(t, clk, "Carol", hub.URL(), nil)
	befriend(t, hs[1], hc)
	a, b, c := startHub(t, hs[0], clk), startHub(t, hs[1], clk), startHub(t, hc, clk)
	pledge(t, a, clk, "Bob", 900)
	converged(t, "Bob to hold Alice's pledge", a, b)
	alice := a.rt.Node().Key().ID()
	eventually(t, "Carol to skip Alice's messages as a stranger's", func() bool {
		s := c.rt.Relay().State()
		return s.Skipped > 0 && s.Cursor >= headOf(t, a, alice)
	})
	if headOf(t, c, alice) != 0 {
		t.Fatal("Carol stored a stranger's messages")
	}
	if s := c.rt.Relay().State(); s.Refused != 0 {
		t.Errorf("Carol refused %d messages; a stranger's messages on the hub are skipped, not refused", s.Refused)
	}
	if _, err := c.rt.Node().AddNeighbour(context.Background(), a.rt.Node().Identity().Invite, ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Carol to read Alice's chain again once she is a neighbour", func() bool {
		return headOf(t, c, alice) == headOf(t, a, alice)
	})
}

// TestRelayLeafNode: Carol's box is behind NAT and runs a nats-server as
// a leaf node of the hub; she reaches the hub's JetStream through it
// (relay_domain) and exchanges a pledge with Alice, who talks to the hub
// itself.
func TestRelayLeafNode(t *testing.T) {
	hub := relaytest.Start(t, relaytest.Options{Domain: "hub"})
	leaf := relaytest.Start(t, relaytest.Options{LeafOf: hub})
	clk := newHubClock()
	ha := initHubHome(t, clk, "Alice", hub.URL(), nil)
	hc := initHubHome(t, clk, "Carol", leaf.URL(), nil)
	for _, h := range []node.Home{ha, hc} {
		cfg, err := node.LoadConfig(h)
		if err != nil {
			t.Fatal(err)
		}
		cfg.RelayDomain = "hub"
		if err := node.SaveConfig(h, cfg); err != nil {
			t.Fatal(err)
		}
	}
	befriend(t, ha, hc)
	a, c := startHub(t, ha, clk), startHub(t, hc, clk)
	p := pledge(t, a, clk, "Carol", 800)
	eventually(t, "Carol behind the leaf node to see Alice's pledge", func() bool { return pledgeState(t, c, p.ID) == "pledged" })
	if _, err := c.rt.Node().Accept(context.Background(), p.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Alice to see Carol's acceptance", func() bool { return pledgeState(t, a, p.ID) == "accepted" })
	converged(t, "Alice and Carol to converge", a, c)
}

// TestRelayStatus: Alice's signed status (from her simulated meter)
// reaches Bob through the hub's status stream, and a household started
// later gets the latest one kept there. Real clock: the meter runs on it.
func TestRelayStatus(t *testing.T) {
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
	hub := relaytest.Start(t, relaytest.Options{})
	clk := &hubClock{t: time.Now()} // only for init: the households run on the real clock
	hs := hubStreet(t, clk, hub.URL(), "Alice", "Bob", "Carol")
	cfg, err := node.LoadConfig(hs[0])
	if err != nil {
		t.Fatal(err)
	}
	cfg.Meter.Port, cfg.Meter.Protocol = srv.Path(), "dsmr"
	if err := node.SaveConfig(hs[0], cfg); err != nil {
		t.Fatal(err)
	}
	start(t, hs[0], Options{StatusEvery: time.Second, StatusCheck: 100 * time.Millisecond})
	b := start(t, hs[1], Options{})
	hasStatus := func(r *running) bool {
		ns, err := r.rt.Node().Neighbours(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range ns {
			if n.Name == "Alice" && n.Status != nil {
				return true
			}
		}
		return false
	}
	eventually(t, "Bob to hold Alice's status from the hub", func() bool { return hasStatus(b) })
	c := start(t, hs[2], Options{})
	eventually(t, "Carol, started later, to get Alice's latest status", func() bool { return hasStatus(c) })
}
