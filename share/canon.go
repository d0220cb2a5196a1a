package share

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strconv"
)

// canonReader reads content that must already be in the canonical JSON
// form of docs/PROTOCOL.md §7, in one pass and without reflection. Any
// deviation from the canonical bytes is an error, so it accepts exactly
// what EncodeContent produces (checked against encoding/json by
// FuzzCanonicalReader).
type canonReader struct {
	b   []byte
	i   int
	err error
}

func (r *canonReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("at byte %d: %s (content must be canonical JSON: fields in spec order, no spaces, integers only)", r.i, fmt.Sprintf(format, args...))
	}
}

// lit consumes s exactly.
func (r *canonReader) lit(s string) {
	if r.err != nil {
		return
	}
	if len(r.b)-r.i < len(s) || string(r.b[r.i:r.i+len(s)]) != s {
		r.fail("want %q", s)
		return
	}
	r.i += len(s)
}

// field consumes `"name":`, preceded by a comma unless first.
func (r *canonReader) field(name string, first bool) {
	if !first {
		r.lit(",")
	}
	r.lit(`"`)
	r.lit(name)
	r.lit(`":`)
}

// has reports whether the next bytes are `,"name":` (an optional field).
func (r *canonReader) has(name string) bool {
	if r.err != nil {
		return false
	}
	rest := r.b[r.i:]
	n := len(name)
	return len(rest) >= n+4 && rest[0] == ',' && rest[1] == '"' && string(rest[2:2+n]) == name && rest[2+n] == '"' && rest[3+n] == ':'
}

// int reads a canonical integer: 0 or -?[1-9][0-9]*, within int64.
func (r *canonReader) int() int64 {
	if r.err != nil {
		return 0
	}
	start := r.i
	if r.i < len(r.b) && r.b[r.i] == '-' {
		r.i++
	}
	d := r.i
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		r.i++
	}
	switch {
	case r.i == d:
		r.fail("want an integer")
		return 0
	case r.b[d] == '0' && (r.i-d > 1 || d > start):
		r.fail("integer with a leading zero or -0")
		return 0
	}
	if r.i < len(r.b) && (r.b[r.i] == '.' || r.b[r.i] == 'e' || r.b[r.i] == 'E') {
		r.fail("only integers are allowed")
		return 0
	}
	v, err := strconv.ParseInt(string(r.b[start:r.i]), 10, 64)
	if err != nil {
		r.fail("integer out of range")
		return 0
	}
	return v
}

// str reads a string whose only escapes are \" and \\. The caller
// validates its characters (checkText rejects everything encoding/json
// would escape otherwise).
func (r *canonReader) str() string {
	r.lit(`"`)
	if r.err != nil {
		return ""
	}
	var out []byte
	start := r.i
	for r.i < len(r.b) {
		c := r.b[r.i]
		switch {
		case c == '"':
			s := string(r.b[start:r.i])
			if out != nil {
				s = string(append(out, r.b[start:r.i]...))
			}
			r.i++
			return s
		case c == '\\':
			if r.i+1 >= len(r.b) || (r.b[r.i+1] != '"' && r.b[r.i+1] != '\\') {
				r.fail(`only \" and \\ escapes are canonical`)
				return ""
			}
			out = append(append(out, r.b[start:r.i]...), r.b[r.i+1])
			r.i += 2
			start = r.i
		case c < 0x20:
			r.fail("control character in string")
			return ""
		default:
			r.i++
		}
	}
	r.fail("unterminated string")
	return ""
}

// quoted consumes a string of exactly n bytes without escapes and returns
// its bytes (aliasing the input).
func (r *canonReader) quoted(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b)-r.i < n+2 || r.b[r.i] != '"' || r.b[r.i+n+1] != '"' {
		r.fail("want %s", what)
		return nil
	}
	v := r.b[r.i+1 : r.i+n+1]
	r.i += n + 2
	return v
}

func (r *canonReader) id() ID {
	const what = "a message id of 64 lowercase hex digits"
	var id ID
	v := r.quoted(64, what)
	if v == nil {
		return id
	}
	for _, c := range v {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			r.fail("want %s", what)
			return id
		}
	}
	hex.Decode(id[:], v)
	return id
}

func (r *canonReader) household() HouseholdID {
	const what = "a household id of 52 lowercase base32 characters"
	var h HouseholdID
	v := r.quoted(52, what)
	if v == nil {
		return h
	}
	var back [52]byte
	if n, err := b32.Decode(h[:], v); err != nil || n != len(h) {
		r.fail("want %s", what)
		return h
	}
	b32.Encode(back[:], h[:])
	if !bytes.Equal(back[:], v) {
		r.fail("want %s", what)
	}
	return h
}

func (r *canonReader) ints() []int64 { return readArray(r, "", MaxWindowSlots, r.int) }

func (r *canonReader) texts(field string) []string { return readArray(r, field, MaxAddrs, r.str) }

// readArray reads a JSON array of values read by item and fails once it
// holds more than limit of them, naming field when it is not "".
func readArray[T any](r *canonReader, field string, limit int, item func() T) []T {
	r.lit("[")
	if r.err != nil {
		return nil
	}
	out := []T{}
	if r.i < len(r.b) && r.b[r.i] == ']' {
		r.i++
		return out
	}
	for r.err == nil {
		out = append(out, item())
		if len(out) > limit {
			if field == "" {
				r.fail("more than %d entries", limit)
			} else {
				r.fail("%s has more than %d entries", field, limit)
			}
		}
		if r.i < len(r.b) && r.b[r.i] == ',' {
			r.i++
			continue
		}
		r.lit("]")
		break
	}
	return out
}

// end consumes the closing brace and requires the end of input.
func (r *canonReader) end() {
	r.lit("}")
	if r.err == nil && r.i != len(r.b) {
		r.fail("data after the JSON object")
	}
}

// readCanonical decodes the canonical content of a known kind.
func readCanonical(k Kind, b []byte) (Content, error) {
	r := &canonReader{b: b}
	r.lit("{")
	var c Content
	switch k {
	case KindAnnounce:
		x := &Announce{}
		r.field("name", true)
		x.Name = r.str()
		if r.has("addrs") {
			r.field("addrs", false)
			x.Addrs = r.texts("addrs")
			if r.err == nil && len(x.Addrs) == 0 {
				r.fail("empty addrs must be omitted")
			}
		}
		c = x
	case KindPledge:
		x := &Pledge{}
		r.field("to", true)
		x.To = r.household()
		r.field("from_slot", false)
		x.FromSlot = r.int()
		r.field("to_slot", false)
		x.ToSlot = r.int()
		r.field("energy_wh", false)
		x.EnergyWh = r.int()
		r.field("expiry_slot", false)
		x.ExpirySlot = r.int()
		r.field("nonce", false)
		n := r.int()
		if r.err == nil && (n < 0 || n > 1<<32-1) {
			r.fail("nonce %d is not in 0..4294967295", n)
		}
		x.Nonce = uint32(n)
		c = x
	case KindAccept:
		x := &Accept{}
		r.field("pledge", true)
		x.Pledge = r.id()
		r.field("energy_wh", false)
		x.EnergyWh = r.int()
		c = x
	case KindDecline, KindCancel:
		r.field("pledge", true)
		p := r.id()
		var reason string
		if r.has("reason") {
			r.field("reason", false)
			reason = r.str()
			if r.err == nil && reason == "" {
				r.fail("empty reason must be omitted")
			}
		}
		if k == KindDecline {
			c = &Decline{Pledge: p, Reason: reason}
		} else {
			c = &Cancel{Pledge: p, Reason: reason}
		}
	case KindReport:
		x := &Report{}
		r.field("from_slot", true)
		x.FromSlot = r.int()
		r.field("export_wh", false)
		x.ExportWh = r.ints()
		r.field("import_wh", false)
		x.ImportWh = r.ints()
		c = x
	case KindSettle:
		x := &Settle{}
		r.field("pledge", true)
		x.Pledge = r.id()
		r.field("from_slot", false)
		x.FromSlot = r.int()
		r.field("to_slot", false)
		x.ToSlot = r.int()
		r.field("allocated_wh", false)
		x.AllocatedWh = r.ints()
		r.field("export_wh", false)
		x.ExportWh = r.ints()
		r.field("import_wh", false)
		x.ImportWh = r.ints()
		r.field("total_wh", false)
		x.TotalWh = r.int()
		r.field("key", false)
		x.Key = r.str()
		c = x
	case KindSettle2:
		c = readSettle2(r)
	case KindSealedReport:
		c = readSealedReport(r)
	case KindSeen:
		c = readSeen(r)
	case KindProtocol:
		c = readProtocol(r)
	case KindStatus:
		x := &Status{}
		r.field("surplus_w", true)
		x.SurplusW = r.int()
		r.field("need_w", false)
		x.NeedW = r.int()
		r.field("avg_surplus_w", false)
		x.AvgSurplusW = r.int()
		r.field("avg_need_w", false)
		x.AvgNeedW = r.int()
		if r.has("forecast_from") {
			r.field("forecast_from", false)
			x.ForecastFrom = r.int()
			if r.err == nil && x.ForecastFrom == 0 {
				r.fail("forecast_from 0 must be omitted")
			}
		}
		if r.has("forecast_wh") {
			r.field("forecast_wh", false)
			x.ForecastWh = r.ints()
			if r.err == nil && len(x.ForecastWh) == 0 {
				r.fail("empty forecast_wh must be omitted")
			}
		}
		c = x
	default:
		if c = readSuccession(k, r); c == nil {
			return nil, fmt.Errorf("kind %s has no canonical reader", k)
		}
	}
	r.end()
	if r.err != nil {
		return nil, r.err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}
