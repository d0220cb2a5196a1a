package share

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"time"
)

// testKey returns a deterministic identity for name.
func testKey(t testing.TB, name string) *Identity {
	t.Helper()
	seed := sha256.Sum256([]byte("commons test key " + name))
	k, err := IdentityFromSeed(seed[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var (
	testManifest  = DefaultManifest("Rue Test")
	testCommunity = testManifest.ID()
	// t0 is a fixed instant: 2025-06-01 10:00 UTC (a slot boundary).
	t0 = time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
)

// compose signs c as k's next message after head or fails the test.
func compose(t testing.TB, k *Identity, head Head, created time.Time, c Content) *Message {
	t.Helper()
	m, err := k.Compose(testCommunity, head, created, c)
	if err != nil {
		t.Fatalf("compose %s: %v", c.Kind(), err)
	}
	return m
}

// mutate returns a copy of b with f applied.
func mutate(b []byte, f func([]byte) []byte) []byte { return f(bytes.Clone(b)) }
