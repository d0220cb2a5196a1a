package share

import (
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"strings"
)

// Invite format constants. See docs/PROTOCOL.md, "Invites".
const (
	InvitePrefix   = "commons2"                 // text prefix of a version 2 invite (a community with a genesis)
	InvitePrefixV1 = "commons1"                 // text prefix of a version 1 invite (a version 1 community)
	InviteContext  = "energy-commons/invite/v1" // Ed25519ctx context of the invite signature (both versions)
	MaxInviteChars = 2048
)

// Invite tells a neighbour how to reach a household: its id (public key),
// name, listen addresses and community. It is signed by the household's
// key, so a typo anywhere makes it fail to verify.
type Invite struct {
	Household HouseholdID
	Name      string
	Addrs     []string
	Community Manifest
}

// CommunityID returns the id of the invite's community.
func (iv *Invite) CommunityID() CommunityID { return iv.Community.ID() }

func (iv *Invite) validate() error {
	a := Announce{Name: iv.Name, Addrs: iv.Addrs}
	if err := a.validate(); err != nil {
		return reject(ErrBadInvite, "invite: %v", err)
	}
	if err := iv.Community.Validate(); err != nil {
		return reject(ErrBadInvite, "invite: %v", err)
	}
	return nil
}

// version is the invite format the community needs: 2 carries the
// genesis value, 1 (readable by older programs) is for a version 1
// community.
func (iv *Invite) version() byte {
	if iv.Community.Genesis == "" {
		return 1
	}
	return 2
}

// payload is the signed part of the binary invite.
func (iv *Invite) payload() []byte {
	b := []byte{iv.version()}
	b = append(b, iv.Household[:]...)
	b = appendStr(b, iv.Name)
	b = append(b, byte(len(iv.Addrs)))
	for _, a := range iv.Addrs {
		b = appendStr(b, a)
	}
	b = appendStr(b, iv.Community.Name)
	b = binary.BigEndian.AppendUint32(b, uint32(iv.Community.SlotLen))
	b = appendStr(b, iv.Community.Key)
	if iv.version() == 2 {
		g, _ := hex.DecodeString(iv.Community.Genesis) // validated
		b = append(b, g...)
	}
	return b
}

func appendStr(b []byte, s string) []byte {
	b = append(b, byte(len(s)))
	return append(b, s...)
}

// Invite returns this identity's signed invite text for name, addrs and
// community.
func (k *Identity) Invite(name string, addrs []string, community Manifest) (string, error) {
	iv := &Invite{Household: k.id, Name: name, Addrs: addrs, Community: community}
	if err := iv.validate(); err != nil {
		return "", err
	}
	p := iv.payload()
	sig, err := k.signCtx(InviteContext, p)
	if err != nil {
		return "", err
	}
	prefix := InvitePrefix
	if iv.version() == 1 {
		prefix = InvitePrefixV1
	}
	return prefix + b32.EncodeToString(append(p, sig...)), nil
}

// ParseInvite decodes and verifies an invite string. Spaces and line
// breaks inside it are ignored (it may have been wrapped in an e-mail);
// upper case is accepted.
func ParseInvite(s string) (*Invite, error) {
	if len(s) > 4*MaxInviteChars {
		return nil, reject(ErrBadInvite, "invite is %d bytes, limit %d characters: is this really an invite?", len(s), MaxInviteChars)
	}
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, s)
	s = strings.ToLower(s)
	if s == "" {
		return nil, reject(ErrBadInvite, "invite is empty: paste the string that starts with %s", InvitePrefix)
	}
	if len(s) > MaxInviteChars {
		return nil, reject(ErrBadInvite, "invite is %d characters, limit %d: is this really an invite?", len(s), MaxInviteChars)
	}
	var version byte
	switch {
	case strings.HasPrefix(s, InvitePrefix):
		version = 2
	case strings.HasPrefix(s, InvitePrefixV1):
		version = 1
	case strings.HasPrefix(s, "commons"):
		return nil, reject(ErrBadInvite, "invite starts with %s, this program reads %s and %s invites: upgrade commons, or ask for a new invite", quoteShort(s[:min(len(s), 8)]), InvitePrefixV1, InvitePrefix)
	default:
		return nil, reject(ErrBadInvite, "invite must start with %s (it starts with %s): copy the whole string", InvitePrefix, quoteShort(s[:min(len(s), 8)]))
	}
	body := s[len(InvitePrefix):]
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return nil, reject(ErrBadInvite, "invite has %q at position %d, which cannot occur in an invite (a-z, 2-7): a typo?", rune(c), len(InvitePrefix)+i+1)
		}
	}
	raw, err := b32.DecodeString(body)
	if err != nil {
		return nil, reject(ErrBadInvite, "invite has an impossible length (%d characters): a character was lost or added; copy it again", len(s))
	}
	truncated := reject(ErrBadInvite, "invite is truncated (%d characters): copy the whole string", len(s))
	if len(raw) < 1+32+1+1+1+4+1+ed25519.SignatureSize {
		return nil, truncated
	}
	if b32.EncodeToString(raw) != body {
		// the last character carries unused bits, which must be zero: each
		// invite has exactly one text form, so no typo goes unnoticed
		return nil, reject(ErrBadInvite, "invite does not verify: a character was changed, lost or added; copy it again from its source")
	}
	if raw[0] != version {
		// the prefix is not signed: a version byte that disagrees with it
		// was changed (or the prefix was)
		return nil, reject(ErrBadInvite, "invite does not verify: a character was changed, lost or added; copy it again from its source")
	}
	p := raw[:len(raw)-ed25519.SignatureSize]
	sig := raw[len(raw)-ed25519.SignatureSize:]
	iv := &Invite{}
	r := p[1:]
	take := func(n int) ([]byte, bool) {
		if len(r) < n {
			return nil, false
		}
		v := r[:n]
		r = r[n:]
		return v, true
	}
	str := func() (string, bool) {
		n, ok := take(1)
		if !ok {
			return "", false
		}
		v, ok := take(int(n[0]))
		return string(v), ok
	}
	corrupt := reject(ErrBadInvite, "invite does not verify: a character was changed, lost or added; copy it again from its source")
	h, _ := take(32)
	copy(iv.Household[:], h)
	var ok bool
	if iv.Name, ok = str(); !ok {
		return nil, corrupt
	}
	n, ok := take(1)
	if !ok {
		return nil, corrupt
	}
	for i := 0; i < int(n[0]); i++ {
		a, ok := str()
		if !ok {
			return nil, corrupt
		}
		iv.Addrs = append(iv.Addrs, a)
	}
	if iv.Community.Name, ok = str(); !ok {
		return nil, corrupt
	}
	sl, ok := take(4)
	if !ok {
		return nil, corrupt
	}
	iv.Community.SlotLen = int64(binary.BigEndian.Uint32(sl))
	if iv.Community.Key, ok = str(); !ok {
		return nil, corrupt
	}
	if version == 2 {
		g, ok := take(GenesisBytes)
		if !ok {
			return nil, corrupt
		}
		iv.Community.Genesis = hex.EncodeToString(g)
	}
	if len(r) != 0 {
		return nil, corrupt
	}
	if ed25519.VerifyWithOptions(iv.Household.PublicKey(), p, sig, &ed25519.Options{Context: InviteContext}) != nil {
		return nil, corrupt
	}
	if err := iv.validate(); err != nil {
		return nil, err
	}
	return iv, nil
}
