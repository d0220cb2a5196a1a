package meter

import (
	"bytes"
	"time"
)

// The offsets a DSMR DST flag gives: S = summer time, W = winter time, as
// in the Netherlands, Belgium and Luxembourg
// (../shared/research/meter-protocols.md §1.6). They are fixed zones, never
// a tz-database guess: in the autumn the hour 02:00-03:00 occurs twice and
// only the flag tells which.
var (
	zoneSummer = time.FixedZone("CEST", 2*3600)
	zoneWinter = time.FixedZone("CET", 1*3600)
)

// Floating is the location of a meter timestamp sent without a DST flag
// (DSMR 2.2/3.0 gas readings): the fields are the meter's wall clock and
// the offset is unknown. Such a time is not an instant; do not compare it
// with others or convert it to UTC.
var Floating = time.FixedZone("floating", 0)

// mbusSlot collects what one telegram says about one M-Bus channel.
type mbusSlot struct {
	devType int // -1 when the telegram has no 0-n:24.1.0
	milli   int64
	unit    string
	time    time.Time
	real    bool // a value with a unit and a real (not placeholder) time
}

// dsmrParser decodes complete telegrams. It keeps the storage that emitted
// readings point into, and the last header, version and meter id strings
// so that a steady stream of telegrams allocates nothing.
type dsmrParser struct {
	header, version, meterID string
	gas, water, heat         SubMeter
	mbus                     [5]mbusSlot  // by channel 1..4
	peaks                    []DemandPeak // storage of Reading.DemandPeakHistory
}

// intern returns b as a string, reusing *cache when it holds the same text.
func intern(cache *string, b []byte) string {
	if string(b) != *cache {
		*cache = string(b)
	}
	return *cache
}

// decode checks and parses one telegram. frame runs from '/' through '!';
// digits are the CRC hex digits after it (possibly none).
func (p *dsmrParser) decode(frame, digits []byte, off int64) (Reading, error) {
	hdr := headerOf(frame)
	r := Reading{Protocol: "dsmr"}
	if len(digits) > 0 {
		sent := hexValue(digits)
		computed := crc16ARCFast(frame)
		if sent != computed {
			e := &TelegramError{Offset: off, Header: string(hdr), Err: ErrChecksum, Sent: sent, Computed: computed, Digits: len(digits)}
			if bytes.IndexByte(frame, '\n') >= 0 && bytes.IndexByte(frame, '\r') < 0 {
				e.Detail = "its lines end in LF only, but the CRC covers CR LF: the bytes were changed on the way"
			}
			return Reading{}, e
		}
		r.ChecksumOK = true
	}
	r.Header = intern(&p.header, hdr)

	for ch := range p.mbus {
		p.mbus[ch] = mbusSlot{devType: -1}
	}
	var (
		objects    int
		bareLF     bool
		hasVersion bool
		hasTime    bool
		idRank     int // 3: 96.1.1, 2: 42.0.0, 1: 96.1.0
		pendingV2  int // channel whose 24.3.0 value comes on the next line
	)
	rest := frame[:len(frame)-1] // without '!'
	if j := bytes.IndexByte(rest, '\n'); j >= 0 {
		if j == 0 || rest[j-1] != '\r' {
			bareLF = true
		}
		rest = rest[j+1:]
	} else {
		rest = nil
	}
	for len(rest) > 0 {
		var line []byte
		if j := bytes.IndexByte(rest, '\n'); j >= 0 {
			line, rest = rest[:j], rest[j+1:]
			if len(line) == 0 || line[len(line)-1] != '\r' {
				bareLF = true
			} else {
				line = line[:len(line)-1]
			}
		} else {
			line, rest = rest, nil
		}
		if len(line) == 0 {
			continue
		}
		if line[0] == '(' {
			if pendingV2 > 0 {
				p.v2Value(pendingV2, line)
				pendingV2 = 0
			}
			continue
		}
		pendingV2 = 0
		key, fGroup, vals, ok := parseOBIS(line)
		if !ok {
			continue
		}
		objects++
		if fGroup != obisCurrent {
			continue // a past billing period's value: never a current register
		}
		f, more := field(vals)
		switch key {
		case obisVersion, obisVersionBE:
			hasVersion = true
			r.Version = intern(&p.version, f)
		case obisTime:
			hasTime = len(f) == 13 // a DSMR 4+ timestamp with DST flag
			r.Time, _ = parseTST(f)
		case obisEquipment, obisDeviceName, obisEquipmentAlt:
			rank := 1
			switch key {
			case obisEquipment:
				rank = 3
			case obisDeviceName:
				rank = 2
			}
			if rank > idRank && len(f) > 0 {
				idRank = rank
				r.MeterID = intern(&p.meterID, f)
			}
		case obisTariff:
			if v, ok := parseFixed(f, 0); ok && v >= 0 && v < 100 {
				r.Tariff = int(v)
			}
		case obisImportTotal:
			r.EnergyImport.Total = quantity(f, unitEnergy)
		case obisImportT1:
			r.EnergyImport.Tariff1 = quantity(f, unitEnergy)
		case obisImportT2:
			r.EnergyImport.Tariff2 = quantity(f, unitEnergy)
		case obisExportTotal:
			r.EnergyExport.Total = quantity(f, unitEnergy)
		case obisExportT1:
			r.EnergyExport.Tariff1 = quantity(f, unitEnergy)
		case obisExportT2:
			r.EnergyExport.Tariff2 = quantity(f, unitEnergy)
		case obisDemandAvg:
			r.DemandAvgW = quantity(f, unitPower)
		case obisDemandPeak:
			v, _ := field(more)
			if w := quantity(v, unitPower); w.OK && len(v) > 0 {
				r.DemandPeakW = w
				r.DemandPeakTime, _ = parseTST(f)
			}
		case obisDemandHist:
			r.DemandPeakHistory = p.peakHistory(vals)
		case obisPowerImport:
			r.PowerImportW = quantity(f, unitPower)
		case obisPowerExport:
			r.PowerExportW = quantity(f, unitPower)
		case obisL1Import:
			r.Phases[0].PowerImportW = quantity(f, unitPower)
		case obisL2Import:
			r.Phases[1].PowerImportW = quantity(f, unitPower)
		case obisL3Import:
			r.Phases[2].PowerImportW = quantity(f, unitPower)
		case obisL1Export:
			r.Phases[0].PowerExportW = quantity(f, unitPower)
		case obisL2Export:
			r.Phases[1].PowerExportW = quantity(f, unitPower)
		case obisL3Export:
			r.Phases[2].PowerExportW = quantity(f, unitPower)
		case obisL1Voltage:
			r.Phases[0].VoltageMV = quantity(f, unitVolt)
		case obisL2Voltage:
			r.Phases[1].VoltageMV = quantity(f, unitVolt)
		case obisL3Voltage:
			r.Phases[2].VoltageMV = quantity(f, unitVolt)
		case obisL1Current:
			r.Phases[0].CurrentMA = quantity(f, unitAmp)
		case obisL2Current:
			r.Phases[1].CurrentMA = quantity(f, unitAmp)
		case obisL3Current:
			r.Phases[2].CurrentMA = quantity(f, unitAmp)
		default:
			ch := key.channel()
			if key>>32 != 0 || ch < 1 || ch > 4 {
				break
			}
			switch key.withoutChannel() {
			case obisMBusType:
				if v, ok := parseFixed(f, 0); ok && v >= 0 && v < 256 {
					p.mbus[ch].devType = int(v)
				}
			case obisMBusValue, obisMBusValueBE:
				v, _ := field(more)
				p.mbusValue(ch, f, v)
			case obisMBusValueV2:
				if p.v2Header(ch, vals) {
					pendingV2 = ch
				}
			}
		}
	}

	if objects == 0 {
		return Reading{}, &TelegramError{Offset: off, Header: string(hdr), Err: ErrNoObjects,
			Detail: "nothing between the header and '!' reads as OBIS-code(value)"}
	}
	if !r.ChecksumOK {
		if hasVersion || hasTime {
			return Reading{}, &TelegramError{Offset: off, Header: string(hdr), Err: ErrNoChecksum,
				Detail: "a DSMR 4+/e-MUCS telegram must end in '!' and 4 hex digits; only DSMR 2.2/3.0 may omit them"}
		}
		if !plausibleV2Header(hdr) {
			return Reading{}, &TelegramError{Offset: off, Header: string(hdr), Err: ErrNoChecksum,
				Detail: "a telegram without CRC is taken only from a DSMR 2.2/3.0 meter, whose header starts with a 3-letter maker id and a digit"}
		}
		if bareLF {
			return Reading{}, &TelegramError{Offset: off, Header: string(hdr), Err: ErrLineEnding,
				Detail: "DSMR sends CR LF; without a CRC the telegram cannot be trusted"}
		}
		for i := len(hdr) + 1; i < len(frame); i++ {
			if frame[i] >= 0x80 {
				return Reading{}, &TelegramError{Offset: off, Header: string(hdr), Err: ErrParity,
					Detail: "a DSMR 2.2/3.0 meter sends 7E1: read the port with 7 data bits, even parity (or mask bit 7)"}
			}
		}
	}
	r.EnergyImport.fillTotal()
	r.EnergyExport.fillTotal()
	r.Gas, r.Water, r.Heat = p.pickSubMeters()
	return r, nil
}

// field returns the text inside the first "(...)" of vals and what follows
// it. An unterminated field yields what is there.
func field(vals []byte) (f, rest []byte) {
	if len(vals) == 0 || vals[0] != '(' {
		return nil, nil
	}
	j := bytes.IndexByte(vals, ')')
	if j < 0 {
		return vals[1:], nil
	}
	return vals[1:j], vals[j+1:]
}

// unitKind says which quantity a register holds, to pick its scale.
type unitKind uint8

const (
	unitEnergy unitKind = iota // Wh
	unitPower                  // W
	unitVolt                   // mV
	unitAmp                    // mA
)

// quantity parses "number*unit" into the integer base unit of kind. A
// value without a unit takes the DSMR default (kWh, kW, V, A); a unit that
// does not fit the kind (kvarh on an energy register) gives no value.
func quantity(f []byte, kind unitKind) Optional {
	num, unit := f, []byte(nil)
	if j := bytes.IndexByte(f, '*'); j >= 0 {
		num, unit = f[:j], f[j+1:]
	}
	scale := -1
	switch kind {
	case unitEnergy:
		switch string(unit) {
		case "", "kWh", "KWh", "kwh", "KWH":
			scale = 3
		case "Wh", "wh", "WH":
			scale = 0
		case "MWh":
			scale = 6
		}
	case unitPower:
		switch string(unit) {
		case "", "kW", "KW", "kw":
			scale = 3
		case "W", "w":
			scale = 0
		}
	case unitVolt:
		switch string(unit) {
		case "", "V", "v":
			scale = 3
		}
	case unitAmp:
		switch string(unit) {
		case "", "A", "a":
			scale = 3
		}
	}
	if scale < 0 {
		return Optional{}
	}
	v, ok := parseFixed(num, scale)
	if !ok {
		return Optional{}
	}
	return Some(v)
}

// parseFixed parses decimal text ("003432.829", "-1.5", "000000286")
// exactly into an integer of value x 10^scale. Extra fractional digits are
// rounded half away from zero. It never goes through floating point.
func parseFixed(b []byte, scale int) (int64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	var v int64
	digits, frac := 0, -1 // frac counts digits after '.', -1 before it
	roundUp := false
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			if frac >= scale {
				if frac == scale && c >= '5' {
					roundUp = true
				}
				frac++
				continue
			}
			if digits++; digits > 18 {
				return 0, false
			}
			v = v*10 + int64(c-'0')
			if frac >= 0 {
				frac++
			}
		case c == '.' && frac < 0:
			frac = 0
		default:
			return 0, false
		}
	}
	if digits == 0 {
		return 0, false
	}
	kept := max(frac, 0)
	if kept > scale {
		kept = scale
	}
	for ; kept < scale; kept++ {
		if v > (1<<63-1)/10 {
			return 0, false
		}
		v *= 10
	}
	if roundUp {
		v++
	}
	if neg {
		v = -v
	}
	return v, true
}

// parseTST parses a DSMR timestamp YYMMDDhhmmssX (X = S/s summer, W/w
// winter) or the flag-less YYMMDDhhmmss of DSMR 2.2/3.0, which gets the
// Floating location. Placeholders (632525252525X, 700101010000X,
// 000101......X) and impossible dates give ok == false.
func parseTST(b []byte) (t time.Time, ok bool) {
	loc := Floating
	switch len(b) {
	case 12:
	case 13:
		switch b[12] {
		case 'S', 's':
			loc = zoneSummer
		case 'W', 'w':
			loc = zoneWinter
		default:
			return time.Time{}, false
		}
	default:
		return time.Time{}, false
	}
	var f [6]int
	for i := range f {
		c0, c1 := b[2*i], b[2*i+1]
		if c0 < '0' || c0 > '9' || c1 < '0' || c1 > '9' {
			return time.Time{}, false
		}
		f[i] = int(c0-'0')*10 + int(c1-'0')
	}
	yy, mo, dd, hh, mi, ss := f[0], f[1], f[2], f[3], f[4], f[5]
	if yy == 0 && mo == 1 && dd == 1 || yy == 70 && mo == 1 && dd == 1 && hh == 1 && mi == 0 && ss == 0 {
		return time.Time{}, false // clock not set / empty M-Bus slot
	}
	if mo < 1 || mo > 12 || dd < 1 || dd > 31 || hh > 23 || mi > 59 || ss > 59 {
		return time.Time{}, false
	}
	t = time.Date(2000+yy, time.Month(mo), dd, hh, mi, ss, 0, loc)
	if t.Day() != dd { // 31 April and the like
		return time.Time{}, false
	}
	return t, true
}

// internUnit returns the unit as a string without allocating for the
// units M-Bus devices send.
func internUnit(u []byte) string {
	switch string(u) {
	case "m3":
		return "m3"
	case "GJ":
		return "GJ"
	case "MJ":
		return "MJ"
	case "kWh":
		return "kWh"
	case "MWh":
		return "MWh"
	case "":
		return ""
	}
	return string(u)
}

// mbusValue records 0-n:24.2.1 / 0-n:24.2.3 "(TST)(value*unit)".
func (p *dsmrParser) mbusValue(ch int, ts, val []byte) {
	s := &p.mbus[ch]
	num, unit := val, []byte(nil)
	if j := bytes.IndexByte(val, '*'); j >= 0 {
		num, unit = val[:j], val[j+1:]
	}
	milli, okV := parseFixed(num, 3)
	t, okT := parseTST(ts)
	if !okV || !okT || len(unit) == 0 {
		return // a placeholder or empty slot: not a reading
	}
	s.milli, s.unit, s.time, s.real = milli, internUnit(unit), t, true
}

// v2Header reads a DSMR 2.2/3.0 "0-n:24.3.0(TST)(00)(60)(1)(0-n:24.2.1)(m3)"
// line. It reports whether the value follows on the next line; when the
// line carries it as a seventh field it is recorded at once.
func (p *dsmrParser) v2Header(ch int, vals []byte) bool {
	var fs [7][]byte
	n := 0
	for n < len(fs) && len(vals) > 0 && vals[0] == '(' {
		fs[n], vals = field(vals)
		n++
	}
	if n < 6 {
		return false
	}
	s := &p.mbus[ch]
	t, okT := parseTST(fs[0])
	s.unit = internUnit(fs[5])
	if okT {
		s.time = t
	}
	if n == 7 {
		p.setV2(ch, fs[6])
		return false
	}
	return true
}

// v2Value reads the "(value)" line that follows a 24.3.0 header.
func (p *dsmrParser) v2Value(ch int, line []byte) {
	f, _ := field(line)
	p.setV2(ch, f)
}

func (p *dsmrParser) setV2(ch int, f []byte) {
	s := &p.mbus[ch]
	milli, ok := parseFixed(f, 3)
	if !ok || s.unit == "" || s.time.IsZero() {
		return
	}
	s.milli, s.real = milli, true
}

// pickSubMeters selects, per kind, the lowest M-Bus channel with a real
// reading: gas is device type 3 (or an untyped channel in m3), water 7,
// heat 4 (or an untyped channel in GJ).
func (p *dsmrParser) pickSubMeters() (gas, water, heat *SubMeter) {
	for ch := 1; ch < len(p.mbus); ch++ {
		s := &p.mbus[ch]
		if !s.real {
			continue
		}
		dt := s.devType
		if dt < 0 {
			switch s.unit {
			case "m3":
				dt = 3
			case "GJ":
				dt = 4
			}
		}
		sm := SubMeter{Channel: ch, DeviceType: dt, Milli: s.milli, Unit: s.unit, Time: s.time}
		switch {
		case dt == 3 && gas == nil:
			p.gas = sm
			gas = &p.gas
		case dt == 7 && water == nil:
			p.water = sm
			water = &p.water
		case dt == 4 && heat == nil:
			p.heat = sm
			heat = &p.heat
		}
	}
	return gas, water, heat
}

// maxPeakHistory bounds the entries of a 0-0:98.1.0 buffer (e-MUCS keeps
// 13 months).
const maxPeakHistory = 64

// peakHistory reads the e-MUCS buffer of past monthly peaks:
//
//	(n)(1-0:1.6.0)(1-0:1.6.0)(period stamp)(peak time)(kW) ... n times
//
// It returns nil when vals does not have that shape: the E.ON Hungary
// billing row on the same OBIS code starts with a timestamp, not a count.
// Entries whose value is not a power are skipped; a count larger than the
// entries present gives the complete ones.
func (p *dsmrParser) peakHistory(vals []byte) []DemandPeak {
	cnt, vals := field(vals)
	n, ok := parseFixed(cnt, 0)
	if !ok || n < 0 || n > maxPeakHistory || bytes.IndexByte(cnt, '.') >= 0 {
		return nil
	}
	for range 2 {
		var id []byte
		id, vals = field(vals)
		var buf [32]byte // parseOBIS wants the '(' that follows a code; never write into the frame
		if len(id) >= len(buf) {
			return nil
		}
		if k, _, _, ok := parseOBIS(append(append(buf[:0], id...), '(')); !ok || k != obisDemandPeak {
			return nil
		}
	}
	out := p.peaks[:0]
	for range n {
		var end, at, v []byte
		end, vals = field(vals)
		at, vals = field(vals)
		v, vals = field(vals)
		if v == nil {
			break
		}
		w := quantity(v, unitPower)
		if !w.OK {
			continue
		}
		e := DemandPeak{W: w.V}
		e.Time, _ = parseTST(at)
		if stamp, ok := parseTST(end); ok {
			prev := stamp.Add(-time.Second) // the period ends at the stamp
			e.Month = time.Date(prev.Year(), prev.Month(), 1, 0, 0, 0, 0, prev.Location())
		} else if !e.Time.IsZero() {
			e.Month = time.Date(e.Time.Year(), e.Time.Month(), 1, 0, 0, 0, 0, e.Time.Location())
		} else {
			continue // neither stamp says which month
		}
		out = append(out, e)
	}
	p.peaks = out
	return out[:len(out):len(out)]
}

// fillTotal sets Total to the sum of the tariff registers when the meter
// sent tariffs but no total register of its own.
func (g *Registers) fillTotal() {
	if g.Total.OK || !g.Tariff1.OK && !g.Tariff2.OK {
		return
	}
	g.Total = Some(g.Tariff1.V + g.Tariff2.V)
}

// plausibleV2Header reports whether a header looks like a DSMR 2.2/3.0
// identification: three letters (the maker's FLAG id), then the baud
// digit, e.g. "ISk5\2MT382-1000", "KMP5 KA6U001660297912".
func plausibleV2Header(h []byte) bool {
	if len(h) < 4 {
		return false
	}
	for _, c := range h[:3] {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return h[3] >= '0' && h[3] <= '9'
}
