package share

import (
	"errors"
	"strings"
	"testing"
)

// TestSuccessionContent: the succession kinds decode only in canonical
// form, and their signatures are checked with the envelope (Open).
func TestSuccessionContent(t *testing.T) {
	alice, carol, rk := testKey(t, "alice"), testKey(t, "carol"), testKey(t, "recovery")
	a1 := compose(t, alice, Head{}, t0, &Announce{Name: "Alice"})
	hc, err := SignHandover(testCommunity, alice.ID(), HeadOf(a1), carol)
	if err != nil {
		t.Fatal(err)
	}
	h := compose(t, alice, HeadOf(a1), t0, hc)
	if _, err := Open(h.Bytes(), testCommunity); err != nil {
		t.Fatalf("genuine handover: %v", err)
	}
	good := string(h.Content)
	for _, tc := range []struct {
		name    string
		kind    Kind
		content string
	}{
		{"upper-case signature", KindHandover, strings.Replace(good, hexLower(hc.NewSig[:]), strings.ToUpper(hexLower(hc.NewSig[:])), 1)},
		{"short signature", KindHandover, `{"new":"` + carol.ID().String() + `","new_sig":"00"}`},
		{"fields swapped", KindHandover, `{"new_sig":"` + hexLower(hc.NewSig[:]) + `","new":"` + carol.ID().String() + `"}`},
		{"recovery key missing", KindRecoveryKey, `{}`},
		{"successor without handover", KindSuccessor, `{"old":"` + alice.ID().String() + `"}`},
		{"recover at seq 0", KindRecover, `{"old":"` + alice.ID().String() + `","at_seq":0,"at_id":"` + a1.ID().String() + `","recovery":"` + rk.ID().String() + `","recovery_sig":"` + hexLower(hc.NewSig[:]) + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeContent(tc.kind, []byte(tc.content)); !errors.Is(err, ErrBadContent) {
				t.Fatalf("decoded %s: %v", tc.content, err)
			}
		})
	}
	// A recover message verifies against the recovery key it names; a
	// successor or recover message only at seq 1.
	rc, err := SignRecover(testCommunity, alice.ID(), 1, a1.ID(), rk, carol)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(compose(t, carol, Head{}, t0, rc).Bytes(), testCommunity); err != nil {
		t.Fatalf("genuine recover: %v", err)
	}
	forged := *rc
	forged.Recovery = alice.ID()
	if _, err := Open(compose(t, carol, Head{}, t0, &forged).Bytes(), testCommunity); Reason(err) != "bad_handover" {
		t.Fatalf("recover signed by another key: %v", err)
	}
	c1 := compose(t, carol, Head{}, t0, &Announce{Name: "Carol"})
	if _, err := Open(compose(t, carol, HeadOf(c1), t0, rc).Bytes(), testCommunity); Reason(err) != "bad_handover" {
		t.Fatalf("recover at seq 2: %v", err)
	}
	// The old key's message after its handover is refused by the feed.
	f := Feed{Author: alice.ID(), Head: HeadOf(h), Closed: h.Seq, Successor: carol.ID()}
	late := compose(t, alice, HeadOf(h), t0, &Announce{Name: "late"})
	if err := f.Check(late, func(uint64) (ID, bool) { return ID{}, false }); Reason(err) != "rotated" {
		t.Fatalf("after the handover: %v", err)
	}
}

func hexLower(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}
