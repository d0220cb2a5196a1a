package share

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// testManifestV2 is testManifest with a genesis value: a version 2
// community, whose invites start with commons2.
var testManifestV2 = Manifest{Name: testManifest.Name, SlotLen: testManifest.SlotLen, Key: testManifest.Key, Genesis: "00112233445566778899aabbccddeeff"}

func TestInviteRoundTrip(t *testing.T) {
	alice := testKey(t, "alice")
	for _, tc := range []struct {
		m      Manifest
		prefix string
	}{{testManifest, "commons1"}, {testManifestV2, "commons2"}} {
		s, err := alice.Invite("Alice", []string{"192.0.2.7:7420", "[2001:db8::7]:7420"}, tc.m)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(s, tc.prefix) || strings.ContainsAny(s, "=+/ ") {
			t.Fatalf("%q", s)
		}
		for _, in := range []string{s, strings.ToUpper(s), "  " + s[:40] + "\n" + s[40:] + "\r\n"} {
			iv, err := ParseInvite(in)
			if err != nil {
				t.Fatal(err)
			}
			if iv.Household != alice.ID() || iv.Name != "Alice" || len(iv.Addrs) != 2 || iv.Addrs[1] != "[2001:db8::7]:7420" || iv.Community != tc.m || iv.CommunityID() != tc.m.ID() {
				t.Fatalf("%+v", iv)
			}
		}
	}
	if testManifestV2.ID() == testManifest.ID() {
		t.Fatal("the genesis value does not change the community id")
	}
}

// Two communities made with the same settings are different communities:
// each draws its own genesis value.
func TestNewGenesis(t *testing.T) {
	a, err := NewGenesis()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewGenesis()
	if err != nil {
		t.Fatal(err)
	}
	ma, mb := DefaultManifest("commons"), DefaultManifest("commons")
	ma.Genesis, mb.Genesis = a, b
	if a == b || ma.ID() == mb.ID() || ma.Validate() != nil || mb.Validate() != nil {
		t.Fatalf("genesis %s and %s, ids %s and %s", a, b, ma.ID(), mb.ID())
	}
	for _, bad := range []string{"00", "00112233445566778899AABBCCDDEEFF", "00112233445566778899aabbccddeefg", "00112233445566778899aabbccddeeff00"} {
		m := testManifest
		m.Genesis = bad
		if err := m.Validate(); !errors.Is(err, ErrBadContent) {
			t.Errorf("genesis %q: %v", bad, err)
		}
	}
	if got := string(testManifestV2.Canonical()); got != `{"v":2,"name":"`+testManifest.Name+`","slot_len_s":900,"key":"pro-rata","genesis":"00112233445566778899aabbccddeeff"}` {
		t.Errorf("canonical v2 manifest %s", got)
	}
}

func TestInviteRejects(t *testing.T) {
	for _, m := range []Manifest{testManifest, testManifestV2} {
		t.Run("v"+strconv.Itoa(len(m.Genesis)/32+1), func(t *testing.T) { testInviteRejects(t, m) })
	}
}

func testInviteRejects(t *testing.T, m Manifest) {
	alice := testKey(t, "alice")
	s, err := alice.Invite("Alice", []string{"192.0.2.7:7420"}, m)
	if err != nil {
		t.Fatal(err)
	}
	other := "commons2"
	if strings.HasPrefix(s, other) {
		other = "commons1"
	}
	swap := func(i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	tests := []struct {
		name, in, msg string
	}{
		{"empty", "", "empty"},
		{"no prefix", s[8:], "must start with commons2"},
		{"future version", "commons3" + s[8:], "upgrade"},
		{"other version's prefix", other + s[8:], "does not verify"},
		{"bad char", s[:20] + "1" + s[21:], `'1' at position 21`},
		{"truncated", s[:30], "truncated"},
		{"cut end", s[:len(s)-10], "does not verify"},
		{"lost char", s[:50] + s[51:], ""},
		{"typo start", swap(10), "does not verify"},
		{"typo middle", swap(len(s) / 2), "does not verify"},
		{"typo end", swap(len(s) - 3), ""},
		{"huge", s + strings.Repeat("a", 3000), "limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseInvite(tc.in)
			if !errors.Is(err, ErrBadInvite) {
				t.Fatalf("got %v", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("%q does not mention %q", err, tc.msg)
			}
		})
	}
	// Every single-character substitution is caught.
	for i := len(InvitePrefix); i < len(s); i++ {
		if _, err := ParseInvite(swap(i)); err == nil {
			t.Fatalf("typo at %d accepted", i)
		}
	}
}

func TestInviteRefusesBadFields(t *testing.T) {
	alice := testKey(t, "alice")
	if _, err := alice.Invite("", nil, testManifest); !errors.Is(err, ErrBadInvite) {
		t.Fatalf("got %v", err)
	}
	if _, err := alice.Invite("A", []string{"has space"}, testManifest); !errors.Is(err, ErrBadInvite) {
		t.Fatalf("got %v", err)
	}
	m := testManifest
	m.SlotLen = 7
	if _, err := alice.Invite("A", nil, m); !errors.Is(err, ErrBadInvite) {
		t.Fatalf("got %v", err)
	}
}
