package node

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/commons-energy/commons/ledger"
	"github.com/commons-energy/commons/share"
	"github.com/commons-energy/commons/share/household"
)

// head returns this household's chain head.
func (n *Node) head(ctx context.Context) (share.Head, error) {
	h, err := n.led.Head(ctx, n.key.ID())
	if err != nil {
		return share.Head{}, fmt.Errorf("read own chain head: %w", err)
	}
	return h, nil
}

// messagesOfKinds returns the stored chain messages of the given kinds in
// storage order.
func (n *Node) messagesOfKinds(ctx context.Context, kinds ...share.Kind) ([]*share.Message, error) {
	return n.led.MessagesOfKinds(ctx, kinds...)
}

// ownMessages returns the verbatim bytes of this household's own chain
// messages after the message since ("" = from the first, and then the
// feeds of the keys the household replaced come first, so that a
// receiver can follow it to its current key).
func (n *Node) ownMessages(ctx context.Context, since string) ([][]byte, error) {
	var out [][]byte
	if since == "" {
		olds, err := n.led.Predecessors(ctx, n.key.ID())
		if err != nil {
			return nil, err
		}
		for _, k := range olds {
			raws, err := n.feed(ctx, k, 1)
			if err != nil {
				return nil, err
			}
			out = append(out, raws...)
		}
	}
	from := uint64(1)
	if since != "" {
		id, err := n.led.FindMessage(ctx, strings.TrimSpace(since))
		switch {
		case errors.Is(err, ledger.ErrNotFound):
			return nil, fmt.Errorf("--since %s: %w: no stored message has that id", since, household.ErrNotFound)
		case errors.Is(err, ledger.ErrAmbiguous):
			return nil, fmt.Errorf("%w: --since %s: %w", household.ErrInvalid, since, err)
		case err != nil:
			return nil, fmt.Errorf("%w: --since: %w", household.ErrInvalid, err)
		}
		raw, err := n.led.Message(ctx, id)
		if err != nil {
			return nil, err
		}
		m, err := share.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: stored message %s does not parse: %w", household.ErrIntegrity, id.Short(), err)
		}
		if m.Author != n.key.ID() {
			return nil, fmt.Errorf("%w: --since %s is a message by %s; give the id of one of this household's own messages", household.ErrInvalid, id.Short(), m.Author.Short())
		}
		from = m.Seq + 1
	}
	raws, err := n.feed(ctx, n.key.ID(), from)
	return append(out, raws...), err
}

// feed returns author's stored chain messages from seq from on.
func (n *Node) feed(ctx context.Context, author share.HouseholdID, from uint64) ([][]byte, error) {
	var out [][]byte
	for {
		page, err := n.led.Range(ctx, author, from, rangePage)
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
