package node

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/commons-energy/commons/share/household"
)

func TestPledgePlausibleAndSelf(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: testT0}
	a, b := newHome(t, "Alice", clk), newHome(t, "Bob", clk)
	befriend(t, a, b)
	start, end := testT0.Add(time.Hour), testT0.Add(2*time.Hour)
	tests := []struct {
		name    string
		to      string
		wh      int64
		fuseA   int
		force   bool
		wantErr string
		implaus bool
	}{
		{"default connection, at the limit", "Bob", 17_250, 0, false, "", false},
		{"default connection, over", "Bob", 17_251, 0, false, "17.251 kWh is more than this home can export in 1h0m0s (25 A × 3 phases × 230 V: at most 17.25 kWh)", true},
		{"forced", "Bob", 17_251, 0, true, "", false},
		{"configured fuse", "Bob", 11_041, 16, false, "16 A × 3 phases × 230 V: at most 11.04 kWh", true},
		{"MWh", "Bob", 1_500_000, 0, false, "1.5 MWh is more than", true},
		{"yourself by name", "alice", 1000, 0, false, "that is you", false},
		{"yourself by id", a.key.ID().String()[:8], 1000, 0, false, "that is you", false},
		{"nobody", "Zoe", 1000, 0, false, "no neighbour called", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.cfg.FuseA = tt.fuseA
			_, err := a.pledge(ctx, household.PledgeRequest{To: tt.to, EnergyWh: tt.wh, Start: start, End: end, Force: tt.force})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Pledge: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Pledge = %v; want an error containing %q", err, tt.wantErr)
			}
			if errors.Is(err, ErrImplausible) != tt.implaus {
				t.Errorf("errors.Is(%v, ErrImplausible) = %v, want %v", err, !tt.implaus, tt.implaus)
			}
			if tt.implaus && !errors.Is(err, household.ErrInvalid) {
				t.Errorf("%v is not ErrInvalid", err)
			}
		})
	}
	a.cfg.FuseA = 0
	// The dashboard's preview gives the same reason.
	_, err := a.Preview(ctx, household.PledgeRequest{To: b.key.ID().String(), EnergyWh: 1_500_000, Start: start, End: end})
	if err == nil || !strings.Contains(err.Error(), "at most 17.25 kWh") {
		t.Errorf("Preview of 1.5 MWh in an hour = %v; want the export limit", err)
	}
}

func TestPledgeIdempotencyKey(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: testT0}
	a, b := newHome(t, "Alice", clk), newHome(t, "Bob", clk)
	befriend(t, a, b)
	start, end := testT0.Add(time.Hour), testT0.Add(2*time.Hour)
	req := household.PledgeRequest{To: "Bob", EnergyWh: 1500, Start: start, End: end, IdempotencyKey: "k1"}
	first, err := a.pledge(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	byID := req
	byID.To = b.key.ID().String()
	tests := []struct {
		name    string
		req     household.PledgeRequest
		sameID  bool
		wantErr string
	}{
		{"retry", req, true, ""},
		{"retry naming Bob by id", byID, true, ""},
		{"other energy", household.PledgeRequest{To: "Bob", EnergyWh: 2000, Start: start, End: end, IdempotencyKey: "k1"}, false, "already used for pledge " + first.ID},
		{"other window", household.PledgeRequest{To: "Bob", EnergyWh: 1500, Start: end, End: end.Add(time.Hour), IdempotencyKey: "k1"}, false, "already used for pledge " + first.ID},
		{"other key", household.PledgeRequest{To: "Bob", EnergyWh: 1500, Start: start, End: end, IdempotencyKey: "k2"}, false, ""},
		{"no key", household.PledgeRequest{To: "Bob", EnergyWh: 1500, Start: start, End: end}, false, ""},
		{"key too long", household.PledgeRequest{To: "Bob", EnergyWh: 1500, Start: start, End: end, IdempotencyKey: strings.Repeat("k", 201)}, false, "at most 200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := a.pledge(ctx, tt.req)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, household.ErrInvalid) {
					t.Fatalf("Pledge = %+v, %v; want ErrInvalid containing %q", p, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (p.ID == first.ID) != tt.sameID {
				t.Errorf("pledge id %s, first %s; want same = %v", p.ID, first.ID, tt.sameID)
			}
		})
	}
	ps, err := a.Pledges(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 3 { // the first, "other key", "no key"
		t.Errorf("%d pledges, want 3", len(ps))
	}
}
