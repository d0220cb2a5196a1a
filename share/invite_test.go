package share

import (
	"errors"
	"strings"
	"testing"
)

func TestInviteRoundTrip(t *testing.T) {
	alice := testKey(t, "alice")
	s, err := alice.Invite("Alice", []string{"192.0.2.7:7420", "[2001:db8::7]:7420"}, testManifest)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s, "commons1") || strings.ContainsAny(s, "=+/ ") {
		t.Fatalf("%q", s)
	}
	for _, in := range []string{s, strings.ToUpper(s), "  " + s[:40] + "\n" + s[40:] + "\r\n"} {
		iv, err := ParseInvite(in)
		if err != nil {
			t.Fatal(err)
		}
		if iv.Household != alice.ID() || iv.Name != "Alice" || len(iv.Addrs) != 2 || iv.Addrs[1] != "[2001:db8::7]:7420" || iv.CommunityID() != testCommunity {
			t.Fatalf("%+v", iv)
		}
	}
}

func TestInviteRejects(t *testing.T) {
	alice := testKey(t, "alice")
	s, err := alice.Invite("Alice", []string{"192.0.2.7:7420"}, testManifest)
	if err != nil {
		t.Fatal(err)
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
		{"no prefix", s[8:], "must start with commons1"},
		{"future version", "commons2" + s[8:], "upgrade"},
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
