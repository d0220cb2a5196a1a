package share

import (
	"crypto/ed25519"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"strings"
)

// ID is a message id: SHA-256(header || signature). Its text form is 64
// lowercase hex digits.
type ID [32]byte

// String returns the id as 64 lowercase hex digits.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// ShortLen is how many characters of an id the command line, the dashboard
// and error messages show: the same everywhere, so a short id seen in one
// can be typed into another (commands accept any unique prefix).
const ShortLen = 12

// Short returns the first ShortLen hex digits, for display.
func (id ID) Short() string { return hex.EncodeToString(id[:ShortLen/2]) }

// IsZero reports whether id is all zero (the prev of a first message).
func (id ID) IsZero() bool { return id == ID{} }

// MarshalText implements encoding.TextMarshaler.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseID parses a message id from its 64-hex-digit form. Upper case is
// accepted.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 64 {
		return id, reject(ErrBadContent, "message id %q: want 64 hex digits, got %d characters", clip(s), len(s))
	}
	if _, err := hex.Decode(id[:], []byte(strings.ToLower(s))); err != nil {
		return id, reject(ErrBadContent, "message id %q: not hex: %v", clip(s), err)
	}
	return id, nil
}

// b32 is RFC 4648 base32, lowercase alphabet, no padding.
var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// HouseholdID is a household's (box's) Ed25519 public key. Its text form is
// 52 characters of lowercase RFC 4648 base32 without padding.
type HouseholdID [ed25519.PublicKeySize]byte

// String returns the 52-character base32 form.
func (h HouseholdID) String() string { return b32.EncodeToString(h[:]) }

// Short returns the first ShortLen characters of the base32 form, for
// display.
func (h HouseholdID) Short() string { return h.String()[:ShortLen] }

// IsZero reports whether h is all zero.
func (h HouseholdID) IsZero() bool { return h == HouseholdID{} }

// PublicKey returns h as an ed25519.PublicKey.
func (h HouseholdID) PublicKey() ed25519.PublicKey { return ed25519.PublicKey(h[:]) }

// MarshalText implements encoding.TextMarshaler.
func (h HouseholdID) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *HouseholdID) UnmarshalText(b []byte) error {
	v, err := ParseHouseholdID(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// ParseHouseholdID parses the 52-character base32 form of a household id.
// Upper case is accepted.
func ParseHouseholdID(s string) (HouseholdID, error) {
	var h HouseholdID
	if len(s) != 52 {
		return h, reject(ErrBadContent, "household id %q: want 52 base32 characters, got %d", clip(s), len(s))
	}
	b, err := b32.DecodeString(strings.ToLower(s))
	if err != nil {
		return h, reject(ErrBadContent, "household id %q: not base32 (a-z, 2-7): %v", clip(s), err)
	}
	if len(b) != len(h) {
		return h, reject(ErrBadContent, "household id %q: decodes to %d bytes, want 32", clip(s), len(b))
	}
	copy(h[:], b)
	// The last character carries 4 padding bits; require them to be zero
	// so each id has exactly one text form.
	if h.String() != strings.ToLower(s) {
		return h, reject(ErrBadContent, "household id %q: last character has non-zero padding bits (a typo?)", clip(s))
	}
	return h, nil
}

// CommunityID identifies a community: SHA-256 of its canonical manifest.
// Its text form is 64 lowercase hex digits.
type CommunityID [32]byte

// String returns the id as 64 lowercase hex digits.
func (c CommunityID) String() string { return hex.EncodeToString(c[:]) }

// Short returns the first ShortLen hex digits.
func (c CommunityID) Short() string { return hex.EncodeToString(c[:ShortLen/2]) }

// ParseCommunityID parses the 64-hex-digit form.
func ParseCommunityID(s string) (CommunityID, error) {
	id, err := ParseID(s)
	if err != nil {
		return CommunityID{}, reject(ErrBadContent, "community id %q: want 64 hex digits", clip(s))
	}
	return CommunityID(id), nil
}

// clip shortens s for inclusion in an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// quoteShort is %q of clip(s), used in messages.
func quoteShort(s string) string { return fmt.Sprintf("%q", clip(s)) }
