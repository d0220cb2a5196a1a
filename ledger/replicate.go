package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/commons-energy/commons/share"
)

// MaxRange is the most messages one Range call returns.
const MaxRange = 10_000

// Feed returns an author's stored head and whether a fork froze its feed.
// The zero Head means nothing is stored.
func (l *Ledger) Feed(ctx context.Context, author share.HouseholdID) (share.Feed, error) {
	f, err := l.loadFeed(ctx, l.db, author)
	if err != nil {
		return f, fmt.Errorf("read feed of %s: %w", author.Short(), err)
	}
	return f, nil
}

// Head returns the latest stored message of author's chain (the zero Head
// when none). This household signs its next message after it.
func (l *Ledger) Head(ctx context.Context, author share.HouseholdID) (share.Head, error) {
	f, err := l.Feed(ctx, author)
	return f.Head, err
}

// Heads returns the head of every author with stored messages: the
// "what do you have" of replication. It reads the heads table (one row per
// author), which a trigger keeps in the same transaction as every append.
func (l *Ledger) Heads(ctx context.Context) (map[share.HouseholdID]share.Head, error) {
	hs, _, _, err := l.HeadsSince(ctx, 0)
	if err != nil {
		return nil, err
	}
	out := make(map[share.HouseholdID]share.Head, len(hs))
	for _, h := range hs {
		out[h.Author] = h.Head
	}
	return out, nil
}

// AuthorHead is one author's head with its change cursor.
type AuthorHead struct {
	Author share.HouseholdID
	share.Head
	Changed uint64 // the heads table's change counter when this head was set
}

// HeadsSince returns the heads that moved after cursor since, in the
// order they moved, and the cursor to ask with next time (the largest
// change counter returned, or since when nothing moved). Cursors are
// local to this ledger file. since 0, or a cursor this ledger never gave
// (larger than any it holds, as after the file was replaced), gets every
// head, with full true.
func (l *Ledger) HeadsSince(ctx context.Context, since uint64) (heads []AuthorHead, cursor uint64, full bool, err error) {
	if since > 0 {
		var top int64
		if err := l.db.QueryRowContext(ctx, `SELECT coalesce(max(changed), 0) FROM heads`).Scan(&top); err != nil {
			return nil, 0, false, fmt.Errorf("read feed heads: %w", err)
		}
		if since > uint64(top) {
			since = 0
		}
	}
	full = since == 0
	rows, err := l.db.QueryContext(ctx, `SELECT author, seq, id, created_ms, changed FROM heads WHERE changed > ? ORDER BY changed`, int64(min(since, 1<<62)))
	if err != nil {
		return nil, 0, false, fmt.Errorf("read feed heads: %w", err)
	}
	defer rows.Close()
	cursor = since
	for rows.Next() {
		var (
			author, id            string
			seq, created, changed int64
		)
		if err := rows.Scan(&author, &seq, &id, &created, &changed); err != nil {
			return nil, 0, false, fmt.Errorf("read feed heads: %w", err)
		}
		a, err := share.ParseHouseholdID(author)
		if err != nil {
			return nil, 0, false, fmt.Errorf("read feed heads: stored author: %w", err)
		}
		mid, err := share.ParseID(id)
		if err != nil {
			return nil, 0, false, fmt.Errorf("read feed heads: stored id: %w", err)
		}
		heads = append(heads, AuthorHead{Author: a, Head: share.Head{Seq: uint64(seq), ID: mid, CreatedMs: created}, Changed: uint64(changed)})
		cursor = max(cursor, uint64(changed))
	}
	if err := rows.Err(); err != nil {
		return nil, 0, false, fmt.Errorf("read feed heads: %w", err)
	}
	return heads, cursor, full, nil
}

// Range returns the raw messages of author's chain with seq >= fromSeq in
// seq order, at most limit (capped at MaxRange; <= 0 means MaxRange).
func (l *Ledger) Range(ctx context.Context, author share.HouseholdID, fromSeq uint64, limit int) ([][]byte, error) {
	if limit <= 0 || limit > MaxRange {
		limit = MaxRange
	}
	rows, err := l.db.QueryContext(ctx, `SELECT raw FROM messages WHERE author = ? AND seq >= ? ORDER BY seq LIMIT ?`,
		author.String(), int64(min(fromSeq, 1<<62)), limit)
	if err != nil {
		return nil, fmt.Errorf("read feed of %s: %w", author.Short(), err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("read feed of %s: %w", author.Short(), err)
		}
		out = append(out, raw)
	}
	return out, rows.Err()
}

// MessagesSince returns up to limit stored chain messages (raw) in the
// order this ledger stored them, starting after the message with id after
// (the zero id: from the first). limit <= 0 or above MaxRange means
// MaxRange. An unknown after id wraps ErrNotFound. Use it as a cursor:
// pass the last returned message's id to continue.
func (l *Ledger) MessagesSince(ctx context.Context, after share.ID, limit int) ([][]byte, error) {
	if limit <= 0 || limit > MaxRange {
		limit = MaxRange
	}
	var from int64
	if !after.IsZero() {
		err := l.db.QueryRowContext(ctx, `SELECT rowid FROM messages WHERE id = ?`, after.String()).Scan(&from)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("message %s: %w: it is not stored here", after.Short(), ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("read messages since %s: %w", after.Short(), err)
		}
	}
	rows, err := l.db.QueryContext(ctx, `SELECT raw FROM messages WHERE rowid > ? ORDER BY rowid LIMIT ?`, from, limit)
	if err != nil {
		return nil, fmt.Errorf("read messages: %w", err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("read messages: %w", err)
		}
		out = append(out, raw)
	}
	return out, rows.Err()
}

// MessagesOfKinds returns the stored chain messages of the given kinds in
// storage order, parsed from their verbatim bytes (already verified when
// stored; Verify re-checks them).
func (l *Ledger) MessagesOfKinds(ctx context.Context, kinds ...share.Kind) ([]*share.Message, error) {
	if len(kinds) == 0 {
		return nil, nil
	}
	in, args := kindIn(kinds...)
	ms, err := loadMessages(ctx, l.db, `SELECT raw FROM messages WHERE `+in+` ORDER BY rowid`, args...)
	if err != nil {
		return nil, fmt.Errorf("read messages: %w", err)
	}
	return ms, nil
}

// Message returns the raw stored message with this id, or an error
// wrapping ErrNotFound.
func (l *Ledger) Message(ctx context.Context, id share.ID) ([]byte, error) {
	var raw []byte
	err := l.db.QueryRowContext(ctx, `SELECT raw FROM messages WHERE id = ?`, id.String()).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("message %s: %w", id.Short(), ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read message %s: %w", id.Short(), err)
	}
	return raw, nil
}

// FindMessage resolves a full message id or a unique prefix of at least 4
// hex digits. It wraps ErrNotFound or ErrAmbiguous.
func (l *Ledger) FindMessage(ctx context.Context, prefix string) (share.ID, error) {
	p := strings.ToLower(strings.TrimSpace(prefix))
	if len(p) < 4 || len(p) > 64 || strings.Trim(p, "0123456789abcdef") != "" {
		return share.ID{}, fmt.Errorf("message id %q: want 4 to 64 hex digits: %w", prefix, ErrNotFound)
	}
	rows, err := l.db.QueryContext(ctx, `SELECT id FROM messages WHERE id >= ? AND id < ? ORDER BY id LIMIT 2`, p, p+"g")
	if err != nil {
		return share.ID{}, fmt.Errorf("find message %s: %w", p, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return share.ID{}, fmt.Errorf("find message %s: %w", p, err)
		}
		ids = append(ids, s)
	}
	if err := rows.Err(); err != nil {
		return share.ID{}, fmt.Errorf("find message %s: %w", p, err)
	}
	switch len(ids) {
	case 0:
		return share.ID{}, fmt.Errorf("message %s: %w", p, ErrNotFound)
	case 1:
		return share.ParseID(ids[0])
	}
	return share.ID{}, fmt.Errorf("message id %s matches several messages: %w: give more digits", p, ErrAmbiguous)
}

// Count returns the number of stored chain messages.
func (l *Ledger) Count(ctx context.Context) (int64, error) {
	var n int64
	err := l.db.QueryRowContext(ctx, `SELECT count(*) FROM messages`).Scan(&n)
	return n, err
}

// Fork is a stored fork proof.
type Fork struct {
	Author   share.HouseholdID
	Seq      uint64
	StoredID share.ID // the message this ledger holds at Seq
	Other    []byte   // the conflicting message, verbatim
	Reason   string
	Detected int64 // Unix ms
}

// Forks returns the stored fork proofs, oldest first.
func (l *Ledger) Forks(ctx context.Context) ([]Fork, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT author, seq, stored_id, other_raw, reason, detected_ms FROM forks ORDER BY detected_ms, author, seq`)
	if err != nil {
		return nil, fmt.Errorf("read forks: %w", err)
	}
	defer rows.Close()
	var out []Fork
	for rows.Next() {
		var (
			f           Fork
			author, sid string
			seq         int64
		)
		if err := rows.Scan(&author, &seq, &sid, &f.Other, &f.Reason, &f.Detected); err != nil {
			return nil, fmt.Errorf("read forks: %w", err)
		}
		f.Seq = uint64(seq)
		if f.Author, err = share.ParseHouseholdID(author); err != nil {
			return nil, fmt.Errorf("read forks: %w", err)
		}
		if f.StoredID, err = share.ParseID(sid); err != nil {
			return nil, fmt.Errorf("read forks: %w", err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// Statuses returns the latest status message of every author that sent
// one, parsed from the stored bytes, including those PutStatus holds in
// memory.
func (l *Ledger) Statuses(ctx context.Context) (map[share.HouseholdID]*share.Message, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT raw FROM statuses`)
	if err != nil {
		return nil, fmt.Errorf("read statuses: %w", err)
	}
	defer rows.Close()
	out := map[share.HouseholdID]*share.Message{}
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("read statuses: %w", err)
		}
		m, err := share.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("read statuses: stored status: %w", err)
		}
		out[m.Author] = m
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read statuses: %w", err)
	}
	for author, p := range l.pendingStatuses() {
		if share.Newer(out[author], p.m) {
			out[author] = p.m
		}
	}
	return out, nil
}

// Ephemerals returns the kept ephemeral messages of kinds this version
// does not interpret (the latest per author and kind), verbatim, ordered
// by author and kind: what this household relays for them
// (docs/PROTOCOL.md §6.5, §13).
func (l *Ledger) Ephemerals(ctx context.Context) ([][]byte, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT raw FROM ephemerals ORDER BY author, kind`)
	if err != nil {
		return nil, fmt.Errorf("read ephemeral messages: %w", err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("read ephemeral messages: %w", err)
		}
		out = append(out, raw)
	}
	return out, rows.Err()
}

// kindIn returns the condition "kind IN (?, …)" with one placeholder per
// kind, and the kinds as its arguments, so the two cannot disagree (the
// driver ignores arguments beyond the placeholders). kinds must not be
// empty.
func kindIn(kinds ...share.Kind) (string, []any) {
	args := make([]any, len(kinds))
	for i, k := range kinds {
		args[i] = int64(k)
	}
	return "kind IN (?" + strings.Repeat(", ?", len(kinds)-1) + ")", args
}
