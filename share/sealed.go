package share

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"slices"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"golang.org/x/crypto/ssh"
)

// Limits of a sealed report. See docs/PROTOCOL.md, "sealed_report (21)".
const (
	// MaxSealedReaders is the most households a sealed report is
	// encrypted to. With 96 slots of 2^40 Wh each and this many readers
	// the content stays within MaxContentSize (TestSealedReportWorstCase).
	MaxSealedReaders = 16
	// SaltSize is the length of the random salt hashed into a sealed
	// report's commit.
	SaltSize = 32
	// maxSealedPayload bounds what Open reads from a decrypted payload: a
	// plain report of 96 slots of 2^40 Wh is under 3 KiB.
	maxSealedPayload = MaxContentSize
)

// SealedReport is a household's measured energy per slot for the slots
// [FromSlot, FromSlot+Slots), readable only by the households in To
// (kind 21). The figures travel encrypted with age to each reader's
// Ed25519 key (as an ssh-ed25519 recipient); Commit binds them for
// everyone else: it is the hex SHA-256 of a random salt followed by the
// canonical content of the equivalent plain report (kind 20). Readers
// open it with Open; a disclosed salt and report are checked with
// Verify.
type SealedReport struct {
	FromSlot int64         `json:"from_slot"`
	Slots    int64         `json:"slots"`
	To       []HouseholdID `json:"to"`     // the readers, ascending by id string, no duplicates
	Commit   ID            `json:"commit"` // SHA-256(salt || plain report content), 64 hex digits
	Sealed   string        `json:"sealed"` // base64 (standard, padded) of the age ciphertext
}

// Kind returns KindSealedReport.
func (*SealedReport) Kind() Kind { return KindSealedReport }

// Window returns the slots the report covers.
func (c *SealedReport) Window() SlotRange {
	return SlotRange{From: c.FromSlot, To: c.FromSlot + c.Slots}
}

// Readable reports whether h is one of the readers.
func (c *SealedReport) Readable(h HouseholdID) bool { return slices.Contains(c.To, h) }

func (c *SealedReport) validate() error {
	if err := checkInt("slots", c.Slots, 1, MaxWindowSlots); err != nil {
		return err
	}
	if err := checkSlots(c.FromSlot, c.FromSlot+c.Slots); err != nil {
		return err
	}
	if len(c.To) < 1 || len(c.To) > MaxSealedReaders {
		return fmt.Errorf("to has %d readers, want 1..%d", len(c.To), MaxSealedReaders)
	}
	for i, h := range c.To {
		if h.IsZero() {
			return fmt.Errorf("to[%d] is the zero household id", i)
		}
		if i > 0 && c.To[i-1].String() >= h.String() {
			return fmt.Errorf("to must be in ascending order without duplicates (entry %d)", i)
		}
	}
	if c.Commit.IsZero() {
		return fmt.Errorf("commit is missing")
	}
	if c.Sealed == "" {
		return fmt.Errorf("sealed is empty")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(c.Sealed)
	if err != nil || base64.StdEncoding.EncodeToString(raw) != c.Sealed {
		return fmt.Errorf("sealed is not canonical standard base64")
	}
	return nil
}

// readSealedReport reads the canonical content of a sealed report.
func readSealedReport(r *canonReader) Content {
	x := &SealedReport{}
	r.field("from_slot", true)
	x.FromSlot = r.int()
	r.field("slots", false)
	x.Slots = r.int()
	r.field("to", false)
	x.To = readArray(r, "to", MaxSealedReaders, r.household)
	r.field("commit", false)
	x.Commit = r.id()
	r.field("sealed", false)
	x.Sealed = r.str()
	return x
}

// sortReaders returns the readers ascending by id string, without
// duplicates.
func sortReaders(readers []HouseholdID) []HouseholdID {
	out := slices.Clone(readers)
	slices.SortFunc(out, func(a, b HouseholdID) int {
		switch as, bs := a.String(), b.String(); {
		case as < bs:
			return -1
		case as > bs:
			return 1
		}
		return 0
	})
	return slices.Compact(out)
}

// ReportCommit returns the commit of report r under salt: SHA-256 of the
// salt followed by r's canonical content (docs/PROTOCOL.md §8.15).
func ReportCommit(salt []byte, r *Report) (ID, error) {
	b, err := EncodeContent(r)
	if err != nil {
		return ID{}, err
	}
	h := sha256.New()
	h.Write(salt)
	h.Write(b)
	var out ID
	h.Sum(out[:0])
	return out, nil
}

// sealedPayload is the canonical plaintext of a sealed report:
// {"salt":"<64 hex>","report":<plain report content>}.
func sealedPayload(salt []byte, report []byte) []byte {
	var b bytes.Buffer
	b.WriteString(`{"salt":"`)
	b.WriteString(hex.EncodeToString(salt))
	b.WriteString(`","report":`)
	b.Write(report)
	b.WriteString(`}`)
	return b.Bytes()
}

// parseSealedPayload decodes a payload strictly: exactly the canonical
// form sealedPayload writes, with a canonical report inside.
func parseSealedPayload(b []byte) (salt []byte, r *Report, err error) {
	const head, mid = `{"salt":"`, `","report":`
	n := len(head) + 2*SaltSize + len(mid)
	if len(b) < n+2 || string(b[:len(head)]) != head || string(b[len(head)+2*SaltSize:n]) != mid || b[len(b)-1] != '}' {
		return nil, nil, fmt.Errorf(`payload is not {"salt":"<64 hex digits>","report":{...}}`)
	}
	hx := b[len(head) : len(head)+2*SaltSize]
	for _, c := range hx {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return nil, nil, fmt.Errorf("payload salt is not 64 lowercase hex digits")
		}
	}
	salt = make([]byte, SaltSize)
	hex.Decode(salt, hx)
	c, err := DecodeContent(KindReport, b[n:len(b)-1])
	if err != nil {
		return nil, nil, fmt.Errorf("payload report: %w", err)
	}
	return salt, c.(*Report), nil
}

// ageEncrypt writes payload encrypted with age to recips into dst.
func ageEncrypt(dst io.Writer, recips []age.Recipient, payload []byte) error {
	w, err := age.Encrypt(dst, recips...)
	if err != nil {
		return fmt.Errorf("encrypt: %w", err)
	}
	if _, err := w.Write(payload); err != nil {
		return fmt.Errorf("encrypt: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("encrypt: %w", err)
	}
	return nil
}

// recipient returns the age recipient of household h: its Ed25519 key as
// an ssh-ed25519 recipient.
func recipient(h HouseholdID) (age.Recipient, error) {
	pk, err := ssh.NewPublicKey(ed25519.PublicKey(h[:]))
	if err != nil {
		return nil, fmt.Errorf("reader %s: %w", h.Short(), err)
	}
	rc, err := agessh.NewEd25519Recipient(pk)
	if err != nil {
		return nil, fmt.Errorf("reader %s: %w", h.Short(), err)
	}
	return rc, nil
}

// SealReport encrypts report r of author to readers (the author is always
// added) with a fresh random salt, and returns the sealed report's
// content. It fails, wrapping ErrBadContent or ErrOversized, when r is not
// a valid report, there are more than MaxSealedReaders readers, or the
// content would not fit a message.
func SealReport(author *Identity, readers []HouseholdID, r *Report) (*SealedReport, error) {
	return sealReport(rand.Reader, author, readers, r)
}

func sealReport(rnd io.Reader, author *Identity, readers []HouseholdID, r *Report) (*SealedReport, error) {
	plain, err := EncodeContent(r)
	if err != nil {
		return nil, fmt.Errorf("seal report: %w", err)
	}
	to := sortReaders(append(slices.Clone(readers), author.ID()))
	if len(to) > MaxSealedReaders {
		return nil, reject(ErrBadContent, "seal report: %d readers, limit %d", len(to), MaxSealedReaders)
	}
	salt := make([]byte, SaltSize)
	if _, err := io.ReadFull(rnd, salt); err != nil {
		return nil, fmt.Errorf("seal report: salt: %w", err)
	}
	commit, err := ReportCommit(salt, r)
	if err != nil {
		return nil, fmt.Errorf("seal report: %w", err)
	}
	recips := make([]age.Recipient, len(to))
	for i, h := range to {
		if recips[i], err = recipient(h); err != nil {
			return nil, reject(ErrBadContent, "seal report: %v", err)
		}
	}
	var ct bytes.Buffer
	if err := ageEncrypt(&ct, recips, sealedPayload(salt, plain)); err != nil {
		return nil, fmt.Errorf("seal report: %w", err)
	}
	s := &SealedReport{FromSlot: r.FromSlot, Slots: int64(len(r.ExportWh)), To: to, Commit: commit,
		Sealed: base64.StdEncoding.EncodeToString(ct.Bytes())}
	if _, err := EncodeContent(s); err != nil {
		return nil, fmt.Errorf("seal report: %w", err)
	}
	return s, nil
}

// Open decrypts the sealed report with id's key and returns the plain
// report it carries, after checking that it is bound to the clear fields:
// its commit must equal Commit and its slots FromSlot and Slots. It
// fails wrapping ErrNotReader when id is not among the readers,
// ErrBadSealed when the ciphertext does not decrypt or the payload is not
// canonical, and ErrSealedMismatch when the payload disagrees with the
// clear fields.
func (c *SealedReport) Open(id *Identity) (*Report, error) {
	r, _, err := c.open(id)
	return r, err
}

// OpenSalt is Open that also returns the salt, which a reader discloses
// with the report so that anyone can check it against Commit (Verify).
func (c *SealedReport) OpenSalt(id *Identity) (*Report, []byte, error) {
	return c.open(id)
}

func (c *SealedReport) open(id *Identity) (*Report, []byte, error) {
	if !c.Readable(id.ID()) {
		return nil, nil, reject(ErrNotReader, "sealed report of slots %d..%d: household %s is not one of its %d readers", c.FromSlot, c.FromSlot+c.Slots, id.ID().Short(), len(c.To))
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(c.Sealed)
	if err != nil {
		return nil, nil, reject(ErrBadSealed, "sealed report: sealed is not base64: %v", err)
	}
	ident, err := agessh.NewEd25519Identity(id.priv)
	if err != nil {
		return nil, nil, fmt.Errorf("sealed report: identity: %w", err)
	}
	pr, err := age.Decrypt(bytes.NewReader(raw), ident)
	if err != nil {
		return nil, nil, reject(ErrBadSealed, "sealed report: does not decrypt for %s: %v", id.ID().Short(), err)
	}
	payload, err := io.ReadAll(io.LimitReader(pr, maxSealedPayload+1))
	if err != nil {
		return nil, nil, reject(ErrBadSealed, "sealed report: does not decrypt for %s: %v", id.ID().Short(), err)
	}
	if len(payload) > maxSealedPayload {
		return nil, nil, reject(ErrBadSealed, "sealed report: payload is over %d bytes", maxSealedPayload)
	}
	salt, r, err := parseSealedPayload(payload)
	if err != nil {
		return nil, nil, reject(ErrBadSealed, "sealed report: %v", err)
	}
	if err := c.Verify(r, salt); err != nil {
		return nil, nil, err
	}
	return r, salt, nil
}

// Verify checks a disclosed plain report r and salt against the sealed
// report: r must cover exactly FromSlot..FromSlot+Slots and
// SHA-256(salt || r's canonical content) must equal Commit. A mismatch
// wraps ErrSealedMismatch; an invalid report wraps ErrBadContent.
func (c *SealedReport) Verify(r *Report, salt []byte) error {
	if len(salt) != SaltSize {
		return reject(ErrSealedMismatch, "sealed report: salt is %d bytes, want %d", len(salt), SaltSize)
	}
	commit, err := ReportCommit(salt, r)
	if err != nil {
		return err
	}
	if r.FromSlot != c.FromSlot || int64(len(r.ExportWh)) != c.Slots {
		return reject(ErrSealedMismatch, "sealed report: its figures cover slots %d..%d, its clear fields say %d..%d",
			r.FromSlot, r.FromSlot+int64(len(r.ExportWh)), c.FromSlot, c.FromSlot+c.Slots)
	}
	if commit != c.Commit {
		return reject(ErrSealedMismatch, "sealed report: the figures and salt hash to %s, the commit is %s", commit.Short(), c.Commit.Short())
	}
	return nil
}
