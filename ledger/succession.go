package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/commons-energy/commons/share"
)

// Succession is one replacement of a household key (docs/PROTOCOL.md
// §1.1): Old's messages up to AtSeq stay history, later ones are refused,
// and New continues the household.
type Succession struct {
	Old      share.HouseholdID
	New      share.HouseholdID
	Via      string   // "rotate" (a handover signed by both keys) or "recover" (signed by the recovery key)
	AtSeq    uint64   // the old key's last valid seq
	Handover share.ID // the handover message in Old's feed (rotate only)
	Start    share.ID // seq 1 of New's feed; zero until stored
}

// Successions lists every key replacement this ledger holds.
func (l *Ledger) Successions(ctx context.Context) ([]Succession, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT old, new, via, at_seq, handover, start FROM successions ORDER BY detected_ms, old`)
	if err != nil {
		return nil, fmt.Errorf("read successions: %w", err)
	}
	defer rows.Close()
	var out []Succession
	for rows.Next() {
		var (
			s                        Succession
			old, nw, handover, start string
			atSeq                    int64
		)
		if err := rows.Scan(&old, &nw, &s.Via, &atSeq, &handover, &start); err != nil {
			return nil, fmt.Errorf("read successions: %w", err)
		}
		s.AtSeq = uint64(atSeq)
		s.Old, _ = share.ParseHouseholdID(old)
		s.New, _ = share.ParseHouseholdID(nw)
		if handover != "" {
			s.Handover, _ = share.ParseID(handover)
		}
		if start != "" {
			s.Start, _ = share.ParseID(start)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// RecoveryKey returns the recovery key announced in author's feed at a
// seq <= upTo (0: anywhere), and false when none is.
func (l *Ledger) RecoveryKey(ctx context.Context, author share.HouseholdID, upTo uint64) (share.HouseholdID, bool, error) {
	return recoveryKey(ctx, l.db, author, upTo)
}

func recoveryKey(ctx context.Context, q querier, author share.HouseholdID, upTo uint64) (share.HouseholdID, bool, error) {
	if upTo == 0 {
		upTo = 1<<63 - 1
	}
	var raw []byte
	err := q.QueryRowContext(ctx, `SELECT raw FROM messages WHERE author = ? AND kind = ? AND seq <= ? ORDER BY seq LIMIT 1`,
		author.String(), int64(share.KindRecoveryKey), int64(upTo)).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return share.HouseholdID{}, false, nil
	}
	if err != nil {
		return share.HouseholdID{}, false, err
	}
	m, err := share.Parse(raw)
	if err != nil {
		return share.HouseholdID{}, false, err
	}
	c, err := m.Decode()
	if err != nil {
		return share.HouseholdID{}, false, err
	}
	rk, ok := c.(*share.RecoveryKey)
	if !ok {
		return share.HouseholdID{}, false, fmt.Errorf("message %s: not a recovery key", m.ID().Short())
	}
	return rk.Key, true, nil
}

// succession reads the row of old, if any.
func succession(ctx context.Context, q querier, old share.HouseholdID) (s Succession, ok bool, err error) {
	var (
		nw, handover, start string
		atSeq               int64
	)
	err = q.QueryRowContext(ctx, `SELECT new, via, at_seq, handover, start FROM successions WHERE old = ?`, old.String()).
		Scan(&nw, &s.Via, &atSeq, &handover, &start)
	if errors.Is(err, sql.ErrNoRows) {
		return s, false, nil
	}
	if err != nil {
		return s, false, err
	}
	s.Old, s.AtSeq = old, uint64(atSeq)
	if s.New, err = share.ParseHouseholdID(nw); err != nil {
		return s, false, fmt.Errorf("stored successor of %s: %w", old.Short(), err)
	}
	if handover != "" {
		s.Handover, _ = share.ParseID(handover)
	}
	if start != "" {
		s.Start, _ = share.ParseID(start)
	}
	return s, true, nil
}

// isSuccessionStart reports whether m is the first message of a new key
// (kind successor or recover): such a message may come from a key this
// ledger does not know yet.
func isSuccessionStart(m *share.Message) bool { return m.StartsSuccession() }

// checkSuccessionKinds applies the stateful rules of the succession kinds
// to m, which passed share.Feed.Check, before it is stored. A nil error
// means store it, then call applySuccession.
func (l *Ledger) checkSuccessionKinds(ctx context.Context, tx *sql.Tx, m *share.Message) error {
	switch m.Kind {
	case share.KindRecoveryKey:
		var seq int64
		err := tx.QueryRowContext(ctx, `SELECT seq FROM messages WHERE author = ? AND kind = ? LIMIT 1`, m.Author.String(), int64(share.KindRecoveryKey)).Scan(&seq)
		if err == nil {
			return fmt.Errorf("message %s: %s announced its recovery key at seq %d already; a feed has one: %w", m.ID().Short(), m.Author.Short(), seq, share.ErrBadHandover)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
	case share.KindSuccessor, share.KindRecover:
		return l.checkStart(ctx, tx, m)
	}
	return nil
}

// checkStart checks the first message of a new key against the old key's
// stored feed.
func (l *Ledger) checkStart(ctx context.Context, tx *sql.Tx, m *share.Message) error {
	c, err := m.Decode()
	if err != nil {
		return err
	}
	var old share.HouseholdID
	switch c := c.(type) {
	case *share.Successor:
		old = c.Old
	case *share.Recover:
		old = c.Old
	}
	known, err := l.isKnown(ctx, tx, old)
	if err != nil {
		return err
	}
	if !known {
		return fmt.Errorf("message %s: %s succeeds %s, which is not a neighbour of this household: %w", m.ID().Short(), m.Author.Short(), old.Short(), ErrUnknownAuthor)
	}
	row, has, err := succession(ctx, tx, old)
	if err != nil {
		return err
	}
	switch c := c.(type) {
	case *share.Successor:
		if !has {
			return fmt.Errorf("message %s: %s names handover %s of %s, which this ledger does not hold: fetch the old key's feed first: %w",
				m.ID().Short(), m.Author.Short(), c.Handover.Short(), old.Short(), share.ErrSeqGap)
		}
		if row.Via != "rotate" || row.Handover != c.Handover || row.New != m.Author {
			return fmt.Errorf("message %s: %s claims to succeed %s by handover %s, but %s was replaced by %s (%s at seq %d): %w",
				m.ID().Short(), m.Author.Short(), old.Short(), c.Handover.Short(), old.Short(), row.New.Short(), row.Via, row.AtSeq, share.ErrRotated)
		}
	case *share.Recover:
		if has && row.Via == "recover" {
			return fmt.Errorf("message %s: %s was recovered already (by %s at seq %d): %w", m.ID().Short(), old.Short(), row.New.Short(), row.AtSeq, share.ErrBadHandover)
		}
		if has && row.AtSeq <= uint64(c.AtSeq) {
			return fmt.Errorf("message %s: %s handed its key over to %s at seq %d, before the recovery point %d: recover the key it was handed to: %w",
				m.ID().Short(), old.Short(), row.New.Short(), row.AtSeq, c.AtSeq, share.ErrRotated)
		}
		var at string
		err := tx.QueryRowContext(ctx, `SELECT id FROM messages WHERE author = ? AND seq = ?`, old.String(), c.AtSeq).Scan(&at)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("message %s: recovery of %s keeps its feed up to seq %d, which this ledger does not hold: fetch the old key's feed first: %w",
				m.ID().Short(), old.Short(), c.AtSeq, share.ErrSeqGap)
		}
		if err != nil {
			return err
		}
		if at != c.AtID.String() {
			return fmt.Errorf("message %s: recovery of %s keeps message %s at seq %d, but this ledger holds %s there (a fork below the recovery point): the household must recover from an earlier seq: %w",
				m.ID().Short(), old.Short(), c.AtID.Short(), c.AtSeq, shortText(at), share.ErrBadHandover)
		}
		rk, ok, err := recoveryKey(ctx, tx, old, uint64(c.AtSeq))
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("message %s: %s announced no recovery key up to seq %d: it cannot be recovered, only rotated: %w", m.ID().Short(), old.Short(), c.AtSeq, share.ErrBadHandover)
		}
		if rk != c.Recovery {
			return fmt.Errorf("message %s: recovery of %s is signed by %s, but its recovery key is %s: %w", m.ID().Short(), old.Short(), c.Recovery.Short(), rk.Short(), share.ErrBadHandover)
		}
	}
	return nil
}

// applySuccession records what the stored message m changes: a handover
// closes its author's key; a successor or recover message starts the new
// key, which neighbours follow, and a recovery drops the old key's
// messages after the recovery point (and the feeds of a key it
// supersedes) into the superseded table. It returns the authors whose
// cached feed state is stale.
func (l *Ledger) applySuccession(ctx context.Context, tx *sql.Tx, m *share.Message, now int64) ([]share.HouseholdID, error) {
	c, err := m.Decode()
	if err != nil {
		return nil, err
	}
	switch c := c.(type) {
	case *share.Handover:
		_, err := tx.ExecContext(ctx, `INSERT INTO successions (old, new, via, at_seq, handover, start, detected_ms) VALUES (?, ?, 'rotate', ?, ?, '', ?)`,
			m.Author.String(), c.New.String(), int64(m.Seq), m.ID().String(), now)
		if err != nil {
			return nil, err
		}
		// Both keys signed the handover, so the neighbour entry moves to
		// the new key now: its feed (the successor first) is then pulled
		// and read like any neighbour's, over links that found the old
		// key's handover (docs/PROTOCOL.md §1.1).
		return []share.HouseholdID{m.Author}, l.follow(ctx, tx, m.Author, c.New, now)
	case *share.Successor:
		if _, err := tx.ExecContext(ctx, `UPDATE successions SET start = ? WHERE old = ?`, m.ID().String(), c.Old.String()); err != nil {
			return nil, err
		}
		return nil, l.follow(ctx, tx, c.Old, m.Author, now)
	case *share.Recover:
		stale := []share.HouseholdID{c.Old}
		holder, err := currentAlong(ctx, tx, c.Old)
		if err != nil {
			return nil, err
		}
		row, has, err := succession(ctx, tx, c.Old)
		if err != nil {
			return nil, err
		}
		// The neighbour entry moves to the new key first: the keys
		// dropped below may hold it.
		if err := l.follow(ctx, tx, holder, m.Author, now); err != nil {
			return nil, err
		}
		if has {
			// A rotation after the recovery point (the thief's): the
			// keys it led to are no longer the household's.
			gone, err := l.dropChain(ctx, tx, row.New, now)
			if err != nil {
				return nil, err
			}
			stale = append(stale, gone...)
			if _, err := tx.ExecContext(ctx, `DELETE FROM successions WHERE old = ?`, c.Old.String()); err != nil {
				return nil, err
			}
		}
		if err := supersede(ctx, tx, c.Old, uint64(c.AtSeq), "after the recovery point of "+c.Old.String(), now); err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO successions (old, new, via, at_seq, handover, start, detected_ms) VALUES (?, ?, 'recover', ?, '', ?, ?)`,
			c.Old.String(), m.Author.String(), c.AtSeq, m.ID().String(), now); err != nil {
			return nil, err
		}
		return stale, nil
	}
	return nil, nil
}

// follow moves the neighbour entry of old (name, addresses, invite) to
// its successor, so that the household stays one neighbour across keys;
// old's row is marked removed and its stored history stays. Nothing
// happens when old is not a current neighbour (this household's own key,
// or one already followed).
func (l *Ledger) follow(ctx context.Context, tx *sql.Tx, old, next share.HouseholdID, now int64) error {
	var name, addrs, invite string
	err := tx.QueryRowContext(ctx, `SELECT name, addresses, invite FROM neighbours WHERE id = ? AND removed_ms IS NULL`, old.String()).Scan(&name, &addrs, &invite)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE neighbours SET removed_ms = ? WHERE id = ?`, now, old.String()); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO neighbours (id, name, addresses, invite, added_ms) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET name = excluded.name, addresses = excluded.addresses, invite = excluded.invite, removed_ms = NULL`,
		next.String(), name, addrs, invite, now); err != nil {
		return err
	}
	l.log.Info("neighbour follows its new key", "name", name, "old", old.String(), "new", next.String())
	return nil
}

// dropChain removes the key k and every key it handed over to from the
// household: their messages go to the superseded table and their
// succession rows and heads are deleted. A recovery does this to the keys
// a stolen key rotated to.
func (l *Ledger) dropChain(ctx context.Context, tx *sql.Tx, k share.HouseholdID, now int64) ([]share.HouseholdID, error) {
	var gone []share.HouseholdID
	for range maxChain {
		gone = append(gone, k)
		if err := supersede(ctx, tx, k, 0, "a key superseded by the recovery of the key it succeeded", now); err != nil {
			return nil, err
		}
		row, has, err := succession(ctx, tx, k)
		if err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM successions WHERE old = ?`, k.String()); err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE neighbours SET removed_ms = ? WHERE id = ? AND removed_ms IS NULL`, now, k.String()); err != nil {
			return nil, err
		}
		if !has {
			break
		}
		k = row.New
	}
	return gone, nil
}

// successionSchema is the schema version that adds the successions and
// superseded tables.
const successionSchema = 8

// maxChain bounds the walks along successions.
const maxChain = 64

// currentAlong returns the first key, from k along its successions, that
// is a current neighbour: the key whose neighbour entry stands for the
// household now. It returns k when there is none.
func currentAlong(ctx context.Context, tx *sql.Tx, k share.HouseholdID) (share.HouseholdID, error) {
	start := k
	for range maxChain {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM neighbours WHERE id = ? AND removed_ms IS NULL`, k.String()).Scan(&one)
		if err == nil {
			return k, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return k, err
		}
		row, has, err := succession(ctx, tx, k)
		if err != nil {
			return k, err
		}
		if !has {
			break
		}
		k = row.New
	}
	return start, nil
}

// supersede moves author's chain messages after seq keep out of the chain
// into the superseded table (kept as evidence, not history), and sets
// the author's head back to seq keep (deleting it when keep is 0).
func supersede(ctx context.Context, tx *sql.Tx, author share.HouseholdID, keep uint64, reason string, now int64) error {
	a := author.String()
	if _, err := tx.ExecContext(ctx, `INSERT INTO superseded (id, author, seq, raw, reason, superseded_ms)
SELECT id, author, seq, raw, ?, ? FROM messages WHERE author = ? AND seq > ? ON CONFLICT DO NOTHING`, reason, now, a, int64(keep)); err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM messages WHERE author = ? AND seq > ?`, a, int64(keep))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	if keep == 0 {
		_, err = tx.ExecContext(ctx, `DELETE FROM heads WHERE author = ?`, a)
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE heads SET (seq, id, created_ms, changed) =
	(SELECT m.seq, m.id, m.created_ms, (SELECT max(changed) + 1 FROM heads) FROM messages m WHERE m.author = ? AND m.seq = ?)
WHERE author = ?`, a, int64(keep), a)
	return err
}

// verifySuccessions checks each key replacement against the stored
// messages (docs/PROTOCOL.md §1.1): the handover or recover message is
// there, says what the row says and is signed as it must be, and the old
// key has nothing stored after its last seq. Every stored handover,
// successor and recover message must be backed by a row.
func (l *Ledger) verifySuccessions(ctx context.Context, tx querier, rep *Report) error {
	if !l.succ {
		return nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT old, new, via, at_seq, handover, start FROM successions ORDER BY old`)
	if err != nil {
		return err
	}
	type row struct {
		old, nw, via, handover, start string
		atSeq                         int64
	}
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.old, &r.nw, &r.via, &r.atSeq, &r.handover, &r.start); err != nil {
			rows.Close()
			return err
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	open := func(id string) (*share.Message, share.Content, error) {
		var raw []byte
		if err := tx.QueryRowContext(ctx, `SELECT raw FROM messages WHERE id = ?`, id).Scan(&raw); err != nil {
			return nil, nil, err
		}
		m, err := share.Open(raw, l.community)
		if err != nil {
			return nil, nil, err
		}
		c, err := m.Decode()
		return m, c, err
	}
	backed := map[string]bool{}
	for _, r := range all {
		bad := func(id string, format string, args ...any) {
			rep.add(Problem{ID: id, Author: r.old, Seq: r.atSeq, Reason: fmt.Sprintf("key %s replaced by %s (%s at seq %d): ", shortText(r.old), shortText(r.nw), r.via, r.atSeq) + fmt.Sprintf(format, args...)})
		}
		var later int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM messages WHERE author = ? AND seq > ?`, r.old, r.atSeq).Scan(&later); err != nil {
			return err
		}
		if later > 0 {
			bad(r.old, "the ledger holds its seq %d, after its last valid seq", later)
		}
		switch r.via {
		case "rotate":
			backed[r.handover] = true
			m, c, err := open(r.handover)
			if err != nil {
				bad(r.handover, "handover %s: %v", shortText(r.handover), err)
				break
			}
			h, ok := c.(*share.Handover)
			if !ok || m.Author.String() != r.old || int64(m.Seq) != r.atSeq || h.New.String() != r.nw {
				bad(r.handover, "handover %s does not hand %s over to %s at seq %d", shortText(r.handover), shortText(r.old), shortText(r.nw), r.atSeq)
			}
			if r.start == "" {
				break
			}
			backed[r.start] = true
			m, c, err = open(r.start)
			if err != nil {
				bad(r.start, "successor message %s: %v", shortText(r.start), err)
				break
			}
			s, ok := c.(*share.Successor)
			if !ok || m.Author.String() != r.nw || s.Old.String() != r.old || s.Handover.String() != r.handover {
				bad(r.start, "message %s does not start %s after handover %s", shortText(r.start), shortText(r.nw), shortText(r.handover))
			}
		case "recover":
			backed[r.start] = true
			m, c, err := open(r.start)
			if err != nil {
				bad(r.start, "recover message %s: %v", shortText(r.start), err)
				break
			}
			rc, ok := c.(*share.Recover)
			if !ok || m.Author.String() != r.nw || rc.Old.String() != r.old || rc.AtSeq != r.atSeq {
				bad(r.start, "message %s does not recover %s at seq %d", shortText(r.start), shortText(r.old), r.atSeq)
				break
			}
			var at string
			if err := tx.QueryRowContext(ctx, `SELECT id FROM messages WHERE author = ? AND seq = ?`, r.old, r.atSeq).Scan(&at); err != nil || at != rc.AtID.String() {
				bad(r.start, "the recovery keeps message %s at seq %d, the ledger holds %s", rc.AtID.Short(), r.atSeq, shortText(at))
			}
			old, _ := share.ParseHouseholdID(r.old)
			rk, has, err := recoveryKey(ctx, tx, old, uint64(r.atSeq))
			if err != nil || !has || rk != rc.Recovery {
				bad(r.start, "the recovery is signed by %s, which is not the recovery key announced by %s", rc.Recovery.Short(), shortText(r.old))
			}
		default:
			bad(r.old, "unknown succession %q", r.via)
		}
	}
	// Handover and start messages that no row records.
	in, args := kindIn(share.KindHandover, share.KindSuccessor, share.KindRecover)
	mrows, err := tx.QueryContext(ctx, `SELECT id, author, seq FROM messages WHERE `+in+` ORDER BY author, seq`, args...)
	if err != nil {
		return err
	}
	defer mrows.Close()
	for mrows.Next() {
		var (
			id, author string
			seq        int64
		)
		if err := mrows.Scan(&id, &author, &seq); err != nil {
			return err
		}
		if !backed[id] {
			rep.add(Problem{ID: id, Author: author, Seq: seq, Reason: "succession message that the ledger's succession records do not hold: the key replacement was not applied"})
		}
	}
	return mrows.Err()
}

// FirstFork returns the lowest seq at which author's stored fork proofs
// show two messages (0 when there is none).
func (l *Ledger) FirstFork(ctx context.Context, author share.HouseholdID) (uint64, error) {
	var seq sql.NullInt64
	if err := l.db.QueryRowContext(ctx, `SELECT min(seq) FROM forks WHERE author = ?`, author.String()).Scan(&seq); err != nil {
		return 0, fmt.Errorf("read forks of %s: %w", author.Short(), err)
	}
	return uint64(seq.Int64), nil
}

// HeadAt returns author's stored chain message at seq as a Head, and false
// when there is none.
func (l *Ledger) HeadAt(ctx context.Context, author share.HouseholdID, seq uint64) (share.Head, bool, error) {
	var (
		id      string
		created int64
	)
	err := l.db.QueryRowContext(ctx, `SELECT id, created_ms FROM messages WHERE author = ? AND seq = ?`, author.String(), int64(seq)).Scan(&id, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return share.Head{}, false, nil
	}
	if err != nil {
		return share.Head{}, false, fmt.Errorf("read seq %d of %s: %w", seq, author.Short(), err)
	}
	mid, err := share.ParseID(id)
	if err != nil {
		return share.Head{}, false, err
	}
	return share.Head{Seq: seq, ID: mid, CreatedMs: created}, true, nil
}

// SuccessionOf returns the replacement of key old, if this ledger holds
// one.
func (l *Ledger) SuccessionOf(ctx context.Context, old share.HouseholdID) (Succession, bool, error) {
	if !l.succ {
		return Succession{}, false, nil
	}
	return succession(ctx, l.db, old)
}

// Predecessors returns the keys k replaced, directly or through earlier
// replacements, the oldest first.
func (l *Ledger) Predecessors(ctx context.Context, k share.HouseholdID) ([]share.HouseholdID, error) {
	if !l.succ {
		return nil, nil
	}
	var out []share.HouseholdID
	for range maxChain {
		var old string
		err := l.db.QueryRowContext(ctx, `SELECT old FROM successions WHERE new = ?`, k.String()).Scan(&old)
		if errors.Is(err, sql.ErrNoRows) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read predecessors of %s: %w", k.Short(), err)
		}
		if k, err = share.ParseHouseholdID(old); err != nil {
			return nil, err
		}
		out = append([]share.HouseholdID{k}, out...)
	}
	return out, nil
}
