package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/commons-energy/commons/share"
)

// cursorSaveEvery is the longest time between two writes of the cursor
// file while messages arrive: a cursor that lags only makes a restarted
// household read a few messages again, which the ledger skips as
// duplicates, and the SD card is spared a write per message.
const cursorSaveEvery = 10 * time.Second

// consumeMessages reads the community's chain messages from after the
// cursor, hands them to the Sink in batches and moves the cursor.
func (c *Client) consumeMessages(ctx context.Context, js jetstream.JetStream, s jetstream.Stream) {
	for attempt := 1; ctx.Err() == nil; attempt++ {
		if err := c.consumeOnce(ctx, s); err != nil && ctx.Err() == nil {
			c.opErr(fmt.Errorf("read %s: %w", c.stream, err))
		} else {
			attempt = 0
		}
		if !wait(ctx, c.backoff(attempt)) {
			return
		}
	}
}

func (c *Client) consumeOnce(ctx context.Context, s jetstream.Stream) error {
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	cursor := c.State().Cursor
	if cursor > info.State.LastSeq {
		// The hub lost or recreated the stream: read it all again; what
		// is held already is skipped as duplicates.
		c.log.Warn("relay stream is behind the cursor: reading it from the start", "cursor", cursor, "last_seq", info.State.LastSeq)
		cursor = 0
		c.mu.Lock()
		c.st.Cursor = 0
		c.mu.Unlock()
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if cursor > 0 {
		cfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: cursor + 1}
	}
	it, done, err := orderedMessages(ctx, s, cfg)
	if err != nil {
		return err
	}
	defer done()
	var batch [][]byte
	var last uint64
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return err
		}
		md, err := m.Metadata()
		if err != nil {
			return err
		}
		last = md.Sequence.Stream
		if raw := m.Data(); c.forUs(raw) {
			batch = append(batch, raw)
		} else {
			c.skip(raw)
		}
		if md.NumPending > 0 && len(batch) < maxBatch {
			continue
		}
		if len(batch) == 0 {
			c.mu.Lock()
			c.st.Cursor = last
			c.mu.Unlock()
			c.saveCursor(false)
			continue
		}
		if err := c.deliver(ctx, batch, last, true); err != nil {
			return err
		}
		batch = batch[:0]
	}
}

// forUs reports whether a chain message from the hub is this household's
// to check and store: its own, or a neighbour's. The community stream
// carries every household's messages; those of households that are not
// neighbours are skipped without verifying or storing them, so a
// household's work grows with its neighbours, not with the community.
// What cannot be parsed goes to the Sink, which refuses and counts it.
func (c *Client) forUs(raw []byte) bool {
	pm, err := share.Parse(raw)
	if err != nil || pm.Author == c.cfg.Self || c.cfg.Known == nil {
		return true
	}
	// The first message of a neighbour's new key is read before the
	// key is known: it is what makes it known (§1.1).
	return c.cfg.Known(pm.Author) || pm.StartsSuccession()
}

// skip counts a message of a household that is not a neighbour and notes
// its author, whose subject is read again from the start if it becomes
// one.
func (c *Client) skip(raw []byte) {
	c.countSkipped()
	c.noteBehind(raw, "unknown_author")
}

// countSkipped counts a message that arrived and was not read.
func (c *Client) countSkipped() {
	now := c.cfg.Now()
	c.mu.Lock()
	c.st.Received++
	c.st.Skipped++
	c.st.LastMessage = &now
	c.mu.Unlock()
}

// deliver hands a batch of chain messages to the Sink and, once they are
// handled (stored, duplicates or refused for good), moves the cursor to
// last (with move). A Sink failure keeps the cursor: the batch comes
// again. An author whose message was refused for a gap in its chain or
// for not being a neighbour (yet) is read again from the start of its
// subject later (backfill).
func (c *Client) deliver(ctx context.Context, raws [][]byte, last uint64, move bool) error {
	res, err := c.cfg.Sink.Append(ctx, raws)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	var stored [][]byte
	now := c.cfg.Now()
	c.mu.Lock()
	c.st.Received += uint64(len(raws))
	c.st.LastMessage = &now
	for i, r := range res {
		switch r.Outcome {
		case Stored:
			c.st.Stored++
			stored = append(stored, raws[i])
		case Duplicate:
			c.st.Duplicates++
		default:
			c.st.Refused++
		}
	}
	if move {
		c.st.Cursor = last
	}
	c.mu.Unlock()
	for i, r := range res {
		if r.Outcome == Refused {
			// Debug: a hub full of junk must not fill the log; the
			// ledger counts the refusals by reason.
			c.log.Debug("relay message refused", "reason", r.Reason, "err", r.Err)
			c.noteBehind(raws[i], r.Reason)
		}
	}
	if len(stored) > 0 && c.cfg.OnStored != nil {
		c.cfg.OnStored(stored)
	}
	c.saveCursor(false)
	return nil
}

// maxBehind bounds the authors waiting for a backfill, so junk on the hub
// under many made-up authors cannot grow the map.
const maxBehind = 256

// noteBehind remembers the author of a message refused for a reason that
// reading its subject again may cure: a gap (messages before it were
// missed) or an author who is not a neighbour yet.
func (c *Client) noteBehind(raw []byte, reason string) {
	if reason != "seq_gap" && reason != "unknown_author" {
		return
	}
	pm, err := share.Parse(raw)
	if err != nil || pm.Author == c.cfg.Self {
		return
	}
	c.mu.Lock()
	if c.behind == nil {
		c.behind = map[share.HouseholdID]bool{}
	}
	if len(c.behind) < maxBehind {
		c.behind[pm.Author] = true
	}
	c.mu.Unlock()
	select {
	case c.behindKick <- struct{}{}:
	default:
	}
}

// backfillLoop reads again, from the start, the subject of each author
// noted behind once that author is a neighbour: a household that adds a
// neighbour after the hub carried its messages gets them all.
func (c *Client) backfillLoop(ctx context.Context, s jetstream.Stream) {
	t := time.NewTicker(c.cfg.Retry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.behindKick:
		case <-t.C:
		}
		c.mu.Lock()
		var due []share.HouseholdID
		for a := range c.behind {
			if c.cfg.Known == nil || c.cfg.Known(a) {
				due = append(due, a)
				delete(c.behind, a)
			}
		}
		c.mu.Unlock()
		for _, a := range due {
			if err := c.backfill(ctx, s, a); err != nil && ctx.Err() == nil {
				c.opErr(fmt.Errorf("read %s again: %w", a.Short(), err))
				c.mu.Lock()
				c.behind[a] = true
				c.mu.Unlock()
			}
		}
	}
}

// backfill reads author's subject from its start and hands it to the
// Sink; the ledger skips what it holds.
func (c *Client) backfill(ctx context.Context, s jetstream.Stream, author share.HouseholdID) error {
	subj := MsgSubject(c.cfg.Community, author)
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		return err
	}
	if info.State.Subjects[subj] == 0 {
		return nil
	}
	it, done, err := orderedMessages(ctx, s, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
	if err != nil {
		return err
	}
	defer done()
	var batch [][]byte
	for {
		m, err := it.Next()
		if err != nil {
			return err
		}
		md, err := m.Metadata()
		if err != nil {
			return err
		}
		batch = append(batch, m.Data())
		if md.NumPending > 0 && len(batch) < maxBatch {
			continue
		}
		if err := c.deliver(ctx, batch, 0, false); err != nil {
			return err
		}
		if md.NumPending == 0 {
			return nil
		}
		batch = batch[:0]
	}
}

// consumeStatuses reads the latest status of every household and then
// each new one.
func (c *Client) consumeStatuses(ctx context.Context, js jetstream.JetStream, s jetstream.Stream) {
	filter := "commons." + c.cfg.Community.String() + ".status.*"
	for attempt := 1; ctx.Err() == nil; attempt++ {
		err := func() error {
			it, done, err := orderedMessages(ctx, s, jetstream.OrderedConsumerConfig{
				DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy, FilterSubjects: []string{filter},
			})
			if err != nil {
				return err
			}
			defer done()
			for {
				m, err := it.Next()
				if err != nil {
					if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
						return nil
					}
					return err
				}
				c.status(ctx, m.Data())
			}
		}()
		if err != nil && ctx.Err() == nil {
			c.opErr(fmt.Errorf("read %s: %w", c.statusName, err))
		} else {
			attempt = 0
		}
		if !wait(ctx, c.backoff(attempt)) {
			return
		}
	}
}

func (c *Client) status(ctx context.Context, raw []byte) {
	if pm, err := share.Parse(raw); err == nil && pm.Author == c.cfg.Self {
		return // our own, back from the hub
	}
	if !c.forUs(raw) {
		// a stranger's status: not read (a neighbour added later sends
		// its next one within minutes)
		c.countSkipped()
		return
	}
	r, err := c.cfg.Sink.PutStatus(ctx, raw)
	now := c.cfg.Now()
	c.mu.Lock()
	c.st.Received++
	c.st.LastMessage = &now
	switch {
	case err != nil:
	case r.Outcome == Stored:
		c.st.Stored++
	case r.Outcome == Duplicate:
		c.st.Duplicates++
	default:
		c.st.Refused++
	}
	c.mu.Unlock()
	if err != nil {
		c.setErr(fmt.Errorf("store status: %w", err))
	} else if r.Outcome == Refused {
		c.log.Debug("relay status refused", "reason", r.Reason, "err", r.Err)
	}
}

// publish sends the household's chain (what follows the last own message
// the hub holds) and its latest status whenever the feed grows, the
// connection comes back, or a retry is due.
func (c *Client) publish(ctx context.Context, js jetstream.JetStream, s jetstream.Stream) {
	var published uint64
	known := false // published is the hub's last own seq
	greeted := len(c.cfg.Greet) == 0
	t := time.NewTicker(c.cfg.Retry)
	defer t.Stop()
	for {
		if !greeted {
			greeted = c.publishGreet(ctx, js) == nil
		}
		if !known {
			seq, err := c.hubHead(ctx, s)
			if err != nil {
				c.opErr(fmt.Errorf("read own head on the hub: %w", err))
			} else {
				published, known = seq, true
			}
		}
		if known {
			n, err := c.publishChain(ctx, js, published)
			published = n
			if err != nil {
				c.opErr(fmt.Errorf("publish: %w", err))
				// The hub may have taken a message whose answer was lost:
				// ask it again before the retry.
				known = false
			}
		}
		c.publishStatus(ctx, js)
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		case <-t.C:
		}
	}
}

// publishGreet publishes the Greet messages on their authors' subjects,
// with their ids as de-duplication ids (a message the hub holds already
// is not stored twice).
func (c *Client) publishGreet(ctx context.Context, js jetstream.JetStream) error {
	for _, raw := range c.cfg.Greet {
		pm, err := share.Parse(raw)
		if err != nil {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = js.Publish(pctx, MsgSubject(c.cfg.Community, pm.Author), raw, jetstream.WithMsgID(pm.ID().String()), jetstream.WithExpectStream(c.stream))
		cancel()
		if err != nil {
			c.opErr(fmt.Errorf("publish an earlier key's handover: %w", err))
			return err
		}
	}
	return nil
}

// hubHead returns the seq of the last own chain message the hub holds.
func (c *Client) hubHead(ctx context.Context, s jetstream.Stream) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := s.GetLastMsgForSubject(ctx, c.msgSubj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	pm, err := share.Parse(m.Data)
	if err != nil || pm.Author != c.cfg.Self {
		// Junk on our subject: it cannot be trusted to say how far
		// we are; publishing from the start is idempotent for the
		// ledgers that read it.
		return 0, nil
	}
	return pm.Seq, nil
}

// publishChain publishes own messages after seq from; it returns the last
// seq the hub acknowledged.
func (c *Client) publishChain(ctx context.Context, js jetstream.JetStream, from uint64) (uint64, error) {
	for {
		head, err := c.cfg.Feed.Head(ctx, c.cfg.Self)
		if err != nil {
			return from, err
		}
		if head.Seq <= from {
			return from, nil
		}
		raws, err := c.cfg.Feed.Range(ctx, c.cfg.Self, from+1, 64)
		if err != nil {
			return from, err
		}
		if len(raws) == 0 {
			return from, nil
		}
		for _, raw := range raws {
			pm, err := share.Parse(raw)
			if err != nil {
				return from, err
			}
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err = js.Publish(pctx, c.msgSubj, raw, jetstream.WithMsgID(pm.ID().String()), jetstream.WithExpectStream(c.stream))
			cancel()
			if err != nil {
				return from, err
			}
			from = pm.Seq
			c.mu.Lock()
			c.st.Published++
			c.mu.Unlock()
		}
	}
}

func (c *Client) publishStatus(ctx context.Context, js jetstream.JetStream) {
	c.mu.Lock()
	raw := c.pendingStatus
	c.mu.Unlock()
	if raw == nil {
		return
	}
	pm, err := share.Parse(raw)
	if err != nil {
		c.mu.Lock()
		c.pendingStatus = nil
		c.mu.Unlock()
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = js.Publish(pctx, c.statusSubj, raw, jetstream.WithMsgID(pm.ID().String()), jetstream.WithExpectStream(c.statusName))
	cancel()
	if err != nil {
		c.opErr(fmt.Errorf("publish status: %w", err))
		return
	}
	c.mu.Lock()
	if bytes.Equal(c.pendingStatus, raw) {
		c.pendingStatus = nil
	}
	c.st.Published++
	c.mu.Unlock()
}

// cursorFile is the cursor file's content.
type cursorFile struct {
	Stream string `json:"stream"`
	Seq    uint64 `json:"seq"`
}

// ReadCursor returns the last stream sequence handled for stream, 0 when
// the file does not exist or is for another stream.
func ReadCursor(path, stream string) (uint64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var f cursorFile
	if err := json.Unmarshal(b, &f); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	if f.Stream != stream {
		return 0, nil
	}
	return f.Seq, nil
}

// saveCursor writes the cursor file when it moved, at most every
// cursorSaveEvery unless force.
func (c *Client) saveCursor(force bool) {
	if c.cfg.CursorPath == "" {
		return
	}
	c.mu.Lock()
	cur := c.st.Cursor
	due := cur != c.savedCursor && (force || time.Since(c.savedAt) >= cursorSaveEvery)
	c.mu.Unlock()
	if !due {
		return
	}
	b, _ := json.Marshal(cursorFile{Stream: c.stream, Seq: cur})
	if err := writeFile(c.cfg.CursorPath, append(b, '\n')); err != nil {
		c.log.Warn("save relay cursor", "err", err)
		return
	}
	c.mu.Lock()
	c.savedCursor, c.savedAt = cur, time.Now()
	c.mu.Unlock()
}

// writeFile replaces path through a temporary file and a rename, so a
// crash leaves the old or the new cursor.
func writeFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// orderedMessages opens an ordered consumer on s and iterates over its
// messages until ctx ends or done is called.
func orderedMessages(ctx context.Context, s jetstream.Stream, cfg jetstream.OrderedConsumerConfig) (it jetstream.MessagesContext, done func(), err error) {
	cons, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	if it, err = cons.Messages(); err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, it.Stop)
	return it, func() { stop(); it.Stop() }, nil
}
