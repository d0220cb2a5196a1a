package tui

import (
	"context"
	"syscall"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/commons-energy/commons/share/household"
)

// benchModel is the dashboard at 160x48 holding a full hour of 1 s samples
// and a week of 1 min aggregates, after keys (the view, and what opens on it).
func benchModel(b *testing.B, keys ...string) Model {
	b.Helper()
	f := newFake()
	m := loaded(b, f, 160, 48)
	var tm tea.Model = m
	for _, k := range keys {
		tm, _ = tm.Update(press(k))
	}
	bs, _ := f.Aggregates(context.Background(), testNow.Add(-7*24*time.Hour), testNow)
	m = tm.(Model)
	m.charts.span = span7d
	tm, _ = m.Update(aggMsg{span: span7d, buckets: bs, now: testNow})
	m = tm.(Model)
	if m.live.Len() != 3600 || len(m.charts.buckets) != 7*24*60 {
		b.Fatalf("bench data: %d samples, %d buckets", m.live.Len(), len(m.charts.buckets))
	}
	return m
}

// cpuTime is the process's user+system CPU time. The benchmarks report it
// per op next to ns/op because the shared test machine is often so loaded
// that wall-clock time mostly measures waiting for a core.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkView measures one frame at 160x48 per view. Charts are cached,
// so the cost does not depend on how much history is held.
func BenchmarkView(b *testing.B) {
	for _, v := range []struct {
		name string
		keys []string
	}{
		{"overview", []string{"1"}}, {"charts", []string{"2"}}, {"neighbours", []string{"3"}}, {"ledger", []string{"4"}},
		{"pledge_detail", []string{"4", "j", "j", "enter"}},
	} {
		b.Run(v.name, func(b *testing.B) {
			m := benchModel(b, v.keys...)
			b.ReportAllocs()
			b.ResetTimer()
			c := cpuTime()
			for i := 0; i < b.N; i++ {
				_ = m.View()
			}
			reportCPU(b, c)
		})
	}
}

// BenchmarkLiveEvent measures what one telegram costs the dashboard on the
// charts view at 160x48: Update (which rebuilds the live chart from the
// downsampled ring) plus View.
func BenchmarkLiveEvent(b *testing.B) {
	for _, v := range []struct{ name, key string }{{"overview", "1"}, {"charts", "2"}} {
		b.Run(v.name, func(b *testing.B) {
			m := benchModel(b, v.key)
			live := m.state.Live
			t := testNow
			b.ReportAllocs()
			b.ResetTimer()
			c := cpuTime()
			for i := 0; i < b.N; i++ {
				t = t.Add(time.Second)
				tm, _ := m.Update(eventMsg{ev: household.Event{Kind: household.EventLive, Live: live, Sample: household.Sample{Time: t, ExportW: 2000 + int64(i%500)}}, now: t})
				m = tm.(Model)
				_ = m.View()
			}
			reportCPU(b, c)
		})
	}
}

// BenchmarkHistoryRebuild measures redrawing the 7 day chart from a week
// of 1 min buckets at 160x48 (a span switch or new aggregates).
func BenchmarkHistoryRebuild(b *testing.B) {
	m := benchModel(b, "2")
	b.ReportAllocs()
	b.ResetTimer()
	c := cpuTime()
	for i := 0; i < b.N; i++ {
		m.charts.histDirty = true
		m.charts.refresh()
	}
	reportCPU(b, c)
}
