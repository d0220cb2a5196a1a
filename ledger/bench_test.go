package ledger

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/commons-energy/commons/share"
)

// received builds n messages spread over `authors` neighbours, as a
// replication pull would deliver them, and a ledger ready to receive them.
func received(b *testing.B, n, authors int) ([][]byte, func() *Ledger) {
	b.Helper()
	self := newHousehold(b, 1)
	var hs []*household
	for i := 0; i < authors; i++ {
		hs = append(hs, newHousehold(b, byte(10+i)))
	}
	raws := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		h := hs[i%authors]
		h.at = t0.Add(-time.Hour) // keep created times before the ledger clock
		raws = append(raws, h.next(b, &share.Pledge{To: self.ID(), FromSlot: 100000 + int64(i), ToSlot: 100004 + int64(i),
			EnergyWh: 1500, ExpirySlot: 100000 + int64(i), Nonce: uint32(i)}).Bytes())
	}
	open := func() *Ledger {
		path := filepath.Join(b.TempDir(), FileName)
		l, err := Open(context.Background(), path, Options{Self: self.ID(), Manifest: testManifest, Now: func() time.Time { return t0 }})
		if err != nil {
			b.Fatal(err)
		}
		for i, h := range hs {
			if err := l.AddNeighbour(context.Background(), Neighbour{ID: h.ID(), Name: fmt.Sprintf("n%d", i)}); err != nil {
				b.Fatal(err)
			}
		}
		return l
	}
	return raws, open
}

// BenchmarkAppendReceived10k appends 10,000 received messages of 10
// neighbours into a fresh ledger file in batches; one op is all 10,000.
func BenchmarkAppendReceived10k(b *testing.B) {
	raws, open := received(b, 10_000, 10)
	for _, batch := range []int{100, 1000, 10_000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			var cpu time.Duration
			for b.Loop() {
				b.StopTimer()
				l := open()
				b.StartTimer()
				c0 := cpuTime(b)
				for lo := 0; lo < len(raws); lo += batch {
					res, err := l.Append(context.Background(), raws[lo:min(lo+batch, len(raws))]...)
					if err != nil {
						b.Fatal(err)
					}
					if res[0].Outcome != Stored {
						b.Fatalf("outcome %v: %v", res[0].Outcome, res[0].Err)
					}
				}
				cpu += cpuTime(b) - c0
				b.StopTimer()
				if n, _ := l.Count(context.Background()); n != int64(len(raws)) {
					b.Fatalf("stored %d", n)
				}
				l.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(len(raws))*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
		})
	}
}

// BenchmarkAppendOwn is one durable append of a single own message (what
// `commons pledge` waits for).
func BenchmarkAppendOwn(b *testing.B) {
	self := newHousehold(b, 1)
	path := filepath.Join(b.TempDir(), FileName)
	l, err := Open(context.Background(), path, Options{Self: self.ID(), Manifest: testManifest, Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	msgs := make([]*share.Message, 0, 1000)
	for b.Loop() {
		if len(msgs) == 0 {
			b.StopTimer()
			for range 1000 {
				self.at = t0
				msgs = append(msgs, self.next(b, announce("a")))
			}
			b.StartTimer()
		}
		res, err := l.AppendMessages(context.Background(), msgs[0])
		if err != nil || res[0].Outcome != Stored {
			b.Fatalf("%v %v", err, res[0].Err)
		}
		msgs = msgs[1:]
	}
}

// BenchmarkVerify re-verifies a ledger of 10,000 messages; one op is the
// whole ledger.
func BenchmarkVerify(b *testing.B) {
	raws, open := received(b, 10_000, 10)
	l := open()
	defer l.Close()
	if _, err := l.Append(context.Background(), raws...); err != nil {
		b.Fatal(err)
	}
	c0 := cpuTime(b)
	for b.Loop() {
		rep, err := l.Verify(context.Background())
		if err != nil || !rep.OK || rep.Messages != 10_000 {
			b.Fatalf("%+v %v", rep, err)
		}
	}
	cpu := cpuTime(b) - c0
	b.ReportMetric(10_000*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(10_000*float64(b.N)/cpu.Seconds(), "msgs/cpu-s")
}

// BenchmarkAggregatorAdd is the in-memory cost of one telegram's sample
// (writes happen once per minute of samples: 60 adds at 1 s).
func BenchmarkAggregatorAdd(b *testing.B) {
	l, _ := openTest(b, newHousehold(b, 1).ID())
	agg, err := l.NewAggregator(AggregatorOptions{})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Date(2025, 1, 21, 0, 0, 0, 0, time.UTC)
	i := int64(0)
	for b.Loop() {
		if _, err := agg.Add(context.Background(), sample(start.Add(time.Duration(i)*time.Second), 1000+i, 500+i/2)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// cpuTime is the process's user+system CPU time: on a shared, loaded
// machine it says what the work costs independent of waiting for a core.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkOpenPledges folds a ledger holding 1,000 pledges and 500
// accepts into the open-pledge view (what a dashboard refresh asks for).
func BenchmarkOpenPledges(b *testing.B) {
	self, bob := newHousehold(b, 1), newHousehold(b, 2)
	l, _ := openTest(b, self.ID())
	addNeighbour(b, l, bob, "bob")
	var msgs []*share.Message
	first := testManifest.SlotOf(t0.Add(2 * time.Hour))
	for i := range 1000 {
		self.at, bob.at = t0, t0
		p := self.next(b, &share.Pledge{To: bob.ID(), FromSlot: first + int64(i), ToSlot: first + int64(i) + 4,
			EnergyWh: 1000, ExpirySlot: first + int64(i), Nonce: uint32(i)})
		msgs = append(msgs, p)
		if i%2 == 0 {
			msgs = append(msgs, bob.next(b, &share.Accept{Pledge: p.ID(), EnergyWh: 800}))
		}
	}
	mustAppend(b, l, msgs...)
	for b.Loop() {
		ps, err := l.OpenPledges(context.Background())
		if err != nil || len(ps) != 1000 {
			b.Fatalf("%d open, %v", len(ps), err)
		}
	}
}
