package ledger

import (
	"bytes"
	"context"
	"testing"

	"github.com/commons-energy/commons/share"
)

// FuzzAppend feeds arbitrary bytes to Append: it must never panic, store
// only what share.Open accepts, store it verbatim, and count every
// rejection.
func FuzzAppend(f *testing.F) {
	self, bob := newHousehold(f, 1), newHousehold(f, 2)
	f.Add(self.next(f, announce("a")).Bytes())
	f.Add(self.next(f, announce("b")).Bytes())
	f.Add(bob.next(f, &share.Status{SurplusW: 3}).Bytes())
	f.Add(bob.next(f, announce("bob")).Bytes())
	f.Add([]byte("ECM1"))
	l, _ := openTest(f, self.ID())
	if err := l.AddNeighbour(context.Background(), Neighbour{ID: bob.ID(), Name: "bob"}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ctx := context.Background()
		before, _ := l.Count(ctx)
		rejBefore := totalRejections(t, l)
		res, err := l.Append(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		r := res[0]
		after, _ := l.Count(ctx)
		switch r.Outcome {
		case Stored:
			if _, err := share.Open(raw, testCommunity); err != nil {
				t.Fatalf("stored a message share.Open rejects: %v", err)
			}
			stored, err := l.Message(ctx, r.ID())
			if err != nil || !bytes.Equal(stored, raw) {
				t.Fatalf("stored bytes differ (err %v)", err)
			}
			if after != before+1 {
				t.Fatalf("count %d -> %d on Stored", before, after)
			}
		case Rejected:
			if after != before {
				t.Fatalf("count %d -> %d on Rejected", before, after)
			}
			if r.Err == nil || Reason(r.Err) == "" {
				t.Fatalf("rejected without a reason")
			}
			if got := totalRejections(t, l); got != rejBefore+1 {
				t.Fatalf("rejections %d -> %d", rejBefore, got)
			}
		default:
			if after != before {
				t.Fatalf("count %d -> %d on %v", before, after, r.Outcome)
			}
		}
	})
}

func totalRejections(t *testing.T, l *Ledger) int64 {
	rs, err := l.Rejections(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, r := range rs {
		n += r.Count
	}
	return n
}
