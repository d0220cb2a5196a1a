package peer

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commons-energy/commons/ledger"
	"github.com/commons-energy/commons/share"
)

var roundReconnect = flag.Bool("peer.reconnect", false, "BenchmarkReplicationRound: drop connections between rounds (as if the clients' idle timeout were shorter than the pull interval)")

// countListener counts the connections it accepts and the bytes read
// from and written to them.
type countListener struct {
	net.Listener
	accepts, bytes *atomic.Int64
}

func (l countListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.accepts.Add(1)
	return countConn{Conn: c, bytes: l.bytes}, nil
}

type countConn struct {
	net.Conn
	bytes *atomic.Int64
}

func (c countConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.bytes.Add(int64(n))
	return n, err
}

func (c countConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.bytes.Add(int64(n))
	return n, err
}

// benchDir is where the benchmark's ledger files go: tmpfs when there is
// one (setting up 1,000 neighbours is thousands of fsyncs; a steady round
// writes at most one message).
func benchDir(b *testing.B) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "commons-bench-")
		if err == nil {
			b.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return b.TempDir()
}

func openBenchLedger(b *testing.B, self share.HouseholdID, authors []*author) *ledger.Ledger {
	b.Helper()
	ctx := context.Background()
	l, err := ledger.Open(ctx, filepath.Join(benchDir(b), ledger.FileName), ledger.Options{Self: self, Manifest: testManifest})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	for _, a := range authors {
		if a.id() == self {
			continue
		}
		if err := l.AddNeighbour(ctx, ledger.Neighbour{ID: a.id(), Name: "n-" + a.id().String()[:12]}); err != nil {
			b.Fatal(err)
		}
	}
	return l
}

// BenchmarkReplicationRound is one 30 s replication round of one box (the
// hub) with N direct neighbours, in steady state: every feed is already
// everywhere, and one neighbour wrote one new message since the last
// round. In a round the hub's Syncer pulls from every neighbour and every
// neighbour's Syncer pulls from the hub (32 at a time); then the clients
// drop their idle connections, as their idle timeout (10 s) is shorter
// than the pull interval.
//
// Every box is real over loopback TLS (a peer.Server each, real Syncers,
// the hub's own ledger file), but the N neighbours share one ledger (the
// "street" ledger, holding every feed, as in a street where every box is
// every box's neighbour) instead of N ledger files: that is what makes
// N = 1000 fit in one process. Measured per round: the process's CPU time
// (getrusage; it covers both ends of every exchange the hub takes part
// in, so the hub's own share is about half), the bytes on all those
// connections (what the hub sends and receives), and the TCP connections
// opened.
func BenchmarkReplicationRound(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) { replicationRound(b, n) })
	}
}

func replicationRound(b *testing.B, n int) {
	ctx := context.Background()
	hubA := newAuthor(b)
	nbs := make([]*author, n)
	for i := range nbs {
		nbs[i] = newAuthor(b)
	}
	all := append([]*author{hubA}, nbs...)
	var feeds [][]byte
	for _, a := range all {
		feeds = append(feeds, a.next(b))
	}
	street := openBenchLedger(b, nbs[0].id(), all)
	hubL := openBenchLedger(b, hubA.id(), all)
	for _, l := range []*ledger.Ledger{street, hubL} {
		if _, err := l.Append(ctx, feeds...); err != nil {
			b.Fatal(err)
		}
	}
	known := newMemNeighbours()
	for _, a := range all {
		known.add(a.id(), "")
	}
	v := ShareVerifier{Community: testCommunity}
	var accepts, bytes atomic.Int64
	serve := func(key *author, st Store, nb Neighbours) string {
		// All neighbours dial from 127.0.0.1 here: the per-address
		// handshake budget is for distinct addresses. The handshake
		// deadline is raised: this measures cost, and on a loaded shared
		// machine 64 handshakes at once can take longer than 2 s.
		srv, err := NewServer(ServerConfig{Key: key.key, Store: st, Neighbours: nb, Verifier: v, Limits: Limits{MaxPendingPerAddr: 1 << 20, Handshake: 30 * time.Second}})
		if err != nil {
			b.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go srv.Serve(countListener{Listener: ln, accepts: &accepts, bytes: &bytes})
		b.Cleanup(func() { srv.Close() })
		return ln.Addr().String()
	}
	hubNb := &LedgerNeighbours{L: hubL, TTL: time.Minute}
	hubStore := LedgerStore{L: hubL}
	hubAddr := serve(hubA, hubStore, hubNb)
	streetStore := LedgerStore{L: street}
	nbAddrs := make([]string, n)
	for i, a := range nbs {
		nbAddrs[i] = serve(a, streetStore, known)
	}
	hubSync, err := NewSyncer(SyncConfig{Key: hubA.key, Store: hubStore, Neighbours: hubNb, Verifier: v})
	if err != nil {
		b.Fatal(err)
	}
	hubClients := make([]*Client, n)
	nbSyncs := make([]*Syncer, n)
	nbClients := make([]*Client, n)
	for i, a := range nbs {
		if hubClients[i], err = NewClient(ClientConfig{Key: hubA.key, Peer: a.id(), Addr: nbAddrs[i]}); err != nil {
			b.Fatal(err)
		}
		if nbSyncs[i], err = NewSyncer(SyncConfig{Key: a.key, Store: streetStore, Neighbours: known, Verifier: v}); err != nil {
			b.Fatal(err)
		}
		if nbClients[i], err = NewClient(ClientConfig{Key: a.key, Peer: hubA.id(), Addr: hubAddr}); err != nil {
			b.Fatal(err)
		}
	}
	round := func(writer int) {
		// One neighbour wrote a message since the last round.
		w := nbs[writer%n]
		if _, err := street.Append(ctx, w.next(b)); err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, 32)
		var failed atomic.Int64
		for i := range n {
			wg.Add(2)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				if _, err := nbSyncs[i].Pull(ctx, nbClients[i]); err != nil {
					failed.Add(1)
					b.Log(err)
				}
			}()
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				if _, err := hubSync.Pull(ctx, hubClients[i]); err != nil {
					failed.Add(1)
					b.Log(err)
				}
			}()
		}
		wg.Wait()
		for i := range n {
			if !*roundReconnect {
				break
			}
			hubClients[i].Close()
			nbClients[i].Close()
		}
		if failed.Load() > 0 {
			b.Fatalf("%d pulls failed", failed.Load())
		}
		if h, err := hubL.Head(ctx, w.id()); err != nil || h.Seq != w.head.Seq {
			b.Fatalf("the new message did not reach the hub: %+v %v", h, err)
		}
	}
	// Two rounds to reach the steady state: the first pulls are full.
	round(0)
	round(1)
	var cpu time.Duration
	bytes.Store(0)
	accepts.Store(0)
	i := 2
	for b.Loop() {
		c0 := cpuTime()
		round(i)
		cpu += cpuTime() - c0
		i++
	}
	rounds := float64(b.N)
	b.ReportMetric(cpu.Seconds()*1000/rounds, "cpu-ms/round")
	b.ReportMetric(float64(bytes.Load())/rounds/1024, "KiB/round")
	b.ReportMetric(float64(accepts.Load())/rounds, "conns/round")
	b.ReportMetric(100*cpu.Seconds()/rounds/30, "%core-per-30s")
}
