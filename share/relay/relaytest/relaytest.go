// Package relaytest runs a real nats-server with JetStream for the tests
// of the community relay: each Server is its own process on a free
// loopback port with its own store folder, and can be killed and started
// again on the same port and store, as a hub that restarts.
package relaytest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Options configure a Server.
type Options struct {
	// User and Password, when set, are the only credentials the server
	// accepts.
	User, Password string
	// Domain is the JetStream domain; with it the server also accepts
	// leaf nodes (see StartLeaf).
	Domain string
	// LeafOf, when set, makes a leaf node of that server: no JetStream of
	// its own, clients reach the hub's through it (with the hub's Domain).
	LeafOf *Server
}

// Server is a nats-server process.
type Server struct {
	t    testing.TB
	bin  string
	port int
	leaf int // leaf node port, with Domain
	dir  string
	opts Options

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *syncBuffer
}

// Binary returns the nats-server path. Missing, it fails the test under
// CI (CI=true) and skips it elsewhere: ./test.sh installs it.
func Binary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("nats-server")
	if err == nil {
		return p
	}
	// Debian installs it in /usr/sbin, which a user's PATH may lack.
	if _, err := os.Stat("/usr/sbin/nats-server"); err == nil {
		return "/usr/sbin/nats-server"
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("nats-server not found: install the Debian package nats-server (./test.sh does)")
	}
	t.Skipf("nats-server not found: install the Debian package nats-server (./test.sh does) to run this test")
	return ""
}

// Start runs a nats-server with JetStream on a free loopback port with a
// store folder in t.TempDir, waits until it answers, and stops it when
// the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t), port: freePort(t), dir: t.TempDir(), opts: opts}
	if opts.Domain != "" {
		s.leaf = freePort(t)
	}
	s.Restart()
	t.Cleanup(s.Kill)
	return s
}

// URL is the server's client URL, without credentials.
func (s *Server) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

// StoreDir is the JetStream store folder.
func (s *Server) StoreDir() string { return s.dir }

// Restart starts the server again (after Kill) on the same port and store
// folder, and waits until it accepts connections.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatal("relaytest: nats-server is already running")
	}
	args := []string{"-c", s.config()}
	if s.opts.User != "" {
		args = append(args, "--user", s.opts.User, "--pass", s.opts.Password)
	}
	cmd := exec.Command(s.bin, args...)
	s.out = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start nats-server: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	// Ready once the server logs that it is ready for connections (the
	// JetStream store is loaded by then).
	deadline := time.Now().Add(30 * time.Second)
	for !bytes.Contains(s.out.Bytes(), []byte("Server is ready")) {
		select {
		case <-done:
			s.t.Fatalf("nats-server exited at start:\n%s", s.out.Bytes())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("nats-server not ready within 30 s:\n%s", s.out.Bytes())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// config writes the server's config file and returns its path.
func (s *Server) config() string {
	name := "hub"
	if s.opts.LeafOf != nil {
		name = "leaf"
	}
	conf := fmt.Sprintf("server_name: %s\nlisten: 127.0.0.1:%d\n", name, s.port)
	switch {
	case s.opts.LeafOf != nil:
		conf += fmt.Sprintf("leafnodes { remotes: [ { url: \"nats-leaf://127.0.0.1:%d\" } ] }\n", s.opts.LeafOf.leaf)
	default:
		conf += fmt.Sprintf("jetstream { store_dir: %q", filepath.Join(s.dir, "js"))
		if s.opts.Domain != "" {
			conf += fmt.Sprintf(", domain: %q", s.opts.Domain)
		}
		conf += " }\n"
		if s.leaf != 0 {
			conf += fmt.Sprintf("leafnodes { listen: 127.0.0.1:%d }\n", s.leaf)
		}
	}
	path := filepath.Join(s.dir, "nats-server.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		s.t.Fatal(err)
	}
	return path
}

// Kill stops the server with SIGKILL, as a power cut would, and waits for
// the process to end. The store folder stays.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Log returns what the server printed since it last started.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out == nil {
		return ""
	}
	return string(s.out.Bytes())
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.b.Bytes())
}
