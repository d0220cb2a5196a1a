package ledger

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/commons-energy/commons/share"
)

// ErrUnknownAuthor rejects a message whose author is neither this household
// nor a current neighbour.
var ErrUnknownAuthor = errors.New("unknown author")

// ErrEphemeralLimit rejects an ephemeral message of a kind this version
// does not interpret when its author already has MaxEphemeralKinds other
// such kinds kept.
var ErrEphemeralLimit = errors.New("too many ephemeral kinds")

// MaxEphemeralKinds is how many ephemeral kinds this version does not
// interpret the ledger keeps per author, the latest message of each
// (docs/PROTOCOL.md §6.5): enough for the kinds a future version adds,
// and a bound on what one neighbour can make this household store.
const MaxEphemeralKinds = 8

// Reason returns the short stable code of a rejection error: share's codes
// (share.Reason) plus "unknown_author", "quota", "disk_reserve" and
// "ephemeral_limit".
func Reason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrUnknownAuthor):
		return "unknown_author"
	case errors.Is(err, ErrQuota):
		return "quota"
	case errors.Is(err, ErrDiskReserve):
		return "disk_reserve"
	case errors.Is(err, ErrEphemeralLimit):
		return "ephemeral_limit"
	}
	return share.Reason(err)
}

// Outcome says what Append did with one message.
type Outcome int

// Outcomes of Append.
const (
	Stored    Outcome = iota + 1 // appended to its author's chain
	Duplicate                    // already stored (same id); nothing changed
	Latest                       // an ephemeral message kept as its author's latest of its kind
	Older                        // an ephemeral message older than the one kept; dropped
	Forked                       // a fork proof: kept in the forks table, the author's feed is frozen
	Rejected                     // not stored; Err says why
)

// String returns the outcome in words, as in logs.
func (o Outcome) String() string {
	switch o {
	case Stored:
		return "stored"
	case Duplicate:
		return "duplicate"
	case Latest:
		return "latest"
	case Older:
		return "older"
	case Forked:
		return "forked"
	case Rejected:
		return "rejected"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Result is the outcome for one message of an Append, in input order.
type Result struct {
	Outcome Outcome
	Message *share.Message // the parsed message; nil when it did not parse
	Err     error          // why it was rejected or is a fork proof (*share.ForkError, *share.GapError, ...); see Reason
}

// ID returns the message id, or the zero id when the message did not parse.
func (r Result) ID() share.ID {
	if r.Message == nil {
		return share.ID{}
	}
	return r.Message.ID()
}

// parallelMin is the batch size from which signatures are checked on
// several cores.
const parallelMin = 64

// Append verifies and stores messages given in their wire form, all in one
// durable transaction. Every message is opened with share.Open (structure,
// community, signature, content hash, content rules), checked against the
// community's end of protocol time (share.Manifest.CheckSlots), the
// author's clock skew, the author's admission (this household or a current
// neighbour) and the author's stored chain (share.Feed.Check). A message
// is stored verbatim only when all checks pass; messages of one author may
// come in any order within a batch. A second, different message for a
// stored (author, seq) is kept as a fork proof and freezes that feed.
// Ephemeral messages are kept outside the chains, only the latest per
// author and kind: statuses, and up to MaxEphemeralKinds kinds this
// version does not interpret, to relay them. Rejections are counted per reason (see Rejections) and never
// stored.
//
// The results are in input order. The error is non-nil only when the
// database failed; then nothing of the batch was stored. When Append
// returns a nil error, every message with outcome Stored is on disk and
// survives a crash or power cut.
func (l *Ledger) Append(ctx context.Context, raws ...[]byte) ([]Result, error) {
	results := make([]Result, len(raws))
	l.open(raws, results)
	if err := l.store(ctx, results); err != nil {
		return nil, err
	}
	return results, nil
}

// AppendMessages is Append for parsed messages, such as this household's
// own freshly signed ones. They are re-checked in full from their bytes.
func (l *Ledger) AppendMessages(ctx context.Context, msgs ...*share.Message) ([]Result, error) {
	raws := make([][]byte, len(msgs))
	for i, m := range msgs {
		raws[i] = m.Bytes()
	}
	return l.Append(ctx, raws...)
}

// open runs the stateless checks, on several cores for large batches.
func (l *Ledger) open(raws [][]byte, results []Result) {
	now := l.opts.Now()
	check := func(i int) {
		m, err := share.Open(raws[i], l.community)
		if err == nil {
			err = l.opts.Manifest.CheckSlots(m)
		}
		if err == nil {
			err = share.CheckClock(m, now, share.MaxClockSkew)
		}
		if err != nil {
			results[i] = Result{Outcome: Rejected, Message: m, Err: err}
			if m == nil {
				// share.Open returns no message on failure; keep what
				// parses for the caller's log.
				if pm, perr := share.Parse(raws[i]); perr == nil {
					results[i].Message = pm
				}
			}
			return
		}
		results[i] = Result{Message: m}
	}
	workers := min(runtime.GOMAXPROCS(0), len(raws)/parallelMin)
	if workers <= 1 {
		for i := range raws {
			check(i)
		}
		return
	}
	var wg sync.WaitGroup
	chunk := (len(raws) + workers - 1) / workers
	for w := 0; w < workers; w++ {
		lo, hi := w*chunk, min((w+1)*chunk, len(raws))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				check(i)
			}
		}()
	}
	wg.Wait()
}

// feedState is an author's chain state during one transaction.
type feedState struct {
	feed  share.Feed
	known bool
	// provisional: the author is not known, but its first message starts
	// a new key (a successor or recover message) and is checked against
	// the old key's feed; until that is stored the author is no
	// neighbour, so its refusals and usage are not kept per author.
	provisional bool
	usage       usage // bytes stored, for the quota; neighbours only
}

// store applies the chain rules and writes, in one transaction.
func (l *Ledger) store(ctx context.Context, results []Result) error {
	order := make([]int, 0, len(results))
	for i, r := range results {
		if r.Outcome == 0 {
			order = append(order, i)
		}
	}
	// Chain order: by author, then seq; ephemeral (seq 0) first. The
	// feeds of new keys (those the batch starts with a successor or
	// recover message) come last, after the old keys' handovers.
	newKeys := map[share.HouseholdID]bool{}
	for _, i := range order {
		if isSuccessionStart(results[i].Message) {
			newKeys[results[i].Message.Author] = true
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		ma, mb := results[a].Message, results[b].Message
		if c := cmp.Compare(b2i(newKeys[ma.Author]), b2i(newKeys[mb.Author])); c != 0 {
			return c
		}
		if c := slices.Compare(ma.Author[:], mb.Author[:]); c != 0 {
			return c
		}
		return cmp.Compare(ma.Seq, mb.Seq)
	})
	received := l.nowMS()
	// The free-space reserve is read once per batch, and only when a
	// neighbour's message could use it.
	var reserveErr error
	for _, i := range order {
		if results[i].Message.Author != l.opts.Self {
			reserveErr = l.checkReserve()
			break
		}
	}
	// Work on a copy so a failed transaction leaves no half-set results.
	out := slices.Clone(results)
	feeds := map[share.HouseholdID]*feedState{}
	err := l.write(ctx, func(tx *sql.Tx) error {
		ins, err := tx.PrepareContext(ctx, `INSERT INTO messages (id, author, seq, prev, kind, kind_name, created_ms, received_ms, content, raw)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		at, err := tx.PrepareContext(ctx, `SELECT id FROM messages WHERE author = ? AND seq = ?`)
		if err != nil {
			return err
		}
		defer at.Close()
		seen := map[share.HouseholdID]int64{}
		for _, i := range order {
			m := out[i].Message
			fs := feeds[m.Author]
			if fs == nil {
				fs = &feedState{}
				if fs.known, err = l.isKnown(ctx, tx, m.Author); err != nil {
					return err
				}
				// The first message of a new key is checked against the
				// old key's feed (checkStart) before anything is stored.
				fs.provisional = !fs.known && isSuccessionStart(m)
				fs.known = fs.known || fs.provisional
				if fs.known {
					if fs.feed, err = l.loadFeed(ctx, tx, m.Author); err != nil {
						return err
					}
				}
				if fs.known && !fs.provisional && m.Author != l.opts.Self {
					if fs.usage, err = l.cachedUsage(ctx, tx, m.Author); err != nil {
						return err
					}
				}
				feeds[m.Author] = fs
			}
			if !fs.known {
				out[i] = Result{Outcome: Rejected, Message: m, Err: fmt.Errorf("message %s: author %s is not a neighbour of this household: add it with `commons neighbours add INVITE`: %w",
					m.ID().Short(), m.Author.Short(), ErrUnknownAuthor)}
				continue
			}
			if reserveErr != nil && m.Author != l.opts.Self {
				out[i] = Result{Outcome: Rejected, Message: m, Err: fmt.Errorf("message %s by %s: %w", m.ID().Short(), m.Author.Short(), reserveErr)}
				continue
			}
			if m.Ephemeral() {
				out[i], err = l.storeStatus(ctx, tx, m, received)
				if err != nil {
					return err
				}
				if out[i].Outcome == Latest {
					seen[m.Author] = max(seen[m.Author], received)
				}
				continue
			}
			var lookupErr error
			cerr := fs.feed.Check(m, func(seq uint64) (share.ID, bool) {
				var s string
				if err := at.QueryRowContext(ctx, m.Author.String(), int64(seq)).Scan(&s); err != nil {
					if !errors.Is(err, sql.ErrNoRows) {
						lookupErr = err
					}
					return share.ID{}, false
				}
				id, err := share.ParseID(s)
				return id, err == nil
			})
			if lookupErr != nil {
				return lookupErr
			}
			if cerr == nil && m.Author != l.opts.Self {
				cerr = l.checkQuota(fs.usage, m) // rejected below, like a chain error
			}
			succ := l.succ && cerr == nil && m.Kind >= share.KindHandover && m.Kind <= share.KindRecover
			if succ {
				if cerr = l.checkSuccessionKinds(ctx, tx, m); cerr != nil && !isRefusal(cerr) {
					return cerr
				}
			}
			var fe *share.ForkError
			switch {
			case cerr == nil:
				id := m.ID()
				if _, err := ins.ExecContext(ctx, id.String(), m.Author.String(), int64(m.Seq), prevText(m), int64(m.Kind), m.Kind.String(),
					m.CreatedMs, received, string(m.Content), m.Bytes()); err != nil {
					return err
				}
				fs.feed.Head = share.HeadOf(m)
				fs.usage.bytes += int64(len(m.Bytes()))
				if !m.Kind.Known() {
					fs.usage.unknownBytes += int64(len(m.Bytes()))
				}
				out[i] = Result{Outcome: Stored, Message: m}
				seen[m.Author] = max(seen[m.Author], received)
				if succ {
					stale, err := l.applySuccession(ctx, tx, m, received)
					if err != nil {
						return err
					}
					for _, a := range stale {
						delete(feeds, a)
					}
					fs.provisional = false
				}
			case errors.Is(cerr, share.ErrDuplicate):
				out[i] = Result{Outcome: Duplicate, Message: m}
			case errors.As(cerr, &fe):
				if _, err := tx.ExecContext(ctx, `INSERT INTO forks (author, seq, stored_id, other_id, other_raw, reason, detected_ms)
VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, m.Author.String(), int64(m.Seq), fe.Stored.String(), m.ID().String(), m.Bytes(), cerr.Error(), received); err != nil {
					return err
				}
				fs.feed.Frozen = true
				l.log.Warn("fork proof stored: feed frozen", "author", m.Author.String(), "seq", m.Seq, "stored", fe.Stored.String(), "other", m.ID().String())
				out[i] = Result{Outcome: Forked, Message: m, Err: cerr}
			default:
				out[i] = Result{Outcome: Rejected, Message: m, Err: cerr}
			}
		}
		for author, ms := range seen {
			if author == l.opts.Self {
				continue
			}
			if _, err := tx.ExecContext(ctx, `UPDATE neighbours SET last_seen_ms = max(coalesce(last_seen_ms, 0), ?) WHERE id = ?`, ms, author.String()); err != nil {
				return err
			}
		}
		if err := countRejections(ctx, tx, out, received); err != nil {
			return err
		}
		if err := l.countRefusals(ctx, tx, out, feeds, received); err != nil {
			return err
		}
		l.keepUsage(feeds)
		return nil
	})
	if err != nil {
		l.forgetUsage(feeds) // the commit may have failed after keepUsage
	}
	var full *DiskFullError
	if errors.As(err, &full) {
		return err
	}
	if err != nil {
		return fmt.Errorf("append to ledger %s: %w", l.path, err)
	}
	copy(results, out)
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// isRefusal reports whether err refuses a message (wraps a reason)
// rather than reports a database failure.
func isRefusal(err error) bool { return Reason(err) != "other" }

func prevText(m *share.Message) string {
	if m.Prev.IsZero() {
		return ""
	}
	return m.Prev.String()
}

// loadFeed reads an author's head and whether a fork froze the feed.
func (l *Ledger) loadFeed(ctx context.Context, q querier, author share.HouseholdID) (share.Feed, error) {
	f := share.Feed{Author: author}
	var (
		id      string
		seq     int64
		created int64
	)
	err := q.QueryRowContext(ctx, `SELECT id, seq, created_ms FROM messages WHERE author = ? ORDER BY seq DESC LIMIT 1`, author.String()).
		Scan(&id, &seq, &created)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return f, err
	default:
		hid, err := share.ParseID(id)
		if err != nil {
			return f, fmt.Errorf("stored head of %s: %w", author.Short(), err)
		}
		f.Head = share.Head{Seq: uint64(seq), ID: hid, CreatedMs: created}
	}
	row, has, err := succession(ctx, q, author)
	if !l.succ {
		has, err = false, nil
	}
	if err != nil {
		return f, err
	}
	if has {
		f.Closed, f.Successor = row.AtSeq, row.New
	}
	var one int
	err = q.QueryRowContext(ctx, `SELECT 1 FROM forks WHERE author = ? LIMIT 1`, author.String()).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return f, err
	default:
		f.Frozen = true
	}
	return f, nil
}

// storeStatus keeps an ephemeral message if it is its author's newest of
// its kind (docs/PROTOCOL.md §6.5).
func (l *Ledger) storeStatus(ctx context.Context, tx *sql.Tx, m *share.Message, received int64) (Result, error) {
	if m.Kind != share.KindStatus {
		return l.storeEphemeral(ctx, tx, m, received)
	}
	var raw []byte
	err := tx.QueryRowContext(ctx, `SELECT raw FROM statuses WHERE author = ?`, m.Author.String()).Scan(&raw)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Result{}, err
	}
	var stored *share.Message
	if err == nil {
		stored, _ = share.Parse(raw) // an unreadable stored status is replaced
	}
	if stored != nil && stored.ID() == m.ID() {
		return Result{Outcome: Duplicate, Message: m}, nil
	}
	if !share.Newer(stored, m) {
		return Result{Outcome: Older, Message: m}, nil
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO statuses (author, id, created_ms, received_ms, content, raw) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (author) DO UPDATE SET id = excluded.id, created_ms = excluded.created_ms, received_ms = excluded.received_ms,
	content = excluded.content, raw = excluded.raw`,
		m.Author.String(), m.ID().String(), m.CreatedMs, received, string(m.Content), m.Bytes())
	if err != nil {
		return Result{}, err
	}
	return Result{Outcome: Latest, Message: m}, nil
}

// storeEphemeral keeps an ephemeral message of a kind this version does
// not interpret if it is its author's newest of that kind, and while the
// author has at most MaxEphemeralKinds such kinds kept.
func (l *Ledger) storeEphemeral(ctx context.Context, tx *sql.Tx, m *share.Message, received int64) (Result, error) {
	var raw []byte
	err := tx.QueryRowContext(ctx, `SELECT raw FROM ephemerals WHERE author = ? AND kind = ?`, m.Author.String(), int64(m.Kind)).Scan(&raw)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		var kinds int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM ephemerals WHERE author = ?`, m.Author.String()).Scan(&kinds); err != nil {
			return Result{}, err
		}
		if kinds >= MaxEphemeralKinds {
			return Result{Outcome: Rejected, Message: m, Err: fmt.Errorf("message %s: author %s already has %d ephemeral kinds this version does not interpret kept, the limit; %s is not kept: %w",
				m.ID().Short(), m.Author.Short(), kinds, m.Kind, ErrEphemeralLimit)}, nil
		}
	case err != nil:
		return Result{}, err
	}
	var stored *share.Message
	if raw != nil {
		stored, _ = share.Parse(raw) // an unreadable stored message is replaced
	}
	if stored != nil && stored.ID() == m.ID() {
		return Result{Outcome: Duplicate, Message: m}, nil
	}
	if !share.Newer(stored, m) {
		return Result{Outcome: Older, Message: m}, nil
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO ephemerals (author, kind, id, created_ms, received_ms, raw) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (author, kind) DO UPDATE SET id = excluded.id, created_ms = excluded.created_ms, received_ms = excluded.received_ms, raw = excluded.raw`,
		m.Author.String(), int64(m.Kind), m.ID().String(), m.CreatedMs, received, m.Bytes())
	if err != nil {
		return Result{}, err
	}
	return Result{Outcome: Latest, Message: m}, nil
}

// countRejections adds this batch's rejections to the per-reason counters.
// A fork proof is counted too, as "fork": it is kept as evidence but not
// stored in the chain.
func countRejections(ctx context.Context, tx *sql.Tx, results []Result, now int64) error {
	type agg struct {
		n    int64
		last string
	}
	byReason := map[string]*agg{}
	for _, r := range results {
		if r.Outcome != Rejected && r.Outcome != Forked {
			continue
		}
		code := Reason(r.Err)
		a := byReason[code]
		if a == nil {
			a = &agg{}
			byReason[code] = a
		}
		a.n++
		a.last = r.Err.Error()
	}
	for code, a := range byReason {
		if _, err := tx.ExecContext(ctx, `INSERT INTO rejections (reason, count, last_ms, last_detail) VALUES (?, ?, ?, ?)
ON CONFLICT (reason) DO UPDATE SET count = count + excluded.count, last_ms = excluded.last_ms, last_detail = excluded.last_detail`,
			code, a.n, now, a.last); err != nil {
			return err
		}
	}
	return nil
}

// countRefusals adds this batch's rejections of current neighbours'
// messages to the per-neighbour counters (refusals), which
// `neighbours list` shows. Unknown authors are not counted per author, so
// the table stays as small as the neighbour list.
func (l *Ledger) countRefusals(ctx context.Context, tx *sql.Tx, results []Result, feeds map[share.HouseholdID]*feedState, now int64) error {
	type key struct {
		author share.HouseholdID
		reason string
	}
	counts := map[key]int64{}
	for _, r := range results {
		if r.Outcome != Rejected || r.Message == nil || r.Message.Author == l.opts.Self {
			continue
		}
		if fs := feeds[r.Message.Author]; fs == nil || !fs.known || fs.provisional {
			continue
		}
		counts[key{r.Message.Author, Reason(r.Err)}]++
	}
	for k, n := range counts {
		if _, err := tx.ExecContext(ctx, `INSERT INTO refusals (author, reason, count, last_ms) VALUES (?, ?, ?, ?)
ON CONFLICT (author, reason) DO UPDATE SET count = count + excluded.count, last_ms = excluded.last_ms`,
			k.author.String(), k.reason, n, now); err != nil {
			return err
		}
	}
	return nil
}

// RejectionCount is the number of messages rejected for one reason.
type RejectionCount struct {
	Reason     string // stable code, see Reason
	Count      int64
	LastMs     int64  // Unix ms of the last one
	LastDetail string // the last one's full message
}

// Rejections returns the rejection counters, largest first.
func (l *Ledger) Rejections(ctx context.Context) ([]RejectionCount, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT reason, count, last_ms, last_detail FROM rejections ORDER BY count DESC, reason`)
	if err != nil {
		return nil, fmt.Errorf("read rejection counters: %w", err)
	}
	defer rows.Close()
	var out []RejectionCount
	for rows.Next() {
		var c RejectionCount
		if err := rows.Scan(&c.Reason, &c.Count, &c.LastMs, &c.LastDetail); err != nil {
			return nil, fmt.Errorf("read rejection counters: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
