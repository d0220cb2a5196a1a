package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/commons-energy/commons/ledger"
	"github.com/commons-energy/commons/share"
)

// readPathsNow is the households' clock in the read-path tests.
var readPathsNow = time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)

// source is the randomness of the message generator: fuzz input bytes
// (then the run ends when they are used up) or a seeded generator.
type source struct {
	data []byte
	rnd  *rand.Rand
}

func (s *source) exhausted() bool { return s.rnd == nil && len(s.data) == 0 }

func (s *source) u64() uint64 {
	if s.rnd != nil {
		return s.rnd.Uint64()
	}
	var b [8]byte
	n := copy(b[:], s.data)
	s.data = s.data[n:]
	return binary.LittleEndian.Uint64(b[:])
}

// intn returns a number in [0, n).
func (s *source) intn(n int) int { return int(s.u64() % uint64(n)) }

// in returns a number in [lo, hi].
func (s *source) in(lo, hi int64) int64 {
	if hi <= lo {
		return lo
	}
	return lo + int64(s.u64()%uint64(hi-lo+1))
}

// pick returns one of vs, or (one time in len(vs)+1) a number in [lo, hi]:
// boundary values and random ones in range.
func (s *source) pick(lo, hi int64, vs ...int64) int64 {
	if i := s.intn(len(vs) + 1); i < len(vs) {
		return min(max(vs[i], lo), hi)
	}
	return s.in(lo, hi)
}

// feed is one signing household's chain as the generator knows it.
type feed struct {
	key     *share.Identity
	head    share.Head
	ids     []share.ID // ids[seq-1]
	created int64      // created_ms of the head
	frozen  bool       // a fork of it was stored: only ephemeral messages now
}

// msgGen signs random messages that the protocol admits: every kind (also
// unknown chained and ephemeral kinds and forks), in-range and boundary
// content values, properly signed and chained.
type msgGen struct {
	src     *source
	man     share.Manifest
	feeds   []*feed
	pledges []*share.Message
	nowMs   int64
	// legacy: the message being made is one an older version stored,
	// before the end of protocol time: slots up to 2^53−1.
	legacy bool
}

// maxSlot is the last slot boundary the message being made may name.
func (g *msgGen) maxSlot() int64 {
	if g.legacy {
		return share.MaxSafeInt
	}
	return g.man.MaxSlot()
}

func (g *msgGen) slot() int64 {
	now := g.man.SlotOf(readPathsNow)
	max := g.maxSlot()
	return g.src.pick(0, max, 0, 1, now-4, now, now+4, max-96, max-1, max)
}

func (g *msgGen) wh(lo int64) int64 {
	return g.src.pick(lo, share.MaxEnergyWh, lo, 1, 1500, share.MaxEnergyWh-1, share.MaxEnergyWh)
}

func (g *msgGen) whs(n int) []int64 {
	v := make([]int64, n)
	for i := range v {
		v[i] = g.wh(0)
	}
	return v
}

// window returns a slot range of 1..96 slots ending at or before MaxSlot.
func (g *msgGen) window() (from, to int64) {
	n := g.src.pick(1, share.MaxWindowSlots, 1, 4, share.MaxWindowSlots)
	from = min(g.slot(), g.maxSlot()-n)
	return from, from + n
}

func (g *msgGen) pledgeRef() share.ID {
	if len(g.pledges) == 0 || g.src.intn(8) == 0 {
		var id share.ID
		binary.LittleEndian.PutUint64(id[:], g.src.u64())
		return id
	}
	return g.pledges[g.src.intn(len(g.pledges))].ID()
}

func (g *msgGen) text() string {
	return []string{"", "no", "Zoë ☀ <&>", strings.Repeat("x", share.MaxReasonBytes)}[g.src.intn(4)]
}

// content returns random valid content of a kind chosen at random, by
// author f.
func (g *msgGen) content(f *feed) share.Content {
	if f.frozen {
		return g.status()
	}
	switch g.src.intn(11) {
	case 0:
		a := &share.Announce{Name: []string{"Bob", "Zoë ☀", strings.Repeat("n", share.MaxNameBytes)}[g.src.intn(3)]}
		if g.src.intn(2) == 0 {
			a.Addrs = []string{"192.0.2.10:7420", strings.Repeat("a", share.MaxAddrBytes)}
		}
		return a
	case 1, 2:
		var to share.HouseholdID
		for to = f.key.ID(); to == f.key.ID(); {
			to = g.feeds[g.src.intn(len(g.feeds))].key.ID()
		}
		from, end := g.window()
		return &share.Pledge{To: to, FromSlot: from, ToSlot: end, EnergyWh: g.wh(1),
			ExpirySlot: g.src.pick(0, from, 0, from, g.man.SlotOf(readPathsNow)), Nonce: uint32(g.src.u64())}
	case 3:
		return &share.Accept{Pledge: g.pledgeRef(), EnergyWh: g.wh(1)}
	case 4:
		return &share.Decline{Pledge: g.pledgeRef(), Reason: g.text()}
	case 5:
		return &share.Cancel{Pledge: g.pledgeRef(), Reason: g.text()}
	case 6:
		from, end := g.window()
		n := int(end - from)
		return &share.Report{FromSlot: from, ExportWh: g.whs(n), ImportWh: g.whs(n)}
	case 7:
		ref := g.pledgeRef()
		from, end := g.window()
		for _, p := range g.pledges {
			if p.ID() == ref && g.src.intn(4) != 0 {
				c, _ := p.Decode()
				if pc := c.(*share.Pledge); pc.ToSlot <= g.maxSlot() {
					from, end = pc.FromSlot, pc.ToSlot
				}
			}
		}
		n := int(end - from)
		s := &share.Settle{Pledge: ref, FromSlot: from, ToSlot: end, ExportWh: g.whs(n), ImportWh: g.whs(n),
			AllocatedWh: make([]int64, n), Key: []string{"pro-rata", "x", "fixed-shares-2"}[g.src.intn(3)]}
		for i := range s.AllocatedWh {
			s.AllocatedWh[i] = g.src.in(0, min(s.ExportWh[i], s.ImportWh[i]))
			s.TotalWh += s.AllocatedWh[i]
		}
		return s
	case 8:
		return g.status()
	case 9: // an unknown chained kind
		k := share.Kind(g.src.pick(2, 0x7fff, 2, 9, 14, 21, 31, 0x7fff))
		for k.Known() {
			k++
		}
		return &share.Unknown{K: k, Raw: []byte(g.text())}
	default: // an unknown ephemeral kind
		k := share.Kind(g.src.pick(0x8002, 0xffff, 0x8002, 0x8003, 0xffff))
		return &share.Unknown{K: k, Raw: []byte(`{"v":` + g.text() + `}`)}
	}
}

func (g *msgGen) status() *share.Status {
	w := func() int64 { return g.src.pick(0, share.MaxPowerW, 0, 1, share.MaxPowerW) }
	st := &share.Status{SurplusW: w(), NeedW: w(), AvgSurplusW: w(), AvgNeedW: w()}
	if g.src.intn(2) == 0 {
		n := g.src.pick(1, share.MaxWindowSlots, 1, share.MaxWindowSlots)
		st.ForecastFrom = g.src.pick(1, g.maxSlot()-n, 1, g.man.SlotOf(readPathsNow), g.maxSlot()-n)
		st.ForecastWh = make([]int64, n)
		for i := range st.ForecastWh {
			st.ForecastWh[i] = g.src.pick(-share.MaxEnergyWh, share.MaxEnergyWh, -share.MaxEnergyWh, -1, 0, share.MaxEnergyWh)
		}
	}
	return st
}

// next signs the next message: usually the author's next chain message or
// an ephemeral one, sometimes a second message at a stored seq (a fork).
func (g *msgGen) next(t testing.TB) (m *share.Message, f *feed, fork bool) {
	f = g.feeds[g.src.intn(len(g.feeds))]
	g.legacy = g.src.intn(8) == 0
	c := g.content(f)
	head := f.head
	fork = !c.Kind().Ephemeral() && f.head.Seq > 0 && g.src.intn(48) == 0
	if fork {
		seq := uint64(g.src.in(1, int64(f.head.Seq)))
		head = share.Head{Seq: seq - 1}
		if seq > 1 {
			head.ID = f.ids[seq-2]
		}
	}
	var created int64
	if c.Kind().Ephemeral() {
		// Ephemeral messages are outside the chain: any clock up to the
		// receiver's now + 10 minutes.
		created = g.src.pick(math.MinInt64, g.nowMs+int64(share.MaxClockSkew/time.Millisecond), math.MinInt64, -1, 0, g.nowMs, g.nowMs+int64(share.MaxClockSkew/time.Millisecond))
	} else {
		// Chained ones never go back in time.
		created = g.src.pick(f.created, g.nowMs, f.created, g.nowMs)
	}
	m, err := f.key.Compose(g.man.ID(), head, time.UnixMilli(created), c)
	if err != nil {
		t.Fatalf("the generator made invalid %s content: %v", c.Kind(), err)
	}
	if !m.Ephemeral() && !fork {
		f.head, f.created = share.HeadOf(m), m.CreatedMs
		f.ids = append(f.ids, m.ID())
	}
	if m.Kind == share.KindPledge {
		g.pledges = append(g.pledges, m)
	}
	return m, f, fork
}

// storeAsOlderVersion puts m into the ledger file as a version before the
// end of protocol time stored it: the same rows Append writes, without
// today's checks.
func storeAsOlderVersion(t *testing.T, db *sql.DB, m *share.Message) {
	t.Helper()
	var err error
	if m.Ephemeral() {
		_, err = db.Exec(`INSERT INTO statuses (author, id, created_ms, received_ms, content, raw) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (author) DO UPDATE SET id = excluded.id, created_ms = excluded.created_ms, content = excluded.content, raw = excluded.raw`,
			m.Author.String(), m.ID().String(), m.CreatedMs, m.CreatedMs, string(m.Content), m.Bytes())
	} else {
		prev := ""
		if !m.Prev.IsZero() {
			prev = m.Prev.String()
		}
		_, err = db.Exec(`INSERT INTO messages (id, author, seq, prev, kind, kind_name, created_ms, received_ms, content, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			m.ID().String(), m.Author.String(), int64(m.Seq), prev, int64(m.Kind), m.Kind.String(), m.CreatedMs, m.CreatedMs, string(m.Content), m.Bytes())
	}
	if err != nil {
		t.Fatalf("store %s as an older version: %v", m.Kind, err)
	}
}

// checkReadPaths appends the generator's messages to a fresh household's
// real ledger, then runs every read path: none may fail or panic.
func checkReadPaths(t *testing.T, src *source, count int) {
	ctx := context.Background()
	clk := &clock{t: readPathsNow}
	n := newHome(t, "Alice", clk)
	g := &msgGen{src: src, man: n.Manifest(), nowMs: readPathsNow.UnixMilli()}
	// This household's own chain already holds what Init signed.
	self := &feed{key: n.Key()}
	raws, err := n.Ledger().Range(ctx, n.Key().ID(), 1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range raws {
		m, err := share.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		self.head, self.created = share.HeadOf(m), m.CreatedMs
		self.ids = append(self.ids, m.ID())
	}
	g.feeds = append(g.feeds, self)
	if self.created > g.nowMs {
		// Init signs with the real clock: keep the households' clock
		// after it, whatever the date.
		g.nowMs = self.created
		clk.Set(time.UnixMilli(g.nowMs))
	}
	for _, name := range []string{"bob", "carol"} {
		seed := sha256.Sum256([]byte("commons read paths " + name))
		k, err := share.IdentityFromSeed(seed[:])
		if err != nil {
			t.Fatal(err)
		}
		inv, err := k.Invite(name, nil, n.Manifest())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.AddNeighbour(ctx, inv, ""); err != nil {
			t.Fatal(err)
		}
		g.feeds = append(g.feeds, &feed{key: k})
	}
	db, err := sql.Open("sqlite", n.home.LedgerPath())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := 0; i < count && !src.exhausted(); i++ {
		m, f, fork := g.next(t)
		if g.legacy && !fork && (m.Kind == share.KindStatus || !m.Ephemeral()) {
			// Slots past the end of protocol time are refused now, so
			// this one is written as an older version stored it.
			if err := n.Manifest().CheckSlots(m); err != nil {
				storeAsOlderVersion(t, db, m)
				continue
			}
		}
		res, err := n.Ledger().AppendMessages(ctx, m)
		if err != nil {
			t.Fatalf("append: %v", err)
		}
		switch r := res[0]; ledger.Reason(r.Err) {
		case "", "ephemeral_limit":
		case "fork":
			f.frozen = true
		default:
			t.Fatalf("valid %s message (seq %d) rejected: %v", m.Kind, m.Seq, r.Err)
		}
	}

	marshal := func(what string, v any) []byte {
		t.Helper()
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf) // as the CLI's printJSON
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			t.Fatalf("%s --json: %v", what, err)
		}
		return buf.Bytes()
	}
	for _, open := range []bool{false, true} {
		ps, err := n.Pledges(ctx, open)
		if err != nil {
			t.Fatalf("pledges (open %v): %v", open, err)
		}
		marshal("pledges", ps)
		for _, p := range ps {
			q, err := n.FindPledge(ctx, p.ID)
			if err != nil {
				t.Fatalf("find pledge %s: %v", p.ID, err)
			}
			marshal("pledge", q)
		}
	}
	st, err := n.Status(ctx)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	marshal("status", st)
	ns, err := n.Neighbours(ctx)
	if err != nil {
		t.Fatalf("neighbours: %v", err)
	}
	marshal("neighbours list", ns)
	rep, err := n.Verify(ctx)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	marshal("ledger verify", rep)
	for _, p := range rep.Problems {
		if !strings.HasPrefix(p.Reason, "frozen: fork at seq ") {
			t.Fatalf("verify found a problem in valid messages: %+v", p)
		}
	}
	for _, ex := range []struct{ format, table string }{
		{"csv", ledger.TableMessages}, {"csv", ledger.TablePledges}, {"csv", ledger.TableSettlements}, {"jsonl", ledger.TableAll},
	} {
		var buf bytes.Buffer
		if err := n.ExportLedger(ctx, &buf, ex.format, ex.table); err != nil {
			t.Fatalf("export %s %s: %v", ex.format, ex.table, err)
		}
		if ex.format == "jsonl" {
			for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
				if len(line) > 0 && !json.Valid(line) {
					t.Fatalf("export jsonl: not JSON: %s", line)
				}
			}
		}
	}
	if _, err := n.Ledger().Rejections(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Ledger().Settlements(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Ledger().Ephemerals(ctx); err != nil {
		t.Fatal(err)
	}
	// The dashboard's data path.
	b := n
	state, err := b.State(ctx)
	if err != nil {
		t.Fatalf("dashboard state: %v", err)
	}
	for _, nb := range state.Neighbours {
		if nb.Frozen && nb.Problem == "" {
			t.Fatalf("forked neighbour %s without a problem text", nb.Name)
		}
	}
	if _, err := b.Aggregates(ctx, readPathsNow.Add(-48*time.Hour), readPathsNow); err != nil {
		t.Fatalf("dashboard aggregates: %v", err)
	}
}

// TestReadPathsSeeded is FuzzReadPaths's deterministic variant for the
// normal test run: a few seeds, many messages each.
func TestReadPathsSeeded(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 4} {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			checkReadPaths(t, &source{rnd: rand.New(rand.NewPCG(seed, 0x636f6d6d6f6e73))}, 250)
		})
	}
}

// FuzzReadPaths appends valid messages generated from the fuzz input to a
// real ledger and runs every read path.
func FuzzReadPaths(f *testing.F) {
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{1}, 64))
	f.Add(bytes.Repeat([]byte{0xff}, 256))
	r := rand.New(rand.NewPCG(7, 7))
	seed := make([]byte, 0, 2048)
	for len(seed) < cap(seed) {
		seed = binary.LittleEndian.AppendUint64(seed, r.Uint64())
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<14 {
			return
		}
		checkReadPaths(t, &source{data: data}, 200)
	})
}
