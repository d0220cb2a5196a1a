package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commons-energy/commons/share"
	"github.com/commons-energy/commons/share/daemon"
	"github.com/commons-energy/commons/share/node"
	"github.com/commons-energy/commons/share/peer"
)

var (
	daemonFlood     = flag.Duration("daemon.flood", 10*time.Second, "how long BenchmarkDaemonFlood floods (bounded)")
	daemonFloodRate = flag.Int("daemon.flood-rate", 5000, "garbage messages per second BenchmarkDaemonFlood sends")
)

// rssKiB reads a process's resident set size from /proc.
func rssKiB(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

// BenchmarkDaemonFlood: a real `commons daemon` process (household B)
// while its neighbour A floods it with garbage pushes at -daemon.flood-rate
// messages/s (batches of 32 random 1 KiB "messages", over 8 connections)
// for -daemon.flood.
// Meanwhile a local client asks the daemon's Unix socket for the status
// every 100 ms. Reports the local API's latency percentiles and the
// daemon's resident memory (VmRSS) before and at its peak.
func BenchmarkDaemonFlood(b *testing.B) {
	bin := buildCommons(b, b.TempDir())
	c := newCLI(b, bin)
	dir := b.TempDir()
	ha, hb := filepath.Join(dir, "A"), filepath.Join(dir, "B")
	c.ok("--home", ha, "init", "--name", "Alice", "--listen", "127.0.0.1:1")
	c.ok("--home", hb, "init", "--name", "Bob", "--listen", freeAddr(b))
	var ida, idb idJSON
	c.json(&ida, "--home", ha, "id", "--json")
	c.json(&idb, "--home", hb, "id", "--json")
	c.ok("--home", hb, "neighbours", "add", ida.Invite)
	homeA, _ := node.ResolveHome(ha)
	homeB, _ := node.ResolveHome(hb)
	identA, err := share.LoadIdentity(homeA.KeyPath())
	if err != nil {
		b.Fatal(err)
	}
	idB, _ := share.ParseHouseholdID(idb.ID)
	garbage := make([][]byte, 32)
	for i := range garbage {
		garbage[i] = make([]byte, 1024)
		rand.Read(garbage[i])
	}

	for range b.N {
		d := startDaemon(b, c, hb)
		ctx := context.Background()
		var local *daemon.Client
		deadline := time.Now().Add(30 * time.Second)
		for {
			local, err = daemon.Connect(ctx, homeB)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("daemon socket: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if _, err := local.Status(ctx); err != nil {
			b.Fatal(err)
		}
		var flooders []*peer.Client
		for range 2 { // 2 clients × 4 connections
			f, err := peer.NewClient(peer.ClientConfig{Key: ed25519.NewKeyFromSeed(identA.Seed()), Peer: idB, Addr: idb.Listen, Timeout: 10 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			flooders = append(flooders, f)
		}
		pid := d.cmd.Process.Pid
		before := rssKiB(pid)
		var peak atomic.Int64
		peak.Store(int64(before))

		end := time.Now().Add(*daemonFlood)
		var sent, limited, refused, other atomic.Int64
		var wg sync.WaitGroup
		// 8 connections, each sending a batch of 32 every tick: together
		// -daemon.flood-rate messages per second if the daemon keeps up.
		tick := 8 * time.Second * 32 / time.Duration(max(*daemonFloodRate, 1))
		for i := range 8 {
			flooder := flooders[i%2]
			wg.Add(1)
			go func() {
				defer wg.Done()
				t := time.NewTicker(tick)
				defer t.Stop()
				for n := 0; time.Now().Before(end) && n < 1_000_000; n++ {
					<-t.C
					sent.Add(1)
					_, err := flooder.Push(ctx, garbage)
					var se *peer.StatusError
					switch {
					case errors.As(err, &se) && se.Code == http.StatusTooManyRequests:
						limited.Add(1)
					case errors.As(err, &se) && se.Code == http.StatusBadRequest:
						refused.Add(1)
					default:
						other.Add(1)
					}
				}
			}()
		}
		stop := make(chan struct{})
		var mwg sync.WaitGroup
		mwg.Add(1)
		go func() {
			defer mwg.Done()
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				if r := int64(rssKiB(pid)); r > peak.Load() {
					peak.Store(r)
				}
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
		var lat []time.Duration
		var apiErrs int
		for time.Now().Before(end) {
			t0 := time.Now()
			if _, err := local.Status(ctx); err != nil {
				apiErrs++
			}
			lat = append(lat, time.Since(t0))
			time.Sleep(100 * time.Millisecond)
		}
		wg.Wait()
		close(stop)
		mwg.Wait()
		for _, f := range flooders {
			f.Close()
		}
		local.Close()
		d.stop(b)
		if apiErrs > 0 {
			b.Errorf("the local API failed %d times during the flood", apiErrs)
		}
		slices.Sort(lat)
		pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
		secs := daemonFlood.Seconds()
		b.ReportMetric(float64(sent.Load())*32/secs, "flood-msgs/s")
		b.ReportMetric(float64(limited.Load())/secs, "429/s")
		b.ReportMetric(float64(refused.Load())/secs, "400/s")
		b.ReportMetric(float64(other.Load()), "other-errs")
		b.ReportMetric(pct(0.5), "api-p50-ms")
		b.ReportMetric(pct(0.99), "api-p99-ms")
		b.ReportMetric(pct(1), "api-max-ms")
		b.ReportMetric(float64(before)/1024, "rss-before-MiB")
		b.ReportMetric(float64(peak.Load())/1024, "rss-peak-MiB")
	}
}
