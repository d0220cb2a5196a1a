package input

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestFormatEnergy(t *testing.T) {
	for wh, want := range map[int64]string{0: "0 Wh", 750: "750 Wh", 1000: "1 kWh", 1500: "1.5 kWh", 1_500_000: "1.5 MWh", 2_000_001: "2.000001 MWh", -2500: "-2.5 kWh"} {
		if got := FormatEnergy(wh); got != want {
			t.Errorf("FormatEnergy(%d) = %q, want %q", wh, got, want)
		}
	}
}

func TestFormatKWhAndPower(t *testing.T) {
	for wh, want := range map[int64]string{0: "0 kWh", 750: "0.75 kWh", 1500: "1.5 kWh", 1_234_567: "1234.567 kWh", -5: "-0.005 kWh"} {
		if got := FormatKWh(wh); got != want {
			t.Errorf("FormatKWh(%d) = %q, want %q", wh, got, want)
		}
	}
	for w, want := range map[int64]string{0: "0 W", 850: "850 W", 9999: "9999 W", 10_000: "10 kW", 12_349: "12.349 kW", -12_350: "-12.35 kW"} {
		if got := FormatPower(w); got != want {
			t.Errorf("FormatPower(%d) = %q, want %q", w, got, want)
		}
	}
}

func TestCheckPlausible(t *testing.T) {
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name          string
		wh            int64
		fuseA, phases int
		d             time.Duration
		wantErr       string
	}{
		{"default fits", 17_250, 0, 0, time.Hour, ""},
		{"default too much", 17_251, 0, 0, time.Hour, "25 A × 3 phases × 230 V: at most 17.25 kWh"},
		{"single phase", 5_751, 25, 1, time.Hour, "at most 5.75 kWh"},
		{"quarter hour", 1500, 0, 0, 15 * time.Minute, ""},
		{"MWh in an hour", 1_500_000, 0, 0, time.Hour, "1.5 MWh is more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPlausible(tt.wh, tt.fuseA, tt.phases, t0, t0.Add(tt.d))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckPlausible: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInput) {
				t.Fatalf("CheckPlausible = %v; want ErrInput containing %q", err, tt.wantErr)
			}
		})
	}
}

func FuzzParseEnergy(f *testing.F) {
	for _, s := range []string{"1.5kWh", "1,5 kWh", "1500", "0.002MWh", ".5kwh", "1e3Wh", "-1Wh", "1.5 MWh"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		wh, err := ParseEnergy(s)
		if err != nil {
			if !errors.Is(err, ErrInput) {
				t.Fatalf("ParseEnergy(%q): %v does not wrap ErrInput", s, err)
			}
			return
		}
		if wh < 1 || wh > MaxPledgeWh {
			t.Fatalf("ParseEnergy(%q) = %d out of range", s, wh)
		}
		if back, err := ParseEnergy(FormatEnergy(wh)); err != nil || back != wh {
			t.Fatalf("round trip of %d via %q = %d, %v", wh, FormatEnergy(wh), back, err)
		}
	})
}

func FuzzParseWindow(f *testing.F) {
	for _, s := range []string{"12:00/13:00", "14:00-16:00", "next-hour", "22:00/00:00", "2025-06-01T10:00:00Z/2025-06-01T10:30:00Z", "/", "-", "9:00-10:00"} {
		f.Add(s)
	}
	now := time.Date(2025, 6, 1, 9, 7, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		start, end, err := ParseWindow(s, now, time.UTC, 15*time.Minute)
		if err != nil {
			if !errors.Is(err, ErrInput) {
				t.Fatalf("ParseWindow(%q): %v does not wrap ErrInput", s, err)
			}
			return
		}
		if !end.After(start) || !end.After(now) || start.Unix()%900 != 0 || end.Unix()%900 != 0 {
			t.Fatalf("ParseWindow(%q) = %v..%v: invalid window accepted", s, start, end)
		}
	})
}
