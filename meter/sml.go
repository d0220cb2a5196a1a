package meter

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SML 1.04 transport v1 (../shared/research/meter-protocols.md §3): a frame
// is 1B1B1B1B 01010101, the SML messages padded with 00 to a multiple of 4
// (payload occurrences of 1B1B1B1B doubled), then 1B1B1B1B 1A pp c1 c2 with
// pp the number of padding bytes and c1 c2 the CRC-16/X-25 of everything
// from the first start byte through pp, least significant byte first.

var (
	smlEscape = []byte{0x1b, 0x1b, 0x1b, 0x1b}
	smlStart  = []byte{0x1b, 0x1b, 0x1b, 0x1b, 0x01, 0x01, 0x01, 0x01}
)

const (
	// smlMaxFrame bounds one frame on the wire; real meters send a few
	// hundred bytes, the largest capture seen is 528.
	smlMaxFrame = 8 << 10
	// smlMaxDepth bounds the nesting of SML lists.
	smlMaxDepth = 12
	// smlMaxNodes bounds the number of TLV elements decoded per frame.
	smlMaxNodes = 4096
)

// SMLOptions are the per-meter settings of the SML decoder.
type SMLOptions struct {
	// DZGUnsigned16 reads a 16.7.0 power value sent as a negative
	// Integer16 as the unsigned 16-bit number it really is. Older DZG
	// DVS74 firmware sends 327.68..655.35 W that way (volkszaehler/libsml#59);
	// newer DZG meters send genuine negative values, so this is off by
	// default and must only be switched on for a meter known to need it.
	DZGUnsigned16 bool
}

// SMLDecoder decodes SML 1.04 frames (German eHZ, EDL21 and modern meters
// read through an IR head) into readings. It checks the transport
// CRC-16/X-25 before it looks at the messages, checks every message CRC,
// and resynchronises on the next start sequence after garbage, cut or
// corrupted frames.
type SMLDecoder struct {
	opts SMLOptions
	buf  []byte
	// resume is where the scan of the frame at the start of buf stopped
	// for want of bytes, so that a frame fed byte by byte is scanned once.
	resume int
	arena  []smlNode // TLV nodes, reused from frame to frame
}

// NewSMLDecoder returns an SML decoder with the given per-meter options.
func NewSMLDecoder(opts SMLOptions) *SMLDecoder {
	return &SMLDecoder{opts: opts}
}

// Protocol returns "sml".
func (d *SMLDecoder) Protocol() string { return "sml" }

// Feed consumes p and emits one result per complete frame: the reading, or
// an error when the frame's CRC or contents are bad. Frames cut off by a
// new start sequence are dropped silently, as they never completed.
func (d *SMLDecoder) Feed(p []byte, emit func(Reading, error)) {
	d.buf = append(d.buf, p...)
	for {
		s := bytes.Index(d.buf, smlStart)
		if s < 0 {
			// Keep a tail that may be the beginning of a start sequence.
			if keep := len(smlStart) - 1; len(d.buf) > keep {
				d.buf = append(d.buf[:0], d.buf[len(d.buf)-keep:]...)
			}
			return
		}
		from := 0
		if s == 0 {
			from = d.resume
		}
		d.resume = 0
		end, next, err := smlScanFrame(d.buf[s:], from)
		switch {
		case end == 0 && next < 0:
			// Need more bytes; drop what precedes the start.
			if s > 0 {
				d.buf = append(d.buf[:0], d.buf[s:]...)
			}
			d.resume = -next
			return
		case end == 0:
			// Not a complete frame: resync at next.
			d.buf = d.buf[s+next:]
			continue
		}
		frame := d.buf[s : s+end]
		if err != nil {
			emit(Reading{}, err)
		} else {
			r, err := d.decodeFrame(frame)
			emit(r, err)
		}
		d.buf = d.buf[s+end:]
	}
}

// smlScanFrame walks a candidate frame that starts with the start sequence,
// from the 4-byte aligned offset from (0 = the beginning). It returns
// end > 0 and next == end for a complete frame (err non-nil when its CRC is
// bad), end == 0 and next > 0 when the frame is abandoned and scanning
// should resume at next, and next < 0 when more bytes are needed: -next is
// where to continue once they have arrived.
func smlScanFrame(b []byte, from int) (end, next int, err error) {
	p := max(from, len(smlStart))
	for {
		if p > smlMaxFrame {
			return 0, 1, nil
		}
		if p+4 > len(b) {
			return 0, -p, nil
		}
		blk := b[p : p+4]
		if !bytes.Equal(blk, smlEscape) {
			// A start sequence that is not 4-byte aligned means bytes
			// were lost: abandon this frame there.
			for k := 1; k < 4; k++ {
				if b[p+k] != 0x1b {
					continue
				}
				if p+k+len(smlStart) > len(b) {
					if bytes.HasPrefix(smlStart, b[p+k:]) {
						return 0, -p, nil
					}
					continue
				}
				if bytes.Equal(b[p+k:p+k+len(smlStart)], smlStart) {
					return 0, p + k, nil
				}
			}
			p += 4
			continue
		}
		if p+8 > len(b) {
			return 0, -p, nil
		}
		esc := b[p+4 : p+8]
		switch {
		case bytes.Equal(esc, smlEscape):
			p += 8 // escaped 1B1B1B1B in the data
		case bytes.Equal(esc, smlStart[4:]):
			return 0, p, nil // a new frame starts: this one never ended
		case esc[0] == 0x1a:
			end = p + 8
			want := uint16(esc[2]) | uint16(esc[3])<<8
			if got := CRC16X25(b[:p+6]); got != want {
				return end, end, fmt.Errorf("sml: transport CRC mismatch: frame says %04X, bytes give %04X", want, got)
			}
			if int(esc[1]) > 3 {
				return end, end, fmt.Errorf("sml: bad padding count %d", esc[1])
			}
			return end, end, nil
		default:
			// An unknown escape: the frame is damaged. Resume after it.
			return 0, p + 4, nil
		}
	}
}

// smlPayload removes the escapes, the framing and the padding from a
// CRC-checked frame.
func smlPayload(frame []byte) []byte {
	body := frame[len(smlStart) : len(frame)-8]
	pad := int(frame[len(frame)-3])
	out := make([]byte, 0, len(body))
	for p := 0; p+4 <= len(body); p += 4 {
		out = append(out, body[p:p+4]...)
		if bytes.Equal(body[p:p+4], smlEscape) {
			p += 4 // skip the doubled copy
		}
	}
	if pad > len(out) {
		pad = len(out)
	}
	return out[:len(out)-pad]
}

func (d *SMLDecoder) decodeFrame(frame []byte) (Reading, error) {
	msgs, err := smlParseMessages(smlPayload(frame), &d.arena)
	if err != nil {
		return Reading{}, err
	}
	r := Reading{Protocol: "sml", ChecksumOK: true}
	vals := smlValues{regs: make([]Register, 0, 16)}
	found := false
	for _, m := range msgs {
		if m.tag != smlGetListResponse {
			continue
		}
		found = true
		body := m.body
		if len(body.list) != 7 {
			return Reading{}, errors.New("sml: GetListResponse has the wrong number of fields")
		}
		if sid := body.list[1]; sid.typ == smlOctets && len(sid.data) > 0 {
			r.MeterID = fmt.Sprintf("%X", sid.data)
		}
		for _, e := range body.list[4].list {
			if err := vals.add(e, d.opts); err != nil {
				return Reading{}, err
			}
		}
	}
	if !found {
		return Reading{}, errors.New("sml: frame holds no GetListResponse")
	}
	vals.fill(&r)
	return r, nil
}

// SML TLV types (type nibble of the TL byte).
const (
	smlOctets   = 0
	smlBool     = 4
	smlInt      = 5
	smlUint     = 6
	smlList     = 7
	smlAbsent   = 0xFE // the optional-absent marker 01
	smlEndOfMsg = 0xFF // 00
)

const (
	smlGetListResponse = 0x0701
)

type smlNode struct {
	typ  byte
	data []byte // octets or the integer bytes
	list []smlNode
}

type smlParser struct {
	b     []byte
	p     int
	nodes int
	arena []smlNode // backing store for lists, reused between frames
}

// alloc returns n list slots from the arena.
func (ps *smlParser) alloc(n int) []smlNode {
	if cap(ps.arena)-len(ps.arena) < n {
		ps.arena = make([]smlNode, 0, max(n, 2*cap(ps.arena), 256))
	}
	l := len(ps.arena)
	ps.arena = ps.arena[:l+n]
	return ps.arena[l : l+n : l+n]
}

func (ps *smlParser) tl() (typ byte, n int, err error) {
	if ps.p >= len(ps.b) {
		return 0, 0, errors.New("sml: message ends inside an element")
	}
	first := ps.b[ps.p]
	if first == 0x00 {
		ps.p++
		return smlEndOfMsg, 0, nil
	}
	typ = first >> 4 & 7
	n = int(first & 0x0f)
	more := first&0x80 != 0
	tlLen := 1
	ps.p++
	for more {
		if ps.p >= len(ps.b) || tlLen >= 4 {
			return 0, 0, errors.New("sml: bad type-length field")
		}
		c := ps.b[ps.p]
		ps.p++
		tlLen++
		n = n<<4 | int(c&0x0f)
		more = c&0x80 != 0
	}
	if typ == smlList {
		return typ, n, nil
	}
	if n < tlLen {
		return 0, 0, fmt.Errorf("sml: element length %d shorter than its type-length field", n)
	}
	return typ, n - tlLen, nil
}

func (ps *smlParser) node(depth int) (smlNode, error) {
	ps.nodes++
	if ps.nodes > smlMaxNodes {
		return smlNode{}, errors.New("sml: too many elements")
	}
	if depth > smlMaxDepth {
		return smlNode{}, errors.New("sml: lists nested too deep")
	}
	start := ps.p
	typ, n, err := ps.tl()
	if err != nil {
		return smlNode{}, err
	}
	switch typ {
	case smlEndOfMsg:
		return smlNode{typ: smlEndOfMsg}, nil
	case smlList:
		if n > len(ps.b)-ps.p {
			return smlNode{}, errors.New("sml: list longer than the frame")
		}
		nd := smlNode{typ: smlList, list: ps.alloc(n)}
		for i := range nd.list {
			c, err := ps.node(depth + 1)
			if err != nil {
				return smlNode{}, err
			}
			nd.list[i] = c
		}
		return nd, nil
	case smlOctets, smlBool, smlInt, smlUint:
		if n > len(ps.b)-ps.p {
			return smlNode{}, errors.New("sml: element longer than the frame")
		}
		if ps.b[start] == 0x01 {
			return smlNode{typ: smlAbsent}, nil
		}
		nd := smlNode{typ: typ, data: ps.b[ps.p : ps.p+n]}
		ps.p += n
		if (typ == smlInt || typ == smlUint) && (n == 0 || n > 8) {
			return smlNode{}, fmt.Errorf("sml: integer of %d bytes", n)
		}
		return nd, nil
	default:
		return smlNode{}, fmt.Errorf("sml: unknown element type %d", typ)
	}
}

type smlMessage struct {
	tag  uint64
	body smlNode
}

// smlParseMessages decodes the messages of a payload and checks each
// message's CRC (X-25, or KERMIT as some Holley firmware sends).
func smlParseMessages(b []byte, arena *[]smlNode) ([]smlMessage, error) {
	ps := &smlParser{b: b, arena: (*arena)[:0]}
	defer func() { *arena = ps.arena }()
	var out []smlMessage
	for ps.p < len(b) {
		if b[ps.p] == 0x00 { // padding
			ps.p++
			continue
		}
		start := ps.p
		typ, n, err := ps.tl()
		if err != nil {
			return nil, err
		}
		if typ != smlList || n != 6 {
			return nil, fmt.Errorf("sml: message at byte %d is not a list of 6", start)
		}
		var f [6]smlNode
		crcAt := 0
		for i := range f {
			if i == 4 {
				crcAt = ps.p
			}
			if f[i], err = ps.node(1); err != nil {
				return nil, err
			}
		}
		if f[5].typ != smlEndOfMsg {
			return nil, errors.New("sml: message does not end with endOfSmlMsg")
		}
		if f[4].typ != smlUint || len(f[4].data) != 2 {
			return nil, errors.New("sml: message CRC missing")
		}
		sent := uint16(f[4].data[1]) | uint16(f[4].data[0])<<8
		sent = sent<<8 | sent>>8
		covered := b[start:crcAt]
		if CRC16X25(covered) != sent && crc16Kermit(covered) != sent {
			return nil, fmt.Errorf("sml: message CRC mismatch: message says %04X, bytes give %04X", sent, CRC16X25(covered))
		}
		if f[3].typ != smlList || len(f[3].list) != 2 {
			return nil, errors.New("sml: message body is not a choice")
		}
		tag, ok := smlUnsigned(f[3].list[0])
		if !ok {
			return nil, errors.New("sml: message body tag is not an integer")
		}
		out = append(out, smlMessage{tag: tag, body: f[3].list[1]})
	}
	return out, nil
}

// crc16Kermit is CRC-16/KERMIT (X-25 without init and final XOR).
func crc16Kermit(p []byte) uint16 {
	var c uint16
	for _, b := range p {
		c = c>>8 ^ crcX25Table[byte(c)^b]
	}
	return c
}

func smlUnsigned(n smlNode) (uint64, bool) {
	if n.typ != smlUint && n.typ != smlInt {
		return 0, false
	}
	var v uint64
	for _, c := range n.data {
		v = v<<8 | uint64(c)
	}
	return v, true
}

// smlInteger reads a signed or unsigned integer element as int64.
func smlInteger(n smlNode) (int64, bool) {
	switch n.typ {
	case smlUint:
		v, _ := smlUnsigned(n)
		if v > 1<<63-1 {
			return 0, false
		}
		return int64(v), true
	case smlInt:
		v, _ := smlUnsigned(n)
		shift := 64 - 8*uint(len(n.data))
		return int64(v<<shift) >> shift, true
	}
	return 0, false
}

// smlUnitNames maps the DLMS unit codes SML meters send.
var smlUnitNames = map[int64]string{
	8: "deg", 27: "W", 28: "VA", 29: "var", 30: "Wh", 31: "VAh", 32: "varh",
	33: "A", 35: "V", 44: "Hz",
}

// smlValue is an exact fixed-point number raw x 10^scaler.
type smlValue struct {
	raw    int64
	scaler int
	ok     bool
}

// smlValues collects the list entries of one frame by OBIS code.
type smlValues struct {
	regs []Register
	byID map[[6]byte]smlEntryValue
}

type smlEntryValue struct {
	smlValue
	unit string
}

// smlKey is the OBIS code 1-0:c.d.e*255.
func smlKey(c, d, e int) [6]byte { return [6]byte{1, 0, byte(c), byte(d), byte(e), 255} }

// smlID formats an OBIS code as "A-B:C.D.E*F".
func smlID(o []byte) string {
	b := make([]byte, 0, 24)
	for i, sep := range []byte{'-', ':', '.', '.', '*', 0} {
		b = strconv.AppendUint(b, uint64(o[i]), 10)
		if sep != 0 {
			b = append(b, sep)
		}
	}
	return string(b)
}

func (v *smlValues) add(e smlNode, opts SMLOptions) error {
	if e.typ != smlList || len(e.list) != 7 {
		return errors.New("sml: list entry does not have 7 fields")
	}
	name := e.list[0]
	if name.typ != smlOctets || len(name.data) != 6 {
		return nil // not an OBIS-named entry
	}
	o := name.data
	id := smlID(o)
	unitCode, hasUnit := smlInteger(e.list[3])
	scaler := int64(0)
	if e.list[4].typ != smlAbsent {
		s, ok := smlInteger(e.list[4])
		if !ok || s < -20 || s > 20 {
			return fmt.Errorf("sml: %s has a bad scaler", id)
		}
		scaler = s
	}
	val := e.list[5]
	if val.typ != smlInt && val.typ != smlUint {
		return nil // octet strings: identities, signatures
	}
	raw, ok := smlInteger(val)
	if !ok {
		return fmt.Errorf("sml: %s does not fit 64 bits", id)
	}
	if opts.DZGUnsigned16 && o[2] == 16 && o[3] == 7 && val.typ == smlInt && len(val.data) == 2 && raw < 0 {
		raw += 1 << 16
	}
	if !hasUnit {
		return nil
	}
	unit, known := smlUnitNames[unitCode]
	if !known {
		unit = "unit" + strconv.FormatInt(unitCode, 10)
	}
	if v.byID == nil {
		v.byID = make(map[[6]byte]smlEntryValue, 16)
	}
	v.byID[[6]byte(o)] = smlEntryValue{smlValue{raw: raw, scaler: int(scaler), ok: true}, unit}
	v.regs = append(v.regs, Register{ID: id, Value: decimalString(raw, int(scaler)), Unit: unit, Raw: raw, Scaler: int(scaler)})
	return nil
}

// get returns the value of 1-0:c.d.e*255 in unit, scaled to 10^shift of
// that unit and rounded half away from zero.
func (v *smlValues) get(c, d, e int, unit string, shift int) (int64, bool) {
	sv, ok := v.byID[smlKey(c, d, e)]
	if !ok || sv.unit != unit {
		return 0, false
	}
	return scaleRound(sv.raw, sv.scaler+shift)
}

func (v *smlValues) energy(c int) Registers {
	var r Registers
	if w, ok := v.get(c, 8, 0, "Wh", 0); ok {
		r.Total = Some(w)
	}
	if w, ok := v.get(c, 8, 1, "Wh", 0); ok {
		r.Tariff1 = Some(w)
	}
	if w, ok := v.get(c, 8, 2, "Wh", 0); ok {
		r.Tariff2 = Some(w)
	}
	if !r.Total.OK && (r.Tariff1.OK || r.Tariff2.OK) {
		// Sum the exact values, then round once.
		var sum smlValue
		for _, e := range []int{1, 2} {
			if sv, ok := v.byID[smlKey(c, 8, e)]; ok && sv.unit == "Wh" {
				sum = addExact(sum, sv.smlValue)
			}
		}
		if sum.ok {
			if w, ok := scaleRound(sum.raw, sum.scaler); ok {
				r.Total = Some(w)
			}
		}
	}
	return r
}

// signed sets import/export from a signed net value.
func signed(w int64, imp, exp *Optional) {
	if w >= 0 {
		*imp, *exp = Some(w), Some(0)
	} else {
		*imp, *exp = Some(0), Some(-w)
	}
}

func (v *smlValues) fill(r *Reading) {
	r.Registers = v.regs
	r.EnergyImport = v.energy(1)
	r.EnergyExport = v.energy(2)
	switch {
	case v.has(16, 7, 0, "W"):
		w, _ := v.get(16, 7, 0, "W", 0)
		signed(w, &r.PowerImportW, &r.PowerExportW)
	case v.has(1, 7, 1, "W"):
		w, _ := v.get(1, 7, 1, "W", 0)
		signed(w, &r.PowerImportW, &r.PowerExportW)
	case v.has(1, 7, 0, "W"):
		w, _ := v.get(1, 7, 0, "W", 0)
		if w >= 0 {
			r.PowerImportW = Some(w)
		} else {
			signed(w, &r.PowerImportW, &r.PowerExportW)
		}
	}
	if w, ok := v.get(15, 7, 0, "W", 0); ok {
		if w < 0 {
			w = -w
		}
		r.PowerAbsW = Some(w)
	}
	for i, c := range [3]int{36, 56, 76} {
		if w, ok := v.get(c, 7, 0, "W", 0); ok {
			signed(w, &r.Phases[i].PowerImportW, &r.Phases[i].PowerExportW)
		}
		if mv, ok := v.get(c-4, 7, 0, "V", 3); ok {
			r.Phases[i].VoltageMV = Some(mv)
		}
		if ma, ok := v.get(c-5, 7, 0, "A", 3); ok {
			r.Phases[i].CurrentMA = Some(ma)
		}
	}
}

func (v *smlValues) has(c, d, e int, unit string) bool {
	_, ok := v.get(c, d, e, unit, 0)
	return ok
}

// addExact adds two fixed-point values at the finer scaler.
func addExact(a, b smlValue) smlValue {
	if !a.ok {
		return b
	}
	for a.scaler > b.scaler {
		a.raw *= 10
		a.scaler--
	}
	for b.scaler > a.scaler {
		b.raw *= 10
		b.scaler--
	}
	return smlValue{raw: a.raw + b.raw, scaler: a.scaler, ok: true}
}

// scaleRound returns raw x 10^exp rounded to an integer, halves away from
// zero; ok is false when the result does not fit int64.
func scaleRound(raw int64, exp int) (int64, bool) {
	if exp >= 0 {
		for range exp {
			if raw > (1<<63-1)/10 || raw < -(1<<63)/10 {
				return 0, false
			}
			raw *= 10
		}
		return raw, true
	}
	if exp < -18 {
		return 0, true
	}
	d := int64(1)
	for range -exp {
		d *= 10
	}
	q, rem := raw/d, raw%d
	if rem < 0 {
		rem = -rem
	}
	if 2*rem >= d {
		if raw < 0 {
			q--
		} else {
			q++
		}
	}
	return q, true
}

// decimalString formats raw x 10^exp exactly.
func decimalString(raw int64, exp int) string {
	neg := raw < 0
	u := uint64(raw)
	if neg {
		u = -u
	}
	s := strconv.FormatUint(u, 10)
	switch {
	case exp > 0:
		if u != 0 {
			s += strings.Repeat("0", exp)
		}
	case exp < 0:
		n := -exp
		if len(s) <= n {
			s = strings.Repeat("0", n-len(s)+1) + s
		}
		s = s[:len(s)-n] + "." + s[len(s)-n:]
	}
	if neg {
		s = "-" + s
	}
	return s
}
