package node

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/input"
)

// ErrImplausible marks a pledge larger than the household's connection
// could export in its window. It also matches ErrInvalid. The CLI lets
// --force override it.
var ErrImplausible = errors.New("implausible pledge")

// inputError is an error a person can act on: its text is msg alone, and
// it matches every error in errs.
type inputError struct {
	msg  string
	errs []error
}

func (e *inputError) Error() string   { return e.msg }
func (e *inputError) Unwrap() []error { return e.errs }

// phases returns the number of phases the latest meter reading shows, or 0
// when there is no reading.
func (n *Node) phases() int {
	r, ok, _, running := n.Latest()
	if !running || !ok {
		return 0
	}
	c := 0
	for _, p := range r.Phases {
		if p.Present() {
			c++
		}
	}
	return c
}

// checkPlausible refuses wh over [start, end) when it is more than the
// household's connection can export then: fuse_a amperes (default 25) on
// the meter's phases (default 3) at 230 V.
func (n *Node) checkPlausible(wh int64, start, end time.Time) error {
	err := input.CheckPlausible(wh, n.cfg.FuseA, n.phases(), start, end)
	if err == nil {
		return nil
	}
	return &inputError{msg: input.Message(err), errs: []error{household.ErrInvalid, ErrImplausible}}
}

// notYou returns an error when nameOrID names this household itself.
func (n *Node) notYou(nameOrID string) error {
	id := n.key.ID().String()
	v := strings.TrimSpace(nameOrID)
	if strings.EqualFold(v, n.cfg.Name) || len(v) >= 4 && strings.HasPrefix(id, strings.ToLower(v)) {
		return fmt.Errorf("%w: %q is this household: that is you; pledge to a neighbour (see 'commons neighbours list')", household.ErrInvalid, nameOrID)
	}
	return nil
}
