package tui_test

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/muesli/termenv"

	"github.com/commons-energy/commons/share/daemon"
	"github.com/commons-energy/commons/share/node"
	"github.com/commons-energy/commons/tui"
)

// runDaemon runs the household of h as a daemon with its local socket until
// the returned stop is called.
func runDaemon(t *testing.T, h node.Home) (stop func()) {
	t.Helper()
	rt, err := daemon.Open(context.Background(), h, daemon.Options{Listen: daemon.ListenOff, Socket: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the daemon did not stop within 30 s")
		}
		if err := rt.Close(); err != nil {
			t.Errorf("daemon Close: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// TestAttachedDashboardWaitsForTheDaemon: a dashboard attached to a real
// daemon over its Unix socket says, in plain words, that the daemon stopped
// when it does, stops showing the household as known, and reattaches by
// itself when the daemon returns.
func TestAttachedDashboardWaitsForTheDaemon(t *testing.T) {
	h, err := node.ResolveHome(filepath.Join(t.TempDir(), "Erin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.Init(context.Background(), h, node.DefaultConfig("Erin")); err != nil {
		t.Fatal(err)
	}
	stop := runDaemon(t, h)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c, err := daemon.Connect(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.Ascii)
	m := tui.New(c, tui.Options{Context: ctx, Renderer: r, Location: time.UTC, Width: 100, Height: 30})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(100, 30))
	waitFor(t, tm, "Erin", "no meter configured")

	stop()
	waitFor(t, tm, "the daemon stopped", "waiting for it to return", "q quits", "the household is not reachable")

	runDaemon(t, h)
	// the meter line comes back from "not known" once the dashboard has
	// reattached (its retries back off to at most 5 s)
	waitFor(t, tm, "no meter configured")
	keys(tm, "q")
	tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
}
