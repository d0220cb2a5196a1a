package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// LockFileName is the name of the lock file inside a home folder.
const LockFileName = "lock"

// HomeInUseError reports that another process holds a home's lock.
type HomeInUseError struct {
	Home  string // the home folder
	PID   int    // the holder's process id; 0 when it could not be read
	Owner string // what the holder said it is, e.g. "commons daemon"; may be empty
}

// Error says which process holds the home and what to do.
func (e *HomeInUseError) Error() string {
	who := "another process"
	if e.PID > 0 {
		who = "process " + strconv.Itoa(e.PID)
	}
	if e.Owner != "" {
		who += " (" + e.Owner + ")"
	}
	return fmt.Sprintf("home %s is in use by %s: stop it, or talk to it through its socket", e.Home, who)
}

// ErrHomeInUse is matched by errors.Is for every *HomeInUseError.
var ErrHomeInUse = errors.New("home is in use")

// Is makes errors.Is(err, ErrHomeInUse) true for a *HomeInUseError.
func (e *HomeInUseError) Is(target error) bool { return target == ErrHomeInUse }

// HomeLock is the exclusive single-writer lock of one home folder: an
// flock(2) on the file "lock" in the home, holding the owner's pid and
// description. The kernel drops it when the process exits, also on kill -9,
// so a stale lock file never blocks a restart.
//
// flock locks belong to an open file description, so two LockHome calls in
// one process conflict just as two processes do.
type HomeLock struct {
	home string
	f    *os.File
}

// LockHome takes the exclusive lock of home without waiting. owner describes
// the holder for the error another process gets (for example
// "commons daemon"). When the lock is held elsewhere it returns a
// *HomeInUseError naming the holder's pid.
func LockHome(home, owner string) (*HomeLock, error) {
	path := filepath.Join(home, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock home %s: %w", home, err)
	}
	if err := flock(f, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			pid, who := readLockFile(f)
			return nil, &HomeInUseError{Home: home, PID: pid, Owner: who}
		}
		return nil, fmt.Errorf("lock home %s: %w", home, err)
	}
	owner = strings.ReplaceAll(owner, "\n", " ")
	content := []byte(strconv.Itoa(os.Getpid()) + "\n" + owner + "\n")
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt(content, 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock home %s: write %s: %w", home, path, err)
	}
	return &HomeLock{home: home, f: f}, nil
}

// Home returns the locked home folder.
func (l *HomeLock) Home() string { return l.home }

// Unlock releases the lock. The lock file stays; its content no longer
// matters once unlocked.
func (l *HomeLock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	f.Truncate(0)
	if err := f.Close(); err != nil {
		return fmt.Errorf("unlock home %s: %w", l.home, err)
	}
	return nil
}

// LockHolder reports the pid and owner written in home's lock file and
// whether that lock is currently held by some process.
func LockHolder(home string) (pid int, owner string, held bool, err error) {
	f, err := os.OpenFile(filepath.Join(home, LockFileName), os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, "", false, nil
		}
		return 0, "", false, fmt.Errorf("read lock of home %s: %w", home, err)
	}
	defer f.Close()
	if err := flock(f, unix.LOCK_SH|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			pid, owner := readLockFile(f)
			return pid, owner, true, nil
		}
		return 0, "", false, fmt.Errorf("read lock of home %s: %w", home, err)
	}
	flock(f, unix.LOCK_UN)
	return 0, "", false, nil
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}

func readLockFile(f *os.File) (int, string) {
	buf := make([]byte, 512)
	n, _ := f.ReadAt(buf, 0)
	line, rest, _ := bytes.Cut(buf[:n], []byte("\n"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(line)))
	owner, _, _ := bytes.Cut(rest, []byte("\n"))
	return pid, strings.TrimSpace(string(owner))
}
