package share

import (
	"bytes"
	"math"
	"time"
)

// MaxClockSkew is how far in the future a message's created_ms may be,
// relative to the receiving box's clock, when it is received.
const MaxClockSkew = 10 * time.Minute

// Head is the latest stored message of an author's chain. The zero Head
// means nothing is stored yet.
type Head struct {
	Seq       uint64
	ID        ID
	CreatedMs int64
}

// HeadOf returns the head a chained message m becomes once appended.
func HeadOf(m *Message) Head { return Head{Seq: m.Seq, ID: m.id, CreatedMs: m.CreatedMs} }

// Feed is what a store knows about one author's chain.
type Feed struct {
	Author HouseholdID
	Head   Head
	Frozen bool // a fork was proven; accept nothing new from this author
	// Closed is the last seq of the author's key when it was handed over
	// (the handover's seq) or recovered from (the recovery point): later
	// seqs are refused (ErrRotated). 0 while the key is current.
	Closed uint64
	// Successor is the key that replaced the author's when Closed > 0.
	Successor HouseholdID
}

// Check decides whether the chained message m (already through Open) may
// be appended to f. stored returns the id the store holds at a seq <=
// f.Head.Seq. The result is:
//
//   - nil: append m, then set f.Head = HeadOf(m);
//   - an error wrapping ErrDuplicate: m is already stored, a no-op;
//   - *ForkError (ErrFork): a different message for a stored seq; store m
//     as a fork proof beside the stored one and freeze the feed;
//   - ErrRotated: the key was replaced and m comes after its last seq;
//   - ErrFrozen: the feed is frozen after a fork;
//   - *GapError (ErrSeqGap): seqs are missing; fetch them first;
//   - ErrPrevMismatch: m does not link to the stored head;
//   - ErrClock: m is older than the stored head;
//   - ErrBadSeq: m is ephemeral or is not the author's.
func (f *Feed) Check(m *Message, stored func(seq uint64) (ID, bool)) error {
	if m.Author != f.Author {
		return reject(ErrBadSeq, "message %s: by author %s, checked against the feed of %s", m.id.Short(), m.Author.Short(), f.Author.Short())
	}
	if m.Ephemeral() {
		return reject(ErrBadSeq, "message %s: %s is ephemeral and has no place in a chain (use Newer)", m.id.Short(), m.Kind)
	}
	if f.Closed > 0 && m.Seq > f.Closed {
		return reject(ErrRotated, "message %s: key %s was replaced by %s at seq %d; its seq %d comes after and is refused", m.id.Short(), m.Author.Short(), f.Successor.Short(), f.Closed, m.Seq)
	}
	if m.Seq <= f.Head.Seq {
		have, ok := stored(m.Seq)
		if !ok {
			return reject(ErrBadSeq, "message %s: seq %d is at or below head %d of author %s but the store has no message there", m.id.Short(), m.Seq, f.Head.Seq, m.Author.Short())
		}
		if have == m.id {
			return reject(ErrDuplicate, "message %s: already stored (seq %d of author %s)", m.id.Short(), m.Seq, m.Author.Short())
		}
		return &ForkError{Author: m.Author, Seq: m.Seq, Stored: have, Incoming: m.id}
	}
	if f.Frozen {
		return reject(ErrFrozen, "message %s: author %s forked its feed; nothing more is accepted from this key until the household starts a new one", m.id.Short(), m.Author.Short())
	}
	if m.Seq > f.Head.Seq+1 {
		return &GapError{Message: m.id, Author: m.Author, Head: f.Head.Seq, Got: m.Seq}
	}
	if m.Prev != f.Head.ID {
		return reject(ErrPrevMismatch, "message %s: seq %d of author %s names prev %s, but the stored seq %d is %s: the author has two messages at seq %d; fetch %s to prove the fork",
			m.id.Short(), m.Seq, m.Author.Short(), m.Prev.Short(), f.Head.Seq, f.Head.ID.Short(), f.Head.Seq, m.Prev.Short())
	}
	if m.CreatedMs < f.Head.CreatedMs {
		return reject(ErrClock, "message %s: created %s, before the author's previous message (%s): the author's clock went backwards",
			m.id.Short(), fmtMs(m.CreatedMs), fmtMs(f.Head.CreatedMs))
	}
	return nil
}

// CheckClock rejects a message whose created_ms is more than skew ahead of
// now (the receiving box's clock). Apply it when a message is received; a
// message rejected now may be accepted once the clocks agree.
func CheckClock(m *Message, now time.Time, skew time.Duration) error {
	// Compare before subtracting: created_ms - now overflows for a
	// created_ms far in the past, which the protocol admits.
	if limit := now.UnixMilli() + skew.Milliseconds(); m.CreatedMs > limit {
		ahead := time.Duration(math.MaxInt64) // more than 292 years
		if d := m.CreatedMs - now.UnixMilli(); d >= 0 && d < math.MaxInt64/int64(time.Millisecond) {
			ahead = time.Duration(d) * time.Millisecond
		}
		return reject(ErrClock, "message %s: created %s, %s ahead of this box's clock (limit %s): check the clock of author %s or of this box",
			m.id.Short(), fmtMs(m.CreatedMs), ahead.Round(time.Second), skew, m.Author.Short())
	}
	return nil
}

// Newer reports whether the ephemeral message m should replace stored, the
// latest kept message of the same author and kind: m is newer when its
// created_ms is later, or equal with a larger id (byte order). A nil
// stored is always replaced.
func Newer(stored, m *Message) bool {
	if stored == nil {
		return true
	}
	if m.CreatedMs != stored.CreatedMs {
		return m.CreatedMs > stored.CreatedMs
	}
	return bytes.Compare(m.id[:], stored.id[:]) > 0
}

func fmtMs(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }
