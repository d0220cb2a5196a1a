package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/user"
	"slices"
	"strconv"
)

// Role is what a client of the household may do.
type Role int

// Roles, least first.
const (
	// RoleNone may do nothing: the connection is refused.
	RoleNone Role = iota
	// RoleViewer may look: status, pledges, the ledger, the dashboard.
	RoleViewer
	// RoleOwner may also pledge, accept, decline and cancel, and change
	// the neighbours.
	RoleOwner
)

// String returns "owner", "viewer" or "none".
func (r Role) String() string {
	switch r {
	case RoleOwner:
		return "owner"
	case RoleViewer:
		return "viewer"
	}
	return "none"
}

// Unix groups that open the local socket to other people on the box.
const (
	OwnersGroup  = "commons-owners"
	ViewersGroup = "commons-viewers"
)

// ErrForbidden is wrapped by an error for a call the caller's role does
// not allow: a viewer's pledge, or anything from someone in neither group.
var ErrForbidden = errors.New("not allowed")

// errReadOnly is what a viewer's mutating call answers.
var errReadOnly = fmt.Errorf("%w: read-only access (a viewer may look but not pledge, accept, decline, cancel or change neighbours; that needs group %s or a key in authorized_keys)", ErrForbidden, OwnersGroup)

// sockRoles decides the role of a local socket's peer from the
// credentials the kernel gives (SO_PEERCRED), never from anything the
// client says.
type sockRoles struct {
	ownerUIDs             []uint32 // root and the daemon's user
	owners, viewers       uint32   // the groups' gids
	hasOwners, hasViewers bool     // whether each group exists
	// groupsOf lists the gids uid belongs to in the user database.
	groupsOf func(uid uint32) ([]uint32, error)
}

// grouped reports whether either group exists: only then may people other
// than the daemon's user reach the socket.
func (r sockRoles) grouped() bool { return r.hasOwners || r.hasViewers }

// role returns the role of a peer with uid and primary gid; RoleNone
// comes with the reason.
func (r sockRoles) role(uid, gid uint32) (Role, error) {
	if slices.Contains(r.ownerUIDs, uid) {
		return RoleOwner, nil
	}
	if !r.grouped() {
		return RoleNone, fmt.Errorf("%w: uid %d is neither root nor the daemon's user, and groups %s and %s do not exist on this system", ErrForbidden, uid, OwnersGroup, ViewersGroup)
	}
	gids, err := r.groupsOf(uid)
	if err != nil {
		return RoleNone, fmt.Errorf("%w: groups of uid %d: %v", ErrForbidden, uid, err)
	}
	gids = append(gids, gid)
	switch {
	case r.hasOwners && slices.Contains(gids, r.owners):
		return RoleOwner, nil
	case r.hasViewers && slices.Contains(gids, r.viewers):
		return RoleViewer, nil
	}
	return RoleNone, fmt.Errorf("%w: uid %d is in neither group %s nor %s; ask the household to add you (sudo adduser NAME %s)", ErrForbidden, uid, OwnersGroup, ViewersGroup, ViewersGroup)
}

// systemSockRoles reads the two groups from the system's group database.
// Tests replace it.
var systemSockRoles = func() (sockRoles, error) {
	r := sockRoles{ownerUIDs: []uint32{0, uint32(os.Getuid())}, groupsOf: userGroups}
	for _, g := range []struct {
		name string
		gid  *uint32
		has  *bool
	}{{OwnersGroup, &r.owners, &r.hasOwners}, {ViewersGroup, &r.viewers, &r.hasViewers}} {
		grp, err := user.LookupGroup(g.name)
		var unknown user.UnknownGroupError
		if errors.As(err, &unknown) {
			continue
		}
		if err != nil {
			return r, fmt.Errorf("look up group %s: %w", g.name, err)
		}
		id, err := strconv.ParseUint(grp.Gid, 10, 32)
		if err != nil {
			return r, fmt.Errorf("group %s: gid %q: %w", g.name, grp.Gid, err)
		}
		*g.gid, *g.has = uint32(id), true
	}
	return r, nil
}

// userGroups lists the groups uid belongs to, read afresh each time so a
// removal from a group takes effect at the next connection.
func userGroups(uid uint32) ([]uint32, error) {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return nil, err
	}
	ids, err := u.GroupIds()
	if err != nil {
		return nil, err
	}
	gids := make([]uint32, 0, len(ids))
	for _, s := range ids {
		if id, err := strconv.ParseUint(s, 10, 32); err == nil {
			gids = append(gids, uint32(id))
		}
	}
	return gids, nil
}

// socketMode is the local socket's file mode. With neither group on the
// system only the daemon's user may connect (0600). With a group, anyone
// who can reach the home folder may connect (0666, as the D-Bus system
// bus does) and each connection's SO_PEERCRED decides: the file mode
// cannot express two groups, the credential check can.
func (r sockRoles) socketMode() os.FileMode {
	if r.grouped() && peerCredSupported {
		return 0o666
	}
	return 0o600
}

// caller is a local socket connection's caller.
type caller struct {
	role Role
	uid  int64 // -1 when unknown
	err  error // why RoleNone
}

type callerKey struct{}

// peerOf returns the caller of the connection a request came on.
func callerOf(ctx context.Context) caller {
	if p, ok := ctx.Value(callerKey{}).(caller); ok {
		return p
	}
	return caller{role: RoleNone, uid: -1, err: fmt.Errorf("%w: unknown caller", ErrForbidden)}
}

// connPeer decides the role of a new socket connection.
func (r sockRoles) connPeer(c net.Conn) caller {
	uid, gid, err := peerCred(c)
	if err != nil {
		if !peerCredSupported && !r.grouped() {
			// the socket is 0600: only the daemon's user got here
			return caller{role: RoleOwner, uid: -1}
		}
		return caller{role: RoleNone, uid: -1, err: fmt.Errorf("%w: %v", ErrForbidden, err)}
	}
	role, err := r.role(uid, gid)
	return caller{role: role, uid: int64(uid), err: err}
}

// readOnlyMethod reports whether a request only looks.
func readOnlyMethod(m string) bool { return m == http.MethodGet || m == http.MethodHead }

// guard refuses a caller in neither group, and a viewer's mutating
// request, with 403 and one clear line.
func (a *api) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := callerOf(r.Context())
		switch {
		case p.role == RoleNone:
			a.rt.log.Warn("local socket: caller refused", "uid", p.uid, "err", p.err)
			fail(w, p.err)
			return
		case p.role == RoleViewer && !readOnlyMethod(r.Method):
			a.rt.log.Info("local socket: viewer's change refused", "uid", p.uid, "method", r.Method, "path", r.URL.Path)
			fail(w, errReadOnly)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkSocketReach warns when the socket's groups exist but the folder
// holding the socket keeps their members out.
func (rt *Runtime) checkSocketReach() {
	if !rt.roles.grouped() || !peerCredSupported {
		return
	}
	dir := rt.n.Home().DataDir
	fi, err := os.Stat(dir)
	if err != nil {
		return
	}
	if fi.Mode().Perm()&0o001 == 0 {
		rt.log.Warn("members of "+OwnersGroup+" and "+ViewersGroup+" cannot reach the local socket: its folder is not searchable by others; run chmod 0711 on it (files in it stay private)", "dir", dir)
	}
}
