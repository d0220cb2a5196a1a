package share

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// ProtocolVersion is the version of docs/PROTOCOL.md this package
// implements. Version 2 kept version 1's envelope (Version), so it is not
// on the wire: it is what `commons version` reports.
const ProtocolVersion = 2

// Envelope layout constants. See docs/PROTOCOL.md, "Envelope".
const (
	Magic          = "ECM1"                // first 4 bytes of every message
	Version        = 1                     // envelope version byte
	HashSHA256     = 1                     // hash_alg byte: SHA-256
	HeaderSize     = 158                   // fixed header length in bytes
	SignatureSize  = ed25519.SignatureSize // 64
	MaxContentSize = 8192                  // content_len limit in bytes
	MinMessageSize = HeaderSize + SignatureSize
	MaxMessageSize = MinMessageSize + MaxContentSize
	// MessageContext is the Ed25519ctx context string for message headers.
	MessageContext = "energy-commons/msg/v1"
)

// Header field offsets.
const (
	offMagic       = 0
	offVersion     = 4
	offHashAlg     = 5
	offCommunity   = 6
	offAuthor      = 38
	offSeq         = 70
	offPrev        = 78
	offCreated     = 110
	offKind        = 118
	offFlags       = 120
	offContentLen  = 122
	offContentHash = 126
)

// Header is the decoded fixed-layout message header.
type Header struct {
	Community   CommunityID
	Author      HouseholdID
	Seq         uint64 // 1, 2, 3 … per author; 0 for ephemeral kinds
	Prev        ID     // id of the author's message Seq-1; zero when Seq <= 1
	CreatedMs   int64  // author's clock, ms since the Unix epoch; advisory
	Kind        Kind
	Flags       uint16 // must be 0 in version 1
	ContentLen  uint32
	ContentHash [32]byte
}

// Created returns CreatedMs as a time.
func (h *Header) Created() time.Time { return time.UnixMilli(h.CreatedMs) }

// Ephemeral reports whether the message sits outside the author's chain
// (seq 0, ephemeral kind such as status).
func (h *Header) Ephemeral() bool { return h.Seq == 0 }

// encode writes the 158-byte header.
func (h *Header) encode() []byte {
	b := make([]byte, HeaderSize)
	copy(b[offMagic:], Magic)
	b[offVersion] = Version
	b[offHashAlg] = HashSHA256
	copy(b[offCommunity:], h.Community[:])
	copy(b[offAuthor:], h.Author[:])
	binary.BigEndian.PutUint64(b[offSeq:], h.Seq)
	copy(b[offPrev:], h.Prev[:])
	binary.BigEndian.PutUint64(b[offCreated:], uint64(h.CreatedMs))
	binary.BigEndian.PutUint16(b[offKind:], uint16(h.Kind))
	binary.BigEndian.PutUint16(b[offFlags:], h.Flags)
	binary.BigEndian.PutUint32(b[offContentLen:], h.ContentLen)
	copy(b[offContentHash:], h.ContentHash[:])
	return b
}

// Message is one signed protocol message. Its wire and storage form,
// Bytes, is header || signature || content, kept verbatim as received.
type Message struct {
	Header
	Signature [SignatureSize]byte
	Content   []byte // aliases the verbatim bytes; do not modify

	raw []byte
	id  ID
}

// ID returns the message id, SHA-256(header || signature).
func (m *Message) ID() ID { return m.id }

// Bytes returns the verbatim wire form. Do not modify it.
func (m *Message) Bytes() []byte { return m.raw }

// HeaderBytes returns the 158 signed header bytes.
func (m *Message) HeaderBytes() []byte { return m.raw[:HeaderSize] }

// Draft is what an author fills in to sign a new message.
type Draft struct {
	Community CommunityID
	Seq       uint64 // 0 for ephemeral kinds
	Prev      ID     // zero when Seq <= 1
	Created   time.Time
	Kind      Kind
	Content   []byte // canonical content bytes (see EncodeContent)
}

// Sign builds and signs a message from d. It applies the same structural
// checks as Parse, so it never produces a message others would reject for
// its shape.
func (k *Identity) Sign(d Draft) (*Message, error) {
	if len(d.Content) > MaxContentSize {
		return nil, reject(ErrOversized, "content is %d bytes, limit %d", len(d.Content), MaxContentSize)
	}
	h := Header{
		Community:   d.Community,
		Author:      k.id,
		Seq:         d.Seq,
		Prev:        d.Prev,
		CreatedMs:   d.Created.UnixMilli(),
		Kind:        d.Kind,
		ContentLen:  uint32(len(d.Content)),
		ContentHash: sha256.Sum256(d.Content),
	}
	if err := checkSeqFields(&h, "new "+h.Kind.String()); err != nil {
		return nil, err
	}
	hb := h.encode()
	sig, err := k.signCtx(MessageContext, hb)
	if err != nil {
		return nil, err
	}
	raw := make([]byte, 0, HeaderSize+SignatureSize+len(d.Content))
	raw = append(raw, hb...)
	raw = append(raw, sig...)
	raw = append(raw, d.Content...)
	return Parse(raw)
}

// Parse decodes the wire form b structurally: length limits, magic,
// version, hash algorithm, flags, content length and the seq/prev/kind
// rules. It does not check the signature or the content hash (Verify) nor
// the content (CheckContent). The returned message keeps a copy of b.
func Parse(b []byte) (*Message, error) {
	if len(b) < MinMessageSize {
		return nil, reject(ErrTruncated, "message is %d bytes, shorter than header and signature (%d): truncated in transit?", len(b), MinMessageSize)
	}
	if string(b[offMagic:offMagic+4]) != Magic {
		return nil, reject(ErrBadMagic, "message does not start with %q (got %x): not a commons message", Magic, b[:4])
	}
	if b[offVersion] != Version {
		return nil, reject(ErrUnknownVersion, "message has envelope version %d, this program knows %d: upgrade commons", b[offVersion], Version)
	}
	if b[offHashAlg] != HashSHA256 {
		return nil, reject(ErrUnknownHashAlg, "message uses hash algorithm %d, this program knows %d (SHA-256): upgrade commons", b[offHashAlg], HashSHA256)
	}
	var h Header
	copy(h.Community[:], b[offCommunity:])
	copy(h.Author[:], b[offAuthor:])
	h.Seq = binary.BigEndian.Uint64(b[offSeq:])
	copy(h.Prev[:], b[offPrev:])
	h.CreatedMs = int64(binary.BigEndian.Uint64(b[offCreated:]))
	h.Kind = Kind(binary.BigEndian.Uint16(b[offKind:]))
	h.Flags = binary.BigEndian.Uint16(b[offFlags:])
	h.ContentLen = binary.BigEndian.Uint32(b[offContentLen:])
	copy(h.ContentHash[:], b[offContentHash:])

	var id ID = sha256.Sum256(b[:MinMessageSize])
	if h.Flags != 0 {
		return nil, reject(ErrBadFlags, "message %s: flags are %#04x, must be 0 in version %d", id.Short(), h.Flags, Version)
	}
	if h.ContentLen > MaxContentSize {
		return nil, reject(ErrOversized, "message %s: content_len %d exceeds the %d-byte limit", id.Short(), h.ContentLen, MaxContentSize)
	}
	have := len(b) - MinMessageSize
	switch {
	case have < int(h.ContentLen):
		return nil, reject(ErrTruncated, "message %s: content is %d bytes, header says %d: truncated in transit?", id.Short(), have, h.ContentLen)
	case have > int(h.ContentLen):
		if len(b) > MaxMessageSize {
			return nil, reject(ErrOversized, "message %s: %d bytes, more than the %d-byte limit", id.Short(), len(b), MaxMessageSize)
		}
		return nil, reject(ErrTrailingBytes, "message %s: %d bytes after the %d-byte content: two messages glued together?", id.Short(), have-int(h.ContentLen), h.ContentLen)
	}
	if err := checkSeqFields(&h, "message "+id.Short()); err != nil {
		return nil, err
	}
	raw := bytes.Clone(b)
	m := &Message{Header: h, raw: raw, id: id}
	copy(m.Signature[:], raw[HeaderSize:MinMessageSize])
	m.Content = raw[MinMessageSize:]
	return m, nil
}

// checkSeqFields enforces the chain/ephemeral shape rules of the header;
// what names the message in errors.
func checkSeqFields(h *Header, what string) error {
	switch {
	case h.Kind.Ephemeral() && h.Seq != 0:
		return reject(ErrBadSeq, "%s: kind %s is ephemeral and must have seq 0, has %d", what, h.Kind, h.Seq)
	case !h.Kind.Ephemeral() && h.Seq == 0:
		return reject(ErrBadSeq, "%s: kind %s is chained and must have seq >= 1, has 0", what, h.Kind)
	case h.Seq <= 1 && !h.Prev.IsZero():
		return reject(ErrBadSeq, "%s: seq %d must have an all-zero prev", what, h.Seq)
	case h.Seq > 1 && h.Prev.IsZero():
		return reject(ErrBadSeq, "%s: seq %d must name its prev message", what, h.Seq)
	}
	return nil
}

// Verify checks the Ed25519ctx signature over the header bytes and the
// content hash over the content bytes as received.
func (m *Message) Verify() error {
	if ed25519.VerifyWithOptions(m.Author.PublicKey(), m.raw[:HeaderSize], m.Signature[:], &ed25519.Options{Context: MessageContext}) != nil {
		return reject(ErrBadSignature, "message %s: signature by %s does not verify: forged, corrupted, or signed for another protocol", m.id.Short(), m.Author.Short())
	}
	if sha256.Sum256(m.Content) != m.ContentHash {
		return reject(ErrContentHash, "message %s: content does not match its signed hash: content corrupted or replaced in transit", m.id.Short())
	}
	return nil
}

// Open is the full check for a message received from outside, in the
// order of docs/PROTOCOL.md: Parse (structure), community, Verify
// (signature, content hash), CheckContent (kind rules). The chain is
// checked separately against the stored feed (Feed.Check).
func Open(b []byte, community CommunityID) (*Message, error) {
	m, err := Parse(b)
	if err != nil {
		return nil, err
	}
	if m.Community != community {
		return nil, reject(ErrWrongCommunity, "message %s: belongs to community %s, this box is in %s: not for us", m.id.Short(), m.Community.Short(), community.Short())
	}
	if err := m.Verify(); err != nil {
		return nil, err
	}
	if err := m.CheckContent(); err != nil {
		return nil, err
	}
	return m, nil
}

// Compose encodes c and signs it as the author's next message after head
// (the zero Head for a first message; ignored for ephemeral kinds).
func (k *Identity) Compose(community CommunityID, head Head, created time.Time, c Content) (*Message, error) {
	d, err := NewDraft(community, head, created, c)
	if err != nil {
		return nil, err
	}
	return k.Sign(d)
}
