package meter

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Wired M-Bus (EN 13757-2/-3) long frames, ../shared/research/meter-protocols.md §5:
//
//	68 L L 68 C A CI <data> CS 16
//
// L counts C through the last data byte, CS is their sum mod 256. A
// variable data response (CI 72) has a 12-byte header (identification,
// manufacturer, version, medium, access number, status, signature) and
// data records of DIF [DIFE...] VIF [VIFE...] data. Reading wired M-Bus
// meters needs an M-Bus master (level converter) and a poll; here only the
// frame decoding exists, for captured frames.

// MBusFrame is a decoded RSP_UD long frame.
type MBusFrame struct {
	C, A, CI     byte
	ID           string // identification number (8 BCD digits)
	Manufacturer string // three-letter code, e.g. "ABB"
	Version      int
	Medium       int // 2 = electricity, 3 = gas, 4 = heat, 7 = water
	Access       int // access number
	Status       int
	Records      []MBusRecord
	MoreFollows  bool // the last DIF was 1F: the meter has more records
}

// MBusRecord is one data record in engineering units, kept exact.
type MBusRecord struct {
	Storage  int
	Tariff   int
	Subunit  int
	Function int    // 0 instantaneous, 1 maximum, 2 minimum, 3 during error
	Quantity string // "energy", "power", "voltage", "current", "dimensionless", "error flags", "manufacturer specific", or "vif XX"
	Unit     string // "Wh", "W", "V", "A" or ""
	Value    string // exact decimal value x 10^exponent of the VIF
	Raw      int64
	Exp      int
}

// MediumName names an M-Bus medium code.
func MediumName(m int) string {
	switch m {
	case 2:
		return "electricity"
	case 3:
		return "gas"
	case 4:
		return "heat"
	case 7:
		return "water"
	}
	return "medium " + strconv.Itoa(m)
}

// DecodeMBusFrame checks and decodes one long frame.
func DecodeMBusFrame(b []byte) (MBusFrame, error) {
	if len(b) < 9 || b[0] != 0x68 || b[3] != 0x68 || b[1] != b[2] {
		return MBusFrame{}, errors.New("mbus: not a long frame (68 L L 68)")
	}
	n := int(b[1])
	if len(b) != n+6 || b[len(b)-1] != 0x16 {
		return MBusFrame{}, fmt.Errorf("mbus: frame length %d does not match L=%d", len(b), n)
	}
	body := b[4 : 4+n]
	var sum byte
	for _, c := range body {
		sum += c
	}
	if sent := b[4+n]; sent != sum {
		return MBusFrame{}, fmt.Errorf("mbus: checksum mismatch: frame says %02X, bytes give %02X", sent, sum)
	}
	if n < 3 {
		return MBusFrame{}, errors.New("mbus: frame without C, A and CI fields")
	}
	f := MBusFrame{C: body[0], A: body[1], CI: body[2]}
	if f.CI != 0x72 {
		return f, fmt.Errorf("mbus: CI %02X is not a variable data response (72)", f.CI)
	}
	d := body[3:]
	if len(d) < 12 {
		return f, errors.New("mbus: variable data header cut short")
	}
	f.ID = bcdString(d[0:4])
	m := int(d[4]) | int(d[5])<<8
	f.Manufacturer = string([]byte{byte(m>>10&0x1f + 64), byte(m>>5&0x1f + 64), byte(m&0x1f + 64)})
	f.Version, f.Medium, f.Access, f.Status = int(d[6]), int(d[7]), int(d[8]), int(d[9])
	recs, more, err := mbusRecords(d[12:])
	f.Records, f.MoreFollows = recs, more
	return f, err
}

// bcdString returns the digits of little-endian packed BCD.
func bcdString(b []byte) string {
	out := make([]byte, 0, 2*len(b))
	for i := len(b) - 1; i >= 0; i-- {
		out = append(out, "0123456789ABCDEF"[b[i]>>4], "0123456789ABCDEF"[b[i]&0x0f])
	}
	return string(out)
}

// mbusDataLen gives the data length of a DIF data field code (-1: variable).
var mbusDataLen = [16]int{0, 1, 2, 3, 4, 4, 6, 8, 0, 1, 2, 3, 4, -1, 6, 0}

func mbusRecords(d []byte) ([]MBusRecord, bool, error) {
	var recs []MBusRecord
	for p := 0; p < len(d); {
		dif := d[p]
		p++
		switch dif {
		case 0x2F: // idle filler
			continue
		case 0x0F, 0x1F: // manufacturer specific data to the end
			return recs, dif == 0x1F, nil
		}
		r := MBusRecord{Storage: int(dif >> 6 & 1), Function: int(dif >> 4 & 3)}
		ext := dif&0x80 != 0
		for i := 0; ext; i++ {
			if p >= len(d) || i >= 10 {
				return recs, false, errors.New("mbus: DIFE chain cut short")
			}
			e := d[p]
			p++
			r.Storage |= int(e&0x0f) << (1 + 4*i)
			r.Tariff |= int(e>>4&3) << (2 * i)
			r.Subunit |= int(e>>6&1) << i
			ext = e&0x80 != 0
		}
		if p >= len(d) {
			return recs, false, errors.New("mbus: record without VIF")
		}
		vif := d[p]
		p++
		vifs := []byte{vif}
		for ext := vif&0x80 != 0; ext; {
			if p >= len(d) || len(vifs) > 11 {
				return recs, false, errors.New("mbus: VIFE chain cut short")
			}
			vifs = append(vifs, d[p])
			ext = d[p]&0x80 != 0
			p++
		}
		r.Quantity, r.Unit, r.Exp = mbusVIF(vifs)
		size := mbusDataLen[dif&0x0f]
		if size < 0 {
			if p >= len(d) {
				return recs, false, errors.New("mbus: variable-length record cut short")
			}
			size = int(d[p])
			p++
			if size > 0xBF {
				return recs, false, fmt.Errorf("mbus: variable-length record type %02X not supported", size)
			}
		}
		if p+size > len(d) {
			return recs, false, errors.New("mbus: record data cut short")
		}
		data := d[p : p+size]
		p += size
		switch c := dif & 0x0f; {
		case c >= 0x09 && c <= 0x0C || c == 0x0E:
			raw, ok := mbusBCD(data)
			if !ok {
				return recs, false, fmt.Errorf("mbus: record %d: invalid BCD %X", len(recs), data)
			}
			r.Raw = raw
		case c == 0x05:
			f := math.Float32frombits(uint32(data[0]) | uint32(data[1])<<8 | uint32(data[2])<<16 | uint32(data[3])<<24)
			r.Value = strconv.FormatFloat(float64(f)*math.Pow10(r.Exp), 'g', -1, 64)
			recs = append(recs, r)
			continue
		case c == 0x0D, c == 0x00, c == 0x08:
			r.Value = string(data)
			recs = append(recs, r)
			continue
		default:
			var u uint64
			for i := len(data) - 1; i >= 0; i-- {
				u = u<<8 | uint64(data[i])
			}
			shift := 64 - 8*uint(len(data))
			r.Raw = int64(u<<shift) >> shift
		}
		r.Value = decimalString(r.Raw, r.Exp)
		recs = append(recs, r)
	}
	return recs, false, nil
}

// mbusBCD decodes little-endian packed BCD; an F in the top nibble of the
// last byte marks a negative value.
func mbusBCD(b []byte) (int64, bool) {
	var v int64
	neg := false
	for i := len(b) - 1; i >= 0; i-- {
		hi, lo := b[i]>>4, b[i]&0x0f
		if i == len(b)-1 && hi == 0x0f {
			neg, hi = true, 0
		}
		if hi > 9 || lo > 9 {
			return 0, false
		}
		v = v*100 + int64(hi)*10 + int64(lo)
	}
	if neg {
		v = -v
	}
	return v, true
}

// mbusVIF names the quantity of a VIF chain (EN 13757-3 tables).
func mbusVIF(v []byte) (quantity, unit string, exp int) {
	code := v[0] & 0x7f
	switch {
	case v[0] == 0xFD && len(v) > 1:
		e := v[1] & 0x7f
		switch {
		case e&0x70 == 0x40:
			return "voltage", "V", int(e&0x0f) - 9
		case e&0x70 == 0x50:
			return "current", "A", int(e&0x0f) - 12
		case e == 0x3A:
			return "dimensionless", "", 0
		case e == 0x17:
			return "error flags", "", 0
		}
		return fmt.Sprintf("vif FD %02X", e), "", 0
	case v[0] == 0xFF:
		return "manufacturer specific", "", 0
	case code <= 0x07:
		return "energy", "Wh", int(code) - 3
	case code >= 0x28 && code <= 0x2F:
		return "power", "W", int(code&0x07) - 3
	}
	return fmt.Sprintf("vif %02X", v[0]), "", 0
}
