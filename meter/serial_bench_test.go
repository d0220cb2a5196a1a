package meter_test

import (
	"context"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/commons-energy/commons/meter"
	"github.com/commons-energy/commons/meter/sim"
)

// cpuTime returns the process's user+system CPU time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchReader starts a Reader with the DSMR decoder on a fresh pty and
// returns the pty and a channel that receives one value per reading.
func benchReader(b *testing.B) (*sim.PTY, <-chan struct{}, func()) {
	p, err := sim.OpenPTY("")
	if err != nil {
		b.Fatal(err)
	}
	got := make(chan struct{}, 1024)
	r, err := meter.NewReader(meter.ReaderConfig{
		Port:       meter.PortConfig{Device: p.Path(), Baud: 115200},
		NewDecoder: dsmrDecoder,
		OnReading:  func(meter.Reading) { got <- struct{}{} },
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	return p, got, func() { cancel(); <-done; p.Close() }
}

// BenchmarkReaderTelegram measures the CPU one telegram costs end to end in
// this process: the pty write, the tarm/serial reads, the DSMR decode and
// the delivery. Telegrams go one at a time (the next is written once the
// previous one was delivered), so there is no batching. cpu-µs/telegram is
// process CPU (getrusage) per telegram; %core@1Hz is that share of one core
// for a meter sending one telegram a second.
func BenchmarkReaderTelegram(b *testing.B) {
	p, got, stop := benchReader(b)
	defer stop()
	m := simMeter(b)
	start := time.Date(2025, 6, 10, 12, 0, 0, 0, time.UTC)
	tgs := make([][]byte, 64)
	for i := range tgs {
		tgs[i] = m.Telegram(start.Add(time.Duration(i) * time.Second))
	}
	// Warm up: the reader must be open and decoding.
	for ok := false; !ok; {
		if _, err := p.Write(tgs[0]); err != nil {
			b.Fatal(err)
		}
		select {
		case <-got:
			ok = true
		case <-time.After(100 * time.Millisecond):
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for i := 0; i < b.N; i++ {
		if _, err := p.Write(tgs[i%len(tgs)]); err != nil {
			b.Fatal(err)
		}
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			b.Fatalf("telegram %d not delivered", i)
		}
	}
	cpu := cpuTime(b) - cpu0
	b.StopTimer()
	per := float64(cpu.Nanoseconds()) / float64(b.N)
	b.ReportMetric(per/1e3, "cpu-µs/telegram")
	b.ReportMetric(per/1e9*100, "%core@1Hz")
}
