package demo

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/commons-energy/commons/share/relay/relaytest"
)

func TestHeadlessLinks(t *testing.T) {
	for _, tc := range []struct {
		n, want, limit int
		links          int
		bad            bool
	}{
		{n: 2, limit: 1 << 20, links: 1},
		{n: 5, limit: 1 << 20, links: 4},  // full mesh
		{n: 9, limit: 1 << 20, links: 8},  // full mesh
		{n: 10, limit: 1 << 20, links: 8}, // ring, 4 each side
		{n: 100, want: 7, limit: 1 << 20, links: 6},
		{n: 100, want: 3, limit: 1 << 20, links: 2},
		{n: 1000, limit: HeadlessFDs(1000, 4, false), links: 4},
		{n: 1000, limit: HeadlessFDs(1000, 2, false), links: 2},
		{n: 1000, limit: HeadlessFDs(1000, 2, false) - 1, bad: true},
		{n: 100, limit: 100, bad: true},
	} {
		got, err := HeadlessLinks(tc.n, tc.want, tc.limit)
		if tc.bad {
			if err == nil || !strings.Contains(err.Error(), "RLIMIT_NOFILE") {
				t.Errorf("HeadlessLinks(%d, %d, %d) = %d, %v; want an error naming the limit", tc.n, tc.want, tc.limit, got, err)
			}
			continue
		}
		if err != nil || got != tc.links {
			t.Errorf("HeadlessLinks(%d, %d, %d) = %d, %v; want %d", tc.n, tc.want, tc.limit, got, err, tc.links)
		}
	}
}

// Links are mutual (a household only accepts neighbours it knows), never
// to oneself, and as many as asked.
func TestHeadlessRingIsMutual(t *testing.T) {
	for _, tc := range []struct{ n, links int }{{2, 1}, {5, 4}, {10, 8}, {11, 8}, {100, 8}, {1000, 4}} {
		s := &headless{links: tc.links, hs: make([]*hh, tc.n)}
		for i := range tc.n {
			l := s.linked(i)
			if len(l) != tc.links || slices.Contains(l, i) {
				t.Fatalf("n=%d links=%d: household %d links %v", tc.n, tc.links, i, l)
			}
			sorted := slices.Clone(l)
			slices.Sort(sorted)
			if len(slices.Compact(sorted)) != len(l) {
				t.Fatalf("n=%d: household %d links %v twice", tc.n, i, l)
			}
			for _, j := range l {
				if !slices.Contains(s.linked(j), i) {
					t.Fatalf("n=%d links=%d: %d links %d but not back", tc.n, tc.links, i, j)
				}
			}
		}
	}
}

func TestPercentiles(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	if got := percentiles(nil); got != (Latency{}) {
		t.Errorf("no samples: %+v", got)
	}
	if got := percentiles(ms(7)); got != (Latency{7, 7}) {
		t.Errorf("one sample: %+v", got)
	}
	var hundred []int
	for i := 100; i >= 1; i-- {
		hundred = append(hundred, i)
	}
	if got := percentiles(ms(hundred...)); got != (Latency{50, 99}) {
		t.Errorf("1..100 ms: %+v; want p50 50, p99 99", got)
	}
	if got := percentiles([]time.Duration{1234567 * time.Nanosecond}); got.P50 != 1.2 {
		t.Errorf("1.234567 ms: %+v; want 1.2", got)
	}
}

func TestValidateHeadless(t *testing.T) {
	ok := HeadlessOptions{Households: 2, Duration: time.Second}
	if err := ValidateHeadless(ok); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*HeadlessOptions)
		want string
	}{
		{"one household", func(o *HeadlessOptions) { o.Households = 1 }, "2 to"},
		{"too many", func(o *HeadlessOptions) { o.Households = MaxHouseholds + 1 }, "2 to"},
		{"no duration", func(o *HeadlessOptions) { o.Duration = 0 }, "--duration"},
		{"negative duration", func(o *HeadlessOptions) { o.Duration = -time.Second }, "--duration"},
		{"slow clock", func(o *HeadlessOptions) { o.Speed = 0.5 }, "--speed"},
	} {
		o := ok
		tc.mod(&o)
		if err := ValidateHeadless(o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want an error with %q", tc.name, err, tc.want)
		}
	}
	o := ok
	o.Relay = "nats://127.0.0.1:4222"
	if err := ValidateHeadless(o); err != nil {
		t.Errorf("a hub address: %v", err)
	}
	o.Relay = "http://hub:80"
	if err := ValidateHeadless(o); err == nil || !strings.Contains(err.Error(), "--relay") {
		t.Errorf("an http address as the hub: %v; want a --relay error", err)
	}
}

// A small street whose meters are fed from the simulator's model through
// the runtimes' reading input (the path a large street takes) pledges,
// delivers and converges. Its clock starts at a fixed summer noon, so the
// solar households have surplus to pledge whatever the date.
func TestRunHeadlessModelMeters(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a street for several seconds")
	}
	ams, err := time.LoadLocation(Zone)
	if err != nil {
		t.Fatal(err)
	}
	opts := HeadlessOptions{
		Households: 4, Duration: 4 * time.Second, Speed: 120, Seed: 2,
		Start: time.Date(2026, time.June, 21, 12, 0, 0, 0, ams), Dir: t.TempDir(), modelMeters: true,
	}
	res, err := RunHeadless(context.Background(), opts, 3)
	if err != nil {
		t.Fatal(err)
	}
	if res.Meters != "model" || res.Households != 4 || res.Links != 3 || res.Transport != "direct" {
		t.Errorf("result = %+v", res)
	}
	if !res.Converged || res.Missing != 0 || res.Disagreements != 0 {
		t.Errorf("not converged: %+v", res)
	}
	if res.Messages == 0 || res.Pledges == 0 || res.Deliveries == 0 {
		t.Errorf("nothing pledged or delivered: %+v", res)
	}
	if res.LatencyMS.P50 > res.LatencyMS.P99 || res.LatencyMS.P50 < 0 {
		t.Errorf("latency = %+v", res.LatencyMS)
	}
}

// A street that reaches each other only through a real nats-server hub
// (no household listens) pledges, delivers and converges, and says it
// went through the relay.
func TestRunHeadlessThroughHub(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a street for several seconds")
	}
	hub := relaytest.Start(t, relaytest.Options{})
	ams, err := time.LoadLocation(Zone)
	if err != nil {
		t.Fatal(err)
	}
	opts := HeadlessOptions{
		Households: 4, Duration: 4 * time.Second, Speed: 120, Seed: 3, Relay: hub.URL(),
		Start: time.Date(2026, time.June, 21, 12, 0, 0, 0, ams), Dir: t.TempDir(), modelMeters: true,
	}
	res, err := RunHeadless(context.Background(), opts, 3)
	if err != nil {
		t.Fatal(err)
	}
	if res.Transport != "relay" || res.Households != 4 {
		t.Errorf("result = %+v; want 4 households through the relay", res)
	}
	if !res.Converged || res.Missing != 0 || res.Disagreements != 0 {
		t.Errorf("not converged through the hub: %+v", res)
	}
	if res.Messages == 0 || res.Pledges == 0 || res.Deliveries == 0 {
		t.Errorf("nothing pledged or delivered through the hub: %+v", res)
	}
}
