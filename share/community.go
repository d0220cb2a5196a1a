package share

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"time"
)

// Default community settings.
const (
	DefaultSlotLen = 900        // seconds: 15-minute settlement slots
	DefaultKey     = "pro-rata" // allocation key name
	manifestV1     = 1
	manifestV2     = 2
	// GenesisBytes is the size of a community's random genesis value.
	GenesisBytes = 16
)

// Manifest describes a community. Its id is SHA-256 of its canonical JSON:
// {"v":2,"name":...,"slot_len_s":...,"key":...,"genesis":...}, or for a
// version 1 community, made before communities had a genesis value,
// {"v":1,"name":...,"slot_len_s":...,"key":...}.
type Manifest struct {
	Name    string // display name, 1..64 bytes
	SlotLen int64  // settlement slot length in seconds; divides 86400
	Key     string // allocation key name, e.g. "pro-rata"
	// Genesis is the random value that makes the community unlike any
	// other with the same settings: 32 lowercase hex digits (NewGenesis),
	// drawn once by the household that starts the community and carried
	// by every invite. "" is a version 1 community.
	Genesis string
}

type manifestJSON struct {
	V       int    `json:"v"`
	Name    string `json:"name"`
	SlotLen int64  `json:"slot_len_s"`
	Key     string `json:"key"`
	Genesis string `json:"genesis,omitempty"`
}

// NewGenesis draws a community genesis value from the system's
// cryptographic random source.
func NewGenesis() (string, error) {
	var b [GenesisBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("draw community genesis: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// validGenesis reports whether g is 32 lowercase hex digits.
func validGenesis(g string) bool {
	if len(g) != 2*GenesisBytes {
		return false
	}
	for i := 0; i < len(g); i++ {
		if c := g[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
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
	if m.Genesis != "" && !validGenesis(m.Genesis) {
		return reject(ErrBadContent, "community manifest: genesis %s is not %d lowercase hex digits", quoteShort(m.Genesis), 2*GenesisBytes)
	}
	return nil
}

// Canonical returns the canonical JSON bytes the community id hashes.
func (m Manifest) Canonical() []byte {
	v := manifestV1
	if m.Genesis != "" {
		v = manifestV2
	}
	b, err := canonicalJSON(manifestJSON{V: v, Name: m.Name, SlotLen: m.SlotLen, Key: m.Key, Genesis: m.Genesis})
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

// SlotStart returns the instant slot starts, in UTC. Slots so far from
// the epoch that time.Time cannot hold their start saturate at ±2^62
// seconds (some 146 billion years) from the epoch.
func (m Manifest) SlotStart(slot int64) time.Time {
	return time.Unix(min(max(satMul(slot, m.SlotLen), -maxUnixSeconds), maxUnixSeconds), 0).UTC()
}

// maxUnixSeconds is the largest second count SlotStart hands time.Unix,
// which overflows near ±2^63 seconds.
const maxUnixSeconds = 1 << 62

// SlotStartMs returns the instant slot starts in ms since the epoch,
// saturating at math.MinInt64 and math.MaxInt64 like SlotStart.
func (m Manifest) SlotStartMs(slot int64) int64 { return satMul(satMul(slot, m.SlotLen), 1000) }

// satMul returns a×b for b ≥ 0, clamped to the int64 range.
func satMul(a, b int64) int64 {
	switch {
	case b <= 0:
		return a * b
	case a > math.MaxInt64/b:
		return math.MaxInt64
	case a < math.MinInt64/b:
		return math.MinInt64
	}
	return a * b
}

// MaxSlotSeconds is the end of protocol time, 2200-01-01T00:00:00Z in Unix
// seconds: every slot boundary a message names lies at or before it
// (docs/PROTOCOL.md §4). It keeps every slot a message can name a
// representable RFC 3339 instant (four-digit years) and its millisecond
// count far inside the exact integers of JSON and float64 readers.
const MaxSlotSeconds int64 = 7258118400

// EndOfTime is MaxSlotSeconds as an instant.
var EndOfTime = time.Unix(MaxSlotSeconds, 0).UTC()

// MaxSlot returns the community's last slot boundary: the slot that
// starts at MaxSlotSeconds. No slot range a message names may end after
// it. A manifest without a valid slot length admits no slot.
func (m Manifest) MaxSlot() int64 {
	if m.SlotLen <= 0 {
		return 0
	}
	return MaxSlotSeconds / m.SlotLen
}

// CheckSlots applies the community's time bound to msg's content (§4, step
// 10 of §5): the end of every slot range it names (a pledge's or settle's
// to_slot, a report's from_slot plus its entries, a status forecast's
// forecast_from plus its entries) is at most MaxSlot, so every slot
// number it names starts at or before EndOfTime. Unknown kinds and kinds
// without slots pass. A failure wraps ErrBadContent.
func (m Manifest) CheckSlots(msg *Message) error {
	if !msg.Kind.Known() {
		return nil
	}
	c, err := msg.Decode()
	if err != nil {
		return err
	}
	var field string
	var end int64
	switch x := c.(type) {
	case *Pledge:
		field, end = "to_slot", x.ToSlot
	case *Settle:
		field, end = "to_slot", x.ToSlot
	case *Report:
		field, end = "from_slot + entries", x.FromSlot+int64(len(x.ExportWh))
	case *SealedReport:
		field, end = "from_slot + slots", x.FromSlot+x.Slots
	case *Seen:
		field, end = "slot", x.Slot
	case *Status:
		if len(x.ForecastWh) == 0 {
			return nil
		}
		field, end = "forecast_from + entries", x.ForecastFrom+int64(len(x.ForecastWh))
	default:
		return nil
	}
	if max := m.MaxSlot(); end > max {
		return reject(ErrBadContent, "message %s: %s content: %s is slot %d, after the end of protocol time (slot %d starts %s with %d-second slots)",
			msg.id.Short(), msg.Kind, field, end, max, EndOfTime.Format(time.RFC3339), m.SlotLen)
	}
	return nil
}
