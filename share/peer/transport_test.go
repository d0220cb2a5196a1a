package peer

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/commons-energy/commons/share"
)

// TestPushReachesNeighbour: a new local message published on A is stored
// on B by the push path. The pull interval is an hour, so after the first
// pull only a push can deliver it.
func TestPushReachesNeighbour(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) { testPushReachesNeighbour(t, kind) })
	}
}

func testPushReachesNeighbour(t *testing.T, kind string) {
	a, b := newBox(t, kind, nil, Limits{}), newBox(t, kind, nil, Limits{})
	befriend(a, b)
	slow := SyncConfig{Interval: time.Hour, Refresh: 50 * time.Millisecond}
	a.startSync(t, slow)
	b.startSync(t, slow)
	waitFor(t, "first pulls", func() bool { return pulledOnce(a.syncer, b.id()) && pulledOnce(b.syncer, a.id()) })

	raws := a.appendOwn(t, 3)
	a.syncer.Publish(raws...)
	waitFor(t, "B to hold A's 3 messages", func() bool { return b.store.count(a.id()) == 3 })
	if got := b.srv.Stats().Added; got != 3 {
		t.Errorf("B's server added %d messages by push, want 3", got)
	}
	if !pulledOnce(b.syncer, a.id()) || b.store.count(b.id()) != 0 {
		t.Errorf("unexpected state: B own=%d", b.store.count(b.id()))
	}

	// Status goes the same way and only the latest is kept.
	a.syncer.PublishStatus(a.status(t, 1200))
	want := a.status(t, 1300)
	a.syncer.PublishStatus(want)
	waitFor(t, "B to hold A's latest status", func() bool { return bytes.Equal(b.store.statusOf(a.id()), want) })
}

func pulledOnce(s *Syncer, id share.HouseholdID) bool {
	for _, st := range s.State() {
		if st.ID == id && !st.LastOK.IsZero() {
			return true
		}
	}
	return false
}

// TestPullCatchUp: three households. C is offline while A writes more
// than three pages of messages and B gets them; then A goes offline too, C
// starts and catches up every message of A through B.
func TestPullCatchUp(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) { testPullCatchUp(t, kind) })
	}
}

func testPullCatchUp(t *testing.T, kind string) {
	const n = 170 // more than three pages of 50
	a, b := newBox(t, kind, nil, Limits{}), newBox(t, kind, nil, Limits{})
	cAuthor := newAuthor(t)
	befriend(a, b)
	// B and A know C (it is a neighbour), but C's box is not running.
	a.nb.add(cAuthor.id(), "127.0.0.1:1")
	b.nb.add(cAuthor.id(), "127.0.0.1:1")
	fast := SyncConfig{Interval: 150 * time.Millisecond, Refresh: 50 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, PageSize: 50}
	a.startSync(t, fast)
	b.startSync(t, fast)

	a.appendOwn(t, n)
	b.appendOwn(t, 5)
	waitFor(t, "B to catch up with A", func() bool { return b.store.count(a.id()) == n })
	waitFor(t, "A to catch up with B", func() bool { return a.store.count(b.id()) == 5 })
	// A failing to reach C backs off rather than hammering.
	waitFor(t, "A to record failures for C", func() bool {
		for _, st := range a.syncer.State() {
			if st.ID == cAuthor.id() && st.Failures >= 2 && st.LastError != "" {
				return true
			}
		}
		return false
	})
	a.halt()

	c := newBox(t, kind, cAuthor, Limits{})
	c.nb.add(a.id(), a.addr) // offline
	c.nb.add(b.id(), b.addr)
	b.nb.add(c.id(), c.addr)
	c.startSync(t, fast)
	waitFor(t, "C to catch up with A through B", func() bool { return c.store.count(a.id()) == n && c.store.count(b.id()) == 5 })

	// Every message C holds is byte-identical to A's original.
	got, _ := c.store.Range(context.Background(), a.id(), 0, n)
	want, _ := b.store.Range(context.Background(), a.id(), 0, n)
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("message %d of A differs on C", i+1)
		}
	}
}

// TestTLSPinning: a client expecting another key refuses the server; a
// server refuses a client that is not a neighbour; nothing is stored.
func TestTLSPinning(t *testing.T) {
	kind := "mem"
	a, b := newBox(t, kind, nil, Limits{}), newBox(t, kind, nil, Limits{})
	befriend(a, b)
	stranger := newBox(t, kind, nil, Limits{})
	ctx := context.Background()

	t.Run("wrong server key", func(t *testing.T) {
		// A dials B's address but expects the stranger's key.
		c, err := NewClient(ClientConfig{Key: a.key, Peer: stranger.id(), Addr: b.addr, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.Heads(ctx)
		if !errors.Is(err, ErrUnknownPeer) {
			t.Fatalf("Heads with a wrong pinned key: err = %v, want ErrUnknownPeer", err)
		}
	})
	t.Run("unknown client", func(t *testing.T) {
		c := stranger.client(t, b)
		_, err := c.Push(ctx, [][]byte{stranger.next(t)})
		if err == nil {
			t.Fatal("push from a household that is not a neighbour succeeded")
		}
		if !strings.Contains(err.Error(), "certificate") {
			t.Errorf("err = %v, want a TLS certificate error", err)
		}
	})
	t.Run("client without certificate", func(t *testing.T) {
		conn, err := tls.Dial("tcp", b.addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
		if err == nil {
			_, err = io.WriteString(conn, "GET /v1/heads HTTP/1.1\r\nHost: x\r\n\r\n")
			if err == nil {
				_, err = conn.Read(make([]byte, 1))
			}
			conn.Close()
		}
		if err == nil {
			t.Fatal("a client without a certificate got an answer")
		}
	})
	t.Run("TLS 1.2 refused", func(t *testing.T) {
		cert, _ := Certificate(a.key)
		conn, err := tls.Dial("tcp", b.addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}})
		if err == nil {
			conn.Close()
			t.Fatal("TLS 1.2 handshake succeeded")
		}
	})
	if b.store.total() != 0 || b.srv.Stats().Requests != 0 {
		t.Errorf("B stored %d messages and served %d requests, want none", b.store.total(), b.srv.Stats().Requests)
	}
	// The pinned, known pair works.
	if _, err := a.client(t, b).Heads(ctx); err != nil {
		t.Fatalf("A to B: %v", err)
	}
}

// TestRejections: bad input from a known, authenticated neighbour gets the
// right status and a reason, and nothing is stored.
func TestRejections(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) { testRejections(t, kind) })
	}
}

func testRejections(t *testing.T, kind string) {
	a := newBox(t, kind, nil, Limits{})
	stranger := newAuthor(t)
	ctx := context.Background()

	type tc struct {
		name   string
		send   func(t *testing.T, b *box, c *Client) error
		code   int
		reason string
	}
	forged := func(t *testing.T) []byte {
		raw := bytes.Clone(a.next(t))
		raw[share.HeaderSize+3] ^= 0x40 // a bit of the signature
		return raw
	}
	cases := []tc{
		{"forged signature", func(t *testing.T, b *box, c *Client) error {
			_, err := c.Push(ctx, [][]byte{forged(t)})
			return err
		}, http.StatusBadRequest, "signature"},
		{"forged among good ones", func(t *testing.T, b *box, c *Client) error {
			a2 := &author{ident: a.ident, key: a.key}
			good := a2.next(t)
			_, err := c.Push(ctx, [][]byte{good, forged(t)})
			return err
		}, http.StatusBadRequest, "signature"},
		{"content altered", func(t *testing.T, b *box, c *Client) error {
			raw := bytes.Clone(a.next(t))
			raw[len(raw)-2] ^= 0x01
			_, err := c.Push(ctx, [][]byte{raw})
			return err
		}, http.StatusBadRequest, "content"},
		{"unknown author", func(t *testing.T, b *box, c *Client) error {
			_, err := c.Push(ctx, [][]byte{stranger.next(t)})
			return err
		}, http.StatusForbidden, "not a known neighbour"},
		{"unknown author status", func(t *testing.T, b *box, c *Client) error {
			return c.PushStatus(ctx, stranger.status(t, 5))
		}, http.StatusForbidden, "not a known neighbour"},
		{"wrong community", func(t *testing.T, b *box, c *Client) error {
			d := share.Draft{Community: share.CommunityID{9}, Seq: 1, Created: time.Now(), Kind: share.KindAnnounce, Content: []byte(`{"name":"x"}`)}
			m, err := a.ident.Sign(d)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Push(ctx, [][]byte{m.Bytes()})
			return err
		}, http.StatusBadRequest, "community"},
		{"status pushed as chain message", func(t *testing.T, b *box, c *Client) error {
			_, err := c.Push(ctx, [][]byte{a.status(t, 1)})
			return err
		}, http.StatusBadRequest, "status message"},
		{"garbage", func(t *testing.T, b *box, c *Client) error {
			_, err := c.Push(ctx, [][]byte{[]byte("hello, this is not a message at all, but it is long enough? no")})
			return err
		}, http.StatusBadRequest, "message 0"},
		{"gap", func(t *testing.T, b *box, c *Client) error {
			a2 := &author{ident: a.ident, key: a.key}
			a2.next(t)
			_, err := c.Push(ctx, [][]byte{a2.next(t)}) // seq 2 without seq 1
			return err
		}, http.StatusConflict, "seq"},
		{"fork", func(t *testing.T, b *box, c *Client) error {
			first := a.sign(t, share.Head{}, share.KindAnnounce, []byte(`{"name":"one"}`))
			if _, err := c.Push(ctx, [][]byte{first}); err != nil {
				t.Fatalf("first message: %v", err)
			}
			other := a.sign(t, share.Head{}, share.KindAnnounce, []byte(`{"name":"two"}`))
			_, err := c.Push(ctx, [][]byte{other})
			return err
		}, http.StatusConflict, "fork"},
		{"oversized body", func(t *testing.T, b *box, c *Client) error {
			big := bytes.Repeat([]byte{'x'}, share.MaxContentSize)
			a2 := &author{ident: a.ident, key: a.key}
			var raws [][]byte
			for range 200 { // 200 × 8.4 KB > 1 MiB
				raws = append(raws, a2.sign(t, a2.head, 0x0777, big))
				m, _ := share.Parse(raws[len(raws)-1])
				a2.head = share.HeadOf(m)
			}
			_, err := c.Push(ctx, raws)
			return err
		}, http.StatusRequestEntityTooLarge, "limit"},
		{"too many messages", func(t *testing.T, b *box, c *Client) error {
			a2 := &author{ident: a.ident, key: a.key}
			var raws [][]byte
			for range 300 {
				raws = append(raws, a2.next(t))
			}
			_, err := c.Push(ctx, raws)
			return err
		}, http.StatusRequestEntityTooLarge, "more than 256"},
		{"bad framing", func(t *testing.T, b *box, c *Client) error {
			return rawPost(ctx, c, PathMessages, BatchContentType, []byte{0, 0, 0x10, 0, 1, 2})
		}, http.StatusBadRequest, "truncated"},
		{"wrong content type", func(t *testing.T, b *box, c *Client) error {
			return rawPost(ctx, c, PathMessages, "application/json", []byte(`{}`))
		}, http.StatusUnsupportedMediaType, "content type"},
		{"bad author in range", func(t *testing.T, b *box, c *Client) error {
			_, err := rangeRaw(ctx, c, "nothex")
			return err
		}, http.StatusBadRequest, "household id"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			b := newBox(t, kind, nil, Limits{})
			befriend(a, b)
			a.head = share.Head{}
			before := b.store.total()
			if tt.name == "fork" {
				before = 1 // the first message is meant to be stored
			}
			err := tt.send(t, b, a.client(t, b))
			var se *StatusError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a *StatusError %d", err, tt.code)
			}
			if se.Code != tt.code || !strings.Contains(se.Reason, tt.reason) {
				t.Errorf("got %d %q, want %d with %q", se.Code, se.Reason, tt.code, tt.reason)
			}
			if got := b.store.total(); got != before {
				t.Errorf("B stores %d messages after the rejection, want %d", got, before)
			}
		})
	}
}

// TestReplayIsIdempotent: the same message pushed twice (and pulled after)
// is stored once.
func TestReplayIsIdempotent(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) { testReplayIsIdempotent(t, kind) })
	}
}

func testReplayIsIdempotent(t *testing.T, kind string) {
	a, b := newBox(t, kind, nil, Limits{}), newBox(t, kind, nil, Limits{})
	befriend(a, b)
	raws := a.appendOwn(t, 2)
	c := a.client(t, b)
	ctx := context.Background()
	for i, want := range []PushResult{{Added: 2}, {Duplicates: 2}, {Duplicates: 2}} {
		got, err := c.Push(ctx, raws)
		if err != nil || got != want {
			t.Fatalf("push %d: %+v, %v; want %+v", i, got, err, want)
		}
	}
	sy, err := NewSyncer(SyncConfig{Key: b.key, Store: b.store, Neighbours: b.nb, Verifier: ShareVerifier{Community: testCommunity}})
	if err != nil {
		t.Fatal(err)
	}
	n, err := sy.Pull(ctx, b.client(t, a))
	if err != nil || n != 0 {
		t.Fatalf("pull after push: %d added, %v; want 0, nil", n, err)
	}
	if got := b.store.count(a.id()); got != 2 {
		t.Errorf("B holds %d of A's messages, want 2", got)
	}
}

// TestRateLimit: a neighbour over its token bucket gets 429 with
// Retry-After; another neighbour is unaffected.
func TestRateLimit(t *testing.T) {
	kind := "mem"
	b := newBox(t, kind, nil, Limits{Rate: 0.01, Burst: 3})
	a, other := newBox(t, kind, nil, Limits{}), newBox(t, kind, nil, Limits{})
	befriend(a, b)
	befriend(other, b)
	ctx := context.Background()
	ca := a.client(t, b)
	for i := range 3 {
		if _, err := ca.Heads(ctx); err != nil {
			t.Fatalf("request %d within the burst: %v", i, err)
		}
	}
	_, err := ca.Heads(ctx)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusTooManyRequests || se.RetryAfter <= 0 {
		t.Fatalf("4th request: err = %v, want 429 with Retry-After", err)
	}
	if _, err := other.client(t, b).Heads(ctx); err != nil {
		t.Fatalf("another neighbour was limited too: %v", err)
	}
}

// TestSlowLoris: connections that never finish the TLS handshake, the
// request headers or the body are closed by the server.
func TestSlowLoris(t *testing.T) {
	kind := "mem"
	lim := Limits{Handshake: 200 * time.Millisecond, ReadHeader: 200 * time.Millisecond, Read: 400 * time.Millisecond}
	b := newBox(t, kind, nil, lim)
	a := newBox(t, kind, nil, Limits{})
	befriend(a, b)
	cert, err := Certificate(a.key)
	if err != nil {
		t.Fatal(err)
	}
	dialTLS := func(t *testing.T) net.Conn {
		conn, err := tls.Dial("tcp", b.addr, ClientTLS(cert, b.id()))
		if err != nil {
			t.Fatal(err)
		}
		return conn
	}
	cases := []struct {
		name   string
		dial   func(t *testing.T) net.Conn
		prefix string // sent at once
		drip   string // then one byte at a time
	}{
		{"silent TCP", func(t *testing.T) net.Conn {
			conn, err := net.Dial("tcp", b.addr)
			if err != nil {
				t.Fatal(err)
			}
			return conn
		}, "", ""},
		{"half a TLS hello", func(t *testing.T) net.Conn {
			conn, err := net.Dial("tcp", b.addr)
			if err != nil {
				t.Fatal(err)
			}
			return conn
		}, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", ""},
		{"headers dripped", dialTLS, "GET /v1/heads HTTP/1.1\r\n", strings.Repeat("X-Slow: 1\r\n", 1000)},
		{"body dripped", dialTLS, "POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: " + BatchContentType + "\r\nContent-Length: 100000\r\n\r\n", strings.Repeat("\x00", 100000)},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			conn := tt.dial(t)
			defer conn.Close()
			// Our own deadline is a safety net far beyond the server's.
			conn.SetDeadline(time.Now().Add(30 * time.Second))
			readErr := make(chan error, 1)
			go func() {
				_, err := io.Copy(io.Discard, conn)
				if err == nil {
					err = io.EOF
				}
				readErr <- err
			}()
			if tt.prefix != "" {
				if _, err := io.WriteString(conn, tt.prefix); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; ; i++ {
				select {
				case err := <-readErr:
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						t.Fatalf("our own deadline fired: the server kept the connection open (%v)", err)
					}
					return // closed by the server
				case <-time.After(20 * time.Millisecond):
				}
				if i < len(tt.drip) {
					conn.Write([]byte{tt.drip[i]})
				}
			}
		})
	}
	if b.store.total() != 0 {
		t.Errorf("B stored %d messages", b.store.total())
	}
	// The server still answers a well-behaved neighbour.
	if _, err := a.client(t, b).Heads(context.Background()); err != nil {
		t.Fatalf("after the slow clients: %v", err)
	}
}

// rawPost sends body to path as it is.
func rawPost(ctx context.Context, c *Client, path, ctype string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ctype)
	resp, err := c.do(req)
	if err == nil {
		resp.Body.Close()
	}
	return err
}

// rangeRaw asks for a range with a literal author string.
func rangeRaw(ctx context.Context, c *Client, author string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+PathFeeds+author, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// TestPushGapTriggersPull: B lacks the start of A's chain, so A's push of
// a new message does not fit (409); B then pulls from A at once (the pull
// interval is an hour, so only that kick can fetch the rest).
func TestPushGapTriggersPull(t *testing.T) {
	a, b := newBox(t, "mem", nil, Limits{}), newBox(t, "mem", nil, Limits{})
	befriend(a, b)
	slow := SyncConfig{Interval: time.Hour, Refresh: 50 * time.Millisecond}
	a.startSync(t, slow)
	b.startSync(t, slow)
	waitFor(t, "first pulls", func() bool { return pulledOnce(a.syncer, b.id()) && pulledOnce(b.syncer, a.id()) })

	a.appendOwn(t, 5) // stored on A, neither pushed nor pulled yet
	a.syncer.Publish(a.appendOwn(t, 1)...)
	waitFor(t, "B to hold all 6 of A's messages", func() bool { return b.store.count(a.id()) == 6 })
	if got := b.srv.Stats().Rejected; got != 1 {
		t.Errorf("B's server rejected %d requests, want the one gap push", got)
	}
}

// TestPageBytesBound: a range answer stops at MaxPageBytes, and a pull
// still fetches the whole chain page after page.
func TestPageBytesBound(t *testing.T) {
	a, b := newBox(t, "mem", nil, Limits{}), newBox(t, "mem", nil, Limits{})
	befriend(a, b)
	big := bytes.Repeat([]byte{'x'}, share.MaxContentSize)
	var msgs []Message
	v := ShareVerifier{Community: testCommunity}
	const n = 300 // 300 × 8.4 KB ≈ 2.5 MB: three pages by size, one by count
	for range n {
		raw := a.sign(t, a.head, 0x0777, big)
		m, err := v.Verify(raw)
		if err != nil {
			t.Fatal(err)
		}
		pm, _ := share.Parse(raw)
		a.head = share.HeadOf(pm)
		msgs = append(msgs, m)
	}
	if _, err := a.store.Append(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	c := b.client(t, a)
	raws, err := c.Range(context.Background(), a.id(), 0, 500)
	if err != nil {
		t.Fatal(err)
	}
	size := 0
	for _, r := range raws {
		size += 4 + len(r)
	}
	if len(raws) == 0 || len(raws) == n || size > MaxPageBytes {
		t.Fatalf("first page: %d messages, %d bytes; want fewer than %d, at most %d bytes", len(raws), size, n, MaxPageBytes)
	}
	sy, err := NewSyncer(SyncConfig{Key: b.key, Store: b.store, Neighbours: b.nb, Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	got, err := sy.Pull(context.Background(), c)
	if err != nil || got != n {
		t.Fatalf("pull: %d, %v; want %d", got, err, n)
	}
}

// TestRemovedNeighbour: once B removes A, A's requests are refused, on a
// kept-alive connection (403) as on a new one (TLS), and its messages are
// not stored.
func TestRemovedNeighbour(t *testing.T) {
	a, b := newBox(t, "mem", nil, Limits{}), newBox(t, "mem", nil, Limits{})
	befriend(a, b)
	c := a.client(t, b)
	ctx := context.Background()
	if _, err := c.Heads(ctx); err != nil {
		t.Fatal(err)
	}
	b.nb.(*memNeighbours).remove(a.id())
	_, err := c.Push(ctx, [][]byte{a.next(t)})
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusForbidden {
		t.Fatalf("push on the kept-alive connection: err = %v, want 403", err)
	}
	c.Close() // drop the kept-alive connection
	if _, err := c.Heads(ctx); err == nil {
		t.Fatal("a removed neighbour completed a new TLS handshake")
	}
	if b.store.total() != 0 {
		t.Errorf("B stored %d messages", b.store.total())
	}
}

// lyingStore answers every range request with another author's messages.
type lyingStore struct {
	*memStore
	other share.HouseholdID
}

func (s lyingStore) Range(ctx context.Context, _ share.HouseholdID, after uint64, limit int) ([][]byte, error) {
	return s.memStore.Range(ctx, s.other, after, limit)
}

// TestHostileRangeAnswer: a neighbour that answers a range request for
// one author with another author's (validly signed) messages gets the
// page refused; nothing of it is stored.
func TestHostileRangeAnswer(t *testing.T) {
	a, b := newBox(t, "mem", nil, Limits{}), newBox(t, "mem", nil, Limits{})
	x := newAuthor(t)
	befriend(a, b)
	b.nb.add(x.id(), "")
	a.appendOwn(t, 3)
	// A's store also holds 3 messages of X, and lies about whose they are.
	var msgs []Message
	v := ShareVerifier{Community: testCommunity}
	for range 3 {
		m, err := v.Verify(x.next(t))
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	mem := a.store.(*memStore)
	if _, err := mem.Append(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	liar, err := NewServer(ServerConfig{Key: a.key, Store: lyingStore{mem, x.id()}, Neighbours: a.nb, Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go liar.Serve(ln)
	t.Cleanup(func() { liar.Close() })

	c, err := NewClient(ClientConfig{Key: b.key, Peer: a.id(), Addr: ln.Addr().String(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sy, err := NewSyncer(SyncConfig{Key: b.key, Store: b.store, Neighbours: b.nb, Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	n, err := sy.Pull(context.Background(), c)
	if err == nil || !strings.Contains(err.Error(), "asked for") {
		t.Fatalf("pull from a lying neighbour: %d added, err = %v; want a refusal", n, err)
	}
	// X's own feed (asked for honestly) is fine to take; A's was never sent.
	if got := b.store.count(a.id()); got != 0 {
		t.Errorf("B stored %d messages as A's", got)
	}
}

// TestByteRateLimit: a neighbour pushing full 1 MiB batches stays under
// the request rate (20/s) yet floods megabytes per second; the per-neighbour
// byte budget answers 429 with Retry-After before long, with the default
// limits.
func TestByteRateLimit(t *testing.T) {
	kind := "mem"
	b := newBox(t, kind, nil, Limits{})
	a := newBox(t, kind, nil, Limits{})
	befriend(a, b)
	ctx := context.Background()
	ca := a.client(t, b)
	content := []byte(`{"x":"` + strings.Repeat("x", 8000) + `"}`)
	const pushes = 12
	var limited *StatusError
	accepted := 0
	for i := 0; i < pushes && limited == nil; i++ {
		batch := make([][]byte, 110) // ~0.9 MiB, under MaxBodyBytes
		for j := range batch {
			batch[j] = a.sign(t, a.head, 99, content)
			m, err := share.Parse(batch[j])
			if err != nil {
				t.Fatal(err)
			}
			a.head = share.HeadOf(m)
		}
		_, err := ca.Push(ctx, batch)
		var se *StatusError
		switch {
		case errors.As(err, &se) && se.Code == http.StatusTooManyRequests:
			limited = se
		case err != nil:
			t.Fatalf("push %d: %v", i, err)
		default:
			accepted++
		}
	}
	if limited == nil {
		t.Fatalf("%d pushes of ~0.9 MiB in a row were all accepted: no byte limit", pushes)
	}
	if limited.RetryAfter <= 0 {
		t.Errorf("429 without Retry-After: %v", limited)
	}
	if accepted < 2 {
		t.Errorf("only %d pushes accepted before the limit: the burst should allow a few MiB", accepted)
	}
	if st := b.srv.Stats(); st.Limited == 0 {
		t.Errorf("Stats.Limited = 0 after a 429")
	}
}

// TestUnknownRequests: a path the protocol does not have, or a known path
// with another method, is answered with the JSON error body of every other
// refusal (docs/PROTOCOL.md §15), not net/http's plain text, and counts
// against the neighbour's request rate like any request.
func TestUnknownRequests(t *testing.T) {
	a := newBox(t, "mem", nil, Limits{})
	tests := []struct {
		method, path string
		code         int
		allow        string
	}{
		{http.MethodGet, "/v2/heads", http.StatusNotFound, ""},
		{http.MethodGet, "/", http.StatusNotFound, ""},
		{http.MethodGet, PathFeeds + a.id().String() + "/x", http.StatusNotFound, ""},
		{http.MethodPost, PathHeads, http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodDelete, PathFeeds + a.id().String(), http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodGet, PathMessages, http.StatusMethodNotAllowed, "POST"},
		{http.MethodPut, PathStatus, http.StatusMethodNotAllowed, "POST"},
	}
	b := newBox(t, "mem", nil, Limits{Rate: 0.01, Burst: len(tests)})
	befriend(a, b)
	c := a.client(t, b)
	ctx := context.Background()
	for _, tt := range tests {
		req, err := http.NewRequestWithContext(ctx, tt.method, c.base+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.hcs[0].Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.method, tt.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var eb errorBody
		if resp.StatusCode != tt.code || resp.Header.Get("Content-Type") != "application/json" ||
			json.Unmarshal(body, &eb) != nil || eb.Error == "" || resp.Header.Get("Allow") != tt.allow {
			t.Errorf("%s %s: %d %q Allow %q %s, want %d application/json Allow %q {\"error\":…}",
				tt.method, tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Allow"), body, tt.code, tt.allow)
		}
	}
	_, err := c.Heads(ctx)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusTooManyRequests {
		t.Fatalf("after %d unknown requests with a burst of as many: %v, want 429", len(tests), err)
	}
	if got := b.srv.Stats().Rejected; got != uint64(len(tests)) {
		t.Errorf("Rejected = %d, want %d", got, len(tests))
	}
}
