//go:build unix

package meter

import (
	"syscall"
	"testing"
)

// cpuTimer measures the CPU time the process spends, so a benchmark can
// report cost per operation independently of how busy the machine is.
type cpuTimer struct{ start int64 }

func cpuNow() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func startCPU() cpuTimer { return cpuTimer{cpuNow()} }

// report adds the metric cpu-ns/op (user + system CPU time per iteration).
func (c cpuTimer) report(b *testing.B) {
	if c.start == 0 || b.N == 0 {
		return
	}
	b.ReportMetric(float64(cpuNow()-c.start)/float64(b.N), "cpu-ns/op")
}
