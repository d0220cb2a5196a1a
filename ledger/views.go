package ledger

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/commons-energy/commons/meter"
	"github.com/commons-energy/commons/share"
)

// Pledge is a pledge's state folded by share.FoldPledgeWith from the
// stored pledge message and the accept, decline, cancel, settle and
// settle2 messages that refer to it, at the ledger's clock, settles
// checked against the stored evidence.
type Pledge struct {
	share.PledgeView
	FromName, ToName string         // neighbour alias or announced name; "" when unknown
	Outgoing         bool           // this household gives
	Incoming         bool           // this household receives
	Start, End       time.Time      // the window, UTC
	Created          time.Time      // the pledge's (advisory) signing time
	DeliveredWh      meter.Optional // settled total, when settled
	// LimitedBy names the term of min(pledged, accepted, export, import)
	// that decided the settled total, and SlotLimits the one of each slot
	// of the window (share.ExplainSettled); empty until settled.
	LimitedBy  share.Limit
	SlotLimits []share.Limit
	// LatestOwn is the seq of this household's latest message about the
	// pledge (the pledge, or its answer), 0 when it wrote none; Delivered
	// says the counterparty's box has acknowledged it (RecordAck), and is
	// true when there is nothing of this household's to deliver.
	LatestOwn uint64
	Delivered bool
}

// Open reports whether the pledge can still change: pledged or accepted.
func (p *Pledge) Open() bool { return !p.State.Final() }

// PledgeFilter selects pledges. The zero filter selects every stored
// pledge.
type PledgeFilter struct {
	OpenOnly  bool              // pledged or accepted only
	Involving share.HouseholdID // only pledges from or to this household (zero: any)
	Between   share.HouseholdID // only pledges between Self and this household (zero: any)
}

// Pledges returns the pledges the filter selects, newest first.
func (l *Ledger) Pledges(ctx context.Context, f PledgeFilter) ([]Pledge, error) {
	vs, err := l.foldPledges(ctx, "")
	if err != nil {
		return nil, err
	}
	out := make([]Pledge, 0, len(vs))
	for _, p := range vs {
		if f.OpenOnly && !p.Open() {
			continue
		}
		if !f.Involving.IsZero() && p.From != f.Involving && p.To != f.Involving {
			continue
		}
		if !f.Between.IsZero() && !(p.From == l.opts.Self && p.To == f.Between) && !(p.To == l.opts.Self && p.From == f.Between) {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

// explain fills LimitedBy and SlotLimits of the settled pledges in ps. An
// exporter's settles are explained together, so a fold of some pledges
// (by id prefix) folds all of them once to find the others.
func (l *Ledger) explain(ctx context.Context, ps []Pledge, prefix string) error {
	settled := false
	for i := range ps {
		settled = settled || ps[i].Settlement != nil
	}
	if !settled {
		return nil
	}
	if prefix != "" {
		all, err := l.foldPledges(ctx, "")
		if err != nil {
			return err
		}
		byID := make(map[share.ID]*Pledge, len(all))
		for i := range all {
			byID[all[i].ID] = &all[i]
		}
		for i := range ps {
			if a := byID[ps[i].ID]; a != nil {
				ps[i].LimitedBy, ps[i].SlotLimits = a.LimitedBy, a.SlotLimits
			}
		}
		return nil
	}
	// A pledge settled by consistency (a sealed report this household
	// cannot read, PROTOCOL.md §10.4) has no figures to explain it by: it
	// keeps no LimitedBy, and its lower bounds must not explain others.
	views := make([]*share.PledgeView, 0, len(ps))
	for i := range ps {
		if !ps[i].Sealed {
			views = append(views, &ps[i].PledgeView)
		}
	}
	for id, allocs := range share.ExplainSettled(views) {
		for i := range ps {
			if ps[i].ID != id {
				continue
			}
			ps[i].LimitedBy = share.PledgeLimit(id, allocs)
			ps[i].SlotLimits = make([]share.Limit, len(allocs))
			for k, a := range allocs {
				ps[i].SlotLimits[k] = a.LimitedBy
			}
		}
	}
	return nil
}

// OpenPledges returns this household's pledged or accepted pledges, either
// direction, newest first.
func (l *Ledger) OpenPledges(ctx context.Context) ([]Pledge, error) {
	return l.Pledges(ctx, PledgeFilter{OpenOnly: true, Involving: l.opts.Self})
}

// PledgesWith returns the pledges between this household and a neighbour,
// newest first.
func (l *Ledger) PledgesWith(ctx context.Context, neighbour share.HouseholdID) ([]Pledge, error) {
	return l.Pledges(ctx, PledgeFilter{Between: neighbour})
}

// FindPledge returns the pledge whose id is idOrPrefix (at least 4 hex
// digits). It wraps ErrNotFound or ErrAmbiguous.
func (l *Ledger) FindPledge(ctx context.Context, idOrPrefix string) (Pledge, error) {
	p := strings.ToLower(strings.TrimSpace(idOrPrefix))
	if len(p) < 4 || len(p) > 64 || strings.Trim(p, "0123456789abcdef") != "" {
		return Pledge{}, fmt.Errorf("pledge %q: an id is 4 to 64 hex digits: %w", idOrPrefix, ErrNotFound)
	}
	vs, err := l.foldPledges(ctx, p)
	if err != nil {
		return Pledge{}, err
	}
	switch len(vs) {
	case 0:
		return Pledge{}, fmt.Errorf("pledge %s: %w: see `commons pledges`", p, ErrNotFound)
	case 1:
		return vs[0], nil
	}
	return Pledge{}, fmt.Errorf("pledge id %s matches %d pledges: %w: give more digits", p, len(vs), ErrAmbiguous)
}

// foldPledges folds every pledge whose id starts with prefix ("" = all),
// newest first.
func (l *Ledger) foldPledges(ctx context.Context, prefix string) ([]Pledge, error) {
	// Read the acknowledgements before taking a connection for the
	// transaction: RecordAck holds acksMu while it waits for one, and the
	// pool is small, so waiting for acksMu while holding a connection
	// could deadlock.
	acks, err := l.Acks(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := l.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("read pledges: %w", err)
	}
	defer tx.Rollback()
	hi := prefix + "g" // every hex id with this prefix sorts below
	pledges, err := loadMessages(ctx, tx, `SELECT raw FROM messages WHERE kind = ? AND id >= ? AND id < ? ORDER BY created_ms DESC, id`,
		int64(share.KindPledge), prefix, hi)
	if err != nil {
		return nil, fmt.Errorf("read pledges: %w", err)
	}
	if len(pledges) == 0 {
		return nil, nil
	}
	in, args := kindIn(share.KindAccept, share.KindDecline, share.KindCancel, share.KindSettle, share.KindSettle2, share.KindSeen)
	relQuery := `SELECT raw FROM messages WHERE ` + in
	if prefix != "" {
		relQuery += ` AND json_extract(content, '$.pledge') >= ? AND json_extract(content, '$.pledge') < ?`
		args = append(args, prefix, hi)
	}
	related, err := loadMessages(ctx, tx, relQuery, args...)
	if err != nil {
		return nil, fmt.Errorf("read pledge answers: %w", err)
	}
	byPledge := map[share.ID][]*share.Message{}
	settles := false
	for _, m := range related {
		settles = settles || m.Kind == share.KindSettle || m.Kind == share.KindSettle2
		c, err := m.Decode()
		if err != nil {
			continue // FoldPledge would ignore it too
		}
		if ref := share.RefersTo(c); !ref.IsZero() {
			byPledge[ref] = append(byPledge[ref], m)
		}
	}
	names, err := l.names(ctx, tx)
	if err != nil {
		return nil, err
	}
	// Settles are checked against the stored reports, accepts and feeds
	// (docs/PROTOCOL.md §10.4); only read them when there is a settle.
	var (
		ev    share.Evidence
		evErr error
	)
	if settles {
		set, err := loadEvidence(ctx, tx, &evErr)
		if err != nil {
			return nil, err
		}
		ev = set
	}
	self := l.opts.Self
	now := l.opts.Now()
	out := make([]Pledge, 0, len(pledges))
	for _, m := range pledges {
		v, err := share.FoldPledgeWith(l.opts.Manifest, m, byPledge[m.ID()], ev, now)
		if err != nil {
			l.log.Warn("stored pledge does not fold", "id", m.ID().String(), "err", err)
			continue
		}
		p := Pledge{PledgeView: *v, FromName: names[v.From], ToName: names[v.To],
			Outgoing: v.From == l.opts.Self, Incoming: v.To == l.opts.Self, Created: m.Created().UTC()}
		p.Start, p.End = l.opts.Manifest.Times(v.Window)
		if v.Settlement != nil {
			p.DeliveredWh = meter.Some(v.Settlement.TotalWh)
		}
		if m.Author == self {
			p.LatestOwn = m.Seq
		}
		for _, r := range byPledge[m.ID()] {
			if r.Author == self {
				p.LatestOwn = max(p.LatestOwn, r.Seq)
			}
		}
		counterparty := v.To
		if v.To == self {
			counterparty = v.From
		}
		p.Delivered = p.LatestOwn == 0 || acks[counterparty].Seq >= p.LatestOwn || answered(m, byPledge[m.ID()], self, counterparty, p.LatestOwn)
		out = append(out, p)
	}
	if evErr != nil {
		return nil, evErr
	}
	// Done with the transaction's connection before explain, which may
	// fold every pledge again (with its own).
	tx.Rollback()
	if err := l.explain(ctx, out, prefix); err != nil {
		return nil, err
	}
	return out, nil
}

// answered reports whether the counterparty signed something about pledge
// m that it could only sign holding this household's latest message about
// it (seq latestOwn): an accept or decline of this household's pledge, or
// a settle, which needs the pledge and its accept. Such an answer proves
// delivery however it travelled (a hub acknowledges nothing itself).
func answered(m *share.Message, related []*share.Message, self, counterparty share.HouseholdID, latestOwn uint64) bool {
	for _, r := range related {
		if r.Author != counterparty {
			continue
		}
		switch r.Kind {
		case share.KindAccept, share.KindDecline:
			if m.Author == self && m.Seq == latestOwn {
				return true
			}
		case share.KindSettle, share.KindSettle2:
			return true
		}
	}
	return false
}

func loadMessages(ctx context.Context, q querier, query string, args ...any) ([]*share.Message, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*share.Message
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, err
		}
		m, err := share.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("stored message does not parse (run `commons ledger verify`): %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// names maps households to display names: the local neighbour alias, else
// the name the household last announced.
func (l *Ledger) names(ctx context.Context, q querier) (map[share.HouseholdID]string, error) {
	out := map[share.HouseholdID]string{}
	rows, err := q.QueryContext(ctx, `SELECT m.author, m.content FROM messages m
JOIN (SELECT author, max(seq) AS seq FROM messages WHERE kind = ? GROUP BY author) a ON a.author = m.author AND a.seq = m.seq`,
		int64(share.KindAnnounce))
	if err != nil {
		return nil, fmt.Errorf("read names: %w", err)
	}
	for rows.Next() {
		var author, content string
		if err := rows.Scan(&author, &content); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read names: %w", err)
		}
		var a share.Announce
		id, err := share.ParseHouseholdID(author)
		if err == nil && json.Unmarshal([]byte(content), &a) == nil {
			out[id] = a.Name
		}
	}
	rows.Close()
	rows, err = q.QueryContext(ctx, `SELECT id, name FROM neighbours`)
	if err != nil {
		return nil, fmt.Errorf("read names: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, fmt.Errorf("read names: %w", err)
		}
		if h, err := share.ParseHouseholdID(id); err == nil {
			out[h] = name
		}
	}
	return out, rows.Err()
}

// Balance is the settled energy between this household and one neighbour.
type Balance struct {
	Neighbour       share.HouseholdID
	Name            string
	GivenWh         int64 // settled, this household exported to the neighbour, all time
	ReceivedWh      int64 // settled, the neighbour exported to this household, all time
	MonthGivenWh    int64 // the same for windows starting in the current calendar month
	MonthReceivedWh int64
	OpenPledges     int // pledged or accepted, either direction
}

// Balances returns the balance with every neighbour (current ones, and
// former ones with settled energy), by name. "This month" is the calendar
// month holding the ledger's clock in loc.
func (l *Ledger) Balances(ctx context.Context, loc *time.Location) ([]Balance, error) {
	ps, err := l.Pledges(ctx, PledgeFilter{Involving: l.opts.Self})
	if err != nil {
		return nil, err
	}
	ns, err := l.AllNeighbours(ctx)
	if err != nil {
		return nil, err
	}
	now := l.opts.Now().In(loc)
	monthStart := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, loc)
	monthEnd := monthStart.AddDate(0, 1, 0)
	by := map[share.HouseholdID]*Balance{}
	for _, n := range ns {
		if n.Removed.IsZero() {
			by[n.ID] = &Balance{Neighbour: n.ID, Name: n.Name}
		}
	}
	get := func(h share.HouseholdID, name string) *Balance {
		b := by[h]
		if b == nil {
			b = &Balance{Neighbour: h, Name: name}
			by[h] = b
		}
		return b
	}
	for _, p := range ps {
		other, name := p.To, p.ToName
		if p.Incoming {
			other, name = p.From, p.FromName
		}
		if other == l.opts.Self {
			continue
		}
		b := get(other, name)
		if p.Open() {
			b.OpenPledges++
		}
		if !p.DeliveredWh.OK {
			continue
		}
		inMonth := !p.Start.Before(monthStart) && p.Start.Before(monthEnd)
		if p.Outgoing {
			b.GivenWh += p.DeliveredWh.V
			if inMonth {
				b.MonthGivenWh += p.DeliveredWh.V
			}
		} else {
			b.ReceivedWh += p.DeliveredWh.V
			if inMonth {
				b.MonthReceivedWh += p.DeliveredWh.V
			}
		}
	}
	out := make([]Balance, 0, len(by))
	for _, b := range by {
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b Balance) int {
		if c := cmp.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return slices.Compare(a.Neighbour[:], b.Neighbour[:])
	})
	return out, nil
}

// Settlement is a settled pledge with its allocation per slot.
type Settlement struct {
	Pledge      share.ID
	Settle      share.ID // the settle message
	From, To    share.HouseholdID
	FromName    string
	ToName      string
	Window      share.SlotRange
	Start, End  time.Time
	PledgedWh   int64
	AcceptedWh  int64
	TotalWh     int64
	AllocatedWh []int64       // per slot of Window
	ExportWh    []int64       // exporter's measured export per slot
	ImportWh    []int64       // recipient's reported import per slot
	Key         string        // allocation key
	LimitedBy   share.Limit   // the term that decided TotalWh
	SlotLimits  []share.Limit // the term that decided each slot
}

// Settlements returns the settled pledges of this household, either
// direction, newest window first.
func (l *Ledger) Settlements(ctx context.Context) ([]Settlement, error) {
	ps, err := l.Pledges(ctx, PledgeFilter{Involving: l.opts.Self})
	if err != nil {
		return nil, err
	}
	var out []Settlement
	for _, p := range ps {
		s := p.Settlement
		if s == nil {
			continue
		}
		out = append(out, Settlement{
			Pledge: p.ID, Settle: p.Closing, From: p.From, To: p.To, FromName: p.FromName, ToName: p.ToName,
			Window: p.Window, Start: p.Start, End: p.End, PledgedWh: p.PledgedWh, AcceptedWh: p.AcceptedWh,
			TotalWh: s.TotalWh, AllocatedWh: s.AllocatedWh, ExportWh: s.ExportWh, ImportWh: s.ImportWh, Key: s.Key,
			LimitedBy: p.LimitedBy, SlotLimits: p.SlotLimits,
		})
	}
	slices.SortStableFunc(out, func(a, b Settlement) int { return cmp.Compare(b.Window.From, a.Window.From) })
	return out, nil
}
