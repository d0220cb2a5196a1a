package peer

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commons-energy/commons/ledger"
	"github.com/commons-energy/commons/share"
)

// testManifest is the community every test box belongs to.
var (
	testManifest  = share.DefaultManifest("test street")
	testCommunity = testManifest.ID()
)

// memStore is an in-memory Store for tests: it keeps chains with the real
// chain rules of share.Feed.Check.
type memStore struct {
	mu     sync.Mutex
	feeds  map[share.HouseholdID]*share.Feed
	msgs   map[share.HouseholdID][][]byte // index seq-1
	ids    map[share.HouseholdID][]share.ID
	forks  int
	status map[share.HouseholdID][]byte
}

func newMemStore() *memStore {
	return &memStore{
		feeds:  make(map[share.HouseholdID]*share.Feed),
		msgs:   make(map[share.HouseholdID][][]byte),
		ids:    make(map[share.HouseholdID][]share.ID),
		status: make(map[share.HouseholdID][]byte),
	}
}

func (s *memStore) Heads(ctx context.Context) ([]Head, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var hs []Head
	for a, f := range s.feeds {
		hs = append(hs, Head{Author: a, Seq: f.Head.Seq})
	}
	return hs, nil
}

func (s *memStore) Range(ctx context.Context, author share.HouseholdID, after uint64, limit int) ([][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.msgs[author]
	if after >= uint64(len(m)) {
		return nil, nil
	}
	end := min(uint64(len(m)), after+uint64(limit))
	return m[after:end], nil
}

func (s *memStore) Append(ctx context.Context, msgs []Message) ([]AppendResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]AppendResult, len(msgs))
	for i, pm := range msgs {
		m, err := share.Parse(pm.Raw)
		if err != nil {
			return nil, err
		}
		f := s.feeds[m.Author]
		if f == nil {
			f = &share.Feed{Author: m.Author}
		}
		ids := s.ids[m.Author]
		err = f.Check(m, func(seq uint64) (share.ID, bool) {
			if seq == 0 || seq > uint64(len(ids)) {
				return share.ID{}, false
			}
			return ids[seq-1], true
		})
		switch {
		case err == nil:
			f.Head = share.HeadOf(m)
			s.feeds[m.Author] = f
			s.msgs[m.Author] = append(s.msgs[m.Author], m.Bytes())
			s.ids[m.Author] = append(ids, m.ID())
			out[i] = AppendResult{Outcome: Added}
		case errors.Is(err, share.ErrDuplicate):
			out[i] = AppendResult{Outcome: Duplicate}
		case errors.Is(err, share.ErrFork):
			f.Frozen = true
			s.forks++
			out[i] = AppendResult{Outcome: Rejected, Err: fmt.Errorf("%w: %w", ErrConflict, err)}
		case errors.Is(err, share.ErrSeqGap), errors.Is(err, share.ErrPrevMismatch), errors.Is(err, share.ErrFrozen):
			out[i] = AppendResult{Outcome: Rejected, Err: fmt.Errorf("%w: %w", ErrConflict, err)}
		default:
			out[i] = AppendResult{Outcome: Rejected, Err: err}
		}
	}
	return out, nil
}

func (s *memStore) PutStatus(ctx context.Context, m Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status[m.Author] = m.Raw
	return nil
}

// count returns how many chain messages of author are stored.
func (s *memStore) count(author share.HouseholdID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs[author])
}

// total returns how many chain and status messages are stored in all.
func (s *memStore) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.status)
	for _, m := range s.msgs {
		n += len(m)
	}
	return n
}

func (s *memStore) statusOf(author share.HouseholdID) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status[author]
}

// testStore is a Store the tests can count.
type testStore interface {
	Store
	count(author share.HouseholdID) int
	total() int
	statusOf(author share.HouseholdID) []byte
}

// testNeighbours is a Neighbours the tests can add to.
type testNeighbours interface {
	Neighbours
	add(id share.HouseholdID, addr string)
}

// ledgerTestStore is a LedgerStore on a real ledger file.
type ledgerTestStore struct{ LedgerStore }

func (s ledgerTestStore) count(author share.HouseholdID) int {
	h, err := s.L.Head(context.Background(), author)
	if err != nil {
		panic(err)
	}
	return int(h.Seq) // chains are stored without gaps
}

func (s ledgerTestStore) total() int {
	n, err := s.L.Count(context.Background())
	if err != nil {
		panic(err)
	}
	st, err := s.L.Statuses(context.Background())
	if err != nil {
		panic(err)
	}
	return int(n) + len(st)
}

func (s ledgerTestStore) statusOf(author share.HouseholdID) []byte {
	st, err := s.L.Statuses(context.Background())
	if err != nil {
		panic(err)
	}
	if m := st[author]; m != nil {
		return m.Bytes()
	}
	return nil
}

// ledgerTestNeighbours is LedgerNeighbours on a real ledger file.
type ledgerTestNeighbours struct{ LedgerNeighbours }

func (n *ledgerTestNeighbours) add(id share.HouseholdID, addr string) {
	err := n.L.AddNeighbour(context.Background(), ledger.Neighbour{ID: id, Name: "n-" + id.Short(), Addresses: []string{addr}})
	if err != nil {
		panic(err)
	}
}

// memNeighbours is an in-memory Neighbours for tests.
type memNeighbours struct {
	mu    sync.Mutex
	addrs map[share.HouseholdID]string
}

func newMemNeighbours() *memNeighbours {
	return &memNeighbours{addrs: make(map[share.HouseholdID]string)}
}

func (n *memNeighbours) add(id share.HouseholdID, addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.addrs[id] = addr
}

func (n *memNeighbours) remove(id share.HouseholdID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.addrs, id)
}

func (n *memNeighbours) Known(id share.HouseholdID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.addrs[id]
	return ok
}

func (n *memNeighbours) Addr(id share.HouseholdID) (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	a, ok := n.addrs[id]
	return a, ok && a != ""
}

func (n *memNeighbours) List() []share.HouseholdID {
	n.mu.Lock()
	defer n.mu.Unlock()
	ids := make([]share.HouseholdID, 0, len(n.addrs))
	for id := range n.addrs {
		ids = append(ids, id)
	}
	return ids
}

// author is a test household that signs messages.
type author struct {
	ident *share.Identity
	key   ed25519.PrivateKey
	head  share.Head
	clock int64 // advances with every message signed
}

func newAuthor(t testing.TB) *author {
	t.Helper()
	ident, err := share.GenerateIdentity(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &author{ident: ident, key: ed25519.NewKeyFromSeed(ident.Seed())}
}

func (a *author) id() share.HouseholdID { return a.ident.ID() }

// next signs the author's next chain message (an announce) and advances
// its head.
func (a *author) next(t testing.TB) []byte {
	t.Helper()
	content, err := share.EncodeContent(&share.Announce{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	raw := a.sign(t, a.head, share.KindAnnounce, content)
	m, err := share.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	a.head = share.HeadOf(m)
	return raw
}

// sign signs a message after head without advancing the author's head.
func (a *author) sign(t testing.TB, head share.Head, kind share.Kind, content []byte) []byte {
	t.Helper()
	a.clock++
	d := share.Draft{Community: testCommunity, Created: time.UnixMilli(1_700_000_000_000 + int64(head.Seq) + a.clock), Kind: kind, Content: content}
	if !kind.Ephemeral() {
		d.Seq, d.Prev = head.Seq+1, head.ID
	}
	m, err := a.ident.Sign(d)
	if err != nil {
		t.Fatal(err)
	}
	return m.Bytes()
}

// status signs an ephemeral status message.
func (a *author) status(t testing.TB, surplusW int64) []byte {
	t.Helper()
	content, err := share.EncodeContent(&share.Status{SurplusW: surplusW})
	if err != nil {
		t.Fatal(err)
	}
	return a.sign(t, share.Head{}, share.KindStatus, content)
}

// box is a running test household: store, neighbours, server on loopback,
// and optionally a syncer.
type box struct {
	*author
	store  testStore
	nb     testNeighbours
	srv    *Server
	addr   string
	syncer *Syncer
	kick   atomic.Pointer[Syncer] // the syncer the server's OnConflict kicks
	stop   context.CancelFunc
	done   chan struct{}
}

// storeKinds are the stores the transport tests run on: the in-test
// memory store and real ledger files.
var storeKinds = []string{"mem", "ledger"}

// newBox starts a server on 127.0.0.1 for a (a new author if nil), on a
// store of the given kind.
func newBox(t testing.TB, kind string, a *author, lim Limits) *box {
	t.Helper()
	return newBoxTTL(t, kind, a, lim, 5*time.Millisecond)
}

// newBoxTTL is newBox whose ledger neighbour list is cached for ttl.
func newBoxTTL(t testing.TB, kind string, a *author, lim Limits, ttl time.Duration) *box {
	t.Helper()
	if lim.Handshake == 0 {
		// Under -race on a loaded shared machine a handshake can take
		// longer than the 2 s default, and a push lost to it makes a
		// test flaky; the tests of the deadline itself set their own.
		lim.Handshake = 15 * time.Second
	}
	if a == nil {
		a = newAuthor(t)
	}
	b := &box{author: a}
	switch kind {
	case "mem":
		b.store, b.nb = newMemStore(), newMemNeighbours()
	case "ledger":
		l, err := ledger.Open(context.Background(), filepath.Join(t.TempDir(), ledger.FileName), ledger.Options{Self: a.id(), Manifest: testManifest})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		b.store = ledgerTestStore{LedgerStore{L: l, Relay: func(raw []byte) {
			if sy := b.kick.Load(); sy != nil {
				sy.Relay(raw)
			}
		}}}
		b.nb = &ledgerTestNeighbours{LedgerNeighbours{L: l, TTL: ttl}}
	default:
		t.Fatalf("unknown store kind %q", kind)
	}
	srv, err := NewServer(ServerConfig{Key: a.key, Store: b.store, Neighbours: b.nb, Verifier: ShareVerifier{Community: testCommunity}, Limits: lim,
		OnConflict: func(from share.HouseholdID) {
			if sy := b.kick.Load(); sy != nil {
				sy.Kick(from)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.srv, b.addr = srv, ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return b
}

// startSync runs a syncer for the box until the test ends or b.halt.
func (b *box) startSync(t testing.TB, cfg SyncConfig) {
	t.Helper()
	cfg.Key, cfg.Store, cfg.Neighbours, cfg.Verifier = b.key, b.store, b.nb, ShareVerifier{Community: testCommunity}
	sy, err := NewSyncer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b.kick.Store(sy)
	ctx, cancel := context.WithCancel(context.Background())
	b.syncer, b.stop, b.done = sy, cancel, make(chan struct{})
	go func() { defer close(b.done); sy.Run(ctx) }()
	t.Cleanup(b.halt)
}

// halt stops the box's syncer and server (the box goes offline).
func (b *box) halt() {
	if b.stop != nil {
		b.stop()
		<-b.done
		b.stop = nil
	}
	b.srv.Close()
}

// appendOwn stores n new own messages and returns them.
func (b *box) appendOwn(t testing.TB, n int) [][]byte {
	t.Helper()
	raws := make([][]byte, n)
	msgs := make([]Message, n)
	v := ShareVerifier{Community: testCommunity}
	for i := range raws {
		raws[i] = b.next(t)
		m, err := v.Verify(raws[i])
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = m
	}
	res, err := b.store.Append(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Outcome != Added {
			t.Fatalf("own message %d: %v %v", i, r.Outcome, r.Err)
		}
	}
	return raws
}

// befriend makes a and b neighbours of each other.
func befriend(a, b *box) {
	a.nb.add(b.id(), b.addr)
	b.nb.add(a.id(), a.addr)
}

// client returns a client from box from to box to.
func (from *box) client(t testing.TB, to *box) *Client {
	t.Helper()
	c, err := NewClient(ClientConfig{Key: from.key, Peer: to.id(), Addr: to.addr, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
