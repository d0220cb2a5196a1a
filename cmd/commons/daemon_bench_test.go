package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
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

	_ "modernc.org/sqlite"
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
	var ida, idb idJSON
	c.json(&ida, "--home", ha, "id", "--json")
	c.ok("--home", hb, "init", "--name", "Bob", "--listen", freeAddr(b), "--join", ida.Invite)
	c.json(&idb, "--home", hb, "id", "--json")
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

// cpuOf returns a process's user+system CPU time from /proc (clock
// ticks of 10 ms).
func cpuOf(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the ")" that ends the command name; utime and stime
	// are fields 14 and 15 of the whole line.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return time.Duration(u+st) * 10 * time.Millisecond
}

// countMessages counts the chain messages in a ledger file, read-only,
// beside the daemon that writes it.
func countMessages(b testing.TB, path string) int {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM messages`).Scan(&n); err != nil {
		return -1
	}
	return n
}

// BenchmarkDaemonCatchUp10k: household A's ledger holds 10,000 messages
// of its own (written before its daemon starts); B is empty. Both run as
// real `commons daemon` processes on loopback; the time is from starting
// B's daemon until B's ledger file holds all of A's messages (daemon
// start, TLS, heads, 20 pages, verification and durable storage).
func BenchmarkDaemonCatchUp10k(b *testing.B) {
	const n = 10_000
	bin := buildCommons(b, b.TempDir())
	c := newCLI(b, bin)
	dir := b.TempDir()
	ha := filepath.Join(dir, "A")
	c.ok("--home", ha, "init", "--name", "Alice", "--listen", freeAddr(b))
	var ida idJSON
	c.json(&ida, "--home", ha, "id", "--json")

	homeA, _ := node.ResolveHome(ha)
	ctx := context.Background()
	na, err := node.Open(ctx, homeA, node.Options{Owner: "benchmark"})
	if err != nil {
		b.Fatal(err)
	}
	content, _ := share.EncodeContent(&share.Announce{Name: "Alice"})
	head, err := na.Ledger().Head(ctx, na.Key().ID())
	if err != nil {
		b.Fatal(err)
	}
	for done := 0; done < n; {
		batch := make([]*share.Message, 0, 1000)
		for ; len(batch) < 1000 && done < n; done++ {
			m, err := na.Key().Sign(share.Draft{Community: na.Manifest().ID(), Seq: head.Seq + 1, Prev: head.ID, Created: time.Now(), Kind: share.KindAnnounce, Content: content})
			if err != nil {
				b.Fatal(err)
			}
			head = share.HeadOf(m)
			batch = append(batch, m)
		}
		res, err := na.Ledger().AppendMessages(ctx, batch...)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	total := int(head.Seq) // A's chain: its announce from init + n
	na.Close()
	da := startDaemon(b, c, ha)
	defer da.stop(b)

	b.ResetTimer()
	var cpu time.Duration
	for i := range b.N {
		b.StopTimer()
		hb := filepath.Join(dir, "B"+strconv.Itoa(i))
		c.ok("--home", hb, "init", "--name", "Bob", "--listen", freeAddr(b), "--join", ida.Invite)
		var idb idJSON
		c.json(&idb, "--home", hb, "id", "--json")
		c.ok("--home", ha, "neighbours", "add", idb.Invite, "--name", "Bob"+strconv.Itoa(i))
		homeB, _ := node.ResolveHome(hb)
		b.StartTimer()
		cpuA := cpuOf(da.cmd.Process.Pid)
		db := startDaemon(b, c, hb)
		deadline := time.Now().Add(5 * time.Minute)
		for countMessages(b, homeB.LedgerPath()) < total+1 {
			if time.Now().After(deadline) {
				b.Fatalf("B holds %d messages after 5 min, want %d", countMessages(b, homeB.LedgerPath()), total+1)
			}
			time.Sleep(20 * time.Millisecond)
		}
		b.StopTimer()
		cpu += cpuOf(da.cmd.Process.Pid) - cpuA + cpuOf(db.cmd.Process.Pid)
		db.stop(b)
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "daemons-cpu-s/op")
}
