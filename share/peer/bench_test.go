package peer

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var floodFor = flag.Duration("peer.flood", 5*time.Second, "how long BenchmarkFloodGarbage floods (bounded; also at most 1,000,000 requests)")

// BenchmarkCatchUp10k: box B, empty, pulls 10,000 messages of A from A
// over loopback TLS, page by page, verifying each and storing them.
func BenchmarkCatchUp10k(b *testing.B) {
	const n = 10_000
	for _, kind := range storeKinds {
		b.Run(kind, func(b *testing.B) {
			a := newBox(b, kind, nil, Limits{})
			a.appendOwn(b, n)
			b.ResetTimer()
			var cpu time.Duration
			for range b.N {
				b.StopTimer()
				nb := newBox(b, kind, nil, Limits{})
				befriend(a, nb)
				sy, err := NewSyncer(SyncConfig{Key: nb.key, Store: nb.store, Neighbours: nb.nb, Verifier: ShareVerifier{Community: testCommunity}})
				if err != nil {
					b.Fatal(err)
				}
				c := nb.client(b, a)
				b.StartTimer()
				cpu0 := cpuTime()
				got, err := sy.Pull(context.Background(), c)
				cpu += cpuTime() - cpu0
				b.StopTimer()
				if err != nil || got != n {
					b.Fatalf("pulled %d, %v; want %d", got, err, n)
				}
				c.Close()
				nb.srv.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}

// BenchmarkFloodGarbage: neighbour A floods box B with garbage pushes from
// 4 connections for -peer.flood (default 5 s), while neighbour C asks B
// for its heads every 100 ms. Reports C's latency percentiles, the flood
// rate reached, how much was answered 429 / 400, and the peak Go heap of
// the whole test process (B, A and C share it) above the heap before.
func BenchmarkFloodGarbage(b *testing.B) {
	for range b.N {
		floodOnce(b)
	}
}

func floodOnce(b *testing.B) {
	kind := "ledger"
	srv := newBox(b, kind, nil, Limits{})
	a, c := newBox(b, kind, nil, Limits{}), newBox(b, kind, nil, Limits{})
	befriend(a, srv)
	befriend(c, srv)
	ca, cc := a.client(b, srv), c.client(b, srv)
	ctx := context.Background()
	if _, err := cc.Push(ctx, c.appendOwn(b, 10)); err != nil { // something real to list
		b.Fatal(err)
	}

	// Garbage: framed batches of 32 random "messages" of 1 KiB each.
	garbage := make([][]byte, 32)
	for i := range garbage {
		garbage[i] = make([]byte, 1024)
		rand.Read(garbage[i])
	}
	var body bytes.Buffer
	WriteBatch(&body, garbage)

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseHeap := ms.HeapAlloc
	var peakHeap atomic.Uint64

	deadline := time.Now().Add(*floodFor)
	const maxRequests = 1_000_000
	var sent, limited, badReq, otherErr atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && sent.Add(1) <= maxRequests {
				err := rawPost(ctx, ca, PathMessages, BatchContentType, body.Bytes())
				var se *StatusError
				switch {
				case asStatus(err, &se) && se.Code == http.StatusTooManyRequests:
					limited.Add(1)
				case asStatus(err, &se) && se.Code == http.StatusBadRequest:
					badReq.Add(1)
				default:
					otherErr.Add(1)
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // heap sampler
		defer wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peakHeap.Load() {
				peakHeap.Store(ms.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	var lat []time.Duration
	var heardErr int
	var lastErr error
	for time.Now().Before(deadline) {
		t0 := time.Now()
		if _, err := cc.Heads(ctx); err != nil {
			heardErr++
			lastErr = err
		}
		lat = append(lat, time.Since(t0))
		time.Sleep(100 * time.Millisecond) // within C's own rate limit
	}
	close(stop)
	wg.Wait()
	if heardErr > 0 {
		b.Errorf("C got %d errors from B during the flood, the last: %v", heardErr, lastErr)
	}
	if srv.store.total() != 10 {
		b.Errorf("B stores %d messages, want 10", srv.store.total())
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	secs := floodFor.Seconds()
	b.ReportMetric(float64(min(sent.Load(), maxRequests))/secs, "flood-req/s")
	b.ReportMetric(float64(min(sent.Load(), maxRequests))*32/secs, "flood-msgs/s")
	b.ReportMetric(float64(limited.Load())/secs, "429/s")
	b.ReportMetric(float64(badReq.Load())/secs, "400/s")
	b.ReportMetric(float64(otherErr.Load()), "other-errs")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
	b.ReportMetric(float64(peakHeap.Load()-min(peakHeap.Load(), baseHeap))/(1<<20), "peak-heap-growth-MiB")
}

func asStatus(err error, se **StatusError) bool {
	s, ok := err.(*StatusError)
	if ok {
		*se = s
	}
	return ok
}

// cpuTime is the user+system CPU time the test process used so far: on a
// shared machine it says what an operation costs better than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
