// Package meter turns the bytes a household's smart meter sends over a serial
// port into exact readings: integer watts and watt-hours, the meter's own
// timestamp with its DST offset, per-phase values and sub-meters such as gas.
//
// It holds the serial port seam (Port), the streaming decoders per protocol
// (DSMR P1 and its dialects first), the reconnecting Reader, the simulator and
// serial port discovery.
package meter

import "time"

// Optional is an integer quantity a meter may or may not send. A missing
// value is never reported as zero.
type Optional struct {
	V  int64 // the value, in the unit its field names
	OK bool  // whether the meter sent it
}

// Some returns a present Optional holding v.
func Some(v int64) Optional { return Optional{V: v, OK: true} }

// Registers are cumulative energy counters of one direction in Wh.
// Total is the meter's own total register when it sends one, otherwise the
// sum of the tariff registers that are present.
type Registers struct {
	Total   Optional
	Tariff1 Optional
	Tariff2 Optional
}

// Present reports whether any register of this direction was sent.
func (r Registers) Present() bool { return r.Total.OK || r.Tariff1.OK || r.Tariff2.OK }

// Phase holds the instantaneous values of one phase.
type Phase struct {
	VoltageMV    Optional // millivolts
	CurrentMA    Optional // milliamperes
	PowerImportW Optional
	PowerExportW Optional
}

// Present reports whether the meter sent any value for this phase.
func (p Phase) Present() bool {
	return p.VoltageMV.OK || p.CurrentMA.OK || p.PowerImportW.OK || p.PowerExportW.OK
}

// SubMeter is a gas, water or heat meter read through the main meter's
// M-Bus channels. Value is in thousandths of the unit (litres for m3).
type SubMeter struct {
	Channel    int       // M-Bus channel 1..4
	DeviceType int       // M-Bus device type: 3 gas, 7 water, 4 heat
	Milli      int64     // value x 1000 in Unit
	Unit       string    // "m3", "GJ", ...
	Time       time.Time // the sub-meter's capture time; zero when none or a placeholder
}

// Reading is one decoded telegram or frame.
//
// Energy is in integer Wh and power in integer W, converted exactly from the
// meter's fixed-point text (kWh with three decimals is exact Wh). Values the
// meter did not send are not OK, never invented as zero.
type Reading struct {
	Time     time.Time // the meter's timestamp with the offset its DST flag gives; zero when none
	Protocol string    // "dsmr", "sml", "iec62056-21", "modbus", "smarty"
	Version  string    // protocol version as the meter states it, e.g. "50", "50217"; "" when unknown
	Header   string    // identification line without the leading '/', where the protocol has one
	MeterID  string    // equipment identifier as sent (DSMR: hex-encoded ASCII)

	PowerImportW Optional // power drawn from the grid now
	PowerExportW Optional // power delivered to the grid now
	EnergyImport Registers
	EnergyExport Registers
	Tariff       int // tariff indicator 1 or 2; 0 when unknown

	Phases [3]Phase // L1..L3; see Phase.Present
	Gas    *SubMeter
	Water  *SubMeter
	Heat   *SubMeter

	ChecksumOK bool // a checksum was present and matched

	// PowerAbsW is the magnitude of a direction-less power register (SML
	// 1-0:15.7.0 on EMH ED300L and eHZ meters): the meter says how much,
	// not which way, so it is neither import nor export.
	PowerAbsW Optional
	// The Belgian capacity tariff (e-MUCS 1.7+, Fluvius) bills the
	// highest quarter-hour average import power of each month. Demand is
	// that average, in W, converted exactly from the meter's kW.
	DemandAvgW Optional // 1-0:1.4.0: the running quarter hour's average demand
	// DemandPeakW is the highest quarter-hour average of the running month
	// (1-0:1.6.0), and DemandPeakTime when it was, with the offset of the
	// meter's DST flag; zero when the meter sent a placeholder.
	DemandPeakW    Optional
	DemandPeakTime time.Time
	// DemandPeakHistory is the peak of each past month the meter keeps
	// (0-0:98.1.0, up to 13), in the meter's order. nil when it sent none.
	DemandPeakHistory []DemandPeak

	// Registers are the numeric values exactly as the meter sent them, for
	// protocols whose fields do not all map onto the ones above (SML, IEC
	// 62056-21). nil when the decoder does not report them.
	Registers []Register
}

// DemandPeak is the peak demand of one past month (capacity tariff).
type DemandPeak struct {
	// Month is the first instant of the month the peak belongs to, in the
	// offset of the meter's period stamp (the month before the stamp that
	// closed it).
	Month time.Time
	// Time is when the peak quarter hour was; zero when the meter sent a
	// placeholder (it does for months it has no data of, with 0 W).
	Time time.Time
	W    int64 // the peak quarter hour's average import power
}

// Register is one numeric object of a frame, kept exact.
type Register struct {
	ID     string // object id as sent: "1-0:16.7.0*255" (SML), "1.8.0", "16.7", "1-0:1.7.255*255" (IEC 62056-21)
	Value  string // exact decimal value, e.g. "-299.12", "2324000"
	Unit   string // unit as sent or as named by the SML unit code: "Wh", "W", "kWh", "V", "A", "Hz", "deg", "GJ", "m3"; "" when none
	Raw    int64  // SML: the integer as transmitted; IEC: 0
	Scaler int    // SML: power of ten applied to Raw; IEC: 0
}

// NetPowerW is import minus export in W: positive when the household draws
// from the grid, negative when it exports. ok is false when the meter sent
// neither value.
func (r *Reading) NetPowerW() (w int64, ok bool) {
	if !r.PowerImportW.OK && !r.PowerExportW.OK {
		return 0, false
	}
	return r.PowerImportW.V - r.PowerExportW.V, true
}

// Decoder turns a byte stream of one protocol into readings. It is fed
// chunks of any size, keeps a bounded amount of a partial frame between
// calls, resynchronises on the protocol's start marker after garbage, and
// never panics on any input.
type Decoder interface {
	// Feed consumes p. For every complete frame it calls emit once, with
	// the reading when the frame is valid or a non-nil error saying why the
	// frame was rejected. emit must not retain the Reading's pointers past
	// the call unless it copies them.
	Feed(p []byte, emit func(Reading, error))
	// Protocol names the protocol, as in Reading.Protocol.
	Protocol() string
}
