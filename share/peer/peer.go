// Package peer is the direct transport between household boxes: no central
// server, each box listens on a TCP address and its neighbours dial it.
//
// Traffic is HTTP/1.1 over mutual TLS 1.3. Each box presents a self-signed
// certificate made from its Ed25519 identity key, and each side pins the
// other by household id (the Ed25519 public key): a client dials one
// expected neighbour and fails unless that key answers; a server accepts
// only the keys of known neighbours (and its own). There is no certificate
// authority.
//
// Replication is pull-based by (author, seq): a box asks a neighbour for
// its heads, then fetches what it lacks page by page, so a box that was
// offline for a week catches up. New local messages are also pushed for low
// latency, and ephemeral signed status messages are pushed to every
// neighbour. Every message is verified before it is handed to the Store, and
// only messages by known neighbours or by the box itself are accepted.
//
// The package talks to the household through the small interfaces Store,
// Neighbours and Verifier, which the ledger and the node satisfy.
package peer

import (
	"context"
	"errors"

	"github.com/commons-energy/commons/share"
)

// Message is what the transport needs to know about one verified message.
type Message struct {
	Raw       []byte            // the exact signed bytes, as received
	ID        share.ID          // the message id (hash of header and signature)
	Author    share.HouseholdID // the author's household id
	Seq       uint64            // position in the author's chain; 0 for ephemeral messages
	Ephemeral bool              // a status message: outside the chain, only the latest is kept
}

// Verifier checks one message's exact bytes (envelope, community, signature,
// content hash, kind rules) and returns its routing facts. It does not judge
// chain continuity or forks; the Store does. Errors describe the problem in
// one line.
type Verifier interface {
	Verify(raw []byte) (Message, error)
}

// Head is the last sequence number a store holds for one author.
type Head struct {
	Author share.HouseholdID
	Seq    uint64
}

// Outcome says what the store did with one appended message.
type Outcome int

// Outcomes of Store.Append.
const (
	Added     Outcome = iota // stored
	Duplicate                // already held (same id); nothing changed
	Rejected                 // not stored; AppendResult.Err says why
)

// AppendResult is the store's answer for one message.
type AppendResult struct {
	Outcome Outcome
	Err     error // for Rejected: wraps ErrConflict, ErrForbidden, ErrStorage or ErrInvalid
}

// ErrConflict is wrapped by Store rejections that are about the author's
// chain: a gap (seq beyond head+1), a wrong prev, or a fork (another
// message for the same author and seq). The HTTP answer is 409.
var ErrConflict = errors.New("chain conflict")

// ErrForbidden is wrapped by Store rejections of a message whose author is
// not admitted (HTTP 403).
var ErrForbidden = errors.New("author not admitted")

// ErrStorage is wrapped by Store rejections of a valid message the
// receiver will not store now: the author is over its storage quota or the
// receiver's disk is nearly full. A push answers it with 507 Insufficient
// Storage.
var ErrStorage = errors.New("not stored: storage limit")

// ErrInvalid is wrapped by other Store rejections of a message's content,
// such as a clock too far ahead (HTTP 400).
var ErrInvalid = errors.New("invalid message")

// Store is the household's durable message store.
type Store interface {
	// Heads lists the last seq held for every author.
	Heads(ctx context.Context) ([]Head, error)
	// Range returns the exact bytes of the author's messages with seq
	// greater than after, in seq order, at most limit of them.
	Range(ctx context.Context, author share.HouseholdID, after uint64, limit int) ([][]byte, error)
	// Append stores verified chain messages atomically per message and
	// durably before it returns, in order, one result per message.
	Append(ctx context.Context, msgs []Message) ([]AppendResult, error)
	// PutStatus keeps a verified ephemeral status message (only the latest
	// per author needs to be kept).
	PutStatus(ctx context.Context, msg Message) error
}

// Acker is implemented by stores that remember how far each neighbour's
// box holds this box's own feed (the ledger's acknowledgements, which
// say whether a pledge reached its counterparty). The Syncer reports the
// head of this box's feed a neighbour lists in its heads, and the last
// message of this box's feed in each push the neighbour took.
type Acker interface {
	RecordAck(ctx context.Context, neighbour share.HouseholdID, seq uint64) error
}

// HeadsSincer is implemented by stores that keep a change cursor over
// their heads (the ledger's heads table). A Server answers
// GET /v1/heads?since=C from it with only the authors whose head moved
// after C; a Syncer also uses it to read its own heads incrementally.
// Stores without it get the full list every time.
type HeadsSincer interface {
	// HeadsSince returns the heads that moved after cursor since and the
	// cursor to ask with next. since 0, or a cursor the store never gave,
	// returns every head with full true.
	HeadsSince(ctx context.Context, since uint64) (heads []Head, cursor uint64, full bool, err error)
}

// Neighbours is the household's list of known neighbours.
type Neighbours interface {
	// Known reports whether id is a neighbour whose messages are accepted.
	Known(id share.HouseholdID) bool
	// Addr returns the neighbour's host:port, if it has one.
	Addr(id share.HouseholdID) (string, bool)
	// List returns the ids of all neighbours.
	List() []share.HouseholdID
}
