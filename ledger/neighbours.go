package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/commons-energy/commons/share"
)

// ErrNotFound is wrapped by lookups that find nothing (a neighbour, a
// pledge id); the CLI maps it to exit code 3.
var ErrNotFound = errors.New("not found")

// ErrAmbiguous is wrapped when an id prefix matches more than one record.
var ErrAmbiguous = errors.New("ambiguous")

// Neighbour is a household whose messages this ledger accepts.
type Neighbour struct {
	ID        share.HouseholdID
	Name      string    // display name or local alias; unique among current neighbours
	Addresses []string  // where to reach it (host:port, URLs)
	Invite    string    // the invite string it was added with, if any
	Added     time.Time // when it was (last) added
	LastSeen  time.Time // last message stored from it; zero when never
	Removed   time.Time // zero while it is a neighbour
	// ForkSeq is the lowest sequence number at which the household signed
	// two different messages (a stored fork proof, docs/PROTOCOL.md
	// §6.3); 0 when it never did. Its feed is frozen from then on.
	ForkSeq uint64
}

// Frozen reports whether a fork froze the neighbour's feed: nothing new is
// accepted from its key.
func (n Neighbour) Frozen() bool { return n.ForkSeq > 0 }

// AddNeighbour adds n, or updates name, addresses and invite of a
// neighbour with the same id (re-adding a removed neighbour makes it a
// neighbour again). A name already used by another current neighbour
// (ignoring case) is refused. n.Added is ignored: the ledger's clock sets it.
func (l *Ledger) AddNeighbour(ctx context.Context, n Neighbour) error {
	n.Name = strings.TrimSpace(n.Name)
	if n.Name == "" {
		return fmt.Errorf("add neighbour %s: empty name: give it a name (--name)", n.ID.Short())
	}
	if n.ID == l.opts.Self {
		return fmt.Errorf("add neighbour %s: that is this household's own id", n.Name)
	}
	return l.write(ctx, func(tx *sql.Tx) error {
		var other string
		err := tx.QueryRowContext(ctx, `SELECT id FROM neighbours WHERE name = ? COLLATE NOCASE AND removed_ms IS NULL AND id <> ?`,
			n.Name, n.ID.String()).Scan(&other)
		if err == nil {
			return fmt.Errorf("add neighbour %q: the name is taken by neighbour %s: choose another name (--name)", n.Name, other)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("add neighbour %q: %w", n.Name, err)
		}
		_, err = tx.ExecContext(ctx, `
INSERT INTO neighbours (id, name, addresses, invite, added_ms) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET name = excluded.name, addresses = excluded.addresses,
	invite = CASE WHEN excluded.invite <> '' THEN excluded.invite ELSE neighbours.invite END,
	added_ms = CASE WHEN neighbours.removed_ms IS NULL THEN neighbours.added_ms ELSE excluded.added_ms END,
	removed_ms = NULL`,
			n.ID.String(), n.Name, strings.Join(n.Addresses, "\n"), n.Invite, l.nowMS())
		if err != nil {
			return fmt.Errorf("add neighbour %q: %w", n.Name, err)
		}
		return nil
	})
}

// RemoveNeighbour marks the neighbour with this id as removed: its
// messages are no longer accepted; those already stored stay.
func (l *Ledger) RemoveNeighbour(ctx context.Context, id share.HouseholdID) error {
	return l.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE neighbours SET removed_ms = ? WHERE id = ? AND removed_ms IS NULL`,
			l.nowMS(), id.String())
		if err != nil {
			return fmt.Errorf("remove neighbour %s: %w", id.Short(), err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("remove neighbour %s: %w", id.Short(), ErrNotFound)
		}
		return nil
	})
}

// Neighbours lists the current neighbours by name.
func (l *Ledger) Neighbours(ctx context.Context) ([]Neighbour, error) {
	return l.queryNeighbours(ctx, `WHERE removed_ms IS NULL ORDER BY name`)
}

// AllNeighbours lists every household ever added, removed ones included.
func (l *Ledger) AllNeighbours(ctx context.Context) ([]Neighbour, error) {
	return l.queryNeighbours(ctx, `ORDER BY name`)
}

// FindNeighbour finds a current neighbour by exact name (case-insensitive),
// full id, or a unique id prefix of at least 4 characters. It wraps
// ErrNotFound or ErrAmbiguous.
func (l *Ledger) FindNeighbour(ctx context.Context, nameOrID string) (Neighbour, error) {
	s := strings.TrimSpace(nameOrID)
	ns, err := l.queryNeighbours(ctx, `WHERE removed_ms IS NULL AND (name = ? COLLATE NOCASE OR id = ?) ORDER BY name`, s, strings.ToLower(s))
	if err != nil {
		return Neighbour{}, err
	}
	if len(ns) == 0 && len(s) >= 4 {
		ns, err = l.queryNeighbours(ctx, `WHERE removed_ms IS NULL AND substr(id, 1, ?) = ? ORDER BY name`, len(s), strings.ToLower(s))
		if err != nil {
			return Neighbour{}, err
		}
	}
	switch len(ns) {
	case 0:
		return Neighbour{}, fmt.Errorf("neighbour %q: %w: see `commons neighbours list`", s, ErrNotFound)
	case 1:
		return ns[0], nil
	default:
		return Neighbour{}, fmt.Errorf("neighbour %q matches %d neighbours (%s, %s): %w: give more of the id", s, len(ns), ns[0].Name, ns[1].Name, ErrAmbiguous)
	}
}

// IsKnown reports whether messages by author are accepted: this
// household's own, or a current neighbour's.
func (l *Ledger) IsKnown(ctx context.Context, author share.HouseholdID) (bool, error) {
	return l.isKnown(ctx, l.db, author)
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (l *Ledger) isKnown(ctx context.Context, q querier, author share.HouseholdID) (bool, error) {
	self := l.opts.Self
	if author == self {
		return true, nil
	}
	if !l.succ {
		var one int
		err := q.QueryRowContext(ctx, `SELECT 1 FROM neighbours WHERE id = ? AND removed_ms IS NULL`, author.String()).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		return err == nil, err
	}
	// An old key of a neighbour, or of this household, is known for its
	// history: follow the key's successions to the current one.
	var one int
	err := q.QueryRowContext(ctx, `WITH RECURSIVE chain(k, n) AS (
	SELECT ?, 0 UNION SELECT s.new, chain.n + 1 FROM successions s JOIN chain ON s.old = chain.k WHERE chain.n < 64)
SELECT 1 FROM chain WHERE k = ? OR k IN (SELECT id FROM neighbours WHERE removed_ms IS NULL) LIMIT 1`, author.String(), self.String()).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func (l *Ledger) queryNeighbours(ctx context.Context, where string, args ...any) ([]Neighbour, error) {
	pending := l.pendingStatuses()
	rows, err := l.db.QueryContext(ctx, `SELECT id, name, addresses, invite, added_ms, last_seen_ms, removed_ms,
	(SELECT min(seq) FROM forks WHERE forks.author = neighbours.id) FROM neighbours `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("list neighbours: %w", err)
	}
	defer rows.Close()
	var out []Neighbour
	for rows.Next() {
		var (
			n             Neighbour
			id, addrs     string
			added         int64
			seen, removed sql.NullInt64
			forkSeq       sql.NullInt64
		)
		if err := rows.Scan(&id, &n.Name, &addrs, &n.Invite, &added, &seen, &removed, &forkSeq); err != nil {
			return nil, fmt.Errorf("list neighbours: %w", err)
		}
		if n.ID, err = share.ParseHouseholdID(id); err != nil {
			return nil, fmt.Errorf("list neighbours: stored id: %w", err)
		}
		if addrs != "" {
			n.Addresses = strings.Split(addrs, "\n")
		}
		n.Added = time.UnixMilli(added)
		if seen.Valid {
			n.LastSeen = time.UnixMilli(seen.Int64)
		}
		if removed.Valid {
			n.Removed = time.UnixMilli(removed.Int64)
		}
		if p, ok := pending[n.ID]; ok && time.UnixMilli(p.received).After(n.LastSeen) {
			n.LastSeen = time.UnixMilli(p.received)
		}
		if forkSeq.Valid && forkSeq.Int64 > 0 {
			n.ForkSeq = uint64(forkSeq.Int64)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// refusals reads the per-neighbour refusal counters, by author id text.
func (l *Ledger) refusals(ctx context.Context) (map[string]map[string]int64, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT author, reason, count FROM refusals`)
	if err != nil {
		return nil, fmt.Errorf("read refusals: %w", err)
	}
	defer rows.Close()
	out := map[string]map[string]int64{}
	for rows.Next() {
		var (
			author, reason string
			n              int64
		)
		if err := rows.Scan(&author, &reason, &n); err != nil {
			return nil, fmt.Errorf("read refusals: %w", err)
		}
		if out[author] == nil {
			out[author] = map[string]int64{}
		}
		out[author][reason] = n
	}
	return out, rows.Err()
}

// TouchNeighbour records contact with a neighbour (for example a
// successful connection) at t. Stored messages update it by themselves.
func (l *Ledger) TouchNeighbour(ctx context.Context, id share.HouseholdID, t time.Time) error {
	return l.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE neighbours SET last_seen_ms = max(coalesce(last_seen_ms, 0), ?) WHERE id = ?`, t.UnixMilli(), id.String())
		return err
	})
}
