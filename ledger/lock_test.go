package ledger

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMain lets the test binary double as the child process of the
// multi-process tests: LEDGER_TEST_CHILD selects the role.
func TestMain(m *testing.M) {
	switch role := os.Getenv("LEDGER_TEST_CHILD"); role {
	case "":
		os.Exit(m.Run())
	case "lock":
		childLock(os.Getenv("LEDGER_TEST_HOME"))
	case "append":
		childAppend(os.Getenv("LEDGER_TEST_HOME"))
	default:
		fmt.Fprintln(os.Stderr, "unknown LEDGER_TEST_CHILD", role)
		os.Exit(2)
	}
}

// childLock takes the home lock, says so, and holds it until killed.
func childLock(home string) {
	lk, err := LockHome(home, "commons daemon")
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	defer lk.Unlock()
	fmt.Println("locked")
	select {} // held until the parent kills this process
}

// startChild runs this test binary in a child role and returns it with a
// reader of its stdout.
func startChild(t *testing.T, role, home string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LEDGER_TEST_CHILD="+role, "LEDGER_TEST_HOME="+home)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, bufio.NewScanner(out)
}

func TestLockHomeExcludesSecondProcess(t *testing.T) {
	home := t.TempDir()
	cmd, out := startChild(t, "lock", home)
	if !out.Scan() || out.Text() != "locked" {
		t.Fatalf("child did not lock: %q", out.Text())
	}
	_, err := LockHome(home, "commons pledge")
	var inUse *HomeInUseError
	if !errors.As(err, &inUse) || !errors.Is(err, ErrHomeInUse) {
		t.Fatalf("second locker: err = %v, want *HomeInUseError", err)
	}
	if inUse.PID != cmd.Process.Pid || inUse.Owner != "commons daemon" {
		t.Fatalf("holder = %d %q, want %d commons daemon", inUse.PID, inUse.Owner, cmd.Process.Pid)
	}
	want := fmt.Sprintf("home %s is in use by process %d (commons daemon)", home, cmd.Process.Pid)
	if !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("message %q, want prefix %q", err, want)
	}
	pid, owner, held, err := LockHolder(home)
	if err != nil || !held || pid != cmd.Process.Pid || owner != "commons daemon" {
		t.Fatalf("LockHolder = %d %q %v %v", pid, owner, held, err)
	}
	// kill -9 releases the lock: the kernel drops flocks of a dead process.
	cmd.Process.Kill()
	cmd.Wait()
	lk, err := LockHome(home, "commons")
	if err != nil {
		t.Fatalf("lock after the holder died: %v", err)
	}
	defer lk.Unlock()
	if pid, _, held, _ := LockHolder(home); !held || pid != os.Getpid() {
		t.Fatalf("holder after relock = %d %v", pid, held)
	}
}

func TestLockHomeExcludesSecondOpenInProcess(t *testing.T) {
	home := t.TempDir()
	lk, err := LockHome(home, "commons tui")
	if err != nil {
		t.Fatal(err)
	}
	_, err = LockHome(home, "commons pledge")
	var inUse *HomeInUseError
	if !errors.As(err, &inUse) || inUse.PID != os.Getpid() || inUse.Owner != "commons tui" {
		t.Fatalf("second lock in one process: %v", err)
	}
	if err := lk.Unlock(); err != nil {
		t.Fatal(err)
	}
	if _, _, held, _ := LockHolder(home); held {
		t.Fatal("still held after Unlock")
	}
	lk2, err := LockHome(home, "commons pledge")
	if err != nil {
		t.Fatalf("relock after Unlock: %v", err)
	}
	lk2.Unlock()
	if err := lk2.Unlock(); err != nil {
		t.Fatalf("second Unlock: %v", err)
	}
}

func TestLockHomeMissingDir(t *testing.T) {
	_, err := LockHome(t.TempDir()+"/does/not/exist", "x")
	if err == nil || errors.Is(err, ErrHomeInUse) || !strings.Contains(err.Error(), "lock home") {
		t.Fatalf("err = %v", err)
	}
}

// TestLockHomeWriteFailure checks that LockHome reports a lock file it
// cannot write its pid into instead of holding a lock with no holder named.
// /dev/full takes the lock but refuses every write (and truncation).
func TestLockHomeWriteFailure(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full:", err)
	}
	home := t.TempDir()
	if err := os.Symlink("/dev/full", home+"/"+LockFileName); err != nil {
		t.Fatal(err)
	}
	lk, err := LockHome(home, "commons daemon")
	if err == nil {
		lk.Unlock()
		t.Fatal("LockHome succeeded although the pid could not be written")
	}
	if !strings.Contains(err.Error(), "write") || !strings.Contains(err.Error(), home) {
		t.Errorf("error %q: want it to name the home and the failed write", err)
	}
}
