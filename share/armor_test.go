package share

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestArmorRoundTrip(t *testing.T) {
	alice, bob := testKey(t, "alice"), testKey(t, "bob")
	a := compose(t, alice, Head{}, t0, &Announce{Name: "Alice", Addrs: []string{"127.0.0.1:7420"}})
	p := compose(t, alice, HeadOf(a), t0, &Pledge{To: bob.ID(), FromSlot: 10, ToSlot: 14, EnergyWh: 1500, ExpirySlot: 10})
	var buf bytes.Buffer
	if err := Armor(&buf, [][]byte{a.Bytes(), p.Bytes()}); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(buf.String(), "\n") {
		if len(line) > 76 && !strings.HasPrefix(line, "-----") {
			t.Fatalf("line of %d chars", len(line))
		}
	}
	// As quoted in a mail reply, with CRLF and a preamble.
	quoted := "From: alice\r\n\r\n" + strings.ReplaceAll("> "+strings.ReplaceAll(buf.String(), "\n", "\n> "), "\n", "\r\n")
	for _, in := range []string{buf.String(), quoted} {
		msgs, err := Dearmor(strings.NewReader(in), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 2 || !bytes.Equal(msgs[0], a.Bytes()) || !bytes.Equal(msgs[1], p.Bytes()) {
			t.Fatalf("got %d messages", len(msgs))
		}
		for _, b := range msgs {
			if _, err := Open(b, testCommunity); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Limits and damage.
	if _, err := Dearmor(strings.NewReader(buf.String()), 1); !errors.Is(err, ErrOversized) {
		t.Fatalf("limit: %v", err)
	}
	cut := buf.String()[:buf.Len()-len(ArmorEnd)-2]
	if _, err := Dearmor(strings.NewReader(cut), 10); !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), "without") {
		t.Fatalf("cut: %v", err)
	}
	if _, err := Dearmor(strings.NewReader("hello"), 10); !errors.Is(err, ErrTruncated) {
		t.Fatalf("no block: %v", err)
	}
	bad := strings.Replace(buf.String(), "\n", "\n*", 2)
	if _, err := Dearmor(strings.NewReader(bad), 10); !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), "base64") {
		t.Fatalf("damaged: %v", err)
	}
}
