package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/table"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/input"
)

// cursorMark is the first cell of the selected row, so the selection shows
// without colour or reverse video (NO_COLOR, Ascii profile).
const cursorMark = "›"

// fit gives the flexible columns the width left after the fixed ones.
// Every column takes one cell of padding.
func fit(cols []table.Column, width, flex int) []table.Column {
	used := 0
	for i, c := range cols {
		if i != flex {
			used += c.Width
		}
		used++
	}
	if w := min(width-used, max(24, cols[flex].Width)); w > cols[flex].Width {
		cols[flex].Width = w
	}
	return cols
}

func ledgerColumns(width int) []table.Column {
	cols := []table.Column{
		{Title: " ", Width: 1},
		{Title: "Window", Width: 18},
		{Title: "With", Width: 9},
		{Title: "Pledged", Width: 9},
		{Title: "Accepted", Width: 9},
		{Title: "Delivered", Width: 9},
		{Title: "State", Width: 10},
		{Title: "Check", Width: 6},
	}
	if width >= 120 {
		cols = append(cols, table.Column{Title: "Id", Width: household.ShortLen})
	}
	return fit(cols, width-1, 2)
}

// setRows replaces the rows, puts the cursor at c within range and marks it.
func setRows(t *table.Model, rows []table.Row, c int) {
	if c >= len(rows) {
		c = len(rows) - 1
	}
	if c < 0 {
		c = 0
	}
	t.SetRows(rows)
	t.SetCursor(c)
	markCursor(t)
}

// markCursor puts the cursor mark in the first cell of the selected row.
func markCursor(t *table.Model) {
	rows := t.Rows()
	c := t.Cursor()
	changed := false
	for i, r := range rows {
		want := " "
		if i == c {
			want = cursorMark
		}
		if len(r) > 0 && r[0] != want {
			r[0] = want
			changed = true
		}
	}
	if changed {
		t.SetRows(rows)
	}
}

// statusOldAfter is the age from which a neighbour's status is marked
// old: a box signs a new status on every meaningful change and at least
// every 5 minutes, so three missed ones mean its surplus or need may have
// changed unseen (the box, or the link to it, is down).
const statusOldAfter = 15 * time.Minute

func problemWords(n household.Neighbour) string {
	switch {
	case n.Problem != "":
		return n.Problem
	case n.Frozen:
		return "feed forked"
	case n.VerifyFailures > 0:
		return fmt.Sprintf("%d failed verification", n.VerifyFailures)
	}
	return ""
}

// shortKWh is energy in kWh (input.FormatKWh) without the unit, for
// columns whose title names it.
func shortKWh(wh int64) string {
	s := input.FormatKWh(wh)
	return strings.TrimSuffix(s, " kWh")
}

func (m common) pledgeRow(p household.Pledge) table.Row {
	with := "→ " + nameOr(p.ToName, p.To)
	if !p.Outgoing {
		with = "← " + nameOr(p.FromName, p.From)
	}
	opt := func(wh *int64) string {
		if wh == nil {
			return "-"
		}
		return input.FormatEnergy(*wh)
	}
	verified := "-"
	switch p.Verified {
	case household.VerifyOK:
		verified = "ok"
	case household.VerifyFailed:
		verified = "FAILED"
	}
	state := string(p.State)
	if !p.Outgoing && p.State == household.StatePledged {
		state = "answer?"
	}
	// "…" after the state: the counterparty's box has not acknowledged
	// this household's latest message about the pledge yet.
	if !p.Delivered {
		state += "…"
	}
	row := table.Row{" ", fmtWindow(m.now, p.Window.Start, p.Window.End, m.loc), with, input.FormatEnergy(p.EnergyWh),
		opt(p.AcceptedWh), opt(p.DeliveredWh), state, verified}
	if m.width >= 120 {
		row = append(row, household.ShortID(p.ID))
	}
	return row
}

// tableKey moves a table's cursor and keeps the mark on it.
func tableKey(t *table.Model, msg tea.KeyMsg) {
	before := t.Cursor()
	*t, _ = t.Update(msg)
	if t.Cursor() != before {
		markCursor(t)
	}
}
