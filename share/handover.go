package share

import (
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Kinds of key succession (docs/PROTOCOL.md §1.1, §8.9–§8.12). A household
// replaces its key with a handover signed by the old and the new key
// (rotation), or, when the old key is lost, stolen or forked, with a
// recovery signed by the recovery key it announced beforehand.
const (
	KindHandover    Kind = 2 // in the old key's feed: the key is handed to a new one; its last message
	KindRecoveryKey Kind = 3 // announces the household's offline recovery key; once per feed
	KindSuccessor   Kind = 4 // seq 1 of the new key's feed after a handover: names it
	KindRecover     Kind = 5 // seq 1 of the new key's feed after a recovery: signed by the recovery key
)

// Signature contexts of succession signatures made inside content.
const (
	// HandoverContext is the Ed25519ctx context of the new key's signature
	// in a handover.
	HandoverContext = "energy-commons/handover/v1"
	// RecoverContext is the Ed25519ctx context of the recovery key's
	// signature in a recover message.
	RecoverContext = "energy-commons/recover/v1"
)

// ErrBadHandover rejects a succession message that does not hold: a
// handover not signed by its new key, a recovery not signed by the
// announced recovery key, a second recovery key, a recovery point this
// store cannot confirm. Reason code "bad_handover".
var ErrBadHandover = errors.New("bad handover")

// ErrRotated rejects a message of a key that was handed over (or
// recovered from) with a seq after the handover point. Reason code
// "rotated".
var ErrRotated = errors.New("key rotated")

// Sig is an Ed25519 signature carried in content, written as 128
// lowercase hex digits.
type Sig [ed25519.SignatureSize]byte

// MarshalText implements encoding.TextMarshaler.
func (s Sig) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(s[:])), nil }

// UnmarshalText implements encoding.TextUnmarshaler. Upper case decodes
// but is not canonical, so content using it is rejected.
func (s *Sig) UnmarshalText(b []byte) error {
	if len(b) != 2*len(s) {
		return fmt.Errorf("signature: want %d hex digits, got %d", 2*len(s), len(b))
	}
	if _, err := hex.Decode(s[:], []byte(strings.ToLower(string(b)))); err != nil {
		return fmt.Errorf("signature: not hex: %v", err)
	}
	return nil
}

// Handover hands the author's key over to New (kind 2). NewSig is New's
// Ed25519ctx signature (HandoverContext) over HandoverPayload of the
// handover's own position, so both keys sign the handover: the old one
// through the envelope, the new one here. It is the old key's last
// message: later seqs of the old key are refused (ErrRotated).
type Handover struct {
	New    HouseholdID `json:"new"`
	NewSig Sig         `json:"new_sig"`
}

// RecoveryKey announces the household's recovery key (kind 3), the public
// half of a key kept offline that may sign a Recover for this feed. A feed
// holds at most one.
type RecoveryKey struct {
	Key HouseholdID `json:"key"`
}

// Successor starts a new key's feed after a handover (kind 4, seq 1 only):
// it names the old key and the handover message.
type Successor struct {
	Old      HouseholdID `json:"old"`
	Handover ID          `json:"handover"`
}

// Recover starts a new key's feed after a recovery (kind 5, seq 1 only).
// The old key's history up to AtSeq (the message AtID) stays; its messages
// after AtSeq are refused and dropped. RecoverySig is the recovery key's
// Ed25519ctx signature (RecoverContext) over RecoverPayload.
type Recover struct {
	Old         HouseholdID `json:"old"`
	AtSeq       int64       `json:"at_seq"`
	AtID        ID          `json:"at_id"`
	Recovery    HouseholdID `json:"recovery"`
	RecoverySig Sig         `json:"recovery_sig"`
}

// Kind returns KindHandover.
func (*Handover) Kind() Kind { return KindHandover }

// Kind returns KindRecoveryKey.
func (*RecoveryKey) Kind() Kind { return KindRecoveryKey }

// Kind returns KindSuccessor.
func (*Successor) Kind() Kind { return KindSuccessor }

// Kind returns KindRecover.
func (*Recover) Kind() Kind { return KindRecover }

func (c *Handover) validate() error {
	if c.New.IsZero() {
		return fmt.Errorf("new is missing")
	}
	return nil
}

func (c *RecoveryKey) validate() error {
	if c.Key.IsZero() {
		return fmt.Errorf("key is missing")
	}
	return nil
}

func (c *Successor) validate() error {
	if c.Old.IsZero() {
		return fmt.Errorf("old is missing")
	}
	if c.Handover.IsZero() {
		return fmt.Errorf("handover is missing")
	}
	return nil
}

func (c *Recover) validate() error {
	if c.Old.IsZero() || c.Recovery.IsZero() {
		return fmt.Errorf("old and recovery are required")
	}
	if err := checkInt("at_seq", c.AtSeq, 1, MaxSafeInt); err != nil {
		return err
	}
	if c.AtID.IsZero() {
		return fmt.Errorf("at_id is missing")
	}
	return nil
}

// HandoverPayload is what the new key signs in a handover: community ||
// old key || seq (u64) || prev || new key, the handover's own place in
// the old key's chain (136 bytes).
func HandoverPayload(community CommunityID, old HouseholdID, seq uint64, prev ID, newKey HouseholdID) []byte {
	b := make([]byte, 0, 136)
	b = append(b, community[:]...)
	b = append(b, old[:]...)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = append(b, prev[:]...)
	return append(b, newKey[:]...)
}

// RecoverPayload is what the recovery key signs in a recover message:
// community || old key || at_seq (u64) || at_id || new key (136 bytes).
func RecoverPayload(community CommunityID, old HouseholdID, atSeq uint64, atID ID, newKey HouseholdID) []byte {
	return HandoverPayload(community, old, atSeq, atID, newKey)
}

// SignHandover returns the handover content by which the key at the
// old head hands over to next: next signs the handover's position (the
// old key's seq head.Seq+1 after head.ID). Sign it with the old key after
// head (Compose).
func SignHandover(community CommunityID, old HouseholdID, head Head, next *Identity) (*Handover, error) {
	sig, err := next.signCtx(HandoverContext, HandoverPayload(community, old, head.Seq+1, head.ID, next.ID()))
	if err != nil {
		return nil, fmt.Errorf("sign handover: %w", err)
	}
	h := &Handover{New: next.ID()}
	copy(h.NewSig[:], sig)
	return h, nil
}

// SignRecover returns the content of the first message of next's feed
// that recovers the household from old, keeping old's history up to the
// message at (seq, id), signed by the recovery key.
func SignRecover(community CommunityID, old HouseholdID, atSeq uint64, atID ID, recovery, next *Identity) (*Recover, error) {
	sig, err := recovery.signCtx(RecoverContext, RecoverPayload(community, old, atSeq, atID, next.ID()))
	if err != nil {
		return nil, fmt.Errorf("sign recovery: %w", err)
	}
	r := &Recover{Old: old, AtSeq: int64(atSeq), AtID: atID, Recovery: recovery.ID()}
	copy(r.RecoverySig[:], sig)
	return r, nil
}

// checkSuccession applies the rules of the succession kinds that need the
// envelope: who signs what, and where in the chain. A failure wraps
// ErrBadHandover.
func checkSuccession(m *Message, c Content) error {
	switch c := c.(type) {
	case *Handover:
		if c.New == m.Author {
			return reject(ErrBadHandover, "message %s: handover of %s to itself", m.id.Short(), m.Author.Short())
		}
		if ed25519.VerifyWithOptions(c.New.PublicKey(), HandoverPayload(m.Community, m.Author, m.Seq, m.Prev, c.New), c.NewSig[:], &ed25519.Options{Context: HandoverContext}) != nil {
			return reject(ErrBadHandover, "message %s: handover of %s to %s is not signed by the new key: a handover needs the signatures of both keys",
				m.id.Short(), m.Author.Short(), c.New.Short())
		}
	case *RecoveryKey:
		if c.Key == m.Author {
			return reject(ErrBadHandover, "message %s: the recovery key of %s is its own key: it must be another, kept offline", m.id.Short(), m.Author.Short())
		}
	case *Successor:
		if m.Seq != 1 || c.Old == m.Author {
			return reject(ErrBadHandover, "message %s: a successor message must be seq 1 of a new key, is seq %d of %s succeeding %s", m.id.Short(), m.Seq, m.Author.Short(), c.Old.Short())
		}
	case *Recover:
		if m.Seq != 1 || c.Old == m.Author || c.Recovery == m.Author || c.Recovery == c.Old {
			return reject(ErrBadHandover, "message %s: a recover message must be seq 1 of a new key distinct from the old and the recovery key", m.id.Short())
		}
		if ed25519.VerifyWithOptions(c.Recovery.PublicKey(), RecoverPayload(m.Community, c.Old, uint64(c.AtSeq), c.AtID, m.Author), c.RecoverySig[:], &ed25519.Options{Context: RecoverContext}) != nil {
			return reject(ErrBadHandover, "message %s: recovery of %s by %s is not signed by recovery key %s",
				m.id.Short(), c.Old.Short(), m.Author.Short(), c.Recovery.Short())
		}
	}
	return nil
}

// sig reads a signature of 128 lowercase hex digits.
func (r *canonReader) sig() Sig {
	const what = "a signature of 128 lowercase hex digits"
	var s Sig
	v := r.quoted(2*len(s), what)
	if v == nil {
		return s
	}
	for _, c := range v {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			r.fail("want %s", what)
			return s
		}
	}
	hex.Decode(s[:], v)
	return s
}

// readSuccession is readCanonical for the succession kinds; nil for any
// other kind.
func readSuccession(k Kind, r *canonReader) Content {
	switch k {
	case KindHandover:
		x := &Handover{}
		r.field("new", true)
		x.New = r.household()
		r.field("new_sig", false)
		x.NewSig = r.sig()
		return x
	case KindRecoveryKey:
		x := &RecoveryKey{}
		r.field("key", true)
		x.Key = r.household()
		return x
	case KindSuccessor:
		x := &Successor{}
		r.field("old", true)
		x.Old = r.household()
		r.field("handover", false)
		x.Handover = r.id()
		return x
	case KindRecover:
		x := &Recover{}
		r.field("old", true)
		x.Old = r.household()
		r.field("at_seq", false)
		x.AtSeq = r.int()
		r.field("at_id", false)
		x.AtID = r.id()
		r.field("recovery", false)
		x.Recovery = r.household()
		r.field("recovery_sig", false)
		x.RecoverySig = r.sig()
		return x
	}
	return nil
}

// StartsSuccession reports whether m is the first message of a key that
// continues another household's (a successor or recover message at seq
// 1, docs/PROTOCOL.md §1.1). A receiver admits it from a key it does not
// know yet, and checks it against the old key's feed.
func (m *Message) StartsSuccession() bool {
	return m.Seq == 1 && (m.Kind == KindSuccessor || m.Kind == KindRecover)
}
