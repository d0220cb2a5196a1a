package sim

import (
	"testing"
	"time"
)

// BenchmarkSample measures one second of the household model (what every
// simulated second costs when the registers integrate).
func BenchmarkSample(b *testing.B) {
	start := time.Date(2025, 6, 10, 0, 0, 0, 0, time.UTC)
	m := New(mustProfile(b, "home"), 1, start)
	s := start.Unix()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.sample(s + int64(i%86400))
	}
}

// BenchmarkTelegram measures rendering one DSMR 5 telegram (one simulated
// second advanced each time).
func BenchmarkTelegram(b *testing.B) {
	start := time.Date(2025, 6, 10, 0, 0, 0, 0, time.UTC)
	m := New(mustProfile(b, "home"), 1, start)
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		buf = m.AppendTelegram(buf[:0], start.Add(time.Duration(i)*time.Second))
	}
	b.SetBytes(int64(len(buf)))
}
