package node

import "github.com/commons-energy/commons/share/peer"

// The direct transport's syncer plugs into the node as its Transport.
var _ Transport = (*peer.Syncer)(nil)
