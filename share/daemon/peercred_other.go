//go:build !linux

package daemon

import (
	"errors"
	"net"
)

// peerCredSupported says whether peerCred works on this system.
const peerCredSupported = false

// peerCred reports an error: this system gives no peer credentials, so
// roles by Unix group are off and the socket stays 0600 (only the
// daemon's own user connects, as owner).
func peerCred(net.Conn) (uid, gid uint32, err error) {
	return 0, 0, errors.New("peer credentials (SO_PEERCRED) are read on Linux only")
}
