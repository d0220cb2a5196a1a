package daemon

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/commons-energy/commons/share/household"
)

// TestClientSaysTheDaemonStopped: once the daemon is gone, a client's call
// fails with plain words (not a dial error) that wrap household.ErrUnavailable,
// and the same client works again when the daemon is back.
func TestClientSaysTheDaemonStopped(t *testing.T) {
	h := initHome(t, "Erin", "")
	r := start(t, h, Options{Listen: ListenOff})
	ctx := context.Background()
	c, err := Connect(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b := c
	if _, err := b.State(ctx); err != nil {
		t.Fatal(err)
	}
	r.shutdown(t)
	_, err = b.State(ctx)
	if !errors.Is(err, household.ErrUnavailable) {
		t.Errorf("State after the daemon stopped: %v, want one wrapping household.ErrUnavailable", err)
	}
	if err == nil || !strings.HasPrefix(err.Error(), "the daemon stopped") || strings.Contains(err.Error(), "dial") {
		t.Errorf("error text %q: want plain words starting with 'the daemon stopped'", err)
	}
	start(t, h, Options{Listen: ListenOff})
	if s, err := b.State(ctx); err != nil || s.Home.Name != "Erin" {
		t.Errorf("State after the daemon returned: %+v, %v", s.Home, err)
	}
}
