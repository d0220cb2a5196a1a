package tui

import (
	"context"
	"strings"
	"testing"
)

// testCommon is the common value a dashboard on f at w x h would hand its
// components.
func testCommon(f *fakeBackend, w, h int) common {
	o := testOptions(w, h)
	o.Context = context.Background()
	return newCommon(f, o)
}

// TestLedgerComponentAlone: a component works without the root: it takes
// its state and size, handles its keys and asks the root for what is not
// its own (here the cancel confirmation) through its request.
func TestLedgerComponentAlone(t *testing.T) {
	f := newFake()
	st, _ := f.State(context.Background())
	l := newLedger(testCommon(f, 80, 24))
	l.SetState(st)
	l.SetSize(80, 21)
	if !strings.Contains(l.View(), "→ Bob") || !strings.Contains(l.View(), "1 expired offer") {
		t.Fatalf("ledger without its rows:\n%s", l.View())
	}
	l, _ = l.Update(press("f"))
	if !strings.Contains(l.View(), "Anna (f)") || strings.Contains(l.View(), "→ Bob") || l.take() != (request{}) {
		t.Errorf("f did not filter to Anna:\n%s", l.View())
	}
	l, _ = l.Update(press("esc"))
	l, _ = l.Update(press("j"))
	l, _ = l.Update(press("c"))
	r := l.take()
	if r.confirm == nil || r.confirm.id != "p1bob00001" {
		t.Errorf("c on Bob's open pledge asked for %+v, want the confirmation", r)
	}
	if r2 := l.take(); r2 != (request{}) {
		t.Errorf("a request is taken once; again: %+v", r2)
	}
}

// TestPledgeFormComponentAlone: the form opens on the neighbour it is
// given, and with no neighbours stays closed and asks for a notice.
func TestPledgeFormComponentAlone(t *testing.T) {
	f := newFake()
	st, _ := f.State(context.Background())
	c := testCommon(f, 80, 24)
	p := newPledgeForm(c)
	p.SetState(st)
	p, _ = p.Open("h-bob-00003")
	if !p.open || p.to != "h-bob-00003" || !p.textFocused() {
		t.Fatalf("open=%v to=%q focused=%v", p.open, p.to, p.textFocused())
	}
	p, _ = p.Update(press("esc"))
	if p.open {
		t.Error("esc did not close the form")
	}
	empty := newPledgeForm(c)
	empty, _ = empty.Open("")
	if r := empty.take(); empty.open || !strings.Contains(r.notice, "No neighbours yet") {
		t.Errorf("with no neighbours: open=%v request %+v", empty.open, r)
	}
}
