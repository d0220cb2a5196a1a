package meter

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// MarshalJSON encodes r as the reading object of the command-line contract
// (../shared/design/CLI.md): energy in integer Wh, power in integer W,
// voltage and current as decimal numbers, the meter's time in RFC 3339 with
// its own offset. Values the meter did not send are null or left out,
// never zero.
func (r Reading) MarshalJSON() ([]byte, error) {
	return r.AppendJSON(make([]byte, 0, 512)), nil
}

// AppendJSON appends the JSON encoding of r (see MarshalJSON) to dst.
func (r *Reading) AppendJSON(dst []byte) []byte {
	b := append(dst, `{"time":`...)
	b = appendTime(b, r.Time)
	if isFloating(r.Time) {
		b = append(b, `,"time_local":`...)
		b = appendLocalTime(b, r.Time)
	}
	b = append(b, `,"protocol":`...)
	b = appendString(b, r.Protocol)
	b = append(b, `,"version":`...)
	b = appendStringOrNull(b, r.Version)
	if r.Header != "" {
		b = append(b, `,"header":`...)
		b = appendString(b, r.Header)
	}
	b = append(b, `,"meter_id":`...)
	b = appendStringOrNull(b, r.MeterID)
	b = append(b, `,"power_import_w":`...)
	b = appendOptional(b, r.PowerImportW)
	b = append(b, `,"power_export_w":`...)
	b = appendOptional(b, r.PowerExportW)
	if r.PowerAbsW.OK {
		b = append(b, `,"power_abs_w":`...)
		b = strconv.AppendInt(b, r.PowerAbsW.V, 10)
	}
	b = append(b, `,"energy_import_wh":`...)
	b = appendRegisters(b, r.EnergyImport)
	b = append(b, `,"energy_export_wh":`...)
	b = appendRegisters(b, r.EnergyExport)
	b = append(b, `,"tariff":`...)
	if r.Tariff > 0 {
		b = strconv.AppendInt(b, int64(r.Tariff), 10)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"phases":[`...)
	first := true
	for i, p := range r.Phases {
		if !p.Present() {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, `{"phase":`...)
		b = strconv.AppendInt(b, int64(i+1), 10)
		if p.VoltageMV.OK {
			b = append(b, `,"voltage_v":`...)
			b = appendMilli(b, p.VoltageMV.V)
		}
		if p.CurrentMA.OK {
			b = append(b, `,"current_a":`...)
			b = appendMilli(b, p.CurrentMA.V)
		}
		if p.PowerImportW.OK {
			b = append(b, `,"power_import_w":`...)
			b = strconv.AppendInt(b, p.PowerImportW.V, 10)
		}
		if p.PowerExportW.OK {
			b = append(b, `,"power_export_w":`...)
			b = strconv.AppendInt(b, p.PowerExportW.V, 10)
		}
		b = append(b, '}')
	}
	b = append(b, `],"gas":`...)
	b = appendSubMeter(b, r.Gas)
	if r.Water != nil {
		b = append(b, `,"water":`...)
		b = appendSubMeter(b, r.Water)
	}
	if r.Heat != nil {
		b = append(b, `,"heat":`...)
		b = appendSubMeter(b, r.Heat)
	}
	b = appendDemand(b, r)
	if len(r.Registers) > 0 {
		b = append(b, `,"registers":[`...)
		for i, g := range r.Registers {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"id":`...)
			b = appendString(b, g.ID)
			b = append(b, `,"value":`...)
			b = appendString(b, g.Value)
			b = append(b, `,"unit":`...)
			b = appendString(b, g.Unit)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"checksum_ok":`...)
	b = strconv.AppendBool(b, r.ChecksumOK)
	return append(b, '}')
}

// appendDemand writes the capacity-tariff keys of a meter that sends them
// (docs/METER.md); a meter without them gets none of the keys.
func appendDemand(b []byte, r *Reading) []byte {
	if r.DemandAvgW.OK {
		b = append(b, `,"demand_avg_w":`...)
		b = strconv.AppendInt(b, r.DemandAvgW.V, 10)
	}
	if r.DemandPeakW.OK {
		b = append(b, `,"demand_peak_w":`...)
		b = strconv.AppendInt(b, r.DemandPeakW.V, 10)
		b = append(b, `,"demand_peak_time":`...)
		b = appendTime(b, r.DemandPeakTime)
	}
	if r.DemandPeakHistory != nil {
		b = append(b, `,"demand_peak_history":[`...)
		for i, p := range r.DemandPeakHistory {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"month":"`...)
			b = p.Month.AppendFormat(b, "2006-01")
			b = append(b, `","time":`...)
			b = appendTime(b, p.Time)
			b = append(b, `,"w":`...)
			b = strconv.AppendInt(b, p.W, 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return b
}

func isFloating(t time.Time) bool { return !t.IsZero() && t.Location() == Floating }

// appendTime writes t in RFC 3339 with its offset, or null when t is zero
// or has no known offset.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() || isFloating(t) {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339)
	return append(b, '"')
}

// appendLocalTime writes the wall clock of a flag-less meter time.
func appendLocalTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, "2006-01-02T15:04:05")
	return append(b, '"')
}

func appendOptional(b []byte, o Optional) []byte {
	if !o.OK {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, o.V, 10)
}

func appendRegisters(b []byte, g Registers) []byte {
	if !g.Present() {
		return append(b, "null"...)
	}
	b = append(b, '{')
	sep := false
	for _, kv := range [...]struct {
		k string
		v Optional
	}{{"total", g.Total}, {"tariff1", g.Tariff1}, {"tariff2", g.Tariff2}} {
		if !kv.v.OK {
			continue
		}
		if sep {
			b = append(b, ',')
		}
		sep = true
		b = append(b, '"')
		b = append(b, kv.k...)
		b = append(b, `":`...)
		b = strconv.AppendInt(b, kv.v.V, 10)
	}
	return append(b, '}')
}

// appendMilli writes v/1000 as an exact decimal number: 236900 -> 236.9,
// 10000 -> 10, -1500 -> -1.5.
func appendMilli(b []byte, v int64) []byte {
	u := uint64(v)
	if v < 0 {
		b = append(b, '-')
		u = uint64(-v)
	}
	b = strconv.AppendUint(b, u/1000, 10)
	frac := u % 1000
	if frac == 0 {
		return b
	}
	digits := [3]byte{byte('0' + frac/100), byte('0' + frac/10%10), byte('0' + frac%10)}
	n := 3
	for digits[n-1] == '0' {
		n--
	}
	b = append(b, '.')
	return append(b, digits[:n]...)
}

func appendSubMeter(b []byte, s *SubMeter) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"channel":`...)
	b = strconv.AppendInt(b, int64(s.Channel), 10)
	b = append(b, `,"device_type":`...)
	b = strconv.AppendInt(b, int64(s.DeviceType), 10)
	switch s.Unit {
	case "m3":
		b = append(b, `,"m3":`...)
	case "GJ":
		b = append(b, `,"gj":`...)
	default:
		b = append(b, `,"value":`...)
	}
	b = appendMilli(b, s.Milli)
	b = append(b, `,"unit":`...)
	b = appendString(b, s.Unit)
	b = append(b, `,"time":`...)
	b = appendTime(b, s.Time)
	if isFloating(s.Time) {
		b = append(b, `,"time_local":`...)
		b = appendLocalTime(b, s.Time)
	}
	return append(b, '}')
}

func appendStringOrNull(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendString(b, s)
}

// appendString writes s as a JSON string. Bytes that are not valid UTF-8
// (a meter header may hold 0xAB) are taken as Latin-1, so every byte stays
// visible and distinct: 0xAB becomes \u00ab.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			i++
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
