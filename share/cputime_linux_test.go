package share

import (
	"time"

	"golang.org/x/sys/unix"
)

// threadCPU returns the CPU time used so far by the calling OS thread, or
// false when it cannot be measured. Benchmarks lock their goroutine to a
// thread and report CPU time per operation, which stays meaningful on a
// machine shared with other work (wall time does not).
func threadCPU() (time.Duration, bool) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
