package node

import (
	"context"

	"github.com/commons-energy/commons/share"
)

// announceProtocol writes the protocol message that tells neighbours this
// program reads version 2 (docs/PROTOCOL.md §8.16), so that they send it
// sealed reports and settle2, in a household whose feed shows no version
// 2 kind yet: one an older program made, at its first writable start with
// this one. A household this program made shows it by its recovery key.
func (n *Node) announceProtocol(ctx context.Context) error {
	self := n.key.ID()
	wrote, err := n.led.WroteAny(ctx, self, share.Version2Kinds()...)
	if err != nil || wrote {
		return err
	}
	_, err = n.sign(ctx, &share.Protocol{Version: share.ProtocolVersion})
	return err
}

// speaksVersion2 reports whether household h is known to run a program of
// protocol version 2 or later: its feed holds a message of a kind only
// such a program writes (share.Version2Kinds: a household this version
// made holds its recovery key, one an older program made gets a protocol
// message at its first start with this one). Otherwise it may be a
// version 1 program, which can read neither sealed reports nor settle2
// (§13.1). A read error counts as not known.
func (n *Node) speaksVersion2(ctx context.Context, h share.HouseholdID) bool {
	if h == n.key.ID() {
		return true
	}
	ok, err := n.led.WroteAny(ctx, h, share.Version2Kinds()...)
	if err != nil {
		n.log.Warn("could not tell which protocol a neighbour speaks", "household", h.Short(), "err", err)
	}
	return ok
}
