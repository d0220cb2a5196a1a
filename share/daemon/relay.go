package daemon

import (
	"context"
	"errors"

	"github.com/commons-energy/commons/ledger"
	"github.com/commons-energy/commons/share"
	"github.com/commons-energy/commons/share/node"
	"github.com/commons-energy/commons/share/peer"
	"github.com/commons-energy/commons/share/relay"
)

// setupHub makes the community hub link of a household whose config
// names a relay. It runs with Run.
func (rt *Runtime) setupHub(cfg node.Config, greet [][]byte) error {
	n := rt.n
	var auth relay.Auth
	if a := cfg.RelayAuth; a != nil {
		auth = relay.Auth{User: a.User, Password: a.Password, Token: a.Token, CredsFile: a.CredsFile, CAFile: a.CAFile, CertFile: a.CertFile, KeyFile: a.KeyFile}
	}
	hub, err := relay.New(relay.Config{
		URL: cfg.Relay, Auth: auth, Domain: cfg.RelayDomain, Community: n.Manifest().ID(), Self: n.Key().ID(),
		Greet: greet, Feed: n.Ledger(), Sink: relaySink{rt: rt}, CursorPath: n.Home().RelayCursorPath(),
		Known: (&peer.LedgerNeighbours{L: n.Ledger()}).Known, OnStored: rt.storedRaw, Logger: rt.log.With("part", "relay"), Now: rt.opts.Now,
	})
	if err != nil {
		return err
	}
	rt.hub = hub
	rt.relay.hub.Store(hub)
	return nil
}

// relaySink stores what arrives from the community hub exactly as what a
// neighbour pushes: the ledger opens every message (structure, community,
// signature, content hash), checks the author's admission, chain, clock
// and quota, and counts each refusal by reason.
type relaySink struct{ rt *Runtime }

// Append implements relay.Sink.
func (s relaySink) Append(ctx context.Context, raws [][]byte) ([]relay.Result, error) {
	res, err := s.rt.n.Ledger().Append(ctx, raws...)
	if err != nil {
		return nil, err
	}
	out := make([]relay.Result, len(res))
	for i, r := range res {
		out[i] = relayResult(r)
	}
	return out, nil
}

// PutStatus implements relay.Sink.
func (s relaySink) PutStatus(ctx context.Context, raw []byte) (relay.Result, error) {
	r, err := s.rt.n.Ledger().PutStatus(ctx, raw)
	if err != nil {
		return relay.Result{}, err
	}
	out := relayResult(r)
	if r.Outcome == ledger.Latest {
		out.Outcome = relay.Stored
		if r.Message != nil {
			if !r.Message.Kind.Known() {
				s.rt.relayEphemeral(raw) // on to the direct neighbours
			}
			s.rt.n.Stored(context.Background(), []*share.Message{r.Message})
		}
	}
	return out, nil
}

func relayResult(r ledger.Result) relay.Result {
	switch r.Outcome {
	case ledger.Stored:
		return relay.Result{Outcome: relay.Stored}
	case ledger.Duplicate, ledger.Older:
		return relay.Result{Outcome: relay.Duplicate}
	}
	err := r.Err
	if err == nil {
		err = errors.New("refused: " + r.Outcome.String())
	}
	return relay.Result{Outcome: relay.Refused, Reason: ledger.Reason(err), Err: err}
}

// storedRaw tells the node about chain messages the hub brought.
func (rt *Runtime) storedRaw(raws [][]byte) {
	parsed := make([]*share.Message, 0, len(raws))
	for _, raw := range raws {
		if rt.opts.OnStored != nil {
			rt.opts.OnStored(raw)
		}
		if pm, err := share.Parse(raw); err == nil {
			parsed = append(parsed, pm)
		}
	}
	rt.n.Stored(context.Background(), parsed)
}
