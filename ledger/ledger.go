// Package ledger is a household's durable store: the verified protocol
// messages of its own feed and its neighbours' feeds (append-only, the
// signed bytes kept verbatim), fork proofs, the neighbour list, the latest
// status of each neighbour, counters of rejected messages, and the meter
// aggregates (per minute for about 30 days, per settlement slot forever).
// Views over the messages (open pledges, balances, settlements) come from
// package share's lifecycle fold.
//
// The store is one SQLite file (modernc.org/sqlite, no cgo) in WAL mode
// with synchronous=FULL: an Append that returned nil survives a power cut.
// Meter data is aggregated in memory and written in batches about once a
// minute to spare SD cards. One process writes a home at a time; see
// LockHome.
package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/commons-energy/commons/share"

	"modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// FileName is the ledger's file name inside a home folder.
const FileName = "ledger.db"

// Options configure a Ledger.
type Options struct {
	// Self is this household's id. Its own messages are always accepted.
	Self share.HouseholdID
	// Manifest is the community: every stored message must belong to it
	// (its ID), and pledge views use its slot length.
	Manifest share.Manifest
	// Logger receives notes such as meter resets; nil discards them.
	Logger *slog.Logger
	// Now is the clock for received and added times; nil means time.Now.
	Now func() time.Time
	// Quota bounds the storage neighbours can take; the zero value means
	// the defaults.
	Quota Quota
	// CacheKiB caps SQLite's page cache per connection (PRAGMA
	// cache_size) in KiB; 0 keeps SQLite's default (about 2 MiB). A
	// process holding many ledgers (the headless demo street) keeps
	// memory bounded with a small value.
	CacheKiB int
}

// Ledger is an open ledger file. Its methods are safe for concurrent use;
// writes are serialised inside the process. Only one process should write
// a home's ledger: hold the home's HomeLock while a Ledger is open for
// writing.
type Ledger struct {
	db        *sql.DB
	path      string
	opts      Options
	community share.CommunityID
	log       *slog.Logger
	quota     Quota

	writeMu sync.Mutex    // one write transaction at a time
	commits atomic.Uint64 // write transactions committed

	statusMu sync.Mutex                  // guards status; taken before writeMu
	usageMu  sync.Mutex                  // guards usage
	usage    map[share.HouseholdID]usage // per neighbour, for the quota; see cachedUsage
	status   statusBuffer

	acksMu sync.Mutex                // guards acks; taken before writeMu
	acks   map[share.HouseholdID]Ack // nil until read; see acks.go

	succ bool // the schema has the successions table (see succession.go)
}

// Open opens (creating if needed) the ledger file at path and migrates its
// schema to the current version.
func Open(ctx context.Context, path string, opts Options) (*Ledger, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := opts.Manifest.Validate(); err != nil {
		return nil, fmt.Errorf("open ledger %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("open ledger %s: folder %s does not exist: run `commons init` first or check --home", path, dir)
	}
	if err := privateFiles(path, opts.Logger); err != nil {
		return nil, err
	}
	q := url.Values{}
	for _, p := range []string{
		"journal_mode(WAL)",
		"synchronous(FULL)",
		"busy_timeout(10000)",
		"foreign_keys(1)",
		fmt.Sprintf("journal_size_limit(%d)", walSizeLimit),
		fmt.Sprintf("wal_autocheckpoint(%d)", walAutocheckpoint),
	} {
		q.Add("_pragma", p)
	}
	if opts.CacheKiB > 0 {
		q.Add("_pragma", fmt.Sprintf("cache_size(-%d)", opts.CacheKiB))
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open ledger %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	db.SetConnMaxIdleTime(time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, openError(path, err)
	}
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		db.Close()
		if err == nil {
			err = fmt.Errorf("journal mode is %q, not wal (is the file on a network file system?)", mode)
		}
		return nil, openError(path, err)
	}
	if err := migrate(ctx, db, path); err != nil {
		db.Close()
		return nil, err
	}
	return &Ledger{db: db, path: path, opts: opts, community: opts.Manifest.ID(), log: opts.Logger, quota: opts.Quota.withDefaults(),
		succ: len(migrations) >= successionSchema}, nil
}

// walSizeLimit is the size, in bytes, the -wal file is cut back to when a
// checkpoint has copied it into the database (PRAGMA journal_size_limit).
// Without it the file keeps the size of its busiest moment; on an SD card
// a small file is also a small area rewritten over and over.
const walSizeLimit = 1 << 20

// walAutocheckpoint is the WAL length, in 4 KiB pages, that makes a commit
// copy the WAL into the database (PRAGMA wal_autocheckpoint): 256 pages
// keep it near walSizeLimit instead of SQLite's default of 4 MB.
const walAutocheckpoint = 256

// FileMode is the permission of the ledger file and its -wal and -shm
// files: the owner only, whatever the umask or the home folder's mode, as
// the ledger holds the household's meter history.
const FileMode os.FileMode = 0o600

// privateFiles creates the ledger file with FileMode before SQLite opens
// it (SQLite on unix gives the -wal and -shm files the database file's
// mode) and narrows files an older version left readable by others,
// saying so in the log.
func privateFiles(path string, log *slog.Logger) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, FileMode)
	if err != nil {
		return openError(path, err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("open ledger %s: %w", path, err)
		}
		perm := fi.Mode().Perm()
		if perm&0o077 == 0 {
			continue
		}
		if err := os.Chmod(p, perm&^0o077); err != nil {
			return fmt.Errorf("open ledger %s: make %s private (chmod go-rwx): %w: check the file's owner", path, p, err)
		}
		log.Info("ledger file made private to its owner", "file", p, "was", fmt.Sprintf("%04o", perm), "now", fmt.Sprintf("%04o", perm&^0o077))
	}
	return nil
}

// openError turns SQLite's open failures into a line a person can act on.
func openError(path string, err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_NOTADB:
			return fmt.Errorf("open ledger %s: not a commons ledger (the file is not an SQLite database): move it away or use another --home", path)
		case sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_READONLY:
			return fmt.Errorf("open ledger %s: %w: check the file's permissions and free space", path, err)
		}
	}
	return fmt.Errorf("open ledger %s: %w", path, err)
}

// Close writes the statuses held in memory and closes the database. Flush
// any Aggregator first.
func (l *Ledger) Close() error {
	l.statusMu.Lock()
	ferr := l.flushStatusesLocked(context.Background())
	l.status.closed = true
	l.statusMu.Unlock()
	if ferr != nil {
		l.log.Warn("statuses not written at close", "err", ferr)
	}
	if err := l.db.Close(); err != nil {
		return fmt.Errorf("close ledger %s: %w", l.path, err)
	}
	return nil
}

// Path returns the ledger file's path.
func (l *Ledger) Path() string { return l.path }

// Self returns the household id the ledger was opened for.
func (l *Ledger) Self() share.HouseholdID { return l.opts.Self }

// DB returns the underlying database for read-only queries by tools and
// tests. Writing through it bypasses every rule of the ledger.
func (l *Ledger) DB() *sql.DB { return l.db }

// SchemaVersion returns the database's PRAGMA user_version.
func (l *Ledger) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := l.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}

// write runs fn in one write transaction, committed durably
// (synchronous=FULL) when fn returns nil. A full disk gives a
// *DiskFullError.
func (l *Ledger) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return l.diskFull(err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return l.diskFull(err)
	}
	if err := tx.Commit(); err != nil {
		return l.diskFull(err)
	}
	l.commits.Add(1)
	return nil
}

// Commits returns the number of write transactions committed since Open:
// each one is an fsync, the cost that matters on an SD card.
func (l *Ledger) Commits() uint64 { return l.commits.Load() }

func (l *Ledger) nowMS() int64 { return l.opts.Now().UnixMilli() }
