package ledger

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are the schema steps in order. Step i (0-based) moves the
// database from PRAGMA user_version i to i+1; each runs in its own
// transaction together with the version bump. Steps are never edited once
// released: a change is a new step.
//
// Names are chosen for people who open the file with sqlite3: ids and keys
// are text (message ids 64 hex digits, household ids 52 base32
// characters, as the protocol writes them), times are Unix milliseconds in *_ms columns (or
// Unix seconds in *_unix), energy is integer Wh in *_wh columns.
var migrations = []string{
	// 1: protocol messages, forks, neighbours, rejections, statuses, meter aggregates.
	`
CREATE TABLE messages (
	id          TEXT PRIMARY KEY,          -- message id, hex
	author      TEXT NOT NULL,             -- author household id (base32)
	seq         INTEGER NOT NULL,          -- position in the author's feed, from 1
	prev        TEXT NOT NULL,             -- id of seq-1 ('' for seq 1)
	kind        INTEGER NOT NULL,          -- message kind code
	kind_name   TEXT NOT NULL,             -- message kind name, for people
	created_ms  INTEGER NOT NULL,          -- author's advisory clock, Unix ms
	received_ms INTEGER NOT NULL,          -- when this box stored it, Unix ms
	content     TEXT NOT NULL,             -- content bytes as text (JSON), for people; raw is authoritative
	raw         BLOB NOT NULL,             -- the signed message exactly as received
	UNIQUE (author, seq)
) STRICT;
CREATE INDEX messages_kind ON messages (kind, author);

CREATE TABLE forks (
	author      TEXT NOT NULL,             -- the forked feed
	seq         INTEGER NOT NULL,          -- where the two histories differ
	stored_id   TEXT NOT NULL,             -- id of the message this ledger holds at (author, seq), or of its seq-1
	other_id    TEXT NOT NULL,             -- id of the conflicting message
	other_raw   BLOB NOT NULL,             -- the conflicting signed message verbatim: with the stored one, the proof
	reason      TEXT NOT NULL,
	detected_ms INTEGER NOT NULL,
	PRIMARY KEY (author, other_id)
) STRICT;

CREATE TABLE neighbours (
	id          TEXT PRIMARY KEY,          -- household id (base32)
	name        TEXT NOT NULL,             -- display name or local alias
	addresses   TEXT NOT NULL DEFAULT '',  -- where to reach it, one per line
	invite      TEXT NOT NULL DEFAULT '',  -- the invite string it was added with
	added_ms    INTEGER NOT NULL,
	last_seen_ms INTEGER,                  -- last message or contact, NULL when never
	removed_ms  INTEGER                    -- NULL while a neighbour
) STRICT;
CREATE UNIQUE INDEX neighbours_name ON neighbours (name) WHERE removed_ms IS NULL;

CREATE TABLE rejections (
	reason      TEXT PRIMARY KEY,          -- short stable reason code
	count       INTEGER NOT NULL,
	last_ms     INTEGER NOT NULL,
	last_detail TEXT NOT NULL              -- the last full reason, with the author when known
) STRICT;

CREATE TABLE statuses (
	author      TEXT PRIMARY KEY,          -- latest status of each author only
	id          TEXT NOT NULL,
	created_ms  INTEGER NOT NULL,
	received_ms INTEGER NOT NULL,
	content     TEXT NOT NULL,
	raw         BLOB NOT NULL
) STRICT;

CREATE TABLE meter_minutes (
	start_unix    INTEGER PRIMARY KEY,     -- minute start, Unix seconds (multiple of 60)
	import_wh     INTEGER NOT NULL,        -- energy drawn from the grid in this minute
	export_wh     INTEGER NOT NULL,        -- energy delivered to the grid in this minute
	production_wh INTEGER,                 -- own production, NULL when not measured
	readings      INTEGER NOT NULL         -- how many readings fed it
) STRICT;

CREATE TABLE meter_slots (
	slot_seconds  INTEGER NOT NULL,        -- slot length (community setting), seconds
	slot          INTEGER NOT NULL,        -- floor(unix / slot_seconds)
	start_unix    INTEGER NOT NULL,        -- slot start, Unix seconds
	import_wh     INTEGER NOT NULL,
	export_wh     INTEGER NOT NULL,
	production_wh INTEGER,
	readings      INTEGER NOT NULL,
	PRIMARY KEY (slot_seconds, slot)
) STRICT;

CREATE TABLE meter_baseline (
	id            INTEGER PRIMARY KEY CHECK (id = 1), -- one row: the last register values aggregated
	meter_id      TEXT NOT NULL,
	time_ms       INTEGER NOT NULL,
	import_wh     INTEGER,                 -- import register total, NULL when unknown
	export_wh     INTEGER,
	production_wh INTEGER
) STRICT;
`,
	// 2: one-off data repairs that must run in Go at open time (they need
	// the box clock, which SQL cannot be trusted with), each recorded once.
	`
CREATE TABLE repairs (
	name        TEXT PRIMARY KEY,          -- which repair, e.g. 'future-meter-data'
	done_ms     INTEGER NOT NULL,          -- when it ran, by the box clock, Unix ms
	detail      TEXT NOT NULL              -- what it changed, for people
) STRICT;
`,
	// 3: per-neighbour refusal counters (storage quota and other reasons).
	`
CREATE TABLE refusals (
	author      TEXT NOT NULL,             -- the neighbour whose messages were refused
	reason      TEXT NOT NULL,             -- short stable reason code, as in rejections
	count       INTEGER NOT NULL,
	last_ms     INTEGER NOT NULL,
	PRIMARY KEY (author, reason)
) STRICT;
`,
	// 4: the latest ephemeral message of each (author, kind) for kinds
	// this version does not interpret (docs/PROTOCOL.md §6.5), kept to be
	// relayed; statuses stay in their own table.
	`
CREATE TABLE ephemerals (
	author      TEXT NOT NULL,             -- author household id (base32)
	kind        INTEGER NOT NULL,          -- message kind code (bit 15 set)
	id          TEXT NOT NULL,             -- message id, hex
	created_ms  INTEGER NOT NULL,          -- author's advisory clock, Unix ms: orders the latest
	received_ms INTEGER NOT NULL,
	raw         BLOB NOT NULL,             -- the signed message exactly as received
	PRIMARY KEY (author, kind)
) STRICT;
`,
	// 5: idempotency keys of local pledge requests (commons pledge
	// --idempotency-key): a retry with the same key returns the first pledge.
	`
CREATE TABLE idempotency (
	key         TEXT PRIMARY KEY,          -- the caller's key, as given
	request     TEXT NOT NULL,             -- the request's parameters, canonical text
	message     TEXT NOT NULL,             -- the pledge's message id, hex
	created_ms  INTEGER NOT NULL
) STRICT;
`,
	// 6: the head of every author's chain, kept by a trigger in the same
	// transaction as each append, so that replication's "what do you have"
	// reads one row per author instead of scanning every message, and can
	// answer "what changed since cursor C": changed is a counter over the
	// whole table (1, 2, 3 ...), set to one more than the largest so far
	// each time an author's head moves. Existing ledgers are filled here,
	// in message storage order.
	`
CREATE TABLE heads (
	author      TEXT PRIMARY KEY,          -- author household id (base32)
	seq         INTEGER NOT NULL,          -- the largest stored seq of the author's chain
	id          TEXT NOT NULL,             -- id of that message, hex
	created_ms  INTEGER NOT NULL,          -- its created_ms
	changed     INTEGER NOT NULL           -- change counter: larger = moved later (replication cursor)
) STRICT;
CREATE INDEX heads_changed ON heads (changed);
INSERT INTO heads (author, seq, id, created_ms, changed)
SELECT m.author, m.seq, m.id, m.created_ms, row_number() OVER (ORDER BY m.rowid)
FROM messages m JOIN (SELECT author, max(seq) AS seq FROM messages GROUP BY author) h
ON h.author = m.author AND h.seq = m.seq;
CREATE TRIGGER messages_head AFTER INSERT ON messages BEGIN
	INSERT INTO heads (author, seq, id, created_ms, changed)
	VALUES (NEW.author, NEW.seq, NEW.id, NEW.created_ms, (SELECT coalesce(max(changed), 0) + 1 FROM heads))
	ON CONFLICT (author) DO UPDATE SET seq = excluded.seq, id = excluded.id, created_ms = excluded.created_ms, changed = excluded.changed
	WHERE excluded.seq > heads.seq;
END;
`,
	// 7: how far each neighbour's box has acknowledged this household's
	// own feed: a push it answered, or the head of this feed it reported.
	`
CREATE TABLE acks (
	neighbour   TEXT PRIMARY KEY,          -- household id (base32)
	seq         INTEGER NOT NULL,          -- highest seq of this household's feed it holds
	at_ms       INTEGER NOT NULL           -- when that was learnt, box clock
) STRICT;
`,
	// 8: key successions (docs/PROTOCOL.md §1.1): which key replaced
	// which, and the messages a recovery took out of a chain.
	`
CREATE TABLE successions (
	old         TEXT PRIMARY KEY,          -- the replaced key (household id, base32)
	new         TEXT NOT NULL,             -- the key that continues the household
	via         TEXT NOT NULL,             -- 'rotate' (handover signed by both keys) or 'recover' (signed by the recovery key)
	at_seq      INTEGER NOT NULL,          -- the old key's last valid seq; later ones are refused
	handover    TEXT NOT NULL,             -- id of the handover in the old feed ('' for recover)
	start       TEXT NOT NULL,             -- id of seq 1 of the new feed ('' until stored)
	detected_ms INTEGER NOT NULL
) STRICT;
CREATE TABLE superseded (
	id          TEXT PRIMARY KEY,          -- message id, hex
	author      TEXT NOT NULL,
	seq         INTEGER NOT NULL,
	raw         BLOB NOT NULL,             -- the signed message verbatim, kept as evidence, not history
	reason      TEXT NOT NULL,
	superseded_ms INTEGER NOT NULL
) STRICT;
`,
	// 9: the plain reports this household opened from sealed reports
	// addressed to it (docs/PROTOCOL.md §8.15). The ledger holds no keys:
	// the node opens them and stores the result here, so it survives
	// restarts and key rotation. A third party's ledger never has a row.
	`
CREATE TABLE opened_reports (
	id          TEXT PRIMARY KEY,          -- id of the sealed_report message, hex
	content     BLOB NOT NULL,             -- canonical content of the plain report it carries (kind 20 form)
	opened_ms   INTEGER NOT NULL
) STRICT;
`,
}

// migrate brings db to the latest version, len(migrations). A database from a newer program is
// refused rather than guessed at.
func migrate(ctx context.Context, db *sql.DB, path string) error {
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("read schema version of %s: %w", path, err)
	}
	if v > len(migrations) {
		return fmt.Errorf("ledger %s has schema version %d, this program knows up to %d: upgrade commons", path, v, len(migrations))
	}
	for ; v < len(migrations); v++ {
		if err := migrateStep(ctx, db, v); err != nil {
			return fmt.Errorf("migrate ledger %s to version %d: %w", path, v+1, err)
		}
	}
	return nil
}

func migrateStep(ctx context.Context, db *sql.DB, from int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// Re-read inside the write transaction: another opener may have
	// migrated meanwhile.
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	if v != from {
		return tx.Commit()
	}
	if _, err := tx.ExecContext(ctx, migrations[from]); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", from+1)); err != nil {
		return err
	}
	return tx.Commit()
}
