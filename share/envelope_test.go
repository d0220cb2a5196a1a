package share

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	alice, bob := testKey(t, "alice"), testKey(t, "bob")
	m := compose(t, alice, Head{}, t0, &Pledge{To: bob.ID(), FromSlot: 100, ToSlot: 104, EnergyWh: 1500, ExpirySlot: 100, Nonce: 7})
	if len(m.Bytes()) != HeaderSize+SignatureSize+len(m.Content) {
		t.Fatalf("wire length %d", len(m.Bytes()))
	}
	want := `{"to":"` + bob.ID().String() + `","from_slot":100,"to_slot":104,"energy_wh":1500,"expiry_slot":100,"nonce":7}`
	if string(m.Content) != want {
		t.Fatalf("content\n got %s\nwant %s", m.Content, want)
	}
	got, err := Open(m.Bytes(), testCommunity)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != m.ID() || got.Seq != 1 || !got.Prev.IsZero() || got.Author != alice.ID() || got.Kind != KindPledge || got.CreatedMs != t0.UnixMilli() {
		t.Fatalf("header mismatch: %+v", got.Header)
	}
	if got.ID() != ID(sha256.Sum256(m.Bytes()[:MinMessageSize])) {
		t.Fatal("id is not SHA-256(header||signature)")
	}
	// The signature is Ed25519ctx over exactly the 158 header bytes.
	if err := ed25519.VerifyWithOptions(alice.ID().PublicKey(), m.Bytes()[:HeaderSize], m.Signature[:], &ed25519.Options{Context: MessageContext}); err != nil {
		t.Fatal(err)
	}
	c, err := got.Decode()
	if err != nil {
		t.Fatal(err)
	}
	if p := c.(*Pledge); p.To != bob.ID() || p.EnergyWh != 1500 {
		t.Fatalf("decoded %+v", p)
	}
}

func TestParseRejects(t *testing.T) {
	alice, bob := testKey(t, "alice"), testKey(t, "bob")
	m := compose(t, alice, Head{}, t0, &Announce{Name: "Alice", Addrs: []string{"127.0.0.1:7420"}})
	b := m.Bytes()
	other := DefaultManifest("Elsewhere").ID()
	resign := func(raw []byte) []byte { // re-sign a modified header with alice's key
		sig, _ := alice.signCtx(MessageContext, raw[:HeaderSize])
		copy(raw[HeaderSize:], sig)
		return raw
	}
	tests := []struct {
		name string
		in   []byte
		comm CommunityID
		want error
		msg  string
	}{
		{"empty", nil, testCommunity, ErrTruncated, "truncated"},
		{"short header", b[:100], testCommunity, ErrTruncated, "truncated"},
		{"no content", b[:MinMessageSize], testCommunity, ErrTruncated, "content is 0 bytes"},
		{"truncated content", b[:len(b)-1], testCommunity, ErrTruncated, "truncated"},
		{"trailing", append(bytes.Clone(b), 0), testCommunity, ErrTrailingBytes, "glued"},
		{"magic", mutate(b, func(x []byte) []byte { x[0] = 'X'; return x }), testCommunity, ErrBadMagic, "not a commons message"},
		{"version", mutate(b, func(x []byte) []byte { x[4] = 2; return x }), testCommunity, ErrUnknownVersion, "upgrade"},
		{"hash alg", mutate(b, func(x []byte) []byte { x[5] = 9; return x }), testCommunity, ErrUnknownHashAlg, "hash algorithm 9"},
		{"flags", mutate(b, func(x []byte) []byte { x[offFlags+1] = 1; return resign(x) }), testCommunity, ErrBadFlags, "flags"},
		{"oversized len", mutate(b, func(x []byte) []byte {
			binary.BigEndian.PutUint32(x[offContentLen:], MaxContentSize+1)
			return x
		}), testCommunity, ErrOversized, "8192"},
		{"oversized buffer", append(bytes.Clone(b), make([]byte, MaxMessageSize)...), testCommunity, ErrOversized, "limit"},
		{"seq zero chained", mutate(b, func(x []byte) []byte { binary.BigEndian.PutUint64(x[offSeq:], 0); return resign(x) }), testCommunity, ErrBadSeq, "seq >= 1"},
		{"prev on seq 1", mutate(b, func(x []byte) []byte { x[offPrev] = 1; return resign(x) }), testCommunity, ErrBadSeq, "all-zero prev"},
		{"wrong community", b, other, ErrWrongCommunity, "community"},
		{"bad signature", mutate(b, func(x []byte) []byte { x[HeaderSize+3] ^= 1; return x }), testCommunity, ErrBadSignature, "does not verify"},
		{"header changed", mutate(b, func(x []byte) []byte { x[offCreated+7] ^= 1; return x }), testCommunity, ErrBadSignature, "does not verify"},
		{"author swapped", mutate(b, func(x []byte) []byte { copy(x[offAuthor:], bob.id[:]); return x }), testCommunity, ErrBadSignature, "does not verify"},
		{"content hash", mutate(b, func(x []byte) []byte { x[len(x)-3] ^= 0x20; return x }), testCommunity, ErrContentHash, "content"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(tc.in, tc.comm)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("message %q does not mention %q", err, tc.msg)
			}
			if Reason(err) == "other" {
				t.Fatalf("no reason code for %v", err)
			}
		})
	}
}

func TestWrongContext(t *testing.T) {
	alice := testKey(t, "alice")
	m := compose(t, alice, Head{}, t0, &Announce{Name: "Alice"})
	raw := bytes.Clone(m.Bytes())
	for _, ctx := range []string{"", "energy-commons/msg/v2", InviteContext} {
		var sig []byte
		if ctx == "" {
			sig = ed25519.Sign(alice.priv, raw[:HeaderSize]) // plain Ed25519
		} else {
			sig, _ = alice.signCtx(ctx, raw[:HeaderSize])
		}
		copy(raw[HeaderSize:], sig)
		if _, err := Open(raw, testCommunity); !errors.Is(err, ErrBadSignature) {
			t.Errorf("context %q: got %v, want ErrBadSignature", ctx, err)
		}
	}
}

func TestEphemeralShape(t *testing.T) {
	alice := testKey(t, "alice")
	m := compose(t, alice, Head{Seq: 5, ID: ID{1}}, t0, &Status{SurplusW: 1200, AvgSurplusW: 900})
	if m.Seq != 0 || !m.Prev.IsZero() || !m.Ephemeral() {
		t.Fatalf("status got seq %d prev %s", m.Seq, m.Prev.Short())
	}
	if _, err := Open(m.Bytes(), testCommunity); err != nil {
		t.Fatal(err)
	}
	// A status with seq 1 is rejected, as is a chained kind with seq 0.
	if _, err := alice.Sign(Draft{Community: testCommunity, Seq: 1, Kind: KindStatus, Content: m.Content}); !errors.Is(err, ErrBadSeq) {
		t.Fatalf("status seq 1: %v", err)
	}
	if _, err := alice.Sign(Draft{Community: testCommunity, Seq: 0, Kind: KindAnnounce, Content: []byte(`{"name":"A"}`)}); !errors.Is(err, ErrBadSeq) {
		t.Fatalf("announce seq 0: %v", err)
	}
	// Unknown ephemeral kinds follow the high bit.
	u, err := alice.Sign(Draft{Community: testCommunity, Kind: 0x8123, Content: []byte("future")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(u.Bytes(), testCommunity); err != nil {
		t.Fatalf("unknown ephemeral kind: %v", err)
	}
}

func TestUnknownKindStoredNotInterpreted(t *testing.T) {
	alice := testKey(t, "alice")
	m, err := alice.Sign(Draft{Community: testCommunity, Seq: 1, Created: t0, Kind: 777, Content: []byte("\x00 not json at all")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Open(m.Bytes(), testCommunity)
	if err != nil {
		t.Fatalf("unknown kind rejected: %v", err)
	}
	c, err := got.Decode()
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := c.(*Unknown); !ok || u.K != 777 || string(u.Raw) != "\x00 not json at all" {
		t.Fatalf("got %#v", c)
	}
	if got.Kind.String() != "kind(777)" {
		t.Fatal(got.Kind.String())
	}
	// Its content hash is still checked.
	bad := mutate(m.Bytes(), func(x []byte) []byte { x[len(x)-1] ^= 1; return x })
	if _, err := Open(bad, testCommunity); !errors.Is(err, ErrContentHash) {
		t.Fatalf("got %v", err)
	}
}

func TestSignRefusesOversized(t *testing.T) {
	alice := testKey(t, "alice")
	_, err := alice.Sign(Draft{Community: testCommunity, Seq: 1, Kind: 999, Content: make([]byte, MaxContentSize+1)})
	if !errors.Is(err, ErrOversized) {
		t.Fatalf("got %v", err)
	}
	if _, err := alice.Sign(Draft{Community: testCommunity, Seq: 1, Kind: 999, Content: make([]byte, MaxContentSize)}); err != nil {
		t.Fatalf("max size: %v", err)
	}
}

func TestParseCopiesInput(t *testing.T) {
	alice := testKey(t, "alice")
	m := compose(t, alice, Head{}, t0, &Announce{Name: "Alice"})
	buf := bytes.Clone(m.Bytes())
	got, err := Parse(buf)
	if err != nil {
		t.Fatal(err)
	}
	buf[len(buf)-2] = 'X'
	if err := got.Verify(); err != nil {
		t.Fatalf("message changed with caller's buffer: %v", err)
	}
}

func TestPledgeToSelfRejected(t *testing.T) {
	alice := testKey(t, "alice")
	m := compose(t, alice, Head{}, t0, &Pledge{To: alice.ID(), FromSlot: 10, ToSlot: 11, EnergyWh: 5, ExpirySlot: 10})
	if _, err := Open(m.Bytes(), testCommunity); !errors.Is(err, ErrBadContent) || !strings.Contains(err.Error(), "to itself") {
		t.Fatalf("got %v", err)
	}
}
