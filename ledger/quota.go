package ledger

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"syscall"

	"github.com/commons-energy/commons/share"

	"golang.org/x/sys/unix"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Defaults of Quota.
const (
	DefaultAuthorBytes      = 32 << 20 // chain messages stored per neighbour: years of ordinary traffic
	DefaultUnknownKindBytes = 1 << 20  // of those, messages of kinds this version does not know
	DefaultReserveBytes     = 64 << 20 // free space kept for this household's own messages
)

// Quota bounds the storage neighbours can take. It is a receiver policy:
// a message over it is refused and counted (reasons "quota" and
// "disk_reserve"), never stored. This household's own messages are never
// limited by it. The zero value of a field means its default; a negative
// value turns that limit off.
type Quota struct {
	// AuthorBytes bounds the signed bytes of chain messages stored per
	// neighbour.
	AuthorBytes int64
	// UnknownKindBytes bounds, within AuthorBytes, the bytes of chain
	// messages of kinds this version does not know: valid by the protocol
	// but of no use to this household.
	UnknownKindBytes int64
	// ReserveBytes is the free space kept on the ledger's file system for
	// this household's own messages: below it neighbours' messages are
	// refused.
	ReserveBytes int64
	// FreeSpace returns the bytes free (to an unprivileged user) on the
	// file system holding path; nil means statfs(2). Tests use it to
	// simulate a nearly full disk.
	FreeSpace func(path string) (int64, error)
}

func (q Quota) withDefaults() Quota {
	def := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&q.AuthorBytes, DefaultAuthorBytes)
	def(&q.UnknownKindBytes, DefaultUnknownKindBytes)
	def(&q.ReserveBytes, DefaultReserveBytes)
	if q.FreeSpace == nil {
		q.FreeSpace = statfsFree
	}
	return q
}

// statfsFree is the default Quota.FreeSpace.
func statfsFree(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// ErrQuota rejects a neighbour's message that would take that neighbour
// over its storage quota (Quota.AuthorBytes or Quota.UnknownKindBytes).
var ErrQuota = errors.New("storage quota")

// ErrDiskReserve rejects a neighbour's message while the free space on the
// ledger's file system is below Quota.ReserveBytes.
var ErrDiskReserve = errors.New("disk reserve")

// ErrDiskFull is matched by errors.Is for every *DiskFullError.
var ErrDiskFull = errors.New("disk full")

// DiskFullError reports that a write failed because the file system
// holding the home is full (SQLITE_FULL or ENOSPC). Nothing of that
// transaction was stored.
type DiskFullError struct {
	Home string // the folder holding the ledger
	Err  error  // the database's error
}

// Error says what happened and what to do, in one line.
func (e *DiskFullError) Error() string {
	return fmt.Sprintf("the disk holding %s is full: free space or move the home; nothing was stored", e.Home)
}

// Unwrap returns ErrDiskFull and the database's error.
func (e *DiskFullError) Unwrap() []error { return []error{ErrDiskFull, e.Err} }

// diskFull turns a full-disk failure of a write into a *DiskFullError and
// returns other errors as they are.
func (l *Ledger) diskFull(err error) error {
	if err == nil {
		return nil
	}
	var se *sqlite.Error
	full := errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL {
		full = true
	}
	if !full {
		return err
	}
	return &DiskFullError{Home: filepath.Dir(l.path), Err: err}
}

// usage is the storage one author takes, as the quota counts it.
type usage struct {
	bytes, unknownBytes int64
}

// loadUsage reads the bytes of an author's stored chain messages.
func loadUsage(ctx context.Context, q querier, author share.HouseholdID) (usage, error) {
	rows, err := q.QueryContext(ctx, `SELECT kind, sum(length(raw)) FROM messages WHERE author = ? GROUP BY kind`, author.String())
	if err != nil {
		return usage{}, err
	}
	defer rows.Close()
	var u usage
	for rows.Next() {
		var (
			kind int64
			n    int64
		)
		if err := rows.Scan(&kind, &n); err != nil {
			return usage{}, err
		}
		u.bytes += n
		if !share.Kind(kind).Known() {
			u.unknownBytes += n
		}
	}
	return u, rows.Err()
}

// cachedUsage returns an author's usage from the in-memory cache, reading
// it from the messages table the first time. The ledger is the only writer
// of its file, so the cache stays exact: store updates it in the same
// write transaction (keepUsage) and drops it when that fails.
func (l *Ledger) cachedUsage(ctx context.Context, q querier, author share.HouseholdID) (usage, error) {
	l.usageMu.Lock()
	u, ok := l.usage[author]
	l.usageMu.Unlock()
	if ok {
		return u, nil
	}
	return loadUsage(ctx, q, author)
}

// keepUsage caches the usage of the authors a transaction wrote.
func (l *Ledger) keepUsage(feeds map[share.HouseholdID]*feedState) {
	l.usageMu.Lock()
	defer l.usageMu.Unlock()
	if l.usage == nil {
		l.usage = map[share.HouseholdID]usage{}
	}
	for a, fs := range feeds {
		if fs.known && !fs.provisional && a != l.opts.Self {
			l.usage[a] = fs.usage
		}
	}
}

// forgetUsage drops the cached usage of these authors.
func (l *Ledger) forgetUsage(feeds map[share.HouseholdID]*feedState) {
	l.usageMu.Lock()
	defer l.usageMu.Unlock()
	for a := range feeds {
		delete(l.usage, a)
	}
}

// Usage is the storage one neighbour takes in the ledger.
type Usage struct {
	// StoredBytes is the size of its stored chain messages (their signed
	// bytes), as the quota counts it.
	StoredBytes int64
	// Refused counts its messages refused, by reason code (see Reason),
	// e.g. "quota"; nil when none.
	Refused map[string]int64
}

// Usage returns the storage and refusal counts of every author with stored
// messages or refusals, this household included (its refusals are not
// counted).
func (l *Ledger) Usage(ctx context.Context) (map[share.HouseholdID]Usage, error) {
	out := map[share.HouseholdID]Usage{}
	rows, err := l.db.QueryContext(ctx, `SELECT author, sum(length(raw)) FROM messages GROUP BY author`)
	if err != nil {
		return nil, fmt.Errorf("read storage usage: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			a string
			n int64
		)
		if err := rows.Scan(&a, &n); err != nil {
			return nil, fmt.Errorf("read storage usage: %w", err)
		}
		id, err := share.ParseHouseholdID(a)
		if err != nil {
			return nil, fmt.Errorf("read storage usage: stored author: %w", err)
		}
		out[id] = Usage{StoredBytes: n}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read storage usage: %w", err)
	}
	refused, err := l.refusals(ctx)
	if err != nil {
		return nil, err
	}
	for a, m := range refused {
		id, err := share.ParseHouseholdID(a)
		if err != nil {
			continue
		}
		u := out[id]
		u.Refused = m
		out[id] = u
	}
	return out, nil
}

// checkQuota says whether storing m keeps its author within the quota.
func (l *Ledger) checkQuota(u usage, m *share.Message) error {
	q := l.quota
	n := int64(len(m.Bytes()))
	if !m.Kind.Known() && q.UnknownKindBytes > 0 && u.unknownBytes+n > q.UnknownKindBytes {
		return fmt.Errorf("message %s: author %s already has %d bytes of kinds this version does not know (%s), the limit is %d (upgrade commons, or raise storage.unknown_kind_mib in config.json): %w",
			m.ID().Short(), m.Author.Short(), u.unknownBytes, m.Kind, q.UnknownKindBytes, ErrQuota)
	}
	if q.AuthorBytes > 0 && u.bytes+n > q.AuthorBytes {
		return fmt.Errorf("message %s: author %s already has %d bytes stored, the limit is %d (raise storage.neighbour_mib in config.json if this neighbour is legitimate): %w",
			m.ID().Short(), m.Author.Short(), u.bytes, q.AuthorBytes, ErrQuota)
	}
	return nil
}

// checkReserve returns an ErrDiskReserve error when the ledger's file
// system has less free space than the reserve, nil otherwise. A failure
// to read the free space is logged and does not refuse anything.
func (l *Ledger) checkReserve() error {
	if l.quota.ReserveBytes <= 0 {
		return nil
	}
	free, err := l.quota.FreeSpace(filepath.Dir(l.path))
	if err != nil {
		l.log.Warn("cannot read the free space of the ledger's disk; not enforcing the reserve", "dir", filepath.Dir(l.path), "err", err)
		return nil
	}
	if free >= l.quota.ReserveBytes {
		return nil
	}
	return fmt.Errorf("only %d bytes free on the disk holding %s, below the %d kept for this household's own messages: neighbours' messages are refused until space is freed: %w",
		free, filepath.Dir(l.path), l.quota.ReserveBytes, ErrDiskReserve)
}
