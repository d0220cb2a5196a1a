//go:build !linux

package share

import "time"

func threadCPU() (time.Duration, bool) { return 0, false }
