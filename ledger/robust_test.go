package ledger

import (
	"testing"

	"github.com/commons-energy/commons/share"
)

// TestAppendRejectsSlotsPastEndOfTime: a pledge, report, settle or status
// forecast whose slots lie after 2200-01-01 is rejected as bad_content,
// counted, and not stored; one ending exactly there is stored.
func TestAppendRejectsSlotsPastEndOfTime(t *testing.T) {
	max := testManifest.MaxSlot()
	self := newHousehold(t, 1)
	bob := newHousehold(t, 2)
	pid := share.ID{7}
	zeros := func(n int) []int64 { return make([]int64, n) }
	tests := []struct {
		name   string
		c      share.Content
		stored bool
	}{
		{"pledge at 2^40", &share.Pledge{To: self.ID(), FromSlot: 1 << 40, ToSlot: 1<<40 + 4, EnergyWh: 1000, ExpirySlot: 1 << 40}, false},
		{"pledge at 2^53-2", &share.Pledge{To: self.ID(), FromSlot: share.MaxSafeInt - 1, ToSlot: share.MaxSafeInt, EnergyWh: 1}, false},
		{"pledge one past the end", &share.Pledge{To: self.ID(), FromSlot: max - 3, ToSlot: max + 1, EnergyWh: 1}, false},
		{"pledge ending at the end", &share.Pledge{To: self.ID(), FromSlot: max - 4, ToSlot: max, EnergyWh: 1}, true},
		{"report past the end", &share.Report{FromSlot: max, ExportWh: zeros(1), ImportWh: zeros(1)}, false},
		{"report ending at the end", &share.Report{FromSlot: max - 1, ExportWh: zeros(1), ImportWh: zeros(1)}, true},
		{"settle past the end", &share.Settle{Pledge: pid, FromSlot: max, ToSlot: max + 1, AllocatedWh: zeros(1), ExportWh: zeros(1), ImportWh: zeros(1), Key: "pro-rata"}, false},
		{"forecast past the end", &share.Status{ForecastFrom: 1 << 40, ForecastWh: []int64{1}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := openTest(t, self.ID())
			addNeighbour(t, l, bob, "bob")
			bob.head = share.Head{}
			res := mustAppend(t, l, bob.next(t, tt.c))
			if tt.stored {
				if res[0].Outcome != Stored {
					t.Fatalf("outcome %s (%v), want stored", res[0].Outcome, res[0].Err)
				}
				return
			}
			if res[0].Outcome != Rejected || Reason(res[0].Err) != "bad_content" {
				t.Fatalf("outcome %s, reason %q (%v), want rejected bad_content", res[0].Outcome, Reason(res[0].Err), res[0].Err)
			}
			if n := count(t, l, "SELECT count(*) FROM messages") + count(t, l, "SELECT count(*) FROM statuses"); n != 0 {
				t.Fatalf("%d rows stored", n)
			}
			if n := count(t, l, "SELECT count FROM rejections WHERE reason = 'bad_content'"); n != 1 {
				t.Fatalf("bad_content counted %d times", n)
			}
		})
	}
}
