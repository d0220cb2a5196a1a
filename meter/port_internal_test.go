package meter

import (
	"errors"
	"io/fs"
	"strings"
	"syscall"
	"testing"
)

// TestOpenErrorMessages covers the open failures a test cannot provoke on
// a pty as root (busy: TIOCEXCL does not stop root; permission): each is
// one line naming the port and saying what to try.
func TestOpenErrorMessages(t *testing.T) {
	const dev = "/dev/ttyUSB0"
	for _, tc := range []struct {
		err  error
		kind error
		hint string
	}{
		{&fs.PathError{Op: "open", Path: dev, Err: syscall.ENOENT}, ErrPortNotFound, "commons meter ports"},
		{&fs.PathError{Op: "open", Path: dev, Err: syscall.ENXIO}, ErrPortNotFound, "plugged in"},
		{&fs.PathError{Op: "open", Path: dev, Err: syscall.EBUSY}, ErrPortBusy, "another program"},
		{&fs.PathError{Op: "open", Path: dev, Err: syscall.EACCES}, ErrPortPermission, "dialout"},
		{&fs.PathError{Op: "open", Path: dev, Err: syscall.EINVAL}, nil, "invalid argument"},
	} {
		err := openError(dev, tc.err)
		msg := err.Error()
		if tc.kind != nil && !errors.Is(err, tc.kind) {
			t.Errorf("%v: not %v", tc.err, tc.kind)
		}
		if !errors.Is(err, tc.err) {
			t.Errorf("%v: underlying error lost", tc.err)
		}
		if !strings.Contains(msg, dev) || !strings.Contains(msg, tc.hint) || strings.Contains(msg, "\n") {
			t.Errorf("%v: message %q should name %s and %q on one line", tc.err, msg, dev, tc.hint)
		}
	}
}
