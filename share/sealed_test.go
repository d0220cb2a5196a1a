package share

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
)

func sealedFixture(t *testing.T) (alice, bob, carol *Identity, r *Report) {
	t.Helper()
	return testKey(t, "alice"), testKey(t, "bob"), testKey(t, "carol"),
		&Report{FromSlot: 100, ExportWh: []int64{1000, 0, 250}, ImportWh: []int64{0, 300, 7}}
}

func TestSealReportRoundTrip(t *testing.T) {
	alice, bob, carol, r := sealedFixture(t)
	s, err := SealReport(alice, []HouseholdID{bob.ID(), bob.ID()}, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.To) != 2 || !s.Readable(alice.ID()) || !s.Readable(bob.ID()) || s.Readable(carol.ID()) {
		t.Fatalf("readers %v: want alice and bob once each", s.To)
	}
	if s.FromSlot != 100 || s.Slots != 3 {
		t.Fatalf("clear fields %d+%d, want 100+3", s.FromSlot, s.Slots)
	}
	// Through a signed message and back: the content is canonical.
	m := compose(t, alice, Head{}, t0, s)
	if err := m.CheckContent(); err != nil {
		t.Fatal(err)
	}
	c, err := m.Decode()
	if err != nil {
		t.Fatal(err)
	}
	back := c.(*SealedReport)
	for _, k := range []*Identity{alice, bob} {
		got, salt, err := back.OpenSalt(k)
		if err != nil {
			t.Fatalf("%s opens: %v", k.ID().Short(), err)
		}
		if !equalWh(got.ExportWh, r.ExportWh) || !equalWh(got.ImportWh, r.ImportWh) || got.FromSlot != r.FromSlot {
			t.Fatalf("opened %+v, want %+v", got, r)
		}
		// A disclosed salt and report verify against the commit.
		if err := back.Verify(got, salt); err != nil {
			t.Fatal(err)
		}
	}
	// Two seals of the same report differ (fresh salt, fresh age keys).
	s2, err := SealReport(alice, []HouseholdID{bob.ID()}, r)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Commit == s.Commit || s2.Sealed == s.Sealed {
		t.Fatal("two seals of one report are equal: the salt is not random")
	}
}

func TestSealedReportRefusals(t *testing.T) {
	alice, bob, carol, r := sealedFixture(t)
	good, err := SealReport(alice, []HouseholdID{bob.ID()}, r)
	if err != nil {
		t.Fatal(err)
	}
	// reseal encrypts a changed payload to the same readers.
	reseal := func(f func(payload []byte) []byte) string {
		_, salt, err := good.OpenSalt(alice)
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := EncodeContent(r)
		return sealRaw(t, good.To, f(sealedPayload(salt, plain)))
	}
	tests := []struct {
		name   string
		mutate func(s *SealedReport)
		opener *Identity
		reason string
	}{
		{"a third household is not a reader", nil, carol, "not_reader"},
		{"a third household listed but not encrypted to", func(s *SealedReport) { s.To = sortReaders(append(s.To, carol.ID())) }, carol, "bad_sealed"},
		{"tampered ciphertext", func(s *SealedReport) {
			raw, _ := base64.StdEncoding.DecodeString(s.Sealed)
			raw[len(raw)-5] ^= 1
			s.Sealed = base64.StdEncoding.EncodeToString(raw)
		}, bob, "bad_sealed"},
		{"truncated ciphertext", func(s *SealedReport) {
			raw, _ := base64.StdEncoding.DecodeString(s.Sealed)
			s.Sealed = base64.StdEncoding.EncodeToString(raw[:len(raw)-20])
		}, bob, "bad_sealed"},
		{"wrong commit", func(s *SealedReport) { s.Commit[0] ^= 1 }, bob, "sealed_mismatch"},
		{"clear from_slot disagrees", func(s *SealedReport) { s.FromSlot++ }, bob, "sealed_mismatch"},
		{"clear slots disagree", func(s *SealedReport) { s.Slots = 2 }, bob, "sealed_mismatch"},
		{"payload with spaces", func(s *SealedReport) {
			s.Sealed = reseal(func(p []byte) []byte { return bytes.Replace(p, []byte(`":`), []byte(`": `), 1) })
		}, bob, "bad_sealed"},
		{"payload report not canonical", func(s *SealedReport) {
			s.Sealed = reseal(func(p []byte) []byte {
				return bytes.Replace(p, []byte(`"from_slot":100`), []byte(`"from_slot":0100`), 1)
			})
		}, bob, "bad_sealed"},
		{"payload with other figures", func(s *SealedReport) {
			s.Sealed = reseal(func(p []byte) []byte { return bytes.Replace(p, []byte(`[1000,`), []byte(`[9000,`), 1) })
		}, bob, "sealed_mismatch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := *good
			s.To = append([]HouseholdID(nil), good.To...)
			if tc.mutate != nil {
				tc.mutate(&s)
			}
			got, err := s.Open(tc.opener)
			if err == nil || got != nil {
				t.Fatalf("opened: %+v", got)
			}
			if Reason(err) != tc.reason {
				t.Fatalf("reason %q (%v), want %q", Reason(err), err, tc.reason)
			}
		})
	}
}

// sealRaw encrypts payload to readers as SealReport does, without
// checking it, to build hostile ciphertexts.
func sealRaw(t *testing.T, readers []HouseholdID, payload []byte) string {
	t.Helper()
	var ct bytes.Buffer
	recips := make([]age.Recipient, len(readers))
	for i, h := range readers {
		rc, err := recipient(h)
		if err != nil {
			t.Fatal(err)
		}
		recips[i] = rc
	}
	if err := ageEncrypt(&ct, recips, payload); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(ct.Bytes())
}

func TestSealedReportContentRules(t *testing.T) {
	alice, bob, carol, r := sealedFixture(t)
	good, err := SealReport(alice, []HouseholdID{bob.ID()}, r)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(s *SealedReport)
		reason string
	}{
		{"no readers", func(s *SealedReport) { s.To = nil }, "bad_content"},
		{"readers out of order", func(s *SealedReport) { s.To[0], s.To[1] = s.To[1], s.To[0] }, "bad_content"},
		{"duplicate reader", func(s *SealedReport) { s.To[1] = s.To[0] }, "bad_content"},
		{"zero slots", func(s *SealedReport) { s.Slots = 0 }, "bad_content"},
		{"97 slots", func(s *SealedReport) { s.Slots = 97 }, "bad_content"},
		{"sealed not base64", func(s *SealedReport) { s.Sealed = "not base64!" }, "bad_content"},
		{"sealed without padding", func(s *SealedReport) { s.Sealed = strings.TrimRight(s.Sealed+"A", "=") }, "bad_content"},
		{"zero commit", func(s *SealedReport) { s.Commit = ID{} }, "bad_content"},
		{"oversized", func(s *SealedReport) { s.Sealed = base64.StdEncoding.EncodeToString(make([]byte, 6500)) }, "oversized"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := *good
			s.To = append([]HouseholdID(nil), good.To...)
			tc.mutate(&s)
			if _, err := EncodeContent(&s); Reason(err) != tc.reason {
				t.Fatalf("reason %q (%v), want %q", Reason(err), err, tc.reason)
			}
			if _, err := alice.Compose(testCommunity, Head{}, t0, &s); Reason(err) != tc.reason {
				t.Fatalf("compose: reason %q (%v), want %q: nothing must be signed", Reason(err), err, tc.reason)
			}
		})
	}
	// Too many readers: refused before anything is encrypted.
	var many []HouseholdID
	for i := range MaxSealedReaders {
		many = append(many, testKey(t, strings.Repeat("x", i+1)).ID())
	}
	if _, err := SealReport(alice, many, r); Reason(err) != "bad_content" {
		t.Fatalf("%d readers and the author: %v, want bad_content", len(many), err)
	}
	// A sealed report its own author cannot read is refused on receipt.
	notMine, err := SealReport(bob, []HouseholdID{carol.ID()}, r)
	if err != nil {
		t.Fatal(err)
	}
	notMine.To = sortReaders([]HouseholdID{bob.ID(), carol.ID()})
	m := compose(t, alice, Head{}, t0, notMine)
	if err := m.CheckContent(); Reason(err) != "bad_content" {
		t.Fatalf("sealed report not readable by its author: %v, want bad_content", err)
	}
	// An invalid plain report is refused before sealing.
	if _, err := SealReport(alice, nil, &Report{FromSlot: 1}); Reason(err) != "bad_content" {
		t.Fatalf("empty report: %v", err)
	}
}

// TestSealedReportWorstCase seals the largest report (96 slots of 2^40
// Wh both ways) to the most readers: the content must fit a message.
func TestSealedReportWorstCase(t *testing.T) {
	alice := testKey(t, "alice")
	r := &Report{FromSlot: MaxSafeInt - MaxWindowSlots, ExportWh: make([]int64, MaxWindowSlots), ImportWh: make([]int64, MaxWindowSlots)}
	for i := range r.ExportWh {
		r.ExportWh[i], r.ImportWh[i] = MaxEnergyWh, MaxEnergyWh
	}
	var readers []HouseholdID
	for i := range MaxSealedReaders - 1 {
		readers = append(readers, testKey(t, strings.Repeat("r", i+1)).ID())
	}
	s, err := SealReport(alice, readers, r)
	if err != nil {
		t.Fatal(err)
	}
	b, err := EncodeContent(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("worst-case sealed report: %d readers, %d of %d content bytes", len(s.To), len(b), MaxContentSize)
	if len(b) > MaxContentSize {
		t.Fatalf("%d bytes", len(b))
	}
	m := compose(t, alice, Head{}, t0, s)
	if got, err := DecodeContent(KindSealedReport, m.Content); err != nil || got.(*SealedReport).Slots != MaxWindowSlots {
		t.Fatalf("decode: %v", err)
	}
}

// sealedStreet is evStreet with both parties' reports sealed to each
// other. opened says which reader's evidence holds the opened reports.
func sealedStreet(t *testing.T) (s *evStreet, aSealed, bSealed *Message) {
	s = &evStreet{pledgeFixture: newPledgeFixture(t)}
	s.msgs = append(s.msgs, s.pledge)
	s.accept = s.add(t, s.bob, t0.Add(time.Minute), &Accept{Pledge: s.pledge.ID(), EnergyWh: 1000})
	w := s.window()
	ar, err := SealReport(s.alice, []HouseholdID{s.bob.ID()}, &Report{FromSlot: w.From, ExportWh: []int64{1000, 1000, 100, 1000}, ImportWh: []int64{0, 0, 0, 0}})
	if err != nil {
		t.Fatal(err)
	}
	br, err := SealReport(s.bob, []HouseholdID{s.alice.ID()}, &Report{FromSlot: w.From, ExportWh: []int64{0, 0, 0, 0}, ImportWh: []int64{300, 200, 250, 0}})
	if err != nil {
		t.Fatal(err)
	}
	aSealed = s.add(t, s.alice, s.end.Add(time.Minute), ar)
	bSealed = s.add(t, s.bob, s.end.Add(time.Minute), br)
	s.aReport, s.bReport = aSealed, bSealed
	return s, aSealed, bSealed
}

// openAll returns the evidence of reader k: every message, and the sealed
// reports it can open, opened.
func openAll(t *testing.T, s *evStreet, k *Identity) *EvidenceSet {
	ev := NewEvidenceSet(s.msgs...)
	if k == nil {
		return ev
	}
	for _, m := range s.msgs {
		if m.Kind != KindSealedReport {
			continue
		}
		c, _ := m.Decode()
		if r, err := c.(*SealedReport).Open(k); err == nil {
			ev.AddOpened(m.ID(), r)
		} else if Reason(err) != "not_reader" {
			t.Fatal(err)
		}
	}
	return ev
}

func TestSettle2SealedEvidence(t *testing.T) {
	honest := []int64{250, 200, 100, 0}
	tests := []struct {
		name   string
		alloc  []int64
		reader string // "alice", "bob" or "carol" (not a reader)
		state  State
		sealed bool
		reason string
	}{
		{"the exporter recomputes from the opened reports", honest, "alice", StateSettled, false, ""},
		{"the recipient recomputes from the opened reports", honest, "bob", StateSettled, false, ""},
		{"a third household checks consistency", honest, "carol", StateSettled, true, ""},
		{"more than the opened import is disputed for the parties", []int64{250, 250, 250, 250}, "bob", StateDisputed, false, "allocates 250 Wh in slot"},
		{"more than the opened import, seen by a third household", []int64{250, 250, 250, 250}, "carol", StateSettled, true, ""},
		{"more than the accepted share is disputed for everyone", []int64{251, 200, 100, 0}, "carol", StateDisputed, false, "more than the pledged"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _, _ := sealedStreet(t)
			keys := map[string]*Identity{"alice": s.alice, "bob": s.bob, "carol": s.carol}
			s.add(t, s.alice, s.end.Add(5*time.Minute), s.settle2(tc.alloc, []*Message{s.aReport, s.bReport}, []*Message{s.accept}))
			ev := openAll(t, s, keys[tc.reader])
			if tc.reader == "carol" {
				ev = openAll(t, s, nil)
			}
			v := s.fold(t, ev)
			if v.State != tc.state || v.Sealed != tc.sealed {
				t.Fatalf("state %s sealed %v, want %s %v (disputes %v, pending %v)", v.State, v.Sealed, tc.state, tc.sealed, v.Disputes, v.Pending)
			}
			if tc.reason != "" && (len(v.Disputes) == 0 || !strings.Contains(v.Disputes[0].Error(), tc.reason)) {
				t.Fatalf("disputes %v, want one containing %q", v.Disputes, tc.reason)
			}
			if v.State == StateSettled && v.Settlement.TotalWh != sum(tc.alloc) {
				t.Fatalf("settled %d Wh, want %d", v.Settlement.TotalWh, sum(tc.alloc))
			}
		})
	}
	// Both parties settle differently: disputed even for a third household.
	s, _, _ := sealedStreet(t)
	s.add(t, s.alice, s.end.Add(5*time.Minute), s.settle2(honest, []*Message{s.aReport, s.bReport}, []*Message{s.accept}))
	s.add(t, s.bob, s.end.Add(6*time.Minute), s.settle2([]int64{200, 200, 100, 0}, []*Message{s.aReport, s.bReport}, []*Message{s.accept}))
	if v := s.fold(t, openAll(t, s, nil)); v.State != StateDisputed {
		t.Fatalf("parties disagree: state %s, want disputed", v.State)
	}
	// A sealed report that does not cover the window is disputed by anyone.
	s, _, _ = sealedStreet(t)
	w := s.window()
	short, err := SealReport(s.bob, []HouseholdID{s.alice.ID()}, &Report{FromSlot: w.From, ExportWh: []int64{0, 0}, ImportWh: []int64{300, 200}})
	if err != nil {
		t.Fatal(err)
	}
	sm := s.add(t, s.bob, s.end.Add(2*time.Minute), short)
	s.add(t, s.alice, s.end.Add(5*time.Minute), s.settle2(honest, []*Message{s.aReport, sm}, []*Message{s.accept}))
	if v := s.fold(t, openAll(t, s, nil)); v.State != StateDisputed {
		t.Fatalf("short sealed report: state %s, want disputed", v.State)
	}
}

func sum(v []int64) (n int64) {
	for _, x := range v {
		n += x
	}
	return n
}

func TestSealedReasonCodes(t *testing.T) {
	for _, e := range []error{ErrNotReader, ErrBadSealed, ErrSealedMismatch} {
		if Reason(reject(e, "x")) == "other" || !errors.Is(reject(e, "x"), e) {
			t.Fatalf("%v has no reason code", e)
		}
	}
}
