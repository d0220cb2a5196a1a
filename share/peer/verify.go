package peer

import (
	"github.com/commons-energy/commons/share"
)

// ShareVerifier verifies messages with share.Open for one community:
// structure, community, Ed25519ctx signature, content hash and kind rules.
type ShareVerifier struct {
	Community share.CommunityID
}

// Verify implements Verifier.
func (v ShareVerifier) Verify(raw []byte) (Message, error) {
	m, err := share.Open(raw, v.Community)
	if err != nil {
		return Message{}, err
	}
	return Message{
		Raw:       m.Bytes(),
		ID:        m.ID(),
		Author:    m.Author,
		Seq:       m.Seq,
		Ephemeral: m.Ephemeral(),
	}, nil
}
