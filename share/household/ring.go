package household

import "time"

// RingCap is how many 1 s live samples a ring of the last hour holds.
const RingCap = 3600

// Ring holds the most recent live samples, oldest first, in a fixed
// buffer: memory does not grow with uptime. The running household keeps
// the last hour in one; the dashboard keeps its copy for the charts in
// another. A Ring is not safe for concurrent use.
type Ring struct {
	buf   []Sample
	start int // index of the oldest sample
	n     int
}

// NewRing returns an empty ring of the given capacity.
func NewRing(capacity int) *Ring { return &Ring{buf: make([]Sample, capacity)} }

// Len is the number of samples held.
func (r *Ring) Len() int { return r.n }

// At returns the i-th oldest sample.
func (r *Ring) At(i int) Sample { return r.buf[(r.start+i)%len(r.buf)] }

// Last returns the newest sample; false when the ring is empty.
func (r *Ring) Last() (Sample, bool) {
	if r.n == 0 {
		return Sample{}, false
	}
	return r.At(r.n - 1), true
}

// Push appends s unless it is not newer than the last sample (a sample
// an event brings that a Merge already holds).
func (r *Ring) Push(s Sample) {
	if l, ok := r.Last(); ok && !s.Time.After(l.Time) {
		return
	}
	r.Append(s)
}

// Append appends s, dropping the oldest sample when full.
func (r *Ring) Append(s Sample) {
	if len(r.buf) == 0 {
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

// Merge replaces the contents with samples (oldest first, as Samples
// returns them) followed by the samples already held that are newer.
func (r *Ring) Merge(samples []Sample) {
	var newer []Sample
	var lastT time.Time
	if len(samples) > 0 {
		lastT = samples[len(samples)-1].Time
	}
	for i := 0; i < r.n; i++ {
		if s := r.At(i); s.Time.After(lastT) {
			newer = append(newer, s)
		}
	}
	r.start, r.n = 0, 0
	if len(samples) > len(r.buf) {
		samples = samples[len(samples)-len(r.buf):]
	}
	for _, s := range samples {
		r.Push(s)
	}
	for _, s := range newer {
		r.Push(s)
	}
}

// From returns the index of the first sample at or after t.
func (r *Ring) From(t time.Time) int {
	lo, hi := 0, r.n
	for lo < hi {
		mid := (lo + hi) / 2
		if r.At(mid).Time.Before(t) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// Since returns a copy of the samples at or after t, oldest first.
func (r *Ring) Since(t time.Time) []Sample {
	i := r.From(t)
	out := make([]Sample, 0, r.n-i)
	for ; i < r.n; i++ {
		out = append(out, r.At(i))
	}
	return out
}
