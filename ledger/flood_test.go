package ledger

import (
	"strings"
	"testing"

	"github.com/commons-energy/commons/share"
)

// TestFloodOfUnknownKindBounded replays issue 9's flood with the default
// options: a known neighbour sends valid chained messages of a kind this
// version does not know, 8 KiB each. Only about 1 MiB of them is stored
// (the default sub-quota for unknown kinds), the rest is refused, and the
// household's own messages are still stored afterwards.
func TestFloodOfUnknownKindBounded(t *testing.T) {
	self, bob := newHousehold(t, 1), newHousehold(t, 2)
	l, _ := openTest(t, self.ID())
	addNeighbour(t, l, bob, "Bob")
	content := &share.Unknown{K: 99, Raw: []byte(`{"x":"` + strings.Repeat("x", 8000) + `"}`)}
	for range 4 {
		batch := make([]*share.Message, 64)
		for i := range batch {
			batch[i] = bob.next(t, content)
		}
		mustAppend(t, l, batch...) // refusals are results, not errors
	}
	const limit = 1 << 20 // the default unknown-kind sub-quota
	if got := count(t, l, "SELECT coalesce(sum(length(raw)), 0) FROM messages WHERE author = ?", bob.ID().String()); got > limit {
		t.Errorf("the flood stored %d bytes of Bob's unknown-kind messages, want at most %d", got, limit)
	}
	if got := count(t, l, "SELECT coalesce(sum(count), 0) FROM rejections WHERE reason = 'quota'"); got == 0 {
		t.Errorf("no quota rejection counted")
	}
	res := mustAppend(t, l, self.next(t, announce("Me")))
	if res[0].Outcome != Stored {
		t.Errorf("own message after the flood: %v %v", res[0].Outcome, res[0].Err)
	}
}
