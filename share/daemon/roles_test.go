package daemon

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/commons-energy/commons/share/household"
)

// TestSockRoles: the local socket's role decision from a peer's uid and
// gid, with the group database injected.
func TestSockRoles(t *testing.T) {
	const (
		self, alice, bob, carol, dave = 1000, 1001, 1002, 1003, 1004
		owners, viewers, staff        = 501, 502, 100
	)
	member := map[uint32][]uint32{
		alice: {staff, owners},
		bob:   {staff, viewers},
		carol: {staff},
		dave:  {viewers, owners}, // in both: the larger role
	}
	lookup := func(uid uint32) ([]uint32, error) {
		if uid == 4242 {
			return nil, errors.New("no such user")
		}
		return member[uid], nil
	}
	both := sockRoles{ownerUIDs: []uint32{0, self}, owners: owners, viewers: viewers, hasOwners: true, hasViewers: true, groupsOf: lookup}
	onlyViewers := both
	onlyViewers.hasOwners = false
	none := sockRoles{ownerUIDs: []uint32{0, self}, groupsOf: lookup}

	tests := []struct {
		name     string
		r        sockRoles
		uid, gid uint32
		want     Role
		mode     os.FileMode
	}{
		{"root", both, 0, 0, RoleOwner, 0o666},
		{"daemon's user", both, self, self, RoleOwner, 0o666},
		{"owners member", both, alice, alice, RoleOwner, 0o666},
		{"viewers member", both, bob, bob, RoleViewer, 0o666},
		{"viewers as primary group only", both, carol, viewers, RoleViewer, 0o666},
		{"in neither", both, carol, carol, RoleNone, 0o666},
		{"in both", both, dave, dave, RoleOwner, 0o666},
		{"lookup fails", both, 4242, 4242, RoleNone, 0o666},
		{"owners group missing", onlyViewers, alice, alice, RoleNone, 0o666},
		{"no groups: root", none, 0, 0, RoleOwner, 0o600},
		{"no groups: daemon's user", none, self, self, RoleOwner, 0o600},
		{"no groups: anyone else", none, bob, viewers, RoleNone, 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.r.role(tt.uid, tt.gid)
			if got != tt.want {
				t.Errorf("role(%d, %d) = %v, want %v", tt.uid, tt.gid, got, tt.want)
			}
			if (got == RoleNone) != (err != nil) {
				t.Errorf("role(%d, %d): error %v with role %v", tt.uid, tt.gid, err, got)
			}
			if err != nil && !errors.Is(err, ErrForbidden) {
				t.Errorf("error %v does not wrap ErrForbidden", err)
			}
			if m := tt.r.socketMode(); peerCredSupported && m != tt.mode {
				t.Errorf("socket mode %o, want %o", m, tt.mode)
			}
		})
	}
}

// asRoles makes the runtime see this test's own process as described by
// r (the test cannot change its uid): the daemon's user and root are
// left out of the owners so the groups decide.
func asRoles(t *testing.T, r sockRoles) {
	t.Helper()
	old := systemSockRoles
	systemSockRoles = func() (sockRoles, error) { return r, nil }
	t.Cleanup(func() { systemSockRoles = old })
}

// TestSocketViewer: over the real socket, a caller whose groups make it a
// viewer reads the status and the pledges but its pledge, accept, decline,
// cancel and neighbour changes answer 403 with one clear line; a caller
// in neither group is refused at Connect.
func TestSocketViewer(t *testing.T) {
	if !peerCredSupported {
		t.Skip("SO_PEERCRED is Linux only")
	}
	gid := uint32(os.Getgid())
	asRoles(t, sockRoles{owners: gid + 1, viewers: gid, hasOwners: true, hasViewers: true,
		groupsOf: func(uint32) ([]uint32, error) { return nil, nil }})
	h := initHome(t, "Vera", "")
	start(t, h, Options{Listen: ListenOff})
	fi, err := os.Stat(h.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o666 {
		t.Errorf("socket mode with the groups present: %o, want 666 (SO_PEERCRED decides)", m)
	}
	c := connect(t, h)
	ctx := context.Background()
	if c.Role() != RoleViewer {
		t.Errorf("client role %v, want viewer", c.Role())
	}
	if _, err := c.Status(ctx); err != nil {
		t.Errorf("a viewer cannot read the status: %v", err)
	}
	if _, err := c.Pledges(ctx, false); err != nil {
		t.Errorf("a viewer cannot list pledges: %v", err)
	}
	calls := map[string]func() error{
		"pledge": func() error {
			_, err := c.Pledge(ctx, household.PledgeRequest{To: "Bob", EnergyWh: 1000})
			return err
		},
		"accept":  func() error { _, err := c.Accept(ctx, "p2anna0001"); return err },
		"decline": func() error { _, err := c.Decline(ctx, "p2anna0001"); return err },
		"cancel":  func() error { _, err := c.Cancel(ctx, "p2anna0001"); return err },
		"remove neighbour": func() error {
			_, err := c.RemoveNeighbour(ctx, "Bob")
			return err
		},
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, ErrForbidden) {
			t.Errorf("a viewer's %s: %v, want an error wrapping ErrForbidden", name, err)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "read-only") || !strings.Contains(msg, OwnersGroup) {
			t.Errorf("a viewer's %s: message %q is not one line naming read-only access and %s", name, msg, OwnersGroup)
		}
	}

	// someone in neither group
	asRoles(t, sockRoles{owners: gid + 1, viewers: gid + 2, hasOwners: true, hasViewers: true,
		groupsOf: func(uint32) ([]uint32, error) { return nil, nil }})
	h2 := initHome(t, "Wim", "")
	start(t, h2, Options{Listen: ListenOff})
	_, err = Connect(ctx, h2)
	if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), ViewersGroup) {
		t.Errorf("Connect by someone in neither group: %v, want ErrForbidden naming %s", err, ViewersGroup)
	}
}
