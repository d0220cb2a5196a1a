package meter

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// IEC 62056-21 ("D0", optical port) readouts, ../shared/research/meter-protocols.md §2:
//
//	/XXXZident CR LF [STX] data lines ... ! CR LF [ETX BCC]
//
// Mode C readouts carry STX after the identification line and end with
// ETX and a block check character, the XOR of every byte after STX up to
// and including ETX. Mode D pushes (German EasyMeter, Hager) and readouts
// captured without STX carry no checksum.

const (
	iecSTX = 0x02
	iecETX = 0x03
	iecACK = 0x06
)

// IECDecoder decodes IEC 62056-21 mode C readouts and mode D pushes. It
// skips noise, the echo of the request "/?!" that half-duplex IR heads send
// back, gateway trailers after "!", and accepts CR LF, LF or LF LF line
// ends.
type IECDecoder struct {
	max int
	buf []byte
	// state of the telegram at the start of buf
	stx   int // index of STX in buf, -1 when none
	bang  int // index of the '!' that ended the data, -1 while in data
	scan  int // where the search for '!' continues
	ident int // length of the identification line (through its line end)
}

// NewIECDecoder returns an IEC 62056-21 decoder. opts.MaxFrame bounds one
// readout.
func NewIECDecoder(opts DecoderOptions) *IECDecoder {
	d := &IECDecoder{max: opts.maxFrame()}
	d.reset()
	return d
}

// Protocol returns "iec62056-21".
func (d *IECDecoder) Protocol() string { return "iec62056-21" }

func (d *IECDecoder) reset() {
	d.stx, d.bang, d.scan, d.ident = -1, -1, 0, 0
}

// drop removes the first n bytes of buf and resets the telegram state.
func (d *IECDecoder) drop(n int) {
	d.buf = append(d.buf[:0], d.buf[n:]...)
	d.reset()
}

// Feed consumes p and emits one result per complete readout.
func (d *IECDecoder) Feed(p []byte, emit func(Reading, error)) {
	d.buf = append(d.buf, p...)
	for d.step(emit, false) {
	}
}

// Flush emits a readout that ended with "!" but whose ETX and BCC never
// came (a capture cut after "!"), without a checksum, and reports a readout
// cut off before its "!".
func (d *IECDecoder) Flush(emit func(Reading, error)) {
	for d.step(emit, true) {
	}
	if d.ident > 0 {
		emit(Reading{}, fmt.Errorf("iec62056-21: readout %s cut off before its end mark '!'", d.header()))
	}
	d.buf = d.buf[:0]
	d.reset()
}

func (d *IECDecoder) header() string {
	return strings.TrimRight(string(d.buf[:d.ident]), "\r\n")
}

// step makes one unit of progress; it reports whether to call it again.
func (d *IECDecoder) step(emit func(Reading, error), eof bool) bool {
	if d.ident == 0 {
		// Hunt for an identification line.
		s := bytes.IndexByte(d.buf, '/')
		if s < 0 {
			d.buf = d.buf[:0]
			return false
		}
		if s > 0 {
			d.drop(s)
		}
		nl := bytes.IndexAny(d.buf, "\r\n")
		if nl < 0 {
			if len(d.buf) > 128 { // no ident line is that long
				d.drop(1)
				return true
			}
			return false
		}
		line := d.buf[:nl]
		if !identLine(line) {
			// The echo of our request "/?!" or not an ident at all.
			d.drop(1)
			return true
		}
		end := nl
		for end < len(d.buf) && (d.buf[end] == '\r' || d.buf[end] == '\n') {
			end++
		}
		if end == len(d.buf) && !eof {
			return false // STX may follow
		}
		d.ident = nl + 1
		if end < len(d.buf) && d.buf[end] == iecSTX {
			d.stx = end
		}
		d.scan = end
	}
	if d.bang < 0 {
		for i := d.scan; i < len(d.buf); i++ {
			switch d.buf[i] {
			case '!':
				d.bang = i
			case '/':
				if d.buf[i-1] == '\n' || d.buf[i-1] == '\r' {
					// A new readout before this one ended: it was cut off.
					d.drop(i)
					return true
				}
			}
			if d.bang >= 0 {
				break
			}
		}
		if d.bang < 0 {
			d.scan = len(d.buf)
			if len(d.buf) > d.max {
				d.drop(1)
				return true
			}
			return false
		}
	}
	if d.stx < 0 {
		r, err := d.decode(d.buf[d.ident:d.bang])
		d.emitAndDrop(r, err, emit, d.bang+1)
		return true
	}
	// Mode C: '!' CR LF ETX BCC.
	i := d.bang + 1
	for i < len(d.buf) && (d.buf[i] == '\r' || d.buf[i] == '\n') {
		i++
	}
	switch {
	case i+1 < len(d.buf) && d.buf[i] == iecETX:
		var bcc byte
		for _, c := range d.buf[d.stx+1 : i+1] {
			bcc ^= c
		}
		if sent := d.buf[i+1]; sent != bcc {
			err := fmt.Errorf("iec62056-21: readout %s: BCC mismatch: sent %02X, computed %02X", d.header(), sent, bcc)
			d.emitAndDrop(Reading{}, err, emit, i+2)
			return true
		}
		r, err := d.decode(d.buf[d.stx+1 : d.bang])
		r.ChecksumOK = err == nil
		d.emitAndDrop(r, err, emit, i+2)
		return true
	case i < len(d.buf) && d.buf[i] != iecETX, eof:
		// No ETX follows: a readout captured without its checksum.
		r, err := d.decode(d.buf[d.stx+1 : d.bang])
		d.emitAndDrop(r, err, emit, d.bang+1)
		return true
	}
	return false
}

func (d *IECDecoder) emitAndDrop(r Reading, err error, emit func(Reading, error), n int) {
	if err == nil {
		r.Header = strings.TrimPrefix(d.header(), "/")
	}
	d.drop(n)
	emit(r, err)
}

// decode turns the data lines of one readout (from after the ident line or
// STX up to '!') into a reading.
func (d *IECDecoder) decode(data []byte) (Reading, error) {
	r := Reading{Protocol: "iec62056-21"}
	var v iecValues
	for len(data) > 0 {
		line := data
		if nl := bytes.IndexAny(data, "\r\n"); nl >= 0 {
			line, data = data[:nl], data[nl+1:]
		} else {
			data = nil
		}
		v.line(line, &r)
	}
	if len(r.Registers) == 0 && r.MeterID == "" && v.n == 0 {
		return Reading{}, errors.New("iec62056-21: readout holds no data lines")
	}
	v.fill(&r)
	return r, nil
}

// iecValues collects the values of one readout.
type iecValues struct {
	n      int                 // data lines understood
	energy map[[2]int]smlValue // {C, E} of C.8.E in Wh
}

// iecObis splits an id such as "1-0:21.7.255*255", "1.8.0", "1.8.1*03"
// or "16.7" into its C, D and E groups (E = -1 when absent). current is
// false when the id has a value group F other than 255 ("*96", "&04"): the
// value of a past billing period or day, not the register now.
func iecObis(id string) (c, d, e int, current, ok bool) {
	if i := strings.IndexByte(id, ':'); i >= 0 {
		id = id[i+1:]
	}
	current = true
	if i := strings.IndexAny(id, "*&"); i >= 0 {
		current = id[i+1:] == "255"
		id = id[:i]
	}
	parts := strings.Split(id, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, 0, 0, false, false
	}
	g := [3]int{-1, -1, -1}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 255 {
			return 0, 0, 0, false, false
		}
		g[i] = n
	}
	return g[0], g[1], g[2], current, true
}

// iecNumber parses a fixed-point decimal such as "-000142.30" or "+00026"
// into raw x 10^exp.
func iecNumber(s string) (raw int64, exp int, ok bool) {
	if s == "" {
		return 0, 0, false
	}
	neg := false
	switch s[0] {
	case '-':
		neg = true
		s = s[1:]
	case '+':
		s = s[1:]
	}
	digits := 0
	seenDot := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.' && !seenDot && i > 0:
			seenDot = true
		case c >= '0' && c <= '9':
			if raw > (1<<63-1-9)/10 {
				return 0, 0, false
			}
			raw = raw*10 + int64(c-'0')
			digits++
			if seenDot {
				exp--
			}
		default:
			return 0, 0, false
		}
	}
	if digits == 0 {
		return 0, 0, false
	}
	if neg {
		raw = -raw
	}
	return raw, exp, true
}

// line decodes one data line: ID(value*unit)(...). Lines it does not
// understand (noise, vendor records, text) are skipped: one bad line must
// not lose the readout.
func (v *iecValues) line(b []byte, r *Reading) {
	open := bytes.IndexByte(b, '(')
	if open <= 0 {
		return
	}
	cl := bytes.IndexByte(b[open:], ')')
	if cl < 0 {
		return
	}
	id := strings.TrimSpace(string(b[:open]))
	val := string(b[open+1 : open+cl])
	unit := ""
	if star := strings.IndexByte(val, '*'); star >= 0 {
		val, unit = val[:star], strings.TrimSpace(val[star+1:])
	}
	val = strings.TrimSpace(val)
	c, dg, e, current, isObis := iecObis(id)
	if isObis && current && c == 0 && (dg == 0 && (e == 0 || e == -1)) || id == "C.1.0" || id == "C.1" || isObis && c == 96 && dg == 1 {
		if r.MeterID == "" && val != "" {
			r.MeterID = val
		}
		v.n++
		return
	}
	raw, exp, num := iecNumber(val)
	if !isObis || !num || c == 0 || c == 96 || c > 80 && unit == "" {
		return
	}
	v.n++
	r.Registers = append(r.Registers, Register{ID: id, Value: decimalString(raw, exp), Unit: unit})
	if !current {
		return // a past period's value: kept in Registers with its id, never a current field
	}
	v.apply(c, dg, e, raw, exp, unit, r)
}

// scaled converts raw x 10^exp in unit to the integer unit of the field
// (W, Wh, mV, mA, milli-GJ); ok is false for a unit that does not fit.
func iecScaled(raw int64, exp int, unit string, kind byte) (int64, bool) {
	shift := -1
	switch kind {
	case 'P': // power in W
		switch strings.ToLower(unit) {
		case "w":
			shift = 0
		case "kw":
			shift = 3
		}
	case 'V':
		switch strings.ToLower(unit) {
		case "v":
			shift = 3
		case "kv":
			shift = 6
		}
	case 'A':
		if strings.EqualFold(unit, "a") {
			shift = 3
		}
	case 'G':
		if strings.EqualFold(unit, "gj") {
			shift = 3
		}
	}
	if shift < 0 {
		return 0, false
	}
	return scaleRound(raw, exp+shift)
}

func (v *iecValues) apply(c, d, e int, raw int64, exp int, unit string, r *Reading) {
	switch d {
	case 8:
		if c == 6 { // heat energy (Kamstrup Multical)
			if m, ok := iecScaled(raw, exp, unit, 'G'); ok {
				r.Heat = &SubMeter{DeviceType: 4, Milli: m, Unit: "GJ"}
			}
			return
		}
		if (c != 1 && c != 2) || e > 2 {
			return
		}
		if e < 0 {
			e = 0
		}
		sv := smlValue{raw: raw, ok: true}
		shift := 0
		switch strings.ToLower(unit) {
		case "kwh", "": // no unit: kWh (Hager eHZ)
			shift = 3
		case "wh":
		default:
			return
		}
		sv.scaler = exp + shift
		if v.energy == nil {
			v.energy = make(map[[2]int]smlValue)
		}
		v.energy[[2]int{c, e}] = sv
	case 7:
		switch c {
		case 32, 52, 72:
			if mv, ok := iecScaled(raw, exp, unit, 'V'); ok {
				r.Phases[(c-32)/20].VoltageMV = Some(mv)
			}
			return
		case 31, 51, 71:
			if ma, ok := iecScaled(raw, exp, unit, 'A'); ok {
				r.Phases[(c-31)/20].CurrentMA = Some(ma)
			}
			return
		}
		w, ok := iecScaled(raw, exp, unit, 'P')
		if !ok {
			return
		}
		// E = 255 (EasyMeter 1.7.255, 21.7.255) and the sum registers
		// 16/36/56/76 are signed net power; 1.7.0 is import, 2.7.0 export.
		net := e == 255 || c == 16 || c == 36 || c == 56 || c == 76
		var imp, exp *Optional
		switch c {
		case 1, 16:
			imp, exp = &r.PowerImportW, &r.PowerExportW
		case 2:
			r.PowerExportW = Some(w)
			return
		case 21, 41, 61, 36, 56, 76:
			i := (c - 21) / 20
			if c%10 == 6 {
				i = (c - 36) / 20
			}
			imp, exp = &r.Phases[i].PowerImportW, &r.Phases[i].PowerExportW
		case 22, 42, 62:
			r.Phases[(c-22)/20].PowerExportW = Some(w)
			return
		default:
			return
		}
		if net || w < 0 {
			signed(w, imp, exp)
		} else {
			*imp = Some(w)
		}
	}
}

func (v *iecValues) fill(r *Reading) {
	for c, regs := range map[int]*Registers{1: &r.EnergyImport, 2: &r.EnergyExport} {
		get := func(e int) (smlValue, bool) {
			sv, ok := v.energy[[2]int{c, e}]
			return sv, ok
		}
		set := func(o *Optional, sv smlValue) {
			if w, ok := scaleRound(sv.raw, sv.scaler); ok {
				*o = Some(w)
			}
		}
		var sum smlValue
		for e, o := range map[int]*Optional{1: &regs.Tariff1, 2: &regs.Tariff2} {
			if sv, ok := get(e); ok {
				set(o, sv)
				sum = addExact(sum, sv)
			}
		}
		if sv, ok := get(0); ok {
			set(&regs.Total, sv)
		} else if sum.ok {
			set(&regs.Total, sum)
		}
	}
}
