package share

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind is a message kind (u16 in the header). Kinds with the high bit set
// (0x8000) are ephemeral: signed but outside the author's chain (seq 0).
type Kind uint16

// Message kinds of version 1. Numbers are never reused or reinterpreted.
const (
	KindAnnounce Kind = 1  // household profile: name, addresses
	KindPledge   Kind = 10 // offer energy to a neighbour for a slot range
	KindAccept   Kind = 11 // recipient accepts (part of) a pledge
	KindDecline  Kind = 12 // recipient declines a pledge
	KindCancel   Kind = 13 // either party withdraws before the window
	KindReport   Kind = 20 // measured export/import per slot
	// KindSealedReport is a report encrypted to its readers (sealed.go).
	KindSealedReport Kind = 21
	KindSettle       Kind = 30     // allocation of a pledge after its window
	KindSettle2      Kind = 31     // allocation bound to its evidence (reports, heads)
	KindStatus       Kind = 0x8001 // current surplus/need; ephemeral
)

// EphemeralBit marks kinds that are signed but not chained.
const EphemeralBit Kind = 0x8000

// Ephemeral reports whether messages of kind k are outside the chain.
func (k Kind) Ephemeral() bool { return k&EphemeralBit != 0 }

// Known reports whether this version of the protocol interprets kind k.
func (k Kind) Known() bool { _, ok := kindNames[k]; return ok }

var kindNames = map[Kind]string{
	KindAnnounce:     "announce",
	KindPledge:       "pledge",
	KindAccept:       "accept",
	KindDecline:      "decline",
	KindCancel:       "cancel",
	KindReport:       "report",
	KindSealedReport: "sealed_report",
	KindSettle:       "settle",
	KindSettle2:      "settle2",
	KindStatus:       "status",
	KindSeen:         "seen",
	KindProtocol:     "protocol",

	KindHandover:    "handover",
	KindRecoveryKey: "recovery_key",
	KindSuccessor:   "successor",
	KindRecover:     "recover",
}

// String returns the kind's name, or "kind(N)" for unknown kinds.
func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("kind(%d)", uint16(k))
}

// Limits on content fields. See docs/PROTOCOL.md, "Kinds".
const (
	MaxNameBytes    = 64
	MaxAddrs        = 8
	MaxAddrBytes    = 255
	MaxReasonBytes  = 280
	MaxWindowSlots  = 96        // slots per pledge, report, settle or forecast
	MaxEnergyWh     = 1 << 40   // any single Wh figure (≈1.1 TWh)
	MaxPowerW       = 1 << 40   // any single W figure
	MaxSafeInt      = 1<<53 - 1 // every integer must be in [0, MaxSafeInt] unless stated
	MaxKeyNameBytes = 32
)

// Content is the decoded content of a known kind.
type Content interface {
	// Kind returns the message kind this content belongs to.
	Kind() Kind
	validate() error
}

// Announce is a household's profile (kind 1).
type Announce struct {
	Name  string   `json:"name"`            // display name, 1..64 bytes
	Addrs []string `json:"addrs,omitempty"` // where the box listens, e.g. "192.0.2.7:7420"
}

// Pledge offers EnergyWh to To over the slots [FromSlot, ToSlot) (kind 10).
// The total splits into slots by SplitWh.
type Pledge struct {
	To         HouseholdID `json:"to"`
	FromSlot   int64       `json:"from_slot"`
	ToSlot     int64       `json:"to_slot"`
	EnergyWh   int64       `json:"energy_wh"`
	ExpirySlot int64       `json:"expiry_slot"` // accept before this slot starts; <= FromSlot
	Nonce      uint32      `json:"nonce"`
}

// Accept accepts EnergyWh (<= pledged) of a pledge (kind 11).
type Accept struct {
	Pledge   ID    `json:"pledge"`
	EnergyWh int64 `json:"energy_wh"`
}

// Decline declines a pledge (kind 12).
type Decline struct {
	Pledge ID     `json:"pledge"`
	Reason string `json:"reason,omitempty"`
}

// Cancel withdraws a pledge or an acceptance before the window (kind 13).
type Cancel struct {
	Pledge ID     `json:"pledge"`
	Reason string `json:"reason,omitempty"`
}

// Report is a household's measured energy per slot for the slots
// [FromSlot, FromSlot+len(ExportWh)) (kind 20).
type Report struct {
	FromSlot int64   `json:"from_slot"`
	ExportWh []int64 `json:"export_wh"`
	ImportWh []int64 `json:"import_wh"`
}

// Settle records the allocation of a pledge over its window (kind 30).
// All arrays have ToSlot-FromSlot entries, one per slot.
type Settle struct {
	Pledge      ID      `json:"pledge"`
	FromSlot    int64   `json:"from_slot"`
	ToSlot      int64   `json:"to_slot"`
	AllocatedWh []int64 `json:"allocated_wh"`
	ExportWh    []int64 `json:"export_wh"` // exporter's measured export per slot
	ImportWh    []int64 `json:"import_wh"` // recipient's reported import per slot
	TotalWh     int64   `json:"total_wh"`  // sum of AllocatedWh
	Key         string  `json:"key"`       // allocation key used, e.g. "pro-rata"
}

// Status is a household's current surplus or need (kind 0x8001,
// ephemeral). Forecast entries are signed Wh per slot from ForecastFrom:
// positive = surplus, negative = need.
type Status struct {
	SurplusW     int64   `json:"surplus_w"`
	NeedW        int64   `json:"need_w"`
	AvgSurplusW  int64   `json:"avg_surplus_w"`
	AvgNeedW     int64   `json:"avg_need_w"`
	ForecastFrom int64   `json:"forecast_from,omitempty"`
	ForecastWh   []int64 `json:"forecast_wh,omitempty"`
}

// Unknown is the content of a kind this version does not interpret. It is
// stored and relayed verbatim.
type Unknown struct {
	K   Kind
	Raw []byte
}

// Kind returns KindAnnounce.
func (*Announce) Kind() Kind { return KindAnnounce }

// Kind returns KindPledge.
func (*Pledge) Kind() Kind { return KindPledge }

// Kind returns KindAccept.
func (*Accept) Kind() Kind { return KindAccept }

// Kind returns KindDecline.
func (*Decline) Kind() Kind { return KindDecline }

// Kind returns KindCancel.
func (*Cancel) Kind() Kind { return KindCancel }

// Kind returns KindReport.
func (*Report) Kind() Kind { return KindReport }

// Kind returns KindSettle.
func (*Settle) Kind() Kind { return KindSettle }

// Kind returns KindStatus.
func (*Status) Kind() Kind { return KindStatus }

// Kind returns the kind the content was found under.
func (u *Unknown) Kind() Kind { return u.K }

func newContent(k Kind) Content {
	switch k {
	case KindAnnounce:
		return new(Announce)
	case KindPledge:
		return new(Pledge)
	case KindAccept:
		return new(Accept)
	case KindDecline:
		return new(Decline)
	case KindCancel:
		return new(Cancel)
	case KindReport:
		return new(Report)
	case KindSealedReport:
		return new(SealedReport)
	case KindSettle:
		return new(Settle)
	case KindSettle2:
		return new(Settle2)
	case KindStatus:
		return new(Status)
	case KindHandover:
		return new(Handover)
	case KindRecoveryKey:
		return new(RecoveryKey)
	case KindSuccessor:
		return new(Successor)
	case KindRecover:
		return new(Recover)
	case KindSeen:
		return new(Seen)
	case KindProtocol:
		return new(Protocol)
	}
	return nil
}

// EncodeContent validates c and returns its canonical JSON bytes: fields in
// the order of the struct (and of docs/PROTOCOL.md), no whitespace,
// optional fields omitted when empty.
func EncodeContent(c Content) ([]byte, error) {
	if u, ok := c.(*Unknown); ok {
		return bytes.Clone(u.Raw), nil
	}
	if err := c.validate(); err != nil {
		return nil, reject(ErrBadContent, "%s content: %v", c.Kind(), err)
	}
	b, err := canonicalJSON(c)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxContentSize {
		return nil, reject(ErrOversized, "%s content is %d bytes, limit %d", c.Kind(), len(b), MaxContentSize)
	}
	return b, nil
}

func canonicalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// DecodeContent decodes and validates content of kind k. For a kind this
// version does not know it returns *Unknown without interpreting b. Known
// kinds must be canonical: strict JSON (no unknown fields, no duplicates,
// integers only) whose re-encoding equals b byte for byte.
func DecodeContent(k Kind, b []byte) (Content, error) {
	if !k.Known() {
		return &Unknown{K: k, Raw: bytes.Clone(b)}, nil
	}
	c, err := readCanonical(k, b)
	if err == nil {
		return c, nil
	}
	// Rejected: decode again with encoding/json for a more specific reason.
	if _, jerr := decodeContentJSON(k, b); jerr != nil {
		return nil, jerr
	}
	return nil, reject(ErrBadContent, "%s content: %v", k, err)
}

// decodeContentJSON is the reference decoder: strict encoding/json decode,
// validation, and a byte comparison with the canonical re-encoding.
func decodeContentJSON(k Kind, b []byte) (Content, error) {
	c := newContent(k)
	if c == nil {
		return &Unknown{K: k, Raw: bytes.Clone(b)}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return nil, reject(ErrBadContent, "%s content: %v", k, jsonErr(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, reject(ErrBadContent, "%s content: data after the JSON object", k)
	}
	if err := c.validate(); err != nil {
		return nil, reject(ErrBadContent, "%s content: %v", k, err)
	}
	canon, err := canonicalJSON(c)
	if err != nil {
		return nil, reject(ErrBadContent, "%s content: %v", k, err)
	}
	if !bytes.Equal(canon, b) {
		return nil, reject(ErrBadContent, "%s content is not canonical JSON (fields in spec order, no spaces, no duplicates, empty optional fields omitted); canonical form is %s", k, clip(string(canon)))
	}
	return c, nil
}

func jsonErr(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "json: ")
	return s
}

// Decode returns the message's decoded content (see DecodeContent).
func (m *Message) Decode() (Content, error) {
	c, err := DecodeContent(m.Kind, m.Content)
	if err != nil {
		return nil, fmt.Errorf("message %s: %w", m.id.Short(), err)
	}
	return c, nil
}

// CheckContent applies the kind's content rules. Unknown kinds pass: they
// are stored and relayed but not interpreted.
func (m *Message) CheckContent() error {
	c, err := m.Decode()
	if err != nil {
		return err
	}
	if p, ok := c.(*Pledge); ok && p.To == m.Author {
		return reject(ErrBadContent, "message %s: pledge from %s to itself: a household cannot share with its own connection", m.id.Short(), m.Author.Short())
	}
	if s, ok := c.(*SealedReport); ok && !s.Readable(m.Author) {
		return reject(ErrBadContent, "message %s: sealed report of %s is not readable by its own author", m.id.Short(), m.Author.Short())
	}
	if m.Kind >= KindHandover && m.Kind <= KindRecover {
		return checkSuccession(m, c)
	}
	return nil
}

// NewDraft encodes c as the content of a draft for community. seq and prev
// come from the author's head (ignored for ephemeral kinds, which get seq
// 0): pass the zero Head for an author's first message.
func NewDraft(community CommunityID, head Head, created time.Time, c Content) (Draft, error) {
	b, err := EncodeContent(c)
	if err != nil {
		return Draft{}, err
	}
	d := Draft{Community: community, Created: created, Kind: c.Kind(), Content: b}
	if !c.Kind().Ephemeral() {
		d.Seq = head.Seq + 1
		d.Prev = head.ID
	}
	return d, nil
}

// validation helpers

func checkText(field, s string, maxBytes int, required bool) error {
	if s == "" {
		if required {
			return fmt.Errorf("%s is empty", field)
		}
		return nil
	}
	if len(s) > maxBytes {
		return fmt.Errorf("%s is %d bytes, limit %d", field, len(s), maxBytes)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", field)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0x2028 || r == 0x2029 || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("%s contains control character %U", field, r)
		}
	}
	if strings.TrimSpace(s) != s {
		return fmt.Errorf("%s has leading or trailing spaces", field)
	}
	return nil
}

func checkInt(field string, v, lo, hi int64) error {
	if v < lo || v > hi {
		return fmt.Errorf("%s is %d, want %d..%d", field, v, lo, hi)
	}
	return nil
}

func checkSlots(from, to int64) error {
	if err := checkInt("from_slot", from, 0, MaxSafeInt); err != nil {
		return err
	}
	if err := checkInt("to_slot", to, 1, MaxSafeInt); err != nil {
		return err
	}
	if to <= from {
		return fmt.Errorf("to_slot %d must be after from_slot %d (the range is [from_slot, to_slot))", to, from)
	}
	if to-from > MaxWindowSlots {
		return fmt.Errorf("window of %d slots exceeds the limit of %d", to-from, MaxWindowSlots)
	}
	return nil
}

func checkWhs(field string, v []int64, n int) error {
	if len(v) != n {
		return fmt.Errorf("%s has %d entries, want %d", field, len(v), n)
	}
	for i, x := range v {
		if err := checkInt(fmt.Sprintf("%s[%d]", field, i), x, 0, MaxEnergyWh); err != nil {
			return err
		}
	}
	return nil
}

func (c *Announce) validate() error {
	if err := checkText("name", c.Name, MaxNameBytes, true); err != nil {
		return err
	}
	if len(c.Addrs) > MaxAddrs {
		return fmt.Errorf("%d addrs, limit %d", len(c.Addrs), MaxAddrs)
	}
	for i, a := range c.Addrs {
		if err := checkAddr(fmt.Sprintf("addrs[%d]", i), a); err != nil {
			return err
		}
	}
	return nil
}

func checkAddr(field, a string) error {
	if a == "" || len(a) > MaxAddrBytes {
		return fmt.Errorf("%s must be 1..%d bytes", field, MaxAddrBytes)
	}
	for i := 0; i < len(a); i++ {
		if a[i] <= 0x20 || a[i] >= 0x7f {
			return fmt.Errorf("%s %q: only printable ASCII without spaces", field, a)
		}
	}
	return nil
}

func (c *Pledge) validate() error {
	if c.To.IsZero() {
		return fmt.Errorf("to is missing")
	}
	if err := checkSlots(c.FromSlot, c.ToSlot); err != nil {
		return err
	}
	if err := checkInt("energy_wh", c.EnergyWh, 1, MaxEnergyWh); err != nil {
		return err
	}
	if err := checkInt("expiry_slot", c.ExpirySlot, 0, c.FromSlot); err != nil {
		return fmt.Errorf("%v (a pledge expires at the latest when its window starts)", err)
	}
	return nil
}

func (c *Accept) validate() error {
	if c.Pledge.IsZero() {
		return fmt.Errorf("pledge is missing")
	}
	return checkInt("energy_wh", c.EnergyWh, 1, MaxEnergyWh)
}

func (c *Decline) validate() error {
	if c.Pledge.IsZero() {
		return fmt.Errorf("pledge is missing")
	}
	return checkText("reason", c.Reason, MaxReasonBytes, false)
}

func (c *Cancel) validate() error {
	if c.Pledge.IsZero() {
		return fmt.Errorf("pledge is missing")
	}
	return checkText("reason", c.Reason, MaxReasonBytes, false)
}

func (c *Report) validate() error {
	n := len(c.ExportWh)
	if n == 0 {
		return fmt.Errorf("export_wh is empty")
	}
	if err := checkSlots(c.FromSlot, c.FromSlot+int64(n)); err != nil {
		return err
	}
	if err := checkWhs("export_wh", c.ExportWh, n); err != nil {
		return err
	}
	return checkWhs("import_wh", c.ImportWh, n)
}

func (c *Settle) validate() error {
	if c.Pledge.IsZero() {
		return fmt.Errorf("pledge is missing")
	}
	if err := checkSlots(c.FromSlot, c.ToSlot); err != nil {
		return err
	}
	n := int(c.ToSlot - c.FromSlot)
	for _, f := range []struct {
		name string
		v    []int64
	}{{"allocated_wh", c.AllocatedWh}, {"export_wh", c.ExportWh}, {"import_wh", c.ImportWh}} {
		if err := checkWhs(f.name, f.v, n); err != nil {
			return err
		}
	}
	var sum int64
	for i, a := range c.AllocatedWh {
		if a > c.ExportWh[i] || a > c.ImportWh[i] {
			return fmt.Errorf("allocated_wh[%d] = %d exceeds export %d or import %d of slot %d", i, a, c.ExportWh[i], c.ImportWh[i], c.FromSlot+int64(i))
		}
		sum += a
	}
	if sum != c.TotalWh {
		return fmt.Errorf("total_wh is %d, allocated_wh sums to %d", c.TotalWh, sum)
	}
	return checkKeyName(c.Key)
}

func checkKeyName(k string) error {
	if k == "" || len(k) > MaxKeyNameBytes {
		return fmt.Errorf("key must be 1..%d bytes", MaxKeyNameBytes)
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("key %q: only a-z, 0-9 and '-'", k)
		}
	}
	return nil
}

func (c *Status) validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{{"surplus_w", c.SurplusW}, {"need_w", c.NeedW}, {"avg_surplus_w", c.AvgSurplusW}, {"avg_need_w", c.AvgNeedW}} {
		if err := checkInt(f.name, f.v, 0, MaxPowerW); err != nil {
			return err
		}
	}
	if len(c.ForecastWh) == 0 {
		if c.ForecastFrom != 0 {
			return fmt.Errorf("forecast_from without forecast_wh")
		}
		return nil
	}
	if len(c.ForecastWh) > MaxWindowSlots {
		return fmt.Errorf("forecast_wh has %d entries, limit %d", len(c.ForecastWh), MaxWindowSlots)
	}
	if err := checkInt("forecast_from", c.ForecastFrom, 1, MaxSafeInt-int64(len(c.ForecastWh))); err != nil {
		return err
	}
	for i, x := range c.ForecastWh {
		if err := checkInt(fmt.Sprintf("forecast_wh[%d]", i), x, -MaxEnergyWh, MaxEnergyWh); err != nil {
			return err
		}
	}
	return nil
}

func (u *Unknown) validate() error { return nil }
