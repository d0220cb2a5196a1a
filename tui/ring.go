package tui

import "time"

// ring holds the most recent live samples, oldest first, in a fixed
// buffer: memory does not grow with uptime.
type ring struct {
	buf   []Sample
	start int // index of the oldest sample
	n     int
}

func newRing(capacity int) ring { return ring{buf: make([]Sample, capacity)} }

func (r *ring) len() int { return r.n }

// at returns the i-th oldest sample.
func (r *ring) at(i int) Sample { return r.buf[(r.start+i)%len(r.buf)] }

func (r *ring) last() (Sample, bool) {
	if r.n == 0 {
		return Sample{}, false
	}
	return r.at(r.n - 1), true
}

// push appends s unless it is not newer than the last sample.
func (r *ring) push(s Sample) {
	if len(r.buf) == 0 {
		return
	}
	if l, ok := r.last(); ok && !s.Time.After(l.Time) {
		return
	}
	if r.n < len(r.buf) {
		r.buf[(r.start+r.n)%len(r.buf)] = s
		r.n++
		return
	}
	r.buf[r.start] = s
	r.start = (r.start + 1) % len(r.buf)
}

// merge replaces the contents with samples (oldest first, as the backend
// returns them) followed by the samples already held that are newer.
func (r *ring) merge(samples []Sample) {
	var newer []Sample
	var lastT time.Time
	if len(samples) > 0 {
		lastT = samples[len(samples)-1].Time
	}
	for i := 0; i < r.n; i++ {
		if s := r.at(i); s.Time.After(lastT) {
			newer = append(newer, s)
		}
	}
	r.start, r.n = 0, 0
	if len(samples) > len(r.buf) {
		samples = samples[len(samples)-len(r.buf):]
	}
	for _, s := range samples {
		r.push(s)
	}
	for _, s := range newer {
		r.push(s)
	}
}

// from returns the index of the first sample at or after t.
func (r *ring) from(t time.Time) int {
	lo, hi := 0, r.n
	for lo < hi {
		mid := (lo + hi) / 2
		if r.at(mid).Time.Before(t) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}
