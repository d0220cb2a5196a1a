package tui_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/commons-energy/commons/share/node"
	"github.com/commons-energy/commons/tui"
	"github.com/muesli/termenv"
)

// These tests drive the dashboard against real households: node homes in
// temporary folders with their own keys and SQLite ledgers, through the
// node's household.Household adapter.

func openHome(t *testing.T, name string) *node.Node {
	t.Helper()
	ctx := context.Background()
	h, err := node.ResolveHome(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := node.DefaultConfig(name)
	cfg.Timezone = "UTC"
	if _, err := node.Init(ctx, h, cfg); err != nil {
		t.Fatalf("init %s: %v", name, err)
	}
	n, err := node.Open(ctx, h, node.Options{Owner: "tui test", Now: time.Now})
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// carry moves from's messages to to, as export-messages | import do.
func carry(t *testing.T, from, to *node.Node) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := from.ExportMessages(context.Background(), &buf, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := to.Import(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
}

func dashboard(t *testing.T, n *node.Node) *teatest.TestModel {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.Ascii)
	m := tui.New(n, tui.Options{Context: ctx, Renderer: r, Location: time.UTC, Width: 100, Height: 30})
	return teatest.NewTestModel(t, m, teatest.WithInitialTermSize(100, 30))
}

func waitFor(t *testing.T, tm *teatest.TestModel, subs ...string) {
	t.Helper()
	var seen []byte
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		seen = append(seen, b...)
		for _, s := range subs {
			if !bytes.Contains(seen, []byte(s)) {
				return false
			}
		}
		return true
	}, teatest.WithDuration(10*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
}

func keys(tm *teatest.TestModel, ks ...string) {
	for _, k := range ks {
		switch k {
		case "enter":
			tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
		case "tab":
			tm.Send(tea.KeyMsg{Type: tea.KeyTab})
		case "right":
			tm.Send(tea.KeyMsg{Type: tea.KeyRight})
		default:
			tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)})
		}
	}
}

func TestPledgeAndAcceptBetweenRealHouseholds(t *testing.T) {
	ctx := context.Background()
	alice, bob := openHome(t, "Alice"), openHome(t, "Bob")
	if _, err := alice.AddNeighbour(ctx, bob.Identity().Invite, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.AddNeighbour(ctx, alice.Identity().Invite, ""); err != nil {
		t.Fatal(err)
	}

	// Alice pledges 1.5 kWh for the next hour from her neighbour list.
	tm := dashboard(t, alice)
	waitFor(t, tm, "commons · Alice")
	keys(tm, "3")
	waitFor(t, tm, "Bob")
	keys(tm, "p", "1.5kWh", "tab", "right", "enter")
	waitFor(t, tm, "Forecast surplus", "Already pledged")
	keys(tm, "enter")
	waitFor(t, tm, "Signed and stored.")
	keys(tm, "enter", "4")
	waitFor(t, tm, "→ Bob", "1.5 kWh")
	if err := tm.Quit(); err != nil {
		t.Fatal(err)
	}
	tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))

	ps, err := alice.Pledges(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].EnergyWh != 1500 || ps[0].To != bob.Identity().ID {
		t.Fatalf("Alice's open pledges after the dashboard pledged: %+v", ps)
	}
	next := time.Now().UTC().Truncate(time.Hour).Add(time.Hour)
	if !ps[0].Window.Start.Equal(next) && !ps[0].Window.Start.Equal(next.Add(time.Hour)) { // the hour may turn during the test
		t.Errorf("window starts %v, want the next hour %v", ps[0].Window.Start, next)
	}

	// Bob gets it and accepts it from the banner.
	carry(t, alice, bob)
	tb := dashboard(t, bob)
	waitFor(t, tb, "Incoming: Alice pledges you 1.5 kWh")
	keys(tb, "a")
	waitFor(t, tb, "accepted.")
	if err := tb.Quit(); err != nil {
		t.Fatal(err)
	}
	tb.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
	p, err := bob.FindPledge(ctx, ps[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.EqualFold(string(p.State), "accepted") {
		t.Errorf("Bob's copy of the pledge is %q, want accepted", p.State)
	}
}
