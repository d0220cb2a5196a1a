package daemon

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"flag"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commons-energy/commons/share"
	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/node"
	"github.com/commons-energy/commons/share/peer"
)

var floodFor = flag.Duration("daemon.flood", 10*time.Second, "how long BenchmarkLocalAPI floods the peer port")

// BenchmarkLocalAPI measures the local socket's answer time for
// `commons status` (Client.Status) and `commons pledges` (Client.Pledges,
// 50 stored pledges) on a running household, idle and while an
// authenticated neighbour floods its peer port with garbage from 4
// connections. It reports p50, p99 and max per call.
func BenchmarkLocalAPI(b *testing.B) {
	for _, flood := range []bool{false, true} {
		name := "idle"
		if flood {
			name = "peer-flood"
		}
		b.Run(name, func(b *testing.B) { benchLocalAPI(b, flood) })
	}
}

func benchLocalAPI(b *testing.B, flood bool) {
	ctx := context.Background()
	ha := benchHome(b, "Alice")
	hx := benchHome(b, "Xavier")
	benchBefriend(b, ha, hx)
	rt, err := Open(ctx, ha, Options{Socket: true})
	if err != nil {
		b.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rt.Run(rctx) }()
	defer func() {
		stop()
		<-done
		rt.Close()
	}()
	c, err := Connect(ctx, ha)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	start, end, err := node.ParseWindow("next-hour", time.Now(), c.Calendar())
	if err != nil {
		b.Fatal(err)
	}
	for i := range 50 {
		if _, err := c.Pledge(ctx, household.PledgeRequest{To: "Xavier", EnergyWh: int64(100 + i), Start: start, End: end}); err != nil {
			b.Fatal(err)
		}
	}

	var sent, refused atomic.Int64
	fctx, stopFlood := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if flood {
		key := benchKey(b, hx)
		aid, err := share.ParseHouseholdID(rt.Node().Identity().ID)
		if err != nil {
			b.Fatal(err)
		}
		for range 4 {
			cl, err := peer.NewClient(peer.ClientConfig{Key: key, Peer: aid, Addr: rt.PeerAddr(), Timeout: 10 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer cl.Close()
				batch := make([][]byte, 32)
				for i := range batch {
					batch[i] = make([]byte, 1024)
					rand.Read(batch[i])
				}
				for fctx.Err() == nil {
					_, err := cl.Push(fctx, batch)
					sent.Add(int64(len(batch)))
					if err != nil {
						refused.Add(1)
					}
				}
			}()
		}
	}

	var status, pledges []time.Duration
	deadline := time.Now().Add(*floodFor)
	b.ResetTimer()
	for time.Now().Before(deadline) {
		t0 := time.Now()
		if _, err := c.Status(ctx); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		ps, err := c.Pledges(ctx, false)
		if err != nil || len(ps) != 50 {
			b.Fatalf("pledges: %d, %v", len(ps), err)
		}
		t2 := time.Now()
		status, pledges = append(status, t1.Sub(t0)), append(pledges, t2.Sub(t1))
		time.Sleep(20 * time.Millisecond) // a dashboard's pace, not a tight loop
	}
	b.StopTimer()
	stopFlood()
	wg.Wait()
	report := func(name string, ds []time.Duration) {
		slices.Sort(ds)
		b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, name+"-p50-ms")
		b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds())/1000, name+"-p99-ms")
		b.ReportMetric(float64(ds[len(ds)-1].Microseconds())/1000, name+"-max-ms")
	}
	report("status", status)
	report("pledges", pledges)
	b.ReportMetric(float64(len(status)), "calls")
	if flood {
		b.ReportMetric(float64(sent.Load())/floodFor.Seconds(), "flood-msgs/s")
	}
}

func benchHome(b *testing.B, name string) node.Home {
	b.Helper()
	h, err := node.ResolveHome(b.TempDir() + "/" + name)
	if err != nil {
		b.Fatal(err)
	}
	cfg := node.DefaultConfig(name)
	cfg.Listen = "127.0.0.1:0"
	if _, err := node.Init(context.Background(), h, cfg); err != nil {
		b.Fatal(err)
	}
	return h
}

func benchBefriend(b *testing.B, a, x node.Home) {
	b.Helper()
	ctx := context.Background()
	for _, pair := range [][2]node.Home{{a, x}, {x, a}} {
		n, err := node.Open(ctx, pair[1], node.Options{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		inv := n.Identity().Invite
		n.Close()
		m, err := node.Open(ctx, pair[0], node.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.AddNeighbour(ctx, inv, ""); err != nil {
			b.Fatal(err)
		}
		m.Close()
	}
}

func benchKey(b *testing.B, h node.Home) ed25519.PrivateKey {
	b.Helper()
	k, err := share.LoadIdentity(h.KeyPath())
	if err != nil {
		b.Fatal(err)
	}
	return ed25519.NewKeyFromSeed(k.Seed())
}

// BenchmarkPledge signs and durably stores one pledge per op, in-process
// and through the local socket (what `commons pledge` costs while a daemon
// runs, without the process start).
func BenchmarkPledge(b *testing.B) {
	ctx := context.Background()
	ha := benchHome(b, "Alice")
	hx := benchHome(b, "Xavier")
	benchBefriend(b, ha, hx)
	rt, err := Open(ctx, ha, Options{Socket: true, Listen: ListenOff})
	if err != nil {
		b.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rt.Run(rctx) }()
	defer func() {
		stop()
		<-done
		rt.Close()
	}()
	c, err := Connect(ctx, ha)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	start, end, err := node.ParseWindow("next-hour", time.Now(), c.Calendar())
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		hh   household.Household
	}{{"in-process", rt.Node()}, {"socket", c}} {
		b.Run(bc.name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if _, err := bc.hh.Pledge(ctx, household.PledgeRequest{To: "Xavier", EnergyWh: int64(1 + i%1000), Start: start, End: end}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
