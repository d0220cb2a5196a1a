package node

import "github.com/commons-energy/commons/meter"

// Balance is how a household with a production meter used its energy or
// power over one span (Wh) or at one instant (W): all figures in the same
// unit, exact integers.
type Balance struct {
	Production  int64 // from the production meter
	Import      int64 // from the grid meter
	Export      int64 // from the grid meter
	Consumption int64 // Production + Import - Export
	// SelfConsumed is the production used in the home: Production -
	// Export, within 0 and Production.
	SelfConsumed int64
	// SelfConsumptionPct is SelfConsumed / Production in whole percent
	// (rounded down); absent when nothing was produced.
	SelfConsumptionPct meter.Optional
	// SelfSufficiencyPct is SelfConsumed / Consumption in whole percent
	// (rounded down); absent when nothing was consumed.
	SelfSufficiencyPct meter.Optional
}

// NewBalance derives consumption, self-consumption and self-sufficiency
// from production, grid import and grid export.
func NewBalance(production, imp, exp int64) Balance {
	b := Balance{Production: production, Import: imp, Export: exp, Consumption: production + imp - exp}
	b.SelfConsumed = min(max(production-exp, 0), max(production, 0))
	if production > 0 {
		b.SelfConsumptionPct = meter.Some(b.SelfConsumed * 100 / production)
	}
	if b.Consumption > 0 {
		b.SelfSufficiencyPct = meter.Some(min(b.SelfConsumed, b.Consumption) * 100 / b.Consumption)
	}
	return b
}

func optPtr(o meter.Optional) *int64 {
	if !o.OK {
		return nil
	}
	v := o.V
	return &v
}
