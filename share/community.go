package share

import (
	"crypto/sha256"
	"fmt"
	"time"
)

// Default community settings.
const (
	DefaultSlotLen = 900        // seconds: 15-minute settlement slots
	DefaultKey     = "pro-rata" // allocation key name
	manifestV      = 1
)

// Manifest describes a community. Its id is SHA-256 of its canonical JSON:
// {"v":1,"name":...,"slot_len_s":...,"key":...}.
type Manifest struct {
	Name    string // display name, 1..64 bytes
	SlotLen int64  // settlement slot length in seconds; divides 86400
	Key     string // allocation key name, e.g. "pro-rata"
}

type manifestJSON struct {
	V       int    `json:"v"`
	Name    string `json:"name"`
	SlotLen int64  `json:"slot_len_s"`
	Key     string `json:"key"`
}

// DefaultManifest returns a community named name with 15-minute slots and
// the pro-rata allocation key.
func DefaultManifest(name string) Manifest {
	return Manifest{Name: name, SlotLen: DefaultSlotLen, Key: DefaultKey}
}

// Validate checks the manifest's fields.
func (m Manifest) Validate() error {
	if err := checkText("community name", m.Name, MaxNameBytes, true); err != nil {
		return reject(ErrBadContent, "community manifest: %v", err)
	}
	if m.SlotLen < 60 || m.SlotLen > 86400 || 86400%m.SlotLen != 0 {
		return reject(ErrBadContent, "community manifest: slot length %d s must be 60..86400 and divide a day (900 = 15 min)", m.SlotLen)
	}
	if err := checkKeyName(m.Key); err != nil {
		return reject(ErrBadContent, "community manifest: %v", err)
	}
	return nil
}

// Canonical returns the canonical JSON bytes the community id hashes.
func (m Manifest) Canonical() []byte {
	b, err := canonicalJSON(manifestJSON{V: manifestV, Name: m.Name, SlotLen: m.SlotLen, Key: m.Key})
	if err != nil {
		panic(fmt.Sprintf("share: encode manifest: %v", err)) // cannot happen: plain struct
	}
	return b
}

// ID returns the community id, SHA-256 of Canonical().
func (m Manifest) ID() CommunityID { return sha256.Sum256(m.Canonical()) }

// SlotDuration returns the slot length as a duration.
func (m Manifest) SlotDuration() time.Duration { return time.Duration(m.SlotLen) * time.Second }

// SlotOf returns the slot containing t: floor(unix seconds / slot length).
func (m Manifest) SlotOf(t time.Time) int64 {
	s := t.Unix()
	q := s / m.SlotLen
	if s%m.SlotLen < 0 {
		q--
	}
	return q
}

// SlotStart returns the instant slot starts, in UTC.
func (m Manifest) SlotStart(slot int64) time.Time { return time.Unix(slot*m.SlotLen, 0).UTC() }

// SlotStartMs returns the instant slot starts in ms since the epoch.
func (m Manifest) SlotStartMs(slot int64) int64 { return slot * m.SlotLen * 1000 }
