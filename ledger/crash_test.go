package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/commons-energy/commons/share"
)

// childAppend is the crash-test child: it appends its own messages in
// batches of 1 to 5, forever, printing each id once Append returned nil.
// The parent kills it with SIGKILL at a random point.
func childAppend(home string) {
	ctx := context.Background()
	id, err := share.IdentityFromSeed(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	lk, err := LockHome(home, "crash test child")
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	defer lk.Unlock()
	l, err := Open(ctx, filepath.Join(home, FileName), Options{Self: id.ID(), Manifest: testManifest})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	head, err := l.Head(ctx, id.ID())
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	for {
		n := 1 + rand.IntN(5)
		batch := make([]*share.Message, 0, n)
		for range n {
			d, err := share.NewDraft(testCommunity, head, time.Now(), &share.Announce{Name: fmt.Sprintf("n%d", head.Seq+1)})
			if err == nil {
				var m *share.Message
				if m, err = id.Sign(d); err == nil {
					batch = append(batch, m)
					head = share.HeadOf(m)
				}
			}
			if err != nil {
				fmt.Println("error:", err)
				os.Exit(1)
			}
		}
		res, err := l.AppendMessages(ctx, batch...)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		for _, r := range res {
			if r.Outcome != Stored {
				fmt.Println("error:", r.Outcome, r.Err)
				os.Exit(1)
			}
			fmt.Println(r.ID().String())
		}
	}
}

// TestAppendSurvivesKill9 runs a child that appends in a loop, kills it
// with SIGKILL after a random number of acknowledged messages, reopens the
// ledger and checks that every acknowledged message is there and that the
// whole ledger verifies. Repeated over several rounds on one file.
func TestAppendSurvivesKill9(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	self, _ := share.IdentityFromSeed(bytes.Repeat([]byte{1}, 32))
	acked := map[string]bool{}
	rounds := 8
	for round := 0; round < rounds; round++ {
		cmd, out := startChild(t, "append", home)
		want := 1 + rand.IntN(60)
		for got := 0; got < want; {
			if !out.Scan() {
				t.Fatalf("round %d: child stopped early: %v", round, out.Err())
			}
			line := out.Text()
			if strings.HasPrefix(line, "error:") {
				t.Fatalf("round %d: child: %s", round, line)
			}
			acked[line] = true
			got++
		}
		cmd.Process.Kill() // SIGKILL, mid-append
		cmd.Wait()
		// Lines the child printed before dying were acknowledged too;
		// SIGKILL can cut the last one, so take whole ids only.
		for out.Scan() {
			if line := out.Text(); len(line) == 64 {
				acked[line] = true
			}
		}

		l, err := Open(ctx, filepath.Join(home, FileName), Options{Self: self.ID(), Manifest: testManifest})
		if err != nil {
			t.Fatalf("round %d: reopen after kill -9: %v", round, err)
		}
		for id := range acked {
			mid, err := share.ParseID(id)
			if err != nil {
				t.Fatalf("round %d: child printed %q", round, id)
			}
			if _, err := l.Message(ctx, mid); err != nil {
				t.Fatalf("round %d: acknowledged message %s lost: %v", round, id, err)
			}
		}
		rep, err := l.Verify(ctx)
		if err != nil || !rep.OK {
			t.Fatalf("round %d: verify after kill -9: %+v %v", round, rep, err)
		}
		n, _ := l.Count(ctx)
		if n < int64(len(acked)) {
			t.Fatalf("round %d: %d stored < %d acknowledged", round, n, len(acked))
		}
		l.Close()
	}
	t.Logf("%d rounds, %d acknowledged messages, all present and verified", rounds, len(acked))
}

// TestReaderProcessWhileOwnerAppends opens the ledger in this process
// without the lock while a child process owns the home and appends: Verify
// and the replication queries read consistent snapshots and never block
// the owner (`commons ledger verify` next to a running daemon).
func TestReaderProcessWhileOwnerAppends(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	self, _ := share.IdentityFromSeed(bytes.Repeat([]byte{1}, 32))
	cmd, out := startChild(t, "append", home)
	read := func(n int) string {
		var last string
		for i := 0; i < n; i++ {
			if !out.Scan() {
				t.Fatalf("child stopped: %v", out.Err())
			}
			last = out.Text()
			if strings.HasPrefix(last, "error:") {
				t.Fatalf("child: %s", last)
			}
		}
		return last
	}
	read(20)
	l, err := Open(ctx, filepath.Join(home, FileName), Options{Self: self.ID(), Manifest: testManifest})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := LockHome(home, "reader"); !errors.Is(err, ErrHomeInUse) {
		t.Fatalf("reader could take the owner's lock: %v", err)
	}
	for i := 0; i < 5; i++ {
		rep, err := l.Verify(ctx)
		if err != nil || !rep.OK || rep.Messages < 20 {
			t.Fatalf("verify next to the owner: %+v %v", rep, err)
		}
		// The owner keeps appending meanwhile: its acks keep coming.
		last := read(10)
		id, _ := share.ParseID(last)
		if _, err := l.Message(ctx, id); err != nil {
			t.Fatalf("acknowledged message %s not visible to the reader: %v", last, err)
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
}
