package node

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/input"
)

func TestParseEnergy(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{"1.5kWh", 1500, ""},
		{"1500Wh", 1500, ""},
		{"1500wh", 1500, ""},
		{" 2 kWh ", 2000, ""},
		{"0.001kWh", 1, ""},
		{".5kWh", 500, ""},
		{"1.kWh", 1000, ""},
		{"1.2500kWh", 1250, ""},
		{"0.002MWh", 2000, ""},
		{"1000000kWh", 1_000_000_000, ""},
		{"1000001kWh", 0, "too large"},
		{"99999999999999999999Wh", 0, "too large"},
		{"1.0005kWh", 0, "finer than 1 Wh"},
		{"1.5Wh", 0, "finer than 1 Wh"},
		{"1500", 1500, ""},
		{"1.5 kW", 0, "unknown unit"},
		{"kWh", 0, "not a number"},
		{".kWh", 0, "not a number"},
		{"-1kWh", 0, "not a number"},
		{"1,5kWh", 1500, ""},
		{"1,5 kWh", 1500, ""},
		{"1.5MWh", 1_500_000, ""},
		{"1.5 mwh", 1_500_000, ""},
		{"1001MWh", 0, "at most 1000 MWh"},
		{"1.5.0kWh", 0, "not a number"},
		{"1,5,0kWh", 0, "not a number"},
		{"1e3Wh", 0, "not a number"},
		{"0kWh", 0, "zero"},
		{"0.000kWh", 0, "zero"},
	}
	for _, tt := range tests {
		got, err := ParseEnergy(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseEnergy(%q) = %d, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseEnergy(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParseEnergy(f *testing.F) {
	for _, s := range []string{"1.5kWh", "1500Wh", "0.002MWh", ".5kwh", "1e3Wh", "-1Wh"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		wh, err := ParseEnergy(s)
		if err != nil {
			return
		}
		if wh < 1 || wh > input.MaxPledgeWh {
			t.Fatalf("ParseEnergy(%q) = %d out of range", s, wh)
		}
		// The Wh value printed back parses to the same value.
		if back, err := ParseEnergy(input.FormatEnergy(wh)); err != nil || back != wh {
			t.Fatalf("round trip of %d via %q = %d, %v", wh, input.FormatEnergy(wh), back, err)
		}
	})
}

func TestParseWindow(t *testing.T) {
	brussels, err := time.LoadLocation("Europe/Brussels")
	if err != nil {
		t.Fatalf("load zone: %v", err)
	}
	// A summer morning and the two DST change days of 2025 in Brussels.
	now := time.Date(2025, 6, 1, 9, 7, 0, 0, brussels)
	spring := time.Date(2025, 3, 30, 0, 30, 0, 0, brussels)
	autumn := time.Date(2025, 10, 26, 0, 30, 0, 0, brussels)
	q := 15 * time.Minute
	tests := []struct {
		name       string
		in         string
		now        time.Time
		slot       time.Duration
		start, end string // RFC 3339
		wantErr    string
	}{
		{"clock", "12:00/13:00", now, q, "2025-06-01T12:00:00+02:00", "2025-06-01T13:00:00+02:00", ""},
		{"past midnight", "22:00/00:00", now, q, "", "", "the window ends before it starts"},
		{"reversed clock", "14:00/13:00", now, q, "", "", "the window ends before it starts"},
		{"zero length", "14:00/14:00", now, q, "", "", "the window ends before it starts"},
		{"dash", "14:00-16:00", now, q, "2025-06-01T14:00:00+02:00", "2025-06-01T16:00:00+02:00", ""},
		{"dash spaced", " 14:00 - 16:00 ", now, q, "2025-06-01T14:00:00+02:00", "2025-06-01T16:00:00+02:00", ""},
		{"reversed dash", "14:00-13:00", now, q, "", "", "the window ends before it starts"},
		{"next-hour", "next-hour", now, q, "2025-06-01T10:00:00+02:00", "2025-06-01T11:00:00+02:00", ""},
		{"rfc3339", "2025-06-01T10:00:00Z/2025-06-01T10:30:00Z", now, q, "2025-06-01T12:00:00+02:00", "2025-06-01T12:30:00+02:00", ""},
		{"started, not over", "09:00/10:00", now, q, "2025-06-01T09:00:00+02:00", "2025-06-01T10:00:00+02:00", ""},
		{"widened to slots", "12:05/12:50", now, q, "2025-06-01T12:00:00+02:00", "2025-06-01T13:00:00+02:00", ""},
		{"hour slots", "10:15/11:00", now, time.Hour, "2025-06-01T10:00:00+02:00", "2025-06-01T11:00:00+02:00", ""},
		// 30 March 2025: 02:00-03:00 does not exist.
		{"spring night", "01:00/04:00", spring, q, "2025-03-30T01:00:00+01:00", "2025-03-30T04:00:00+02:00", ""},
		{"spring gap", "02:30/04:00", spring, q, "", "", "does not exist"},
		// 26 October 2025: 02:00-03:00 happens twice; the earlier is taken.
		{"autumn night", "01:00/04:00", autumn, q, "2025-10-26T01:00:00+02:00", "2025-10-26T04:00:00+01:00", ""},
		{"over", "08:00/09:00", now, q, "", "", "ended at 2025-06-01T09:00:00+02:00"},
		{"no slash", "12:00", now, q, "", "", "14:00/16:00"},
		{"bad clock", "25:00/26:00", now, q, "", "", "hours run 00-23"},
		{"bad start", "noon/13:00", now, q, "", "", "window start \"noon\""},
		{"bad end", "2025-06-01T10:00:00Z/later", now, q, "", "", "window end \"later\""},
		{"reversed", "2025-06-01T11:00:00Z/2025-06-01T10:00:00Z", now, q, "", "", "the window ends before it starts"},
		{"too long", "2025-06-01T10:00:00Z/2025-06-10T10:00:00Z", now, q, "", "", "limit 96"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, end, err := ParseWindow(tt.in, tt.now, household.Calendar{Location: brussels, Slot: tt.slot})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, household.ErrInvalid) {
					t.Fatalf("ParseWindow(%q) = %v, %v, %v; want ErrInvalid containing %q", tt.in, start, end, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseWindow(%q): %v", tt.in, err)
			}
			if got := start.Format(time.RFC3339); got != tt.start {
				t.Errorf("start = %s, want %s", got, tt.start)
			}
			if got := end.Format(time.RFC3339); got != tt.end {
				t.Errorf("end = %s, want %s", got, tt.end)
			}
		})
	}
}

func FuzzParseWindow(f *testing.F) {
	for _, s := range []string{"12:00/13:00", "next-hour", "22:00/00:00", "2025-06-01T10:00:00Z/2025-06-01T10:30:00Z", "/", "99:99/00:00", "12:05/12:50"} {
		f.Add(s)
	}
	now := time.Date(2025, 6, 1, 9, 7, 0, 0, time.UTC)
	cal := household.Calendar{Location: time.UTC, Slot: 15 * time.Minute}
	f.Fuzz(func(t *testing.T, s string) {
		start, end, err := ParseWindow(s, now, cal)
		if err != nil {
			if !errors.Is(err, household.ErrInvalid) {
				t.Fatalf("ParseWindow(%q): error %v does not wrap ErrInvalid", s, err)
			}
			return
		}
		if !end.After(start) || !end.After(now) || end.Sub(start) > 96*15*time.Minute {
			t.Fatalf("ParseWindow(%q) = %v..%v: invalid window accepted", s, start, end)
		}
		if start.Unix()%900 != 0 || end.Unix()%900 != 0 {
			t.Fatalf("ParseWindow(%q) = %v..%v: not slot aligned", s, start, end)
		}
	})
}
