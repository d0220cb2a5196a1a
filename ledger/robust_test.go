package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/commons-energy/commons/share"
)

// TestAppendRejectsSlotsPastEndOfTime: a pledge, report, settle or status
// forecast whose slots lie after 2200-01-01 is rejected as bad_content,
// counted, and not stored; one ending exactly there is stored.
func TestAppendRejectsSlotsPastEndOfTime(t *testing.T) {
	max := testManifest.MaxSlot()
	self := newHousehold(t, 1)
	bob := newHousehold(t, 2)
	pid := share.ID{7}
	zeros := func(n int) []int64 { return make([]int64, n) }
	tests := []struct {
		name   string
		c      share.Content
		stored bool
	}{
		{"pledge at 2^40", &share.Pledge{To: self.ID(), FromSlot: 1 << 40, ToSlot: 1<<40 + 4, EnergyWh: 1000, ExpirySlot: 1 << 40}, false},
		{"pledge at 2^53-2", &share.Pledge{To: self.ID(), FromSlot: share.MaxSafeInt - 1, ToSlot: share.MaxSafeInt, EnergyWh: 1}, false},
		{"pledge one past the end", &share.Pledge{To: self.ID(), FromSlot: max - 3, ToSlot: max + 1, EnergyWh: 1}, false},
		{"pledge ending at the end", &share.Pledge{To: self.ID(), FromSlot: max - 4, ToSlot: max, EnergyWh: 1}, true},
		{"report past the end", &share.Report{FromSlot: max, ExportWh: zeros(1), ImportWh: zeros(1)}, false},
		{"report ending at the end", &share.Report{FromSlot: max - 1, ExportWh: zeros(1), ImportWh: zeros(1)}, true},
		{"settle past the end", &share.Settle{Pledge: pid, FromSlot: max, ToSlot: max + 1, AllocatedWh: zeros(1), ExportWh: zeros(1), ImportWh: zeros(1), Key: "pro-rata"}, false},
		{"forecast past the end", &share.Status{ForecastFrom: 1 << 40, ForecastWh: []int64{1}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := openTest(t, self.ID())
			addNeighbour(t, l, bob, "bob")
			bob.head = share.Head{}
			res := mustAppend(t, l, bob.next(t, tt.c))
			if tt.stored {
				if res[0].Outcome != Stored {
					t.Fatalf("outcome %s (%v), want stored", res[0].Outcome, res[0].Err)
				}
				return
			}
			if res[0].Outcome != Rejected || Reason(res[0].Err) != "bad_content" {
				t.Fatalf("outcome %s, reason %q (%v), want rejected bad_content", res[0].Outcome, Reason(res[0].Err), res[0].Err)
			}
			if n := count(t, l, "SELECT count(*) FROM messages") + count(t, l, "SELECT count(*) FROM statuses"); n != 0 {
				t.Fatalf("%d rows stored", n)
			}
			if n := count(t, l, "SELECT count FROM rejections WHERE reason = 'bad_content'"); n != 1 {
				t.Fatalf("bad_content counted %d times", n)
			}
		})
	}
}

// TestUnknownEphemeralKindsKept: an ephemeral message of a kind this
// version does not interpret is kept, the latest per author and kind, up
// to MaxEphemeralKinds kinds per author, and verified by Verify.
func TestUnknownEphemeralKindsKept(t *testing.T) {
	ctx := context.Background()
	self := newHousehold(t, 1)
	bob := newHousehold(t, 2)
	l, _ := openTest(t, self.ID())
	addNeighbour(t, l, bob, "bob")
	unknown := func(k share.Kind, body string) *share.Message {
		return bob.next(t, &share.Unknown{K: k, Raw: []byte(body)})
	}
	const k1 = share.Kind(0x9000)
	old, newer := unknown(k1, `{"v":1}`), unknown(k1, `{"v":2}`)
	tests := []struct {
		name string
		m    *share.Message
		want Outcome
	}{
		{"first of a kind", newer, Latest},
		{"older of that kind", old, Older},
		{"the same again", newer, Duplicate},
		{"a status beside it", bob.next(t, &share.Status{SurplusW: 5}), Latest},
	}
	for _, tt := range tests {
		res := mustAppend(t, l, tt.m)
		if res[0].Outcome != tt.want {
			t.Fatalf("%s: outcome %s (%v), want %s", tt.name, res[0].Outcome, res[0].Err, tt.want)
		}
	}
	// More kinds up to the limit are kept; one more is refused, counted
	// and not stored.
	for k := share.Kind(0x9001); k < 0x9000+MaxEphemeralKinds; k++ {
		if res := mustAppend(t, l, unknown(k, "x")); res[0].Outcome != Latest {
			t.Fatalf("kind %d: %s %v", k, res[0].Outcome, res[0].Err)
		}
	}
	res := mustAppend(t, l, unknown(0x9000+MaxEphemeralKinds, "x"))
	if res[0].Outcome != Rejected || Reason(res[0].Err) != "ephemeral_limit" {
		t.Fatalf("kind past the limit: %s %v", res[0].Outcome, res[0].Err)
	}
	raws, err := l.Ephemerals(ctx)
	if err != nil || len(raws) != MaxEphemeralKinds || !bytes.Equal(raws[0], newer.Bytes()) {
		t.Fatalf("Ephemerals = %d messages, %v", len(raws), err)
	}
	if n, _ := l.Count(ctx); n != 0 {
		t.Fatalf("ephemeral messages went into the chain: %d", n)
	}
	rep, err := l.Verify(ctx)
	if err != nil || !rep.OK || rep.Ephemerals != MaxEphemeralKinds || rep.Statuses != 1 {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
}

// TestForkCountedFrozenShownAndVerifyFails: a fork proof is counted as a
// "fork" rejection, the neighbour list shows the frozen feed and where it
// forked, and Verify reports "frozen: fork at seq N" and is not OK.
func TestForkCountedFrozenShownAndVerifyFails(t *testing.T) {
	ctx := context.Background()
	self := newHousehold(t, 1)
	bob := newHousehold(t, 2)
	carol := newHousehold(t, 3)
	l, _ := openTest(t, self.ID())
	addNeighbour(t, l, bob, "bob")
	addNeighbour(t, l, carol, "carol")
	b1 := bob.next(t, announce("bob"))
	b2 := bob.next(t, announce("bob 2"))
	mustAppend(t, l, b1, b2, carol.next(t, announce("carol")))
	if rep, err := l.Verify(ctx); err != nil || !rep.OK {
		t.Fatalf("verify before the fork: %+v, %v", rep, err)
	}
	evil := bob.signAfter(t, share.HeadOf(b1), announce("bob 2 again"))
	if res := mustAppend(t, l, evil); res[0].Outcome != Forked {
		t.Fatalf("fork: %s %v", res[0].Outcome, res[0].Err)
	}
	rej, err := l.Rejections(ctx)
	if err != nil || len(rej) != 1 || rej[0].Reason != "fork" || rej[0].Count != 1 {
		t.Fatalf("rejections = %+v, %v", rej, err)
	}
	ns, err := l.Neighbours(ctx)
	if err != nil || len(ns) != 2 {
		t.Fatalf("neighbours = %+v, %v", ns, err)
	}
	for _, n := range ns {
		wantSeq := map[string]uint64{"bob": 2, "carol": 0}[n.Name]
		if n.ForkSeq != wantSeq || n.Frozen() != (wantSeq > 0) {
			t.Errorf("%s: ForkSeq %d, Frozen %v; want %d", n.Name, n.ForkSeq, n.Frozen(), wantSeq)
		}
	}
	rep, err := l.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || len(rep.Problems) != 1 || rep.Forks != 1 {
		t.Fatalf("verify after the fork: %+v", rep)
	}
	p := rep.Problems[0]
	if p.Author != bob.ID().String() || p.Seq != 2 || !strings.Contains(p.Reason, "frozen: fork at seq 2") || !strings.Contains(p.Reason, "bob") {
		t.Fatalf("problem = %+v", p)
	}
}

// storeAsOlderVersion inserts m into the chain table the way Append does,
// without Append's checks: a message an older version accepted before a
// rule existed.
func storeAsOlderVersion(t *testing.T, l *Ledger, m *share.Message) {
	t.Helper()
	_, err := l.db.Exec(`INSERT INTO messages (id, author, seq, prev, kind, kind_name, created_ms, received_ms, content, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.ID().String(), m.Author.String(), int64(m.Seq), prevText(m), int64(m.Kind), m.Kind.String(), m.CreatedMs, m.CreatedMs, string(m.Content), m.Bytes())
	if err != nil {
		t.Fatal(err)
	}
}

// TestReadsSurviveFarSlotsAndClocks: pledges stored by an older version
// with slots past the end of protocol time (up to 2^53−1), and messages
// whose signed clock is far in the past, fold, export (csv and jsonl, with
// unrepresentable instants empty or null and the raw slots kept) and
// verify without error; so does a status signed with a far-past clock.
func TestReadsSurviveFarSlotsAndClocks(t *testing.T) {
	ctx := context.Background()
	self := newHousehold(t, 1)
	bob := newHousehold(t, 2)
	l, _ := openTest(t, self.ID())
	addNeighbour(t, l, bob, "bob")
	// A status may carry any clock up to now (it is outside the chain).
	bob.at = time.UnixMilli(math.MinInt64 + 5000)
	if res := mustAppend(t, l, bob.next(t, &share.Status{SurplusW: 1})); res[0].Outcome != Latest {
		t.Fatalf("far-past status: %s %v", res[0].Outcome, res[0].Err)
	}
	bob.at = t0
	var far []*share.Message
	for _, from := range []int64{1 << 40, share.MaxSafeInt - 96} {
		p := bob.next(t, &share.Pledge{To: self.ID(), FromSlot: from, ToSlot: from + 96, EnergyWh: share.MaxEnergyWh, ExpirySlot: from})
		storeAsOlderVersion(t, l, p)
		acc := self.next(t, &share.Accept{Pledge: p.ID(), EnergyWh: share.MaxEnergyWh})
		if res := mustAppend(t, l, acc); res[0].Outcome != Stored {
			t.Fatalf("accept: %s %v", res[0].Outcome, res[0].Err)
		}
		far = append(far, p)
	}
	ps, err := l.Pledges(ctx, PledgeFilter{})
	if err != nil || len(ps) != 2 {
		t.Fatalf("pledges: %d, %v", len(ps), err)
	}
	for _, p := range ps {
		if p.State != share.StateAccepted {
			t.Errorf("pledge %s at slot %d: %s, want accepted", p.ID.Short(), p.Window.From, p.State)
		}
	}
	if _, err := l.Balances(ctx, time.UTC); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ format, table string }{
		{"csv", TablePledges}, {"csv", TableMessages}, {"csv", TableSettlements}, {"jsonl", TableAll},
	} {
		var buf bytes.Buffer
		if err := l.Export(ctx, &buf, tt.format, tt.table); err != nil {
			t.Fatalf("export %s %s: %v", tt.format, tt.table, err)
		}
		out := buf.String()
		if tt.table != TableSettlements && !strings.Contains(out, strconv.FormatInt(share.MaxSafeInt-96, 10)) && !strings.Contains(out, far[1].ID().String()) {
			t.Errorf("export %s %s lost the far pledge:\n%s", tt.format, tt.table, out)
		}
		if tt.format == "jsonl" {
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if !json.Valid([]byte(line)) {
					t.Errorf("jsonl line is not JSON: %s", line)
				}
			}
			if !strings.Contains(out, `"window_start":null`) {
				t.Errorf("jsonl does not write unrepresentable instants as null:\n%s", out)
			}
		}
	}
	rep, err := l.Verify(ctx)
	if err != nil || !rep.OK {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
}
