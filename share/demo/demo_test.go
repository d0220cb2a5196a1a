package demo

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/commons-energy/commons/share/node"
)

// TestStreet runs a street of the user and two neighbours: the user sees
// both neighbours' signed statuses and the solar roof's pledge arrives by
// itself; Close removes every home and closes the meters' terminals.
func TestStreet(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Options{Neighbours: 2, Seed: 3, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{s.Neighbours[0].Profile, s.Neighbours[1].Profile}; got[0] != "solar-roof" || got[1] != "flat" {
		t.Fatalf("profiles %v, want solar-roof, flat", got)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()

	user := s.User.Runtime.Node()
	backend := node.TUIBackend(user)
	deadline := time.Now().Add(60 * time.Second)
	var statuses int
	var incoming string
	var production bool
	for time.Now().Before(deadline) && (statuses < 2 || incoming == "" || !production) {
		time.Sleep(200 * time.Millisecond)
		st, err := backend.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		production = st.Home.Production && st.Live.ProductionW.OK
		nbs, err := user.Neighbours(ctx)
		if err != nil {
			t.Fatal(err)
		}
		statuses = 0
		for _, nb := range nbs {
			if nb.Status != nil {
				statuses++
			}
		}
		ps, err := user.Pledges(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if !p.Outgoing && p.FromName == "Sofia" {
				incoming = p.ID
			}
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
	dir := s.Dir
	if err := s.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if statuses < 2 || incoming == "" || !production {
		t.Fatalf("after a minute the user saw %d neighbour statuses, incoming pledge %q, production measured %v; want 2, one from Sofia, true", statuses, incoming, production)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the street's folder %s is still there (stat: %v)", dir, err)
	}
	for _, h := range append(s.Neighbours, s.User) {
		select {
		case <-h.Meter.Done():
		default:
			t.Errorf("%s's simulated meter still runs after Close", h.Name)
		}
		if h.Production != nil {
			select {
			case <-h.Production.Done():
			default:
				t.Errorf("%s's simulated production meter still runs after Close", h.Name)
			}
		}
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"negative neighbours", Options{Neighbours: -1}, "neighbours is out of range"},
		{"too many neighbours", Options{Neighbours: MaxNeighbours + 1}, "neighbours is out of range"},
		{"slow", Options{Speed: 0.5}, "speed 0.5 is out of range"},
		{"too fast", Options{Speed: MaxSpeed * 2}, "is out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.opts.Dir = dir
			_, err := Open(context.Background(), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: %v, want an error containing %q", err, tc.want)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Fatalf("a failed Open left %s behind", left[0].Name())
			}
		})
	}
}

func TestSlotFor(t *testing.T) {
	for _, tc := range []struct {
		speed float64
		want  time.Duration
	}{{1, time.Minute}, {4, 5 * time.Minute}, {10, 15 * time.Minute}, {60, time.Hour}, {3600, time.Hour}} {
		if got := slotFor(tc.speed); got != tc.want {
			t.Errorf("slotFor(%v) = %v, want %v", tc.speed, got, tc.want)
		}
	}
}
