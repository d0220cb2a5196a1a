package peer

import (
	"container/list"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/commons-energy/commons/share"
)

// gate is the Server's listener: it accepts TCP connections, runs the TLS
// handshake itself under a short deadline, and hands http.Server only
// connections that completed it with a pinned neighbour's certificate.
//
// Two budgets, so that strangers never take a neighbour's place:
//
//   - pending handshakes: at most MaxPendingPerAddr per remote IP address
//     and pendingBudget(neighbours) in all; a new connection beyond either closes the
//     oldest pending handshake (of its address, or of all), so a
//     neighbour's handshake always starts, and to push it out again a
//     stranger must open that many new connections within the few
//     milliseconds the handshake takes; each pending handshake is closed
//     after Handshake (default 2 s);
//   - authenticated connections: at most connBudget(neighbours) in all and
//     MaxConnsPerNeighbour per neighbour; only these are served.
type gate struct {
	ln     net.Listener
	tlsCfg *tls.Config
	lim    Limits
	budget func() (conns, pending int) // connections allowed now: authenticated, and in their handshake

	conns chan *tls.Conn // handshaken and admitted, for Accept
	done  chan struct{}
	ctx   context.Context // cancelled by Close: ends pending handshakes
	stop  context.CancelFunc
	once  sync.Once
	errc  chan error // the raw listener's fatal Accept error

	mu      sync.Mutex
	pending *list.List            // of *pendingConn, oldest first
	perAddr map[string]*list.List // the same, per remote address
	authed  int
	perPeer map[share.HouseholdID]int

	refused, evicted, failed, overBudget atomic.Uint64
}

// pendingConn is a connection in its TLS handshake.
type pendingConn struct {
	conn     net.Conn
	addr     string
	elem     *list.Element // in gate.pending; nil once it left the pending lists
	addrElem *list.Element // in gate.perAddr[addr]
}

// connBudget is how many authenticated connections a box with n
// neighbours serves at once: two per neighbour (a pull and a push may
// overlap) plus 16, and never fewer than floor (Limits.MaxConns, default
// 64). docs/PROTOCOL.md §15 documents it.
func connBudget(floor, n int) int { return max(floor, 2*n+16) }

// pendingBudget is how many handshakes a box with n neighbours runs at
// once: one per neighbour (a street restarting together after a power
// cut) plus 16, and never fewer than floor (Limits.MaxPending, default
// 64).
func pendingBudget(floor, n int) int { return max(floor, n+16) }

func newGate(ln net.Listener, tlsCfg *tls.Config, lim Limits, budget func() (int, int)) *gate {
	g := &gate{
		ln: ln, tlsCfg: tlsCfg, lim: lim, budget: budget,
		conns:   make(chan *tls.Conn),
		done:    make(chan struct{}),
		errc:    make(chan error, 1),
		pending: list.New(),
		perAddr: map[string]*list.List{},
		perPeer: map[share.HouseholdID]int{},
	}
	g.ctx, g.stop = context.WithCancel(context.Background())
	go g.acceptLoop()
	return g
}

func (g *gate) acceptLoop() {
	var backoff time.Duration
	for {
		c, err := g.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				g.errc <- err
				return
			}
			// Out of descriptors or similar: wait a little and go on,
			// like http.Server does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(backoff):
				continue
			case <-g.done:
				g.errc <- net.ErrClosed
				return
			}
		}
		backoff = 0
		g.admit(c)
	}
}

// remoteHost is the address part the per-address budget counts by.
func remoteHost(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return c.RemoteAddr().String()
}

// admit starts the handshake of a new connection, making room in the
// pending budgets by closing the oldest pending handshake of its address,
// or of all, when they are full.
func (g *gate) admit(c net.Conn) {
	p := &pendingConn{conn: c, addr: remoteHost(c)}
	var evict []net.Conn
	_, maxPending := g.budget()
	g.mu.Lock()
	byAddr := g.perAddr[p.addr]
	if byAddr == nil {
		byAddr = list.New()
		g.perAddr[p.addr] = byAddr
	}
	if byAddr.Len() >= g.lim.MaxPendingPerAddr {
		old := byAddr.Front().Value.(*pendingConn)
		g.dropLocked(old)
		evict = append(evict, old.conn)
		g.refused.Add(1)
	}
	if g.pending.Len() >= maxPending {
		old := g.pending.Front().Value.(*pendingConn)
		g.dropLocked(old)
		evict = append(evict, old.conn)
		g.evicted.Add(1)
	}
	p.elem = g.pending.PushBack(p)
	p.addrElem = byAddr.PushBack(p)
	g.mu.Unlock()
	for _, c := range evict {
		c.Close()
	}
	go g.handshake(p)
}

// dropLocked takes p off the pending lists; g.mu is held.
func (g *gate) dropLocked(p *pendingConn) {
	if p.elem == nil {
		return
	}
	g.pending.Remove(p.elem)
	byAddr := g.perAddr[p.addr]
	byAddr.Remove(p.addrElem)
	if byAddr.Len() == 0 {
		delete(g.perAddr, p.addr)
	}
	p.elem, p.addrElem = nil, nil
}

func (g *gate) handshake(p *pendingConn) {
	sc := &slotConn{Conn: p.conn}
	tc := tls.Server(sc, g.tlsCfg)
	ctx, cancel := context.WithTimeout(g.ctx, g.lim.Handshake)
	p.conn.SetDeadline(time.Now().Add(g.lim.Handshake))
	err := tc.HandshakeContext(ctx)
	cancel()
	g.mu.Lock()
	g.dropLocked(p)
	g.mu.Unlock()
	if err != nil {
		g.failed.Add(1)
		p.conn.Close()
		return
	}
	st := tc.ConnectionState()
	if len(st.PeerCertificates) == 0 {
		g.failed.Add(1)
		p.conn.Close()
		return
	}
	id, err := peerID([][]byte{st.PeerCertificates[0].Raw})
	if err != nil {
		g.failed.Add(1)
		p.conn.Close()
		return
	}
	maxConns, _ := g.budget()
	g.mu.Lock()
	if g.authed >= maxConns || g.perPeer[id] >= g.lim.MaxConnsPerNeighbour {
		g.mu.Unlock()
		g.overBudget.Add(1)
		p.conn.Close()
		return
	}
	g.authed++
	g.perPeer[id]++
	g.mu.Unlock()
	sc.setRelease(func() {
		g.mu.Lock()
		g.authed--
		if g.perPeer[id]--; g.perPeer[id] <= 0 {
			delete(g.perPeer, id)
		}
		g.mu.Unlock()
	})
	p.conn.SetDeadline(time.Time{})
	select {
	case g.conns <- tc:
	case <-g.done:
		tc.Close()
	}
}

// Accept returns the next authenticated connection.
func (g *gate) Accept() (net.Conn, error) {
	select {
	case c := <-g.conns:
		return c, nil
	case err := <-g.errc:
		g.errc <- err // every later Accept fails the same way
		return nil, err
	case <-g.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting and ends the pending handshakes.
func (g *gate) Close() error {
	g.once.Do(func() {
		close(g.done)
		g.stop()
		g.mu.Lock()
		for e := g.pending.Front(); e != nil; e = e.Next() {
			e.Value.(*pendingConn).conn.Close()
		}
		g.mu.Unlock()
	})
	return g.ln.Close()
}

// Addr is the listening address.
func (g *gate) Addr() net.Addr { return g.ln.Addr() }

// counts returns the pending handshakes and authenticated connections now.
func (g *gate) counts() (pending, authed int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pending.Len(), g.authed
}

// slotConn releases its authenticated slot once, when closed.
type slotConn struct {
	net.Conn
	mu      sync.Mutex
	closed  bool
	release func()
}

func (c *slotConn) setRelease(f func()) {
	c.mu.Lock()
	if c.closed { // closed during the hand-over: give the slot back now
		c.mu.Unlock()
		f()
		return
	}
	c.release = f
	c.mu.Unlock()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.mu.Lock()
	f := c.release
	c.release, c.closed = nil, true
	c.mu.Unlock()
	if f != nil {
		f()
	}
	return err
}
