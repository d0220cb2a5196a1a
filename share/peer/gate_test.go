package peer

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"testing"
	"time"
)

// TestStrangersDoNotBlockNeighbours: 500 TCP connections from strangers
// that never send anything, and 500 that start a TLS handshake and stop
// half-way, held open, do not stop a neighbour's request from being
// answered: strangers' connections only compete for the pending-handshake
// budgets and never for the neighbours' connections. The strangers come
// from one address (the neighbour's own) or from 100.
func TestStrangersDoNotBlockNeighbours(t *testing.T) {
	n := 500
	if testing.Short() {
		n = 100
	}
	for _, tc := range []struct {
		name  string
		addrs int // strangers' source addresses 127.0.0.1 .. 127.0.0.addrs
	}{
		{"one address, the neighbour's", 1},
		{"100 addresses", 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBox(t, "mem", nil, Limits{})
			a := newBox(t, "mem", nil, Limits{})
			befriend(a, b)
			hello := []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03") // half a ClientHello
			var mu sync.Mutex
			var held []net.Conn
			t.Cleanup(func() {
				mu.Lock()
				defer mu.Unlock()
				for _, c := range held {
					c.Close()
				}
			})
			dials := 0
			for i := range 2 * n {
				ip := net.IPv4(127, 0, 0, byte(1+i%tc.addrs))
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 5 * time.Second}
				c, err := d.Dial("tcp", b.addr)
				if err != nil {
					t.Fatalf("stranger %d from %s: %v", i, ip, err)
				}
				dials++
				if i%2 == 1 {
					c.Write(hello) // may fail once the server closed it
				}
				mu.Lock()
				held = append(held, c)
				mu.Unlock()
			}
			// The neighbour, with a new client (a new connection), is answered.
			c := a.client(t, b)
			if _, err := c.HeadsSince(context.Background(), 0); err != nil {
				t.Fatalf("neighbour's request with %d strangers' connections open: %v", dials, err)
			}
			st := b.srv.Stats()
			lim := Limits{}.withDefaults()
			if st.PendingHandshakes > lim.MaxPending {
				t.Errorf("%d handshakes pending, the limit is %d", st.PendingHandshakes, lim.MaxPending)
			}
			if st.ConnsRefused+st.ConnsEvicted == 0 {
				t.Errorf("no stranger's connection was closed for the pending budgets: %+v", st)
			}
			if st.ConnsOverBudget != 0 {
				t.Errorf("%d neighbours' connections refused", st.ConnsOverBudget)
			}
			t.Logf("%d strangers' connections: %+v", dials, st)
		})
	}
}

// TestHandshakeDeadline: a connection that does not finish its TLS
// handshake is closed after Limits.Handshake; the pending budget is free
// again afterwards.
func TestHandshakeDeadline(t *testing.T) {
	b := newBox(t, "mem", nil, Limits{Handshake: 100 * time.Millisecond, MaxPendingPerAddr: 2})
	conns := make([]net.Conn, 3)
	for i := range conns {
		c, err := net.Dial("tcp", b.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(20 * time.Second)) // far beyond the server's
		buf := make([]byte, 1)
		_, err := c.Read(buf)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("connection %d: still open after 20 s", i)
		}
	}
	waitFor(t, "no pending handshakes", func() bool { return b.srv.Stats().PendingHandshakes == 0 })
	st := b.srv.Stats()
	if st.ConnsRefused != 1 || st.HandshakesFailed < 2 {
		t.Errorf("stats %+v: want 1 closed for the per-address budget, 2 timed out", st)
	}
}

// TestConnBudget: the neighbours' connection budget follows the neighbour
// count, and one neighbour cannot take more than MaxConnsPerNeighbour.
func TestConnBudget(t *testing.T) {
	for _, tc := range []struct{ floor, n, want int }{
		{64, 0, 64}, {64, 24, 64}, {64, 25, 66}, {64, 100, 216}, {64, 1000, 2016}, {10, 0, 16},
	} {
		if got := connBudget(tc.floor, tc.n); got != tc.want {
			t.Errorf("connBudget(%d, %d) = %d, want %d", tc.floor, tc.n, got, tc.want)
		}
	}
	for _, tc := range []struct{ floor, n, want int }{
		{64, 0, 64}, {64, 48, 64}, {64, 49, 65}, {64, 100, 116}, {64, 1000, 1016},
	} {
		if got := pendingBudget(tc.floor, tc.n); got != tc.want {
			t.Errorf("pendingBudget(%d, %d) = %d, want %d", tc.floor, tc.n, got, tc.want)
		}
	}

	b := newBox(t, "mem", nil, Limits{MaxConnsPerNeighbour: 2})
	a := newBox(t, "mem", nil, Limits{})
	befriend(a, b)
	cert, err := Certificate(a.key)
	if err != nil {
		t.Fatal(err)
	}
	var open []*tls.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for i := range 3 {
		c, err := tls.Dial("tcp", b.addr, ClientTLS(cert, b.id()))
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		open = append(open, c)
	}
	waitFor(t, "the third connection closed", func() bool { return b.srv.Stats().ConnsOverBudget == 1 })
	if st := b.srv.Stats(); st.NeighbourConns != 2 {
		t.Errorf("%d neighbour connections served, want 2", st.NeighbourConns)
	}
	if conns, pending := b.srv.ConnBudget(); conns != 64 || pending != 64 {
		t.Errorf("budgets with one neighbour %d, %d; want 64, 64", conns, pending)
	}
}
