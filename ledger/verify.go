package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"strings"
	"sync"

	"github.com/commons-energy/commons/share"
)

// MaxProblems is the most problems a Report lists one by one.
const MaxProblems = 1000

// Report is the result of Verify. Its JSON form is the `ledger verify
// --json` contract.
type Report struct {
	OK       bool  `json:"ok"`
	Messages int64 `json:"messages"` // chain messages checked
	Statuses int64 `json:"statuses"` // kept statuses checked
	// Ephemerals counts the kept ephemeral messages of kinds this version
	// does not interpret that were checked.
	Ephemerals int64 `json:"ephemerals"`
	Forks      int64 `json:"forks"` // fork proofs checked; each forked author is also a "frozen: fork at seq N" problem
	// Disputes counts disputed pledges (a settle that does not recompute
	// from its evidence, or the parties settling differently); each is
	// also a "disputed: …" problem.
	Disputes int64     `json:"disputes,omitempty"`
	Problems []Problem `json:"problems"` // empty, never null, when OK
	Omitted  int64     `json:"omitted,omitempty"`
}

// Problem names one thing wrong. ID is the message id as stored (or
// "database" for the file itself).
type Problem struct {
	ID     string `json:"id"`
	Author string `json:"author,omitempty"`
	Seq    int64  `json:"seq,omitempty"`
	Reason string `json:"reason"`
}

func (r *Report) add(p Problem) {
	r.OK = false
	if len(r.Problems) >= MaxProblems {
		r.Omitted++
		return
	}
	r.Problems = append(r.Problems, p)
}

// Verify re-checks everything stored: each chain message's bytes (parse,
// community, signature, content hash, content rules), that its indexed
// columns agree with its signed header, and the continuity of each
// author's chain (seq 1, 2, 3 … each naming the previous id); the kept
// statuses, other ephemeral messages and fork proofs the same way; and
// SQLite's PRAGMA integrity_check. A feed a fork froze is a problem too
// ("frozen: fork at seq N"), and so is a disputed pledge ("disputed: …"):
// the ledger is sound, but not OK until people act. Slot ranges past the end of protocol time (share.Manifest.CheckSlots)
// are not problems: an older version may have stored them, and the reads
// show them. It reads a consistent snapshot and writes nothing. The
// error is non-nil only when the check itself could not run.
func (l *Ledger) Verify(ctx context.Context) (*Report, error) {
	rep := &Report{OK: true, Problems: []Problem{}}
	// One read-only (deferred) transaction: a snapshot, even while the
	// owner appends, that takes no write lock.
	tx, err := l.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", l.path, err)
	}
	defer tx.Rollback()

	rows, err := tx.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		rep.add(Problem{ID: "database", Reason: "integrity check could not run: " + err.Error()})
	} else {
		for rows.Next() {
			var line string
			if rows.Scan(&line) == nil && line != "ok" {
				rep.add(Problem{ID: "database", Reason: "sqlite integrity_check: " + line})
			}
		}
		if err := rows.Err(); err != nil {
			rep.add(Problem{ID: "database", Reason: "integrity check: " + err.Error()})
		}
		rows.Close()
	}

	// Signatures are checked on all cores; the reader keeps chain order.
	type job struct {
		m   *share.Message
		row Problem
	}
	jobs := make(chan []job, 4)
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		bads []Problem
	)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for batch := range jobs {
				for _, j := range batch {
					err := j.m.Verify()
					if err == nil {
						err = j.m.CheckContent()
					}
					if err != nil {
						p := j.row
						p.Reason = err.Error()
						mu.Lock()
						bads = append(bads, p)
						mu.Unlock()
					}
				}
			}
		}()
	}
	batch := make([]job, 0, 256)
	flush := func() {
		if len(batch) > 0 {
			jobs <- batch
			batch = make([]job, 0, 256)
		}
	}
	readErr := l.verifyChains(ctx, tx, rep, func(m *share.Message, p Problem) {
		batch = append(batch, job{m, p})
		if len(batch) == cap(batch) {
			flush()
		}
	})
	flush()
	close(jobs)
	wg.Wait()
	if readErr != nil {
		return nil, fmt.Errorf("verify %s: %w", l.path, readErr)
	}
	for _, p := range bads {
		rep.add(p)
	}

	if err := l.verifyExtras(ctx, tx, rep); err != nil {
		return nil, fmt.Errorf("verify %s: %w", l.path, err)
	}
	tx.Rollback()
	if err := l.verifyDisputes(ctx, rep); err != nil {
		return nil, fmt.Errorf("verify %s: %w", l.path, err)
	}
	return rep, nil
}

// verifyDisputes reports each disputed pledge (docs/PROTOCOL.md §10.4):
// the messages are sound, but a settle does not hold or the parties
// disagree, so people must act (the party with the wrong figures settles
// again from the evidence). One problem per pledge, with its reasons.
func (l *Ledger) verifyDisputes(ctx context.Context, rep *Report) error {
	ps, err := l.foldPledges(ctx, "")
	switch {
	case err != nil && ctx.Err() != nil:
		return err
	case err != nil && !rep.OK:
		return nil // a stored message is broken: already a problem, and the fold needs them all
	case err != nil:
		rep.add(Problem{ID: "database", Reason: "pledges could not be folded to look for disputes: " + err.Error()})
		return nil
	}
	for _, p := range ps {
		if p.State != share.StateDisputed {
			continue
		}
		rep.Disputes++
		reasons := make([]string, len(p.Disputes))
		for i, e := range p.Disputes {
			reasons[i] = e.Error()
		}
		rep.add(Problem{ID: p.ID.String(), Author: p.From.String(), Reason: "disputed: " + strings.Join(reasons, "; ")})
	}
	return nil
}

// verifyChains walks messages in (author, seq) order, checking structure,
// columns and continuity, and hands each parsed message to sig for the
// signature and content checks.
func (l *Ledger) verifyChains(ctx context.Context, tx querier, rep *Report, sig func(*share.Message, Problem)) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, author, seq, prev, kind, created_ms, content, raw FROM messages ORDER BY author, seq`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var (
		lastAuthor string
		lastSeq    int64
		lastID     string
	)
	for rows.Next() {
		var (
			id, author, prev, content string
			seq, kind, created        int64
			raw                       []byte
		)
		if err := rows.Scan(&id, &author, &seq, &prev, &kind, &created, &content, &raw); err != nil {
			return err
		}
		rep.Messages++
		p := Problem{ID: id, Author: author, Seq: seq}
		problem := func(format string, args ...any) {
			q := p
			q.Reason = fmt.Sprintf(format, args...)
			rep.add(q)
		}
		// Continuity, from the columns.
		if author != lastAuthor {
			if seq != 1 {
				problem("chain of %s starts at seq %d, not 1: messages 1..%d are missing", shortText(author), seq, seq-1)
			}
		} else if seq != lastSeq+1 {
			problem("chain of %s jumps from seq %d to %d: messages are missing", shortText(author), lastSeq, seq)
		} else if prev != lastID {
			problem("seq %d names prev %s but the stored seq %d is %s: chain broken", seq, shortText(prev), lastSeq, shortText(lastID))
		}
		lastAuthor, lastSeq, lastID = author, seq, id

		m, err := share.Parse(raw)
		if err != nil {
			problem("stored bytes do not parse: %v", err)
			continue
		}
		if m.ID().String() != id {
			// Header or signature bytes changed: say which check fails.
			reason := "corrupted"
			if err := m.Verify(); err != nil {
				reason = err.Error()
			}
			problem("stored bytes hash to id %s, not %s (%s)", m.ID().Short(), shortText(id), reason)
			continue
		}
		switch {
		case m.Author.String() != author || int64(m.Seq) != seq || prevText(m) != prev || int64(m.Kind) != kind || m.CreatedMs != created:
			problem("indexed columns disagree with the signed header (author/seq/prev/kind/created)")
		case string(m.Content) != content:
			problem("content column disagrees with the signed content")
		case m.Community != l.community:
			problem("belongs to community %s, not %s", m.Community.Short(), l.community.Short())
		}
		sig(m, p)
	}
	return rows.Err()
}

// verifyExtras checks kept statuses, other ephemeral messages and fork
// proofs, and reports frozen feeds.
func (l *Ledger) verifyExtras(ctx context.Context, tx querier, rep *Report) error {
	check := func(kind, query string, count *int64) error {
		rows, err := tx.QueryContext(ctx, query)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				id, author string
				raw        []byte
			)
			if err := rows.Scan(&id, &author, &raw); err != nil {
				return err
			}
			*count++
			p := Problem{ID: id, Author: author}
			m, err := share.Open(raw, l.community)
			switch {
			case err != nil:
				p.Reason = kind + ": " + err.Error()
			case m.ID().String() != id || m.Author.String() != author:
				p.Reason = kind + ": stored bytes do not match the row's id or author"
			default:
				continue
			}
			rep.add(p)
		}
		return rows.Err()
	}
	if err := check("status", `SELECT id, author, raw FROM statuses ORDER BY author`, &rep.Statuses); err != nil {
		return err
	}
	if err := check("ephemeral message", `SELECT id, author, raw FROM ephemerals ORDER BY author, kind`, &rep.Ephemerals); err != nil {
		return err
	}
	if err := check("fork proof", `SELECT other_id, author, other_raw FROM forks ORDER BY author, seq`, &rep.Forks); err != nil {
		return err
	}
	if err := l.verifySuccessions(ctx, tx, rep); err != nil {
		return err
	}
	return l.verifyFrozen(ctx, tx, rep)
}

// verifyFrozen reports each feed a fork froze (docs/PROTOCOL.md §6.3): the
// proof is sound, but the household's messages are no longer accepted and
// people must act (the neighbour starts a new key), so the ledger is not
// OK. One problem per author, at its first fork.
func (l *Ledger) verifyFrozen(ctx context.Context, tx querier, rep *Report) error {
	// A fork after a key's recovery point is resolved by the recovery.
	resolved := ""
	if l.succ {
		resolved = `AND NOT EXISTS (SELECT 1 FROM successions s WHERE s.old = f.author AND s.via = 'recover' AND f.seq > s.at_seq)`
	}
	rows, err := tx.QueryContext(ctx, `SELECT f.author, f.seq, f.stored_id, f.other_id, coalesce(n.name, '') FROM forks f
LEFT JOIN neighbours n ON n.id = f.author
WHERE f.seq = (SELECT min(seq) FROM forks g WHERE g.author = f.author) `+resolved+`
GROUP BY f.author ORDER BY f.author`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			author, stored, other, name string
			seq                         int64
		)
		if err := rows.Scan(&author, &seq, &stored, &other, &name); err != nil {
			return err
		}
		who := shortText(author)
		if name != "" {
			who = fmt.Sprintf("%s (%s)", name, shortText(author))
		}
		rep.add(Problem{ID: other, Author: author, Seq: seq, Reason: fmt.Sprintf(
			"frozen: fork at seq %d: %s signed two different messages (%s and %s); nothing more is accepted from this key until the household starts a new one",
			seq, who, shortText(stored), shortText(other))})
	}
	return rows.Err()
}

func shortText(s string) string {
	if len(s) > share.ShortLen {
		return s[:share.ShortLen]
	}
	if s == "" {
		return "(none)"
	}
	return strings.TrimSpace(s)
}
