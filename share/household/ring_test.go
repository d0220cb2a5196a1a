package household

import (
	"testing"
	"time"
)

var testNow = time.Date(2026, 6, 15, 13, 20, 30, 0, time.FixedZone("CEST", 2*3600))

func TestRingBounded(t *testing.T) {
	r := NewRing(4)
	for i := 1; i <= 10; i++ {
		r.Push(Sample{Time: testNow.Add(time.Duration(i) * time.Second), ImportW: int64(i)})
	}
	r.Push(Sample{Time: testNow, ImportW: 99}) // older: dropped
	if r.Len() != 4 || r.At(0).ImportW != 7 || r.At(3).ImportW != 10 {
		t.Fatalf("ring holds %d, first %d, last %d", r.Len(), r.At(0).ImportW, r.At(3).ImportW)
	}
	if i := r.From(testNow.Add(9 * time.Second)); i != 2 {
		t.Errorf("from = %d, want 2", i)
	}
	// a later snapshot merges with what arrived meanwhile
	r.Merge([]Sample{{Time: testNow.Add(8 * time.Second), ImportW: 80}, {Time: testNow.Add(9 * time.Second), ImportW: 90}})
	var got []int64
	for i := 0; i < r.Len(); i++ {
		got = append(got, r.At(i).ImportW)
	}
	if len(got) != 3 || got[0] != 80 || got[1] != 90 || got[2] != 10 {
		t.Errorf("after merge: %v", got)
	}
}

// TestRingAppendKeepsEqualTimes: the household's own ring keeps every
// sample, also two taken at one clock reading, and Since copies.
func TestRingAppendKeepsEqualTimes(t *testing.T) {
	r := NewRing(3)
	for i := 1; i <= 4; i++ {
		r.Append(Sample{Time: testNow, ImportW: int64(i)})
	}
	got := r.Since(testNow)
	if len(got) != 3 || got[0].ImportW != 2 || got[2].ImportW != 4 {
		t.Fatalf("Since = %+v", got)
	}
	got[0].ImportW = 99
	if r.At(0).ImportW != 2 {
		t.Error("Since shares the ring's memory")
	}
	if len(r.Since(testNow.Add(time.Second))) != 0 {
		t.Error("Since after the newest sample is not empty")
	}
}
