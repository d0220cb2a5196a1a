package share

import (
	"errors"
	"fmt"
)

// Sentinel errors name the reason a message, invite or key is rejected.
// Every error returned by this package for bad input wraps exactly one of
// them, so callers can count rejections by reason with errors.Is or Reason.
var (
	ErrTruncated       = errors.New("truncated")
	ErrOversized       = errors.New("oversized")
	ErrTrailingBytes   = errors.New("trailing bytes")
	ErrBadMagic        = errors.New("bad magic")
	ErrUnknownVersion  = errors.New("unknown version")
	ErrUnknownHashAlg  = errors.New("unknown hash algorithm")
	ErrBadFlags        = errors.New("reserved flags set")
	ErrBadSeq          = errors.New("bad sequence fields")
	ErrWrongCommunity  = errors.New("wrong community")
	ErrBadSignature    = errors.New("bad signature")
	ErrContentHash     = errors.New("content hash mismatch")
	ErrBadContent      = errors.New("bad content")
	ErrDuplicate       = errors.New("duplicate")
	ErrSeqGap          = errors.New("seq gap")
	ErrPrevMismatch    = errors.New("prev mismatch")
	ErrFork            = errors.New("fork")
	ErrFrozen          = errors.New("feed frozen")
	ErrClock           = errors.New("clock")
	ErrBadInvite       = errors.New("bad invite")
	ErrBadWindow       = errors.New("bad window")
	ErrKeyPermissions  = errors.New("key file permissions")
	ErrBadKeyFile      = errors.New("bad key file")
	ErrMissingMeasure  = errors.New("missing measurement")
	ErrInvalidTransfer = errors.New("invalid lifecycle message")
	ErrDisputed        = errors.New("disputed settle")
	ErrMissingEvidence = errors.New("missing evidence")
	ErrNotReader       = errors.New("not a reader")
	ErrBadSealed       = errors.New("bad sealed report")
	ErrSealedMismatch  = errors.New("sealed report mismatch")
)

var reasons = []struct {
	err  error
	code string
}{
	{ErrTruncated, "truncated"},
	{ErrOversized, "oversized"},
	{ErrTrailingBytes, "trailing_bytes"},
	{ErrBadMagic, "bad_magic"},
	{ErrUnknownVersion, "unknown_version"},
	{ErrUnknownHashAlg, "unknown_hash_alg"},
	{ErrBadFlags, "bad_flags"},
	{ErrBadSeq, "bad_seq"},
	{ErrWrongCommunity, "wrong_community"},
	{ErrBadSignature, "bad_signature"},
	{ErrContentHash, "content_hash"},
	{ErrBadContent, "bad_content"},
	{ErrDuplicate, "duplicate"},
	{ErrSeqGap, "seq_gap"},
	{ErrPrevMismatch, "prev_mismatch"},
	{ErrFork, "fork"},
	{ErrFrozen, "frozen"},
	{ErrClock, "clock"},
	{ErrBadInvite, "bad_invite"},
	{ErrBadWindow, "bad_window"},
	{ErrKeyPermissions, "key_permissions"},
	{ErrBadKeyFile, "bad_key_file"},
	{ErrMissingMeasure, "missing_measurement"},
	{ErrInvalidTransfer, "invalid_lifecycle"},
	{ErrBadHandover, "bad_handover"},
	{ErrRotated, "rotated"},
	{ErrDisputed, "disputed"},
	{ErrMissingEvidence, "missing_evidence"},
	{ErrNotReader, "not_reader"},
	{ErrBadSealed, "bad_sealed"},
	{ErrSealedMismatch, "sealed_mismatch"},
}

// Reason returns a short stable code (such as "seq_gap" or "bad_signature")
// for the sentinel error err wraps, or "other" when it wraps none. Use it
// as a metrics label or a counter key.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.code
		}
	}
	return "other"
}

// rejectError is an error with a human message that wraps a sentinel.
type rejectError struct {
	reason error
	msg    string
}

func (e *rejectError) Error() string { return e.msg }
func (e *rejectError) Unwrap() error { return e.reason }

// reject builds an error whose text is the formatted message and which
// wraps reason.
func reject(reason error, format string, args ...any) error {
	return &rejectError{reason: reason, msg: fmt.Sprintf(format, args...)}
}

// GapError reports a message whose seq is beyond the author's head + 1.
// The caller should fetch seqs Head+1 .. Got-1 of Author first.
type GapError struct {
	Message ID
	Author  HouseholdID
	Head    uint64 // stored head seq (0 = nothing stored)
	Got     uint64 // seq of the rejected message
}

// Error names the message, the author and the missing seqs.
func (e *GapError) Error() string {
	missing := fmt.Sprintf("%d", e.Head+1)
	if e.Got-1 > e.Head+1 {
		missing = fmt.Sprintf("%d..%d", e.Head+1, e.Got-1)
	}
	return fmt.Sprintf("message %s: seq %d does not follow head %d of author %s (missing %s): fetch the gap first",
		e.Message.Short(), e.Got, e.Head, e.Author.Short(), missing)
}

// Unwrap returns ErrSeqGap.
func (e *GapError) Unwrap() error { return ErrSeqGap }

// ForkError is a fork proof: two different, validly signed messages by one
// author for one seq. Keep both and freeze the author's feed.
type ForkError struct {
	Author   HouseholdID
	Seq      uint64
	Stored   ID // the message already stored at Seq
	Incoming ID // the new, different message at Seq
}

// Error names both messages and what to do.
func (e *ForkError) Error() string {
	return fmt.Sprintf("message %s: author %s forked its feed at seq %d (already have %s): keep both as proof and freeze the feed; the household must start a new key",
		e.Incoming.Short(), e.Author.Short(), e.Seq, e.Stored.Short())
}

// Unwrap returns ErrFork.
func (e *ForkError) Unwrap() error { return ErrFork }
