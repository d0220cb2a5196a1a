package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/commons-energy/commons/ledger"
	"github.com/commons-energy/commons/share"
	"github.com/commons-energy/commons/share/household"
)

// RecoveryKeyFile is the name of the recovery key file init writes next
// to the identity key. It is meant to be moved offline.
const RecoveryKeyFile = "recovery.key"

// RecoveryKeyPath is where init writes the recovery key.
func (h Home) RecoveryKeyPath() string { return filepath.Join(h.ConfigDir, RecoveryKeyFile) }

// nextKeyPath holds the key a rotation or recovery is moving to, until it
// replaces the identity key: written before anything is signed, so an
// interrupted replacement finishes with the same key (see finishKeyChange).
func (h Home) nextKeyPath() string { return h.KeyPath() + ".next" }

// ErrNoRecoveryKey is returned by RecoverKey for a household that never
// announced a recovery key (made before recovery keys existed): it can
// rotate its key while it holds it, but not recover.
var ErrNoRecoveryKey = errors.New("no recovery key announced")

// ErrWrongRecoveryKey is returned by RecoverKey for a recovery key that
// is not the one the household announced.
var ErrWrongRecoveryKey = errors.New("wrong recovery key")

// KeyChange reports a replacement of the household key.
type KeyChange struct {
	Old     share.HouseholdID
	New     share.HouseholdID
	Via     string // "rotate" or "recover"
	AtSeq   uint64 // the old key's last valid seq
	Retired string // where the old key file was moved
	// NewRecoveryKey is the recovery key file made for a household that
	// had announced none (one made before recovery keys): the new key's
	// feed announces it. Empty otherwise.
	NewRecoveryKey string
}

// announceRecoveryKey makes the household's recovery key at init: the
// private half to home's recovery key file (kept when it exists, so an
// interrupted init goes on with it), the public half announced in the
// feed. The caller holds the lock.
func (n *Node) announceRecoveryKey(ctx context.Context) error {
	if _, ok, err := n.led.RecoveryKey(ctx, n.key.ID(), 0); err != nil || ok {
		return err
	}
	rk, err := n.recoveryKeyFile()
	if err != nil {
		return err
	}
	_, err = n.sign(ctx, &share.RecoveryKey{Key: rk.ID()})
	return err
}

// recoveryKeyFile loads the home's recovery key file, or makes it.
func (n *Node) recoveryKeyFile() (*share.Identity, error) {
	path := n.home.RecoveryKeyPath()
	rk, err := share.LoadRecoveryKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		if rk, err = share.GenerateIdentity(nil); err == nil {
			err = rk.SaveRecovery(path)
		}
	}
	return rk, err
}

// RotateKey replaces the household's signing key with a new one: a
// handover in the old key's feed signed by both keys, then the new key's
// feed starting with a successor message and the household's recovery
// key. Neighbours follow the household to the new key; the old key's
// later messages are refused. The old key file is kept beside the new one
// as identity.key.retired-ID.
func (n *Node) RotateKey(ctx context.Context) (KeyChange, error) {
	if err := n.writable("rotate key"); err != nil {
		return KeyChange{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	old := n.key.ID()
	head, err := n.head(ctx)
	if err != nil {
		return KeyChange{}, err
	}
	next, err := n.nextKey()
	if err != nil {
		return KeyChange{}, err
	}
	created := n.created(head)
	hc, err := share.SignHandover(n.manifest.ID(), old, head, next)
	if err != nil {
		return KeyChange{}, err
	}
	h, err := n.key.Compose(n.manifest.ID(), head, created, hc)
	if err != nil {
		return KeyChange{}, fmt.Errorf("rotate key: %w", err)
	}
	msgs, err := n.startFeed(ctx, next, created, &share.Successor{Old: old, Handover: h.ID()})
	if err != nil {
		return KeyChange{}, err
	}
	kc := KeyChange{Old: old, New: next.ID(), Via: "rotate", AtSeq: h.Seq}
	if len(msgs) == 1 {
		// A household from before recovery keys: its new key announces
		// one, made now.
		rk, err := n.recoveryKeyFile()
		if err != nil {
			return KeyChange{}, err
		}
		r, err := next.Compose(n.manifest.ID(), share.HeadOf(msgs[0]), created, &share.RecoveryKey{Key: rk.ID()})
		if err != nil {
			return KeyChange{}, err
		}
		msgs = append(msgs, r)
		kc.NewRecoveryKey = n.home.RecoveryKeyPath()
	}
	if err := n.storeKeyChange(ctx, append([]*share.Message{h}, msgs...)); err != nil {
		return KeyChange{}, err
	}
	kc.Retired, err = n.switchKey(ctx, next)
	return kc, err
}

// RecoverKey continues the household under a new key after its key was
// lost, stolen or forked, by a recover message signed with rk, the
// recovery key announced in the feed. The old key's history is kept up to
// the recovery point, this box's head of its own feed, or the seq before
// the first fork of it this box knows; neighbours refuse and drop the old
// key's later messages.
func (n *Node) RecoverKey(ctx context.Context, rk *share.Identity) (KeyChange, error) {
	if err := n.writable("recover key"); err != nil {
		return KeyChange{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	old := n.key.ID()
	announced, ok, err := n.led.RecoveryKey(ctx, old, 0)
	if err != nil {
		return KeyChange{}, err
	}
	if !ok {
		return KeyChange{}, fmt.Errorf("household %s announced no recovery key (it was made before recovery keys existed): it cannot be recovered; while this box still holds its key, replace it with `commons key rotate`: %w", old.Short(), ErrNoRecoveryKey)
	}
	if announced != rk.ID() {
		return KeyChange{}, fmt.Errorf("recovery key %s is not this household's (it announced %s): use the recovery.key file that init made for this household: %w", rk.ID().Short(), announced.Short(), ErrWrongRecoveryKey)
	}
	point, err := n.head(ctx)
	if err != nil {
		return KeyChange{}, err
	}
	if f, err := n.led.FirstFork(ctx, old); err != nil {
		return KeyChange{}, err
	} else if f > 0 && f <= point.Seq {
		at, ok, err := n.led.HeadAt(ctx, old, f-1)
		if err != nil {
			return KeyChange{}, err
		}
		if !ok {
			return KeyChange{}, fmt.Errorf("recover key: the feed forked at seq %d and seq %d is missing", f, f-1)
		}
		point = at
	}
	if _, ok, err := n.led.RecoveryKey(ctx, old, point.Seq); err != nil {
		return KeyChange{}, err
	} else if !ok {
		return KeyChange{}, fmt.Errorf("recover key: the recovery key was announced after seq %d, where the feed must be recovered: %w", point.Seq, ErrNoRecoveryKey)
	}
	next, err := n.nextKey()
	if err != nil {
		return KeyChange{}, err
	}
	rc, err := share.SignRecover(n.manifest.ID(), old, point.Seq, point.ID, rk, next)
	if err != nil {
		return KeyChange{}, err
	}
	msgs, err := n.startFeed(ctx, next, n.created(point), rc)
	if err != nil {
		return KeyChange{}, err
	}
	if err := n.storeKeyChange(ctx, msgs); err != nil {
		return KeyChange{}, err
	}
	kc := KeyChange{Old: old, New: next.ID(), Via: "recover", AtSeq: point.Seq}
	kc.Retired, err = n.switchKey(ctx, next)
	return kc, err
}

// created is the time to sign a message after head: now, or head's time
// if the clock stepped back.
func (n *Node) created(head share.Head) time.Time {
	created := n.opts.Now()
	if created.UnixMilli() < head.CreatedMs {
		created = time.UnixMilli(head.CreatedMs)
	}
	return created
}

// nextKey returns the key to move to: the one an interrupted replacement
// left in the home, or a new one, saved before anything is signed with it.
func (n *Node) nextKey() (*share.Identity, error) {
	path := n.home.nextKeyPath()
	k, err := share.LoadIdentity(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	if k, err = share.GenerateIdentity(nil); err != nil {
		return nil, err
	}
	if err := k.Save(path); err != nil {
		return nil, err
	}
	return k, nil
}

// startFeed signs the first messages of next's feed: first, then the
// household's recovery key, when it announced one.
func (n *Node) startFeed(ctx context.Context, next *share.Identity, created time.Time, first share.Content) ([]*share.Message, error) {
	m, err := next.Compose(n.manifest.ID(), share.Head{}, created, first)
	if err != nil {
		return nil, fmt.Errorf("start the new key's feed: %w", err)
	}
	msgs := []*share.Message{m}
	if rk, ok, err := n.led.RecoveryKey(ctx, n.key.ID(), 0); err != nil {
		return nil, err
	} else if ok {
		r, err := next.Compose(n.manifest.ID(), share.HeadOf(m), created, &share.RecoveryKey{Key: rk})
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, r)
	}
	return msgs, nil
}

// storeKeyChange appends the messages of a key replacement durably and
// offers them to the transport.
func (n *Node) storeKeyChange(ctx context.Context, msgs []*share.Message) error {
	res, err := n.led.AppendMessages(ctx, msgs...)
	if err != nil {
		return err
	}
	raws := make([][]byte, len(msgs))
	for i, r := range res {
		if r.Outcome != ledger.Stored {
			return fmt.Errorf("store %s: %s: %w", r.Message.Kind, r.Outcome, r.Err)
		}
		raws[i] = msgs[i].Bytes()
	}
	if n.opts.Transport != nil {
		n.opts.Transport.Publish(raws...)
	}
	n.publish(household.Event{Kind: household.EventState})
	return nil
}

// switchKey makes next the household's key: the old key file moves to
// identity.key.retired-ID, the next key file takes its place, and the
// ledger is reopened with next as its own household. It returns where the
// old key went.
func (n *Node) switchKey(ctx context.Context, next *share.Identity) (string, error) {
	retired, err := n.home.swapKeys(n.key.ID())
	if err != nil {
		return "", err
	}
	led, err := ledger.Open(ctx, n.home.LedgerPath(), ledger.Options{Self: next.ID(), Manifest: n.manifest, Now: n.opts.Now, Logger: n.opts.Logger,
		Quota: n.cfg.Storage.Quota(), CacheKiB: n.opts.LedgerCacheKiB})
	if err != nil {
		return retired, err
	}
	n.led.Close()
	n.led, n.key = led, next
	n.log.Info("household key replaced", "old", retired, "new", next.ID().String())
	return retired, nil
}

// swapKeys moves the identity key (of id old) aside and the next key into
// its place.
func (h Home) swapKeys(old share.HouseholdID) (string, error) {
	retired := h.KeyPath() + ".retired-" + old.Short()
	if err := os.Rename(h.KeyPath(), retired); err != nil {
		return "", fmt.Errorf("retire the old key: %w", err)
	}
	if err := os.Rename(h.nextKeyPath(), h.KeyPath()); err != nil {
		return retired, fmt.Errorf("install the new key (it is in %s): %w", h.nextKeyPath(), err)
	}
	if d, err := os.Open(h.ConfigDir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return retired, nil
}

// finishKeyChange completes a key replacement interrupted after its
// messages were stored but before the key files were swapped: when the
// ledger records that key was replaced by the key in the next file, the
// files are swapped and the next key returned. Otherwise it returns key.
func finishKeyChange(ctx context.Context, home Home, led *ledger.Ledger, key *share.Identity) (*share.Identity, bool, error) {
	next, err := share.LoadIdentity(home.nextKeyPath())
	if errors.Is(err, fs.ErrNotExist) {
		return key, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	s, ok, err := led.SuccessionOf(ctx, key.ID())
	if err != nil || !ok || s.New != next.ID() {
		return key, false, err
	}
	if _, err := home.swapKeys(key.ID()); err != nil {
		return nil, false, err
	}
	return next, true, nil
}

// RetiredKeys returns the keys this household had before its current one
// (its predecessors in the ledger's successions) whose retired key files
// (identity.key.retired-ID) are still in the home, newest first. The
// transport presents them to neighbours that have not followed a key
// change yet (docs/PROTOCOL.md §15.1). A key lost or stolen before a
// recovery has no file and is not presented: those neighbours follow by
// an import, or through the community hub.
func (n *Node) RetiredKeys(ctx context.Context) ([]*share.Identity, error) {
	olds, err := n.led.Predecessors(ctx, n.key.ID())
	if err != nil {
		return nil, err
	}
	var out []*share.Identity
	for i := len(olds) - 1; i >= 0; i-- {
		k, err := share.LoadIdentity(n.home.KeyPath() + ".retired-" + olds[i].Short())
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("retired key of %s: %w", olds[i].Short(), err)
		}
		if k.ID() == olds[i] {
			out = append(out, k)
		}
	}
	return out, nil
}
