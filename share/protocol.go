package share

// KindProtocol is the kind of a Protocol message: the version of this
// document a household's program speaks (docs/PROTOCOL.md §8.16, §13.1).
const KindProtocol Kind = 6

// Protocol says which version of the protocol the author's program speaks
// (kind 6). A program writes one when it first runs a household, so
// neighbours know to send it what that version reads: a household that
// has never written a version 2 kind may be run by a version 1 program.
type Protocol struct {
	Version int64 `json:"version"`
}

// Kind returns KindProtocol.
func (*Protocol) Kind() Kind { return KindProtocol }

func (c *Protocol) validate() error {
	return checkInt("version", c.Version, 2, 65535)
}

func readProtocol(r *canonReader) Content {
	x := &Protocol{}
	r.field("version", true)
	x.Version = r.int()
	return x
}

// Version2Kinds returns the kinds version 2 introduced. Only a program of
// version 2 or later writes them, so a household that wrote one of them
// reads version 2 (sealed reports, settle2).
func Version2Kinds() []Kind {
	return []Kind{KindHandover, KindRecoveryKey, KindSuccessor, KindRecover, KindProtocol, KindSeen, KindSealedReport, KindSettle2}
}
