package tui

import (
	"context"
	"time"

	"github.com/commons-energy/commons/share/household"
)

// common is what every component of the dashboard shares, in the manner of
// soft-serve's ui/common: the household and the context of its calls, the
// styles of the session's renderer, the global key map, the clock and its
// zone, the terminal's size and whether the dashboard is read-only. The
// root Model owns the one true copy and hands it to each component by
// value after every message (Model.sync), so a component never reaches a
// global and two copies of a Model never share mutable state.
type common struct {
	ctx context.Context
	b   household.Household
	// st is shared by pointer: the styles never change after New, and a
	// frame copies the components several times.
	st    *styles
	keys  globalKeys
	clock func() time.Time
	loc   *time.Location
	// ascii draws charts and bars with line characters instead of braille
	// and blocks.
	ascii bool
	// readOnly is a viewer's dashboard: no pledge, accept, decline or
	// cancel.
	readOnly bool
	// width and height are the terminal's. A component's own area comes
	// with its SetSize.
	width, height int
	// now is the clock as the last message's command read it: Update
	// never reads the clock itself.
	now time.Time
}

func newCommon(b household.Household, opts Options) common {
	st := newStyles(opts.Renderer)
	return common{
		ctx:      opts.Context,
		b:        b,
		st:       &st,
		keys:     newGlobalKeys(opts.ReadOnly),
		clock:    opts.Now,
		loc:      opts.Location,
		ascii:    opts.ASCII,
		readOnly: opts.ReadOnly,
		width:    opts.Width,
		height:   opts.Height,
		now:      opts.Now(),
	}
}

// window formats a pledge window relative to now in the dashboard's zone.
func (c common) window(start, end time.Time) string { return fmtWindow(c.now, start, end, c.loc) }

// statusOld reports whether s is too old to be taken as the neighbour's
// state now, by the dashboard's clock.
func (c common) statusOld(s *household.NeighbourStatus) bool {
	return s != nil && c.now.Sub(s.Time) > statusOldAfter
}

// A request is what a component asks of the dashboard around it after
// handling a message: a notice in the status line, the cancel
// confirmation, the pledge form, a reload of the state. Components do not
// reach into each other or into the root; the root reads the request right
// after the component's Update (see Model.apply), so the effect shows in
// the same frame.
type request struct {
	notice    string
	noticeBad bool
	confirm   *confirmation // open this confirmation
	pledgeTo  *string       // open the pledge form, to this neighbour ("" to choose)
	reload    bool          // ask the household for its state again
}

// noticef is a request to show a notice.
func noticef(bad bool, format string, args ...any) request {
	return request{notice: sprintf(format, args...), noticeBad: bad}
}

// State look-ups shared by the components.

// firstIncoming returns the newest incoming pledge waiting for an answer.
func firstIncoming(st household.State, now time.Time) (household.Pledge, bool) {
	for _, p := range st.Pledges {
		if !p.Outgoing && p.State == household.StatePledged && p.Window.End.After(now) {
			return p, true
		}
	}
	return household.Pledge{}, false
}

func pledgeByID(st household.State, id string) (household.Pledge, bool) {
	if id == "" {
		return household.Pledge{}, false
	}
	for _, p := range st.Pledges {
		if p.ID == id {
			return p, true
		}
	}
	return household.Pledge{}, false
}

func neighbourByID(st household.State, id string) (household.Neighbour, bool) {
	for _, n := range st.Neighbours {
		if n.ID == id {
			return n, true
		}
	}
	return household.Neighbour{}, false
}

// neighbourName is a neighbour's name, or its short id.
func neighbourName(st household.State, id string) string {
	if n, ok := neighbourByID(st, id); ok && n.Name != "" {
		return n.Name
	}
	return household.ShortID(id)
}

func nameOr(name, id string) string {
	if name != "" {
		return name
	}
	return household.ShortID(id)
}
