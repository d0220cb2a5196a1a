package peer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/commons-energy/commons/ledger"
	"github.com/commons-energy/commons/share"
)

// LedgerStore adapts a ledger to Store. The ledger re-checks every message
// itself (signature, clock, admission, chain) inside one durable
// transaction per Append.
type LedgerStore struct {
	L *ledger.Ledger
	// Relay, when set, is called with each ephemeral message of a kind
	// this version does not interpret that PutStatus kept as the latest of
	// its author and kind, to pass it on (Syncer.Relay).
	Relay func(raw []byte)
}

// Heads implements Store.
func (s LedgerStore) Heads(ctx context.Context) ([]Head, error) {
	m, err := s.L.Heads(ctx)
	if err != nil {
		return nil, err
	}
	hs := make([]Head, 0, len(m))
	for a, h := range m {
		hs = append(hs, Head{Author: a, Seq: h.Seq})
	}
	return hs, nil
}

// HeadsSince implements HeadsSincer from the ledger's heads table.
func (s LedgerStore) HeadsSince(ctx context.Context, since uint64) ([]Head, uint64, bool, error) {
	ahs, cursor, full, err := s.L.HeadsSince(ctx, since)
	if err != nil {
		return nil, 0, false, err
	}
	hs := make([]Head, len(ahs))
	for i, h := range ahs {
		hs[i] = Head{Author: h.Author, Seq: h.Seq}
	}
	return hs, cursor, full, nil
}

// RecordAck implements Acker.
func (s LedgerStore) RecordAck(ctx context.Context, neighbour share.HouseholdID, seq uint64) error {
	_, err := s.L.RecordAck(ctx, neighbour, seq)
	return err
}

// Range implements Store.
func (s LedgerStore) Range(ctx context.Context, author share.HouseholdID, after uint64, limit int) ([][]byte, error) {
	if limit <= 0 {
		return nil, nil
	}
	return s.L.Range(ctx, author, after+1, limit)
}

// Append implements Store.
func (s LedgerStore) Append(ctx context.Context, msgs []Message) ([]AppendResult, error) {
	raws := make([][]byte, len(msgs))
	for i, m := range msgs {
		raws[i] = m.Raw
	}
	res, err := s.L.Append(ctx, raws...)
	if err != nil {
		return nil, err
	}
	out := make([]AppendResult, len(res))
	for i, r := range res {
		switch r.Outcome {
		case ledger.Stored:
			out[i] = AppendResult{Outcome: Added}
		case ledger.Duplicate:
			out[i] = AppendResult{Outcome: Duplicate}
		default:
			out[i] = AppendResult{Outcome: Rejected, Err: classify(r)}
		}
	}
	return out, nil
}

// PutStatus implements Store. Statuses are written in batches (see
// ledger.Ledger.PutStatus): a status kept is visible to readers at once.
func (s LedgerStore) PutStatus(ctx context.Context, m Message) error {
	res, err := s.L.PutStatus(ctx, m.Raw)
	if err != nil {
		return err
	}
	switch res.Outcome {
	case ledger.Latest:
		if s.Relay != nil && res.Message != nil && !res.Message.Kind.Known() {
			s.Relay(m.Raw)
		}
		return nil
	case ledger.Older, ledger.Duplicate:
		return nil
	}
	return classify(res)
}

// classify wraps a ledger refusal in the peer sentinel that gives its HTTP
// status.
func classify(r ledger.Result) error {
	err := r.Err
	if err == nil {
		err = fmt.Errorf("ledger outcome %s", r.Outcome)
	}
	switch {
	case r.Outcome == ledger.Forked, errors.Is(err, share.ErrFork), errors.Is(err, share.ErrFrozen),
		errors.Is(err, share.ErrSeqGap), errors.Is(err, share.ErrPrevMismatch):
		return fmt.Errorf("%w: %w", ErrConflict, err)
	case errors.Is(err, ledger.ErrUnknownAuthor):
		return fmt.Errorf("%w: %w", ErrForbidden, err)
	case errors.Is(err, ledger.ErrQuota), errors.Is(err, ledger.ErrDiskReserve):
		return fmt.Errorf("%w: %w", ErrStorage, err)
	default:
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
}

// LedgerNeighbours adapts a ledger's neighbour list to Neighbours. The
// list is read from the database at most once per TTL (default 2 s), so a
// neighbour removed takes effect within that time. A household Known does
// not find makes the list be read again at once (at most every
// missRefresh), so a neighbour added a moment ago is not turned away until
// the TTL runs out.
type LedgerNeighbours struct {
	L   *ledger.Ledger
	TTL time.Duration

	mu    sync.Mutex
	at    time.Time
	addrs map[share.HouseholdID]string
}

// missRefresh is how often at most a lookup miss rereads the list.
const missRefresh = 250 * time.Millisecond

func (n *LedgerNeighbours) load() map[share.HouseholdID]string {
	ttl := n.TTL
	if ttl <= 0 {
		ttl = 2 * time.Second
	}
	return n.loadWithin(ttl)
}

// loadWithin returns the list, reading it from the database when the
// cached copy is older than maxAge.
func (n *LedgerNeighbours) loadWithin(maxAge time.Duration) map[share.HouseholdID]string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.addrs != nil && time.Since(n.at) < maxAge {
		return n.addrs
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list, err := n.L.Neighbours(ctx)
	if err != nil && n.addrs != nil {
		return n.addrs // keep the last good list while the database is busy
	}
	m := make(map[share.HouseholdID]string, len(list))
	for _, nb := range list {
		addr := ""
		if len(nb.Addresses) > 0 {
			addr = nb.Addresses[0]
		}
		m[nb.ID] = addr
	}
	n.addrs, n.at = m, time.Now()
	return m
}

// Known implements Neighbours.
func (n *LedgerNeighbours) Known(id share.HouseholdID) bool {
	if _, ok := n.load()[id]; ok {
		return true
	}
	_, ok := n.loadWithin(missRefresh)[id]
	return ok
}

// Addr implements Neighbours.
func (n *LedgerNeighbours) Addr(id share.HouseholdID) (string, bool) {
	a, ok := n.load()[id]
	return a, ok && a != ""
}

// List implements Neighbours.
func (n *LedgerNeighbours) List() []share.HouseholdID {
	m := n.load()
	ids := make([]share.HouseholdID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b share.HouseholdID) int { return slices.Compare(a[:], b[:]) })
	return ids
}
