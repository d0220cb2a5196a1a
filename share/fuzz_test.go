package share

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func FuzzParse(f *testing.F) {
	alice, bob := testKey(f, "alice"), testKey(f, "bob")
	a := compose(f, alice, Head{}, t0, &Announce{Name: "Alice", Addrs: []string{"127.0.0.1:7420"}})
	p := compose(f, alice, HeadOf(a), t0, &Pledge{To: bob.ID(), FromSlot: 10, ToSlot: 12, EnergyWh: 5, ExpirySlot: 10})
	s := compose(f, bob, Head{}, t0, &Status{SurplusW: 3})
	for _, m := range []*Message{a, p, s} {
		f.Add(m.Bytes())
	}
	f.Add([]byte("ECM1"))
	f.Add(make([]byte, MinMessageSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			if Reason(err) == "other" {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		if !bytes.Equal(m.Bytes(), b) || int(m.ContentLen) != len(m.Content) {
			t.Fatal("parsed message does not keep the verbatim bytes")
		}
		if err := m.Verify(); err != nil {
			return
		}
		// A verified message re-opens identically.
		if _, err := Open(b, m.Community); err != nil && Reason(err) != "bad_content" {
			t.Fatalf("verified message fails Open: %v", err)
		}
	})
}

func FuzzDecodeContent(f *testing.F) {
	for _, s := range []struct {
		k Kind
		b string
	}{
		{KindAnnounce, `{"name":"Alice","addrs":["127.0.0.1:7420"]}`},
		{KindAccept, `{"pledge":"` + strings.Repeat("ab", 32) + `","energy_wh":5}`},
		{KindSettle, `{"pledge":"` + strings.Repeat("ab", 32) + `","from_slot":10,"to_slot":12,"allocated_wh":[1,0],"export_wh":[5,0],"import_wh":[1,9],"total_wh":1,"key":"pro-rata"}`},
		{KindStatus, `{"surplus_w":0,"need_w":300,"avg_surplus_w":0,"avg_need_w":250,"forecast_from":5000,"forecast_wh":[-75,120]}`},
		{KindReport, `{"from_slot":10,"export_wh":[1,2],"import_wh":[0,0]}`},
		{KindSeen, `{"pledge":"` + strings.Repeat("ab", 32) + `","slot":7,"seq":2,"head":"` + strings.Repeat("cd", 32) + `"}`},
	} {
		f.Add(uint16(s.k), []byte(s.b))
	}
	f.Fuzz(func(t *testing.T, k uint16, b []byte) {
		c, err := DecodeContent(Kind(k), b)
		if err != nil {
			return
		}
		// Canonical: what decodes re-encodes to the same bytes.
		out, err := EncodeContent(c)
		if err != nil {
			t.Fatalf("decoded content does not encode: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("not canonical: %q -> %q", b, out)
		}
	})
}

func FuzzParseInvite(f *testing.F) {
	alice := testKey(f, "alice")
	s, err := alice.Invite("Alice", []string{"192.0.2.7:7420"}, testManifest)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(s)
	f.Add("commons1")
	f.Add("commons1aaaa")
	f.Add(strings.ToUpper(s))
	f.Fuzz(func(t *testing.T, s string) {
		iv, err := ParseInvite(s)
		if err != nil {
			if Reason(err) != "bad_invite" {
				t.Fatalf("error without the invite reason: %v", err)
			}
			return
		}
		if err := iv.validate(); err != nil {
			t.Fatalf("accepted an invalid invite: %v", err)
		}
	})
}

func FuzzDearmor(f *testing.F) {
	alice := testKey(f, "alice")
	m := compose(f, alice, Head{}, t0, &Announce{Name: "Alice"})
	var buf bytes.Buffer
	if err := Armor(&buf, [][]byte{m.Bytes(), m.Bytes()}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.String())
	f.Add(ArmorBegin + "\n" + ArmorEnd)
	f.Fuzz(func(t *testing.T, s string) {
		msgs, err := Dearmor(strings.NewReader(s), 100)
		if err != nil {
			return
		}
		if len(msgs) > 100 {
			t.Fatal("limit ignored")
		}
		for _, b := range msgs {
			if len(b) > MaxMessageSize {
				t.Fatalf("message of %d bytes", len(b))
			}
		}
	})
}

func FuzzParseWindow(f *testing.F) {
	for _, s := range []string{"next-hour", "14:00/15:30", "22:00/02:00", "2025-06-01T12:00:00+02:00/2025-06-01T14:00:00+02:00"} {
		f.Add(s)
	}
	loc, err := time.LoadLocation("Europe/Brussels")
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2025, 10, 26, 1, 30, 0, 0, loc)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := testManifest.ParseWindow(s, now, loc)
		if err != nil {
			return
		}
		if r.Len() < 1 || r.Len() > MaxWindowSlots {
			t.Fatalf("%q gave %d slots", s, r.Len())
		}
	})
}

// FuzzCanonicalReader checks the one-pass canonical reader against the
// reference path (encoding/json strict decode, validate, re-encode and
// compare): both accept exactly the same contents, with equal results.
func FuzzCanonicalReader(f *testing.F) {
	for _, s := range canonSeeds {
		f.Add(uint16(s.k), []byte(s.b))
	}
	f.Fuzz(func(t *testing.T, k uint16, b []byte) {
		kind := Kind(k)
		if !kind.Known() {
			kind = kindList[int(k)%len(kindList)]
		}
		fast, ferr := readCanonical(kind, b)
		ref, rerr := decodeContentJSON(kind, b)
		if (ferr == nil) != (rerr == nil) {
			t.Fatalf("%s %q: canonical reader says %v, encoding/json path says %v", kind, b, ferr, rerr)
		}
		if ferr == nil {
			fb, _ := EncodeContent(fast)
			rb, _ := EncodeContent(ref)
			if !bytes.Equal(fb, rb) || !bytes.Equal(fb, b) {
				t.Fatalf("%s: results differ: %q vs %q", kind, fb, rb)
			}
		}
	})
}

var kindList = []Kind{KindAnnounce, KindPledge, KindAccept, KindDecline, KindCancel, KindReport, KindSealedReport, KindSettle, KindSettle2, KindStatus, KindSeen, KindProtocol}

var canonSeeds = []struct {
	k Kind
	b string
}{
	{KindAnnounce, `{"name":"Alice","addrs":["127.0.0.1:7420","[::1]:7420"]}`},
	{KindAnnounce, `{"name":"Zoë \"Z\" \\ <&>"}`},
	{KindAnnounce, `{"name":"A","addrs":[]}`},
	{KindPledge, `{"to":"fgwlvykbxtfpbmrodkkngtily43b4utnbp7bfsexss6jgiuwnxlq","from_slot":1943088,"to_slot":1943092,"energy_wh":1500,"expiry_slot":1943088,"nonce":42}`},
	{KindPledge, `{"to":"fgwlvykbxtfpbmrodkkngtily43b4utnbp7bfsexss6jgiuwnxlq","from_slot":1943088,"to_slot":1943092,"energy_wh":1500,"expiry_slot":1943088,"nonce":4294967296}`},
	{KindAccept, `{"pledge":"71f2414f234781499a15a78487a9c1ebaaf6987c41c78a0a29f7f06f2c1e5fce","energy_wh":1000}`},
	{KindDecline, `{"pledge":"71f2414f234781499a15a78487a9c1ebaaf6987c41c78a0a29f7f06f2c1e5fce","reason":"away"}`},
	{KindCancel, `{"pledge":"71f2414f234781499a15a78487a9c1ebaaf6987c41c78a0a29f7f06f2c1e5fce"}`},
	{KindReport, `{"from_slot":10,"export_wh":[1,2],"import_wh":[0,0]}`},
	{KindReport, `{"from_slot":10,"export_wh":[-0],"import_wh":[01]}`},
	{KindSettle, `{"pledge":"71f2414f234781499a15a78487a9c1ebaaf6987c41c78a0a29f7f06f2c1e5fce","from_slot":10,"to_slot":12,"allocated_wh":[1,0],"export_wh":[5,0],"import_wh":[1,9],"total_wh":1,"key":"pro-rata"}`},
	{KindSettle2, `{"pledge":"71f2414f234781499a15a78487a9c1ebaaf6987c41c78a0a29f7f06f2c1e5fce","from_slot":10,"to_slot":12,"allocated_wh":[1,0],"total_wh":1,"key":"pro-rata","reports":["71f2414f234781499a15a78487a9c1ebaaf6987c41c78a0a29f7f06f2c1e5fce","81f2414f234781499a15a78487a9c1ebaaf6987c41c78a0a29f7f06f2c1e5fce"],"pledges":["71f2414f234781499a15a78487a9c1ebaaf6987c41c78a0a29f7f06f2c1e5fce"],"accepts":["81f2414f234781499a15a78487a9c1ebaaf6987c41c78a0a29f7f06f2c1e5fce"],"accepted_wh":[5],"exporter_seq":3,"exporter_head":"71f2414f234781499a15a78487a9c1ebaaf6987c41c78a0a29f7f06f2c1e5fce","recipient_seq":4,"recipient_head":"81f2414f234781499a15a78487a9c1ebaaf6987c41c78a0a29f7f06f2c1e5fce"}`},
	{KindSettle2, `{"pledge":"71f2414f234781499a15a78487a9c1ebaaf6987c41c78a0a29f7f06f2c1e5fce","from_slot":10,"to_slot":12,"allocated_wh":[1,0],"total_wh":1,"key":"pro-rata","reports":["81f2414f234781499a15a78487a9c1ebaaf6987c41c78a0a29f7f06f2c1e5fce","71f2414f234781499a15a78487a9c1ebaaf6987c41c78a0a29f7f06f2c1e5fce"],"pledges":["71f2414f234781499a15a78487a9c1ebaaf6987c41c78a0a29f7f06f2c1e5fce"],"accepts":["81f2414f234781499a15a78487a9c1ebaaf6987c41c78a0a29f7f06f2c1e5fce"],"accepted_wh":[5],"exporter_seq":3,"exporter_head":"71f2414f234781499a15a78487a9c1ebaaf6987c41c78a0a29f7f06f2c1e5fce","recipient_seq":4,"recipient_head":"81f2414f234781499a15a78487a9c1ebaaf6987c41c78a0a29f7f06f2c1e5fce"}`},
	{KindStatus, `{"surplus_w":0,"need_w":300,"avg_surplus_w":0,"avg_need_w":250,"forecast_from":5000,"forecast_wh":[-75,120]}`},
	{KindStatus, `{"surplus_w":0,"need_w":300,"avg_surplus_w":0,"avg_need_w":250,"forecast_from":0}`},
	{KindStatus, `{"surplus_w":1e3,"need_w":300,"avg_surplus_w":0,"avg_need_w":250}`},
	{KindProtocol, `{"version":2}`},
	{KindProtocol, `{"version":1}`},
	{KindSeen, `{"pledge":"71f2414f234781499a15a78487a9c1ebaaf6987c41c78a0a29f7f06f2c1e5fce","slot":1943184,"seq":3,"head":"81f2414f234781499a15a78487a9c1ebaaf6987c41c78a0a29f7f06f2c1e5fce"}`},
	{KindSeen, `{"pledge":"71f2414f234781499a15a78487a9c1ebaaf6987c41c78a0a29f7f06f2c1e5fce","slot":1943184,"seq":0,"head":"0000000000000000000000000000000000000000000000000000000000000000"}`},
	{KindSeen, `{"pledge":"71f2414f234781499a15a78487a9c1ebaaf6987c41c78a0a29f7f06f2c1e5fce","slot":1943184,"seq":9007199254740992,"head":"81f2414f234781499a15a78487a9c1ebaaf6987c41c78a0a29f7f06f2c1e5fce"}`},
}

func TestCanonicalReaderSeeds(t *testing.T) {
	for _, s := range canonSeeds {
		fast, ferr := readCanonical(s.k, []byte(s.b))
		_, rerr := decodeContentJSON(s.k, []byte(s.b))
		if (ferr == nil) != (rerr == nil) {
			t.Errorf("%s %s: reader %v, reference %v", s.k, s.b, ferr, rerr)
		}
		if ferr == nil {
			if b, _ := EncodeContent(fast); string(b) != s.b {
				t.Errorf("%s: round trip %s", s.k, b)
			}
		}
	}
}

func FuzzKeyFileAndIDs(f *testing.F) {
	k := testKey(f, "alice")
	f.Add([]byte("-----BEGIN COMMONS ED25519 SEED-----\nHousehold: "+k.ID().String()+"\n\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n-----END COMMONS ED25519 SEED-----\n"), k.ID().String())
	f.Add([]byte("garbage"), strings.Repeat("ab", 32))
	f.Fuzz(func(t *testing.T, data []byte, s string) {
		if id, err := parseKeyFile("fuzz.key", data); err == nil && len(id.Seed()) != 32 {
			t.Fatal("bad seed")
		}
		if h, err := ParseHouseholdID(s); err == nil && h.String() != strings.ToLower(s) {
			t.Fatalf("household id %q has a second text form %q", s, h)
		}
		if id, err := ParseID(s); err == nil && id.String() != strings.ToLower(s) {
			t.Fatalf("message id %q", s)
		}
	})
}

// FuzzDecodeSealedReport decodes sealed_report content: the one-pass
// reader and the encoding/json path agree, what decodes is canonical, and
// opening it never panics and fails only with a reason code.
func FuzzDecodeSealedReport(f *testing.F) {
	alice, bob := testKey(f, "alice"), testKey(f, "bob")
	s, err := SealReport(alice, []HouseholdID{bob.ID()}, &Report{FromSlot: 10, ExportWh: []int64{1, 2}, ImportWh: []int64{0, 3}})
	if err != nil {
		f.Fatal(err)
	}
	b, err := EncodeContent(s)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"from_slot":1,"slots":1,"to":[],"commit":"","sealed":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ferr := readCanonical(KindSealedReport, b)
		ref, rerr := decodeContentJSON(KindSealedReport, b)
		if (ferr == nil) != (rerr == nil) {
			t.Fatalf("%q: canonical reader says %v, encoding/json path says %v", b, ferr, rerr)
		}
		if ferr != nil {
			return
		}
		fb, _ := EncodeContent(fast)
		rb, _ := EncodeContent(ref)
		if !bytes.Equal(fb, b) || !bytes.Equal(rb, b) {
			t.Fatalf("not canonical: %q", b)
		}
		if _, err := fast.(*SealedReport).Open(bob); err != nil && Reason(err) == "other" {
			t.Fatalf("open fails without a reason code: %v", err)
		}
	})
}
