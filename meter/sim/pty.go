package sim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// PTY is a pseudo-terminal standing in for a meter's serial cable: bytes
// written to it arrive at the device Path, which a reader opens like any
// serial port. Like a real line it does not store data nobody reads: when
// more than about three telegrams wait unread, they are discarded.
type PTY struct {
	master, slave *os.File
	path, link    string

	mu     sync.Mutex
	closed bool
}

// unreadLimit is the number of unread bytes at the device above which a
// write discards them (the kernel's line buffer holds 4 KiB).
const unreadLimit = 3 << 10

// OpenPTY opens a pseudo-terminal in raw mode. When link is not "", it
// also makes link a symbolic link to the device, replacing what was there
// (atomically, so a reader reopening link never sees it missing).
func OpenPTY(link string) (*PTY, error) {
	master, slave, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("open pseudo-terminal: %w", err)
	}
	// creack/pty's ioctls call Fd(), which leaves the master in blocking
	// mode: deadlines would not work and a Read could not be interrupted.
	// Hand the runtime poller a non-blocking copy instead.
	if master, err = pollable(master); err != nil {
		slave.Close()
		return nil, fmt.Errorf("open pseudo-terminal: %w", err)
	}
	var path string
	if slave, path, err = truePeer(master, slave); err != nil {
		master.Close()
		return nil, fmt.Errorf("open pseudo-terminal: %w", err)
	}
	p := &PTY{master: master, slave: slave, path: path}
	if err := p.control(func(fd int) error {
		t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err != nil {
			return err
		}
		// cfmakeraw: no echo, no CR/LF translation, 8 bits.
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB
		t.Cflag |= unix.CS8
		return unix.IoctlSetTermios(fd, unix.TCSETS, t)
	}); err != nil {
		p.closeFiles()
		return nil, fmt.Errorf("set pseudo-terminal %s raw: %w", p.path, err)
	}
	if link != "" {
		tmp := filepath.Join(filepath.Dir(link), fmt.Sprintf(".%s.%d.tmp", filepath.Base(link), os.Getpid()))
		_ = os.Remove(tmp)
		if err := os.Symlink(p.path, tmp); err != nil {
			p.closeFiles()
			return nil, fmt.Errorf("link %s to %s: %w", link, p.path, err)
		}
		if err := os.Rename(tmp, link); err != nil {
			_ = os.Remove(tmp)
			p.closeFiles()
			return nil, fmt.Errorf("link %s to %s: %w", link, p.path, err)
		}
		p.link = link
	}
	return p, nil
}

// truePeer makes sure slave is the terminal on the other side of master.
// creack/pty opens the device by the name the master reports; where a
// second devpts instance is mounted over /dev/pts (containers do this),
// that name can belong to another terminal, and two simulated meters then
// share one device. TIOCGPTPEER (Linux 4.13) opens the real peer; when its
// device differs from the named one, the peer is kept and readers are
// given its /proc/<pid>/fd path, which reopens exactly that terminal. On
// kernels without TIOCGPTPEER the named device is kept.
func truePeer(master, slave *os.File) (*os.File, string, error) {
	rc, err := master.SyscallConn()
	if err != nil {
		slave.Close()
		return nil, "", err
	}
	peer := -1
	var perr error
	if err := rc.Control(func(fd uintptr) {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
		if errno != 0 {
			perr = errno
			return
		}
		peer = int(r)
	}); err != nil {
		slave.Close()
		return nil, "", err
	}
	if perr != nil {
		return slave, slave.Name(), nil
	}
	var named, actual unix.Stat_t
	if err := unix.Fstat(peer, &actual); err != nil {
		unix.Close(peer)
		return slave, slave.Name(), nil
	}
	if sc, err := slave.SyscallConn(); err == nil {
		var serr error
		if err := sc.Control(func(fd uintptr) { serr = unix.Fstat(int(fd), &named) }); err == nil && serr == nil && named.Rdev == actual.Rdev {
			unix.Close(peer)
			return slave, slave.Name(), nil
		}
	}
	slave.Close()
	return os.NewFile(uintptr(peer), "pseudo-terminal"), fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), peer), nil
}

// pollable returns a non-blocking duplicate of f, which the runtime polls,
// and closes f.
func pollable(f *os.File) (*os.File, error) {
	defer f.Close()
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	unix.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// Path returns the device a reader opens, e.g. /dev/pts/3.
func (p *PTY) Path() string { return p.path }

// Link returns the symbolic link to the device, or "".
func (p *PTY) Link() string { return p.link }

// control runs f on the device side's file descriptor without switching
// the file to blocking mode.
func (p *PTY) control(f func(fd int) error) error {
	rc, err := p.slave.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// Write sends b down the line. Unread data beyond unreadLimit is dropped
// first, as a serial line with nobody listening would; a write that cannot
// complete within a second also drops the backlog and tries once more.
func (p *PTY) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, os.ErrClosed
	}
	p.dropBacklog(unreadLimit)
	if err := p.master.SetWriteDeadline(time.Now().Add(time.Second)); err != nil {
		return 0, err
	}
	n, err := p.master.Write(b)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		p.dropBacklog(0)
		_ = p.master.SetWriteDeadline(time.Now().Add(time.Second))
		var m int
		m, err = p.master.Write(b[n:])
		n += m
	}
	return n, err
}

// dropBacklog discards the device's unread input when more than limit
// bytes wait.
func (p *PTY) dropBacklog(limit int) {
	_ = p.control(func(fd int) error {
		n, err := unix.IoctlGetInt(fd, unix.TIOCINQ)
		if err != nil || n <= limit {
			return err
		}
		return unix.IoctlSetInt(fd, unix.TCFLSH, unix.TCIFLUSH)
	})
}

// Close hangs up the line (a reader sees the device go away), closes both
// ends and removes the link if it still points at this device.
func (p *PTY) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	err := p.closeFiles()
	if p.link != "" {
		if target, lerr := os.Readlink(p.link); lerr == nil && target == p.path {
			if rerr := os.Remove(p.link); rerr != nil && err == nil {
				err = rerr
			}
		}
	}
	return err
}

func (p *PTY) closeFiles() error {
	err := p.master.Close()
	if serr := p.slave.Close(); err == nil {
		err = serr
	}
	return err
}
