package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/commons-energy/commons/share/demo"
)

func TestParseDemoStart(t *testing.T) {
	ams, err := time.LoadLocation(demo.Zone)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{"", time.Time{}, false},
		{"2026-12-21", time.Date(2026, 12, 21, 11, 0, 0, 0, ams), false},
		{"2026-12-21T08:30", time.Date(2026, 12, 21, 8, 30, 0, 0, ams), false},
		{"2026-06-21 14:00", time.Date(2026, 6, 21, 14, 0, 0, 0, ams), false},
		{"2026-10-25T00:40:00Z", time.Date(2026, 10, 25, 0, 40, 0, 0, time.UTC), false},
		{"yesterday", time.Time{}, true},
		{"2026-13-01", time.Time{}, true},
	} {
		got, err := parseDemoStart(tc.in)
		if tc.bad {
			if err == nil || !strings.Contains(err.Error(), "YYYY-MM-DD") {
				t.Errorf("parseDemoStart(%q) = %v, %v; want an error naming the formats", tc.in, got, err)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseDemoStart(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// A bad --start is a usage error before anything is started.
func TestDemoBadStartIsUsage(t *testing.T) {
	err := runDemo(context.Background(), &bytes.Buffer{}, demoFlags{neighbours: 1, speed: 1, start: "soon"})
	var ce *exitError
	if err == nil || !errors.As(err, &ce) || ce.code != exitUsage {
		t.Fatalf("runDemo with --start soon: %v; want exit %d", err, exitUsage)
	}
}
