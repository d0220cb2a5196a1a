package node

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/commons-energy/commons/ledger"
	"github.com/commons-energy/commons/share"
)

// The reads below go through the ledger's database read-only (Ledger.DB);
// every write goes through Ledger.Append, which verifies.

// head returns this household's chain head.
func (n *Node) head(ctx context.Context) (share.Head, error) {
	h, err := n.led.Head(ctx, n.key.ID())
	if err != nil {
		return share.Head{}, fmt.Errorf("read own chain head: %w", err)
	}
	return h, nil
}

// messagesOfKinds returns the stored chain messages of the given kinds in
// storage order, parsed from their verbatim bytes.
func (n *Node) messagesOfKinds(ctx context.Context, kinds ...share.Kind) ([]*share.Message, error) {
	ph := strings.TrimSuffix(strings.Repeat("?,", len(kinds)), ",")
	args := make([]any, len(kinds))
	for i, k := range kinds {
		args[i] = int64(k)
	}
	return n.queryMessages(ctx, `SELECT raw FROM messages WHERE kind IN (`+ph+`) ORDER BY rowid`, args...)
}

func (n *Node) queryMessages(ctx context.Context, q string, args ...any) ([]*share.Message, error) {
	rows, err := n.led.DB().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read messages: %w", err)
	}
	defer rows.Close()
	var out []*share.Message
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("read messages: %w", err)
		}
		m, err := share.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: stored message does not parse (%v): run 'commons ledger verify'", ErrIntegrity, err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read messages: %w", err)
	}
	return out, nil
}

// ownMessages returns the verbatim bytes of this household's own chain
// messages after the message since ("" = from the first).
func (n *Node) ownMessages(ctx context.Context, since string) ([][]byte, error) {
	from := uint64(1)
	if since != "" {
		id, err := n.led.FindMessage(ctx, strings.TrimSpace(since))
		switch {
		case errors.Is(err, ledger.ErrNotFound):
			return nil, fmt.Errorf("--since %s: %w: no stored message has that id", since, ErrNotFound)
		case errors.Is(err, ledger.ErrAmbiguous):
			return nil, fmt.Errorf("%w: --since %s: %w", ErrInvalid, since, err)
		case err != nil:
			return nil, fmt.Errorf("%w: --since: %w", ErrInvalid, err)
		}
		raw, err := n.led.Message(ctx, id)
		if err != nil {
			return nil, err
		}
		m, err := share.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: stored message %s does not parse: %w", ErrIntegrity, id.Short(), err)
		}
		if m.Author != n.key.ID() {
			return nil, fmt.Errorf("%w: --since %s is a message by %s; give the id of one of this household's own messages", ErrInvalid, id.Short(), m.Author.Short())
		}
		from = m.Seq + 1
	}
	var out [][]byte
	for {
		page, err := n.led.Range(ctx, n.key.ID(), from, rangePage)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < rangePage {
			return out, nil
		}
		from += uint64(len(page))
	}
}

// rangePage is the page size of ownMessages' reads.
const rangePage = 1000
