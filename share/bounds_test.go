package share

import (
	"errors"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSlotUpperBounds: to_slot (and a report's or forecast's last slot)
// may not pass 2^53−1 either, like from_slot.
func TestSlotUpperBounds(t *testing.T) {
	bob := testKey(t, "bob").ID().String()
	tests := []struct {
		name string
		kind Kind
		in   string
		ok   bool
	}{
		{"pledge ends at 2^53-1", KindPledge, `{"to":"` + bob + `","from_slot":9007199254740990,"to_slot":9007199254740991,"energy_wh":1,"expiry_slot":0,"nonce":0}`, true},
		{"pledge to_slot past 2^53-1", KindPledge, `{"to":"` + bob + `","from_slot":9007199254740990,"to_slot":9007199254741000,"energy_wh":1,"expiry_slot":0,"nonce":0}`, false},
		{"report past 2^53-1", KindReport, `{"from_slot":9007199254740990,"export_wh":[0,0],"import_wh":[0,0]}`, false},
		{"report ends at 2^53-1", KindReport, `{"from_slot":9007199254740990,"export_wh":[0],"import_wh":[0]}`, true},
		{"forecast past 2^53-1", KindStatus, `{"surplus_w":0,"need_w":0,"avg_surplus_w":0,"avg_need_w":0,"forecast_from":9007199254740991,"forecast_wh":[1]}`, false},
		{"forecast ends at 2^53-1", KindStatus, `{"surplus_w":0,"need_w":0,"avg_surplus_w":0,"avg_need_w":0,"forecast_from":9007199254740990,"forecast_wh":[1]}`, true},
	}
	for _, tt := range tests {
		_, err := DecodeContent(tt.kind, []byte(tt.in))
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok %v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrBadContent) {
			t.Errorf("%s: err = %v, want bad_content", tt.name, err)
		}
	}
}

// TestCheckSlots: the community's time bound rejects slot ranges ending
// after 2200-01-01T00:00:00Z as bad_content, for every kind with slots and
// every legal slot length.
func TestCheckSlots(t *testing.T) {
	alice, bob := testKey(t, "alice"), testKey(t, "bob")
	if got := EndOfTime.Format(time.RFC3339); got != "2200-01-01T00:00:00Z" {
		t.Fatalf("EndOfTime = %s", got)
	}
	id := ID{1}
	for _, slotLen := range []int64{60, 900, 3600, 86400} {
		man := Manifest{Name: "x", SlotLen: slotLen, Key: DefaultKey}
		max := man.MaxSlot()
		if !man.SlotStart(max).Equal(EndOfTime) {
			t.Fatalf("slot %d of %d s starts %s, want %s", max, slotLen, man.SlotStart(max), EndOfTime)
		}
		pledge := func(from, to int64) Content {
			return &Pledge{To: bob.ID(), FromSlot: from, ToSlot: to, EnergyWh: 1, ExpirySlot: 0}
		}
		settle := func(from, to int64) Content {
			n := to - from
			z := make([]int64, n)
			return &Settle{Pledge: id, FromSlot: from, ToSlot: to, AllocatedWh: z, ExportWh: z, ImportWh: z, Key: DefaultKey}
		}
		tests := []struct {
			name string
			c    Content
			ok   bool
		}{
			{"pledge ending at the bound", pledge(max-4, max), true},
			{"pledge ending one past", pledge(max-3, max+1), false},
			{"pledge at 2^40", pledge(1<<40, 1<<40+4), false},
			{"settle ending at the bound", settle(max-2, max), true},
			{"settle ending one past", settle(max-1, max+1), false},
			{"report ending at the bound", &Report{FromSlot: max - 2, ExportWh: []int64{0, 0}, ImportWh: []int64{0, 0}}, true},
			{"report ending one past", &Report{FromSlot: max - 1, ExportWh: []int64{0, 0}, ImportWh: []int64{0, 0}}, false},
			{"forecast ending at the bound", &Status{ForecastFrom: max - 1, ForecastWh: []int64{-5}}, true},
			{"forecast ending one past", &Status{ForecastFrom: max, ForecastWh: []int64{5}}, false},
			{"status without forecast", &Status{SurplusW: MaxPowerW}, true},
			{"announce", &Announce{Name: "A"}, true},
			{"accept", &Accept{Pledge: id, EnergyWh: MaxEnergyWh}, true},
		}
		for _, tt := range tests {
			m, err := alice.Compose(man.ID(), Head{}, t0, tt.c)
			if err != nil {
				t.Fatalf("%d s, %s: compose: %v", slotLen, tt.name, err)
			}
			err = man.CheckSlots(m)
			if (err == nil) != tt.ok {
				t.Errorf("%d s, %s: CheckSlots = %v, want ok %v", slotLen, tt.name, err, tt.ok)
			}
			if err != nil && (!errors.Is(err, ErrBadContent) || !strings.Contains(err.Error(), "2200-01-01T00:00:00Z")) {
				t.Errorf("%d s, %s: err = %v, want bad_content naming the end of protocol time", slotLen, tt.name, err)
			}
		}
	}
}

// TestSlotStartSaturates: slot arithmetic on any slot the content rules
// admit neither wraps around nor panics.
func TestSlotStartSaturates(t *testing.T) {
	m := Manifest{Name: "x", SlotLen: 86400, Key: DefaultKey}
	tests := []struct {
		slot   int64
		wantMs int64
	}{
		{0, 0},
		{1, 86400_000},
		{MaxSafeInt, math.MaxInt64},
		{math.MaxInt64, math.MaxInt64},
		{-MaxSafeInt, math.MinInt64},
		{math.MinInt64, math.MinInt64},
	}
	for _, tt := range tests {
		if got := m.SlotStartMs(tt.slot); got != tt.wantMs {
			t.Errorf("SlotStartMs(%d) = %d, want %d", tt.slot, got, tt.wantMs)
		}
		if s := m.SlotStart(tt.slot); tt.slot >= MaxSafeInt && !s.After(EndOfTime) || tt.slot <= -MaxSafeInt && !s.Before(time.Unix(0, 0)) {
			t.Errorf("SlotStart(%d) = %s wrapped around", tt.slot, s)
		}
	}
}

// TestFoldFarPledge: a pledge whose window lies far out (up to the edge
// of what the content rules admit) folds as pledged, its expiry far ahead,
// not as expired through an overflowed expiry instant.
func TestFoldFarPledge(t *testing.T) {
	alice, bob := testKey(t, "alice"), testKey(t, "bob")
	for _, from := range []int64{1 << 40, 1 << 45, 1 << 50, MaxSafeInt - 4} {
		p := compose(t, alice, Head{}, t0, &Pledge{To: bob.ID(), FromSlot: from, ToSlot: from + 4, EnergyWh: 10, ExpirySlot: from})
		v, err := FoldPledge(testManifest, p, nil, t0)
		if err != nil {
			t.Fatal(err)
		}
		if v.State != StatePledged {
			t.Errorf("from_slot %d: state %s, want pledged", from, v.State)
		}
	}
}

// TestSpecStatesEndOfTime: docs/PROTOCOL.md §4.1 names the same bound as
// the code.
func TestSpecStatesEndOfTime(t *testing.T) {
	doc, err := os.ReadFile("../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"max_slot = " + strconv.FormatInt(MaxSlotSeconds, 10) + " / slot_len_s",
		EndOfTime.Format(time.RFC3339),
		strconv.FormatInt(testManifest.MaxSlot(), 10) + " with 15-minute slots",
	} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("docs/PROTOCOL.md does not say %q", want)
		}
	}
}

// TestCheckClockExtremes: the clock rule accepts any created_ms up to now
// + skew, also one so far in the past that created_ms − now overflows, and
// rejects any later one.
func TestCheckClockExtremes(t *testing.T) {
	alice := testKey(t, "alice")
	now := t0
	tests := []struct {
		createdMs int64
		ok        bool
	}{
		{math.MinInt64, true},
		{math.MinInt64 + 1, true},
		{-1 << 62, true},
		{-10_000_000_000_000, true},  // 1653-02-10: created_ms − now overflowed as a Duration
		{-6330335075427400000, true}, // year -200599299
		{-1, true},
		{0, true},
		{now.UnixMilli() + MaxClockSkew.Milliseconds(), true},
		{now.UnixMilli() + MaxClockSkew.Milliseconds() + 1, false},
		{math.MaxInt64, false},
	}
	for _, tt := range tests {
		m := compose(t, alice, Head{}, time.UnixMilli(tt.createdMs), &Status{})
		if m.CreatedMs != tt.createdMs {
			t.Fatalf("created_ms %d signed as %d", tt.createdMs, m.CreatedMs)
		}
		err := CheckClock(m, now, MaxClockSkew)
		if (err == nil) != tt.ok || err != nil && !errors.Is(err, ErrClock) {
			t.Errorf("created_ms %d: %v, want ok %v", tt.createdMs, err, tt.ok)
		}
	}
}

// FuzzCheckSlots: CheckSlots on any content of any kind never panics, and
// content it lets through names no slot range ending after MaxSlot.
func FuzzCheckSlots(f *testing.F) {
	f.Add(uint16(KindPledge), int64(900), []byte(`{"to":"aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg4a","from_slot":1099511627776,"to_slot":1099511627780,"energy_wh":1,"expiry_slot":0,"nonce":0}`))
	f.Add(uint16(KindReport), int64(60), []byte(`{"from_slot":120968639,"export_wh":[0],"import_wh":[0]}`))
	f.Add(uint16(KindStatus), int64(86400), []byte(`{"surplus_w":0,"need_w":0,"avg_surplus_w":0,"avg_need_w":0,"forecast_from":84006,"forecast_wh":[1]}`))
	f.Add(uint16(0x9000), int64(900), []byte(`x`))
	alice := testKey(f, "alice")
	f.Fuzz(func(t *testing.T, kind uint16, slotLen int64, content []byte) {
		if len(content) > MaxContentSize {
			return
		}
		k := Kind(kind)
		seq := uint64(1)
		if k.Ephemeral() {
			seq = 0
		}
		man := Manifest{Name: "x", SlotLen: slotLen, Key: DefaultKey}
		m, err := alice.Sign(Draft{Community: man.ID(), Seq: seq, Created: t0, Kind: k, Content: content})
		if err != nil {
			return
		}
		if err := man.CheckSlots(m); err != nil {
			if !errors.Is(err, ErrBadContent) {
				t.Fatalf("CheckSlots: %v, not bad_content", err)
			}
			return
		}
		c, err := m.Decode()
		if err != nil || man.Validate() != nil {
			return
		}
		var end int64
		switch x := c.(type) {
		case *Pledge:
			end = x.ToSlot
		case *Settle:
			end = x.ToSlot
		case *Report:
			end = x.FromSlot + int64(len(x.ExportWh))
		case *Status:
			end = x.ForecastFrom + int64(len(x.ForecastWh))
		}
		if end > man.MaxSlot() || man.SlotStart(end).After(EndOfTime) {
			t.Fatalf("CheckSlots let through a range ending at slot %d (%s)", end, man.SlotStart(end))
		}
	})
}
