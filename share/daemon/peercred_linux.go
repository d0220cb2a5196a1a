package daemon

import (
	"fmt"
	"net"

	sysunix "golang.org/x/sys/unix"
)

// peerCredSupported says whether peerCred works on this system.
const peerCredSupported = true

// peerCred returns the uid and gid of the process at the other end of a
// Unix socket connection, as the kernel recorded them when it connected.
func peerCred(c net.Conn) (uid, gid uint32, err error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return 0, 0, fmt.Errorf("peer credentials: %T is not a Unix socket connection", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, 0, fmt.Errorf("peer credentials: %w", err)
	}
	var cred *sysunix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = sysunix.GetsockoptUcred(int(fd), sysunix.SOL_SOCKET, sysunix.SO_PEERCRED)
	}); err != nil {
		return 0, 0, fmt.Errorf("peer credentials: %w", err)
	}
	if cerr != nil {
		return 0, 0, fmt.Errorf("peer credentials: SO_PEERCRED: %w", cerr)
	}
	return cred.Uid, cred.Gid, nil
}
