//go:build !linux

package daemon

import (
	"errors"
	"net"
)

// peerCredSupported says whether peerCred works on this system.
const peerCredSupported = false

// peerCred is not implemented here: the socket stays 0600, so only the
// daemon's own user connects.
func peerCred(net.Conn) (uid, gid uint32, err error) {
	return 0, 0, errors.New("peer credentials (SO_PEERCRED) are read on Linux only")
}
