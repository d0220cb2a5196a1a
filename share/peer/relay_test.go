package peer

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/commons-energy/commons/share"
)

// TestRelayUnknownEphemeral: A's ephemeral message of a kind this version
// does not interpret reaches C through B, which stores it as the latest of
// its kind and relays it (docs/PROTOCOL.md §6.5, §13); C cannot reach A
// directly. A second, newer one replaces it on the way; an older one is
// not relayed.
func TestRelayUnknownEphemeral(t *testing.T) {
	ctx := context.Background()
	a, b, c := newBox(t, "ledger", nil, Limits{}), newBox(t, "ledger", nil, Limits{}), newBox(t, "ledger", nil, Limits{})
	befriend(a, b)
	befriend(b, c)
	c.nb.add(a.id(), "127.0.0.1:1") // C knows A but cannot reach it
	a.nb.add(c.id(), "127.0.0.1:1")
	slow := SyncConfig{Interval: time.Hour, Refresh: 50 * time.Millisecond}
	for _, x := range []*box{a, b, c} {
		x.startSync(t, slow)
	}
	waitFor(t, "first pulls", func() bool { return pulledOnce(b.syncer, a.id()) && pulledOnce(b.syncer, c.id()) })

	const kind = share.Kind(0x9000)
	kept := func(x *box) []byte {
		raws, err := x.store.(ledgerTestStore).L.Ephemerals(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range raws {
			if m, err := share.Parse(raw); err == nil && m.Author == a.id() && m.Kind == kind {
				return raw
			}
		}
		return nil
	}
	first := a.sign(t, share.Head{}, kind, []byte(`{"future":1}`))
	a.syncer.PublishStatus(first)
	waitFor(t, "C to hold A's message through B", func() bool { return bytes.Equal(kept(c), first) })
	second := a.sign(t, share.Head{}, kind, []byte(`{"future":2}`))
	a.syncer.PublishStatus(second)
	waitFor(t, "C to hold A's newer message", func() bool { return bytes.Equal(kept(c), second) })
	if !bytes.Equal(kept(b), second) {
		t.Fatal("B does not keep the newer message")
	}
}
