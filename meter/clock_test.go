package meter

import (
	"testing"
	"time"
)

func TestClockSkew(t *testing.T) {
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	// 2025-10-26 00:30 UTC is 02:30 CEST, the first of the autumn's two 02:30s.
	now := time.Date(2025, 10, 26, 0, 30, 0, 0, time.UTC)
	tests := []struct {
		name string
		t    time.Time
		want time.Duration
		ok   bool
	}{
		{"no time", time.Time{}, 0, false},
		{"DSMR summer flag, in step", time.Date(2025, 10, 26, 2, 30, 4, 0, time.FixedZone("CEST", 2*3600)), 4 * time.Second, true},
		{"a year ahead", now.AddDate(1, 0, 0), now.AddDate(1, 0, 0).Sub(now), true},
		{"an hour behind (winter flag, summer wall clock)", time.Date(2025, 10, 26, 2, 30, 0, 0, time.FixedZone("CET", 3600)), time.Hour, true},
		{"floating wall clock in step", time.Date(2025, 10, 26, 2, 30, 0, 0, Floating), 0, true},
		{"floating wall clock 10 minutes behind", time.Date(2025, 10, 26, 2, 20, 0, 0, Floating), -10 * time.Minute, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ClockSkew(&Reading{Time: tt.t}, now, ams)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("ClockSkew = %s, %v; want %s, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestDescribeClockSkew(t *testing.T) {
	now := time.Date(2025, 1, 21, 12, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]string{
		now.AddDate(1, 0, 0).Sub(now):                        "1 year ahead",
		now.AddDate(-1, 0, 0).Sub(now):                       "1 year behind",
		-3*24*time.Hour - time.Hour:                          "3 days behind",
		time.Hour:                                            "1 hour ahead",
		7*time.Minute + 29*time.Second:                       "7 minutes ahead",
		now.AddDate(1, 0, 0).Sub(now) - 700*time.Millisecond: "1 year ahead",
		-2 * time.Second:                                     "2 seconds behind",
		300 * time.Millisecond:                               "in step",
		59*time.Minute + 59*time.Second:                      "1 hour ahead",
	} {
		if got := DescribeClockSkew(d); got != want {
			t.Errorf("DescribeClockSkew(%s) = %q, want %q", d, got, want)
		}
	}
}
