package meter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Detection says which protocol the first bytes from a port carry.
type Detection struct {
	Protocol string // "dsmr", "iec62056-21", "sml" or "smarty"
	Offset   int    // where the first frame starts in the bytes examined
	Reason   string // what gave it away, for a person
	// SevenBit is true when text was only readable after dropping bit 7:
	// the port runs 7E1 but was read as 8N1.
	SevenBit bool
}

// String says what was found, e.g. "sml (SML start sequence at byte 12)".
func (d Detection) String() string {
	return fmt.Sprintf("%s (%s)", d.Protocol, d.Reason)
}

var (
	dsmrMarkers = [][]byte{[]byte("1-3:0.2.8("), []byte("0-0:96.1.4("), []byte("0-0:1.0.0("), []byte("0-0:96.1.1("), []byte("0-0:96.14.0("), []byte("1-0:1.8.1(")}
	// iecReducedID is a data line with a reduced id such as "1.8.0(" or
	// "16.7(" or a full id with the F group: "1-0:1.8.0*255(".
	iecReducedID = regexp.MustCompile(`(?m)^(?:[0-9]{1,3}\.[0-9]{1,3}(?:\.[0-9]{1,3})?|[CF]\.[0-9F](?:\.[0-9])?|[0-9]-[0-9]:[0-9.]+\*[0-9]+)\(`)
	dsmrCRC      = regexp.MustCompile(`\![0-9A-Fa-f]{3,4}(?:\r?\n|$)`)
	dsmrDataLine = regexp.MustCompile(`(?m)^[0-9]-[0-9]:[0-9]+\.[0-9]+\.[0-9]+\(`)
)

// Detect looks at the first bytes read from a port. ok is false when they
// do not yet tell (read more) or hold no known protocol; final says the
// input has ended, so a text telegram without distinguishing marks is
// taken as DSMR.
func Detect(p []byte, final bool) (d Detection, ok bool) {
	d, ok = detect(p, final)
	if ok {
		return d, true
	}
	// Text read 8N1 from a 7E1 line has bit 7 set on some bytes.
	seven := make([]byte, len(p))
	hi := 0
	for i, c := range p {
		seven[i] = c & 0x7f
		if c&0x80 != 0 {
			hi++
		}
	}
	if hi == 0 {
		return Detection{}, false
	}
	if d, ok = detectText(seven, final); ok {
		d.SevenBit = true
		d.Reason += "; bytes only readable with 7 data bits: set the port to 7E1"
	}
	return d, ok
}

func detect(p []byte, final bool) (Detection, bool) {
	best := Detection{Offset: -1}
	if i := bytes.Index(p, smlStart); i >= 0 {
		best = Detection{Protocol: "sml", Offset: i, Reason: fmt.Sprintf("SML start sequence 1B1B1B1B 01010101 at byte %d", i)}
	}
	for i := 0; i+13 <= len(p); i++ {
		if best.Offset >= 0 && i >= best.Offset {
			break
		}
		if p[i] != smartyTag || p[i+1] != 0x08 {
			continue
		}
		if hdr, total, ok := smartyHeader(p[i:], DefaultMaxFrame); ok && total > 0 && p[i+hdr] == smartySecurity {
			best = Detection{Protocol: "smarty", Offset: i, Reason: fmt.Sprintf("encrypted Smarty frame (DB 08, system title %X) at byte %d", p[i+2:i+10], i)}
			break
		}
	}
	if t, ok := detectText(p, final); ok && (best.Offset < 0 || t.Offset < best.Offset) {
		return t, true
	}
	return best, best.Offset >= 0
}

// detectText finds a DSMR or IEC 62056-21 telegram: an identification
// line "/XXX..." and the lines after it.
func detectText(p []byte, final bool) (Detection, bool) {
	echo := false
	for off := 0; off < len(p); {
		s := bytes.IndexByte(p[off:], '/')
		if s < 0 {
			return Detection{}, false
		}
		s += off
		off = s + 1
		nl := bytes.IndexAny(p[s:], "\r\n")
		if nl < 0 {
			return Detection{}, false
		}
		line := p[s : s+nl]
		if bytes.HasPrefix(line, []byte("/?")) && bytes.HasSuffix(line, []byte("!")) {
			echo = true // the echo of a mode C request
			continue
		}
		if !identLine(line) {
			continue
		}
		body := p[s+nl:]
		end := bytes.IndexByte(body, '!')
		complete := end >= 0
		if complete {
			body = body[:min(end+8, len(body))]
		}
		rest := bytes.TrimLeft(body, "\r\n")
		d := Detection{Offset: s}
		switch {
		case echo:
			d.Protocol, d.Reason = "iec62056-21", fmt.Sprintf("IEC 62056-21 readout %q after the echo of a /?! request", line)
		case len(rest) > 0 && rest[0] == iecSTX:
			d.Protocol, d.Reason = "iec62056-21", fmt.Sprintf("IEC 62056-21 mode C readout %q (STX after the identification)", line)
		case dsmrCRC.Match(body) || hasAny(body, dsmrMarkers) && !iecReducedID.Match(body):
			d.Protocol, d.Reason = "dsmr", fmt.Sprintf("DSMR P1 telegram %q", line)
		case iecReducedID.Match(body):
			d.Protocol, d.Reason = "iec62056-21", fmt.Sprintf("IEC 62056-21 (D0) telegram %q", line)
		case (complete || final) && dsmrDataLine.Match(body):
			d.Protocol, d.Reason = "dsmr", fmt.Sprintf("text telegram %q without a CRC (DSMR 2.2/3.0 style)", line)
		default:
			return Detection{}, false
		}
		return d, true
	}
	return Detection{}, false
}

func hasAny(b []byte, subs [][]byte) bool {
	for _, s := range subs {
		if bytes.Contains(b, s) {
			return true
		}
	}
	return false
}

// autoMaxProbe bounds the bytes the auto decoder examines before it gives
// up on finding a known protocol.
const autoMaxProbe = 16 << 10

// AutoDecoder recognises DSMR/D0 text, SML and Smarty from the first bytes
// and hands them to the right decoder. Detected says what it found.
type AutoDecoder struct {
	opts     DecoderOptions
	onDetect func(Detection)
	buf      []byte
	inner    Decoder
	found    Detection
	failed   bool
}

// NewAutoDecoder returns a detecting decoder; onDetect (may be nil) is
// called once when the protocol is known.
func NewAutoDecoder(opts DecoderOptions, onDetect func(Detection)) *AutoDecoder {
	return &AutoDecoder{opts: opts, onDetect: onDetect}
}

// Protocol returns the detected protocol, or "auto" before detection.
func (a *AutoDecoder) Protocol() string {
	if a.inner != nil {
		return a.inner.Protocol()
	}
	return "auto"
}

// Detected returns what was found, and whether anything was.
func (a *AutoDecoder) Detected() (Detection, bool) { return a.found, a.inner != nil }

// Feed consumes p; before detection it buffers (bounded) and examines it.
func (a *AutoDecoder) Feed(p []byte, emit func(Reading, error)) {
	if a.inner != nil {
		a.inner.Feed(p, emit)
		return
	}
	a.buf = append(a.buf, p...)
	a.try(false, emit)
}

// Flush decides on what it has and flushes the chosen decoder.
func (a *AutoDecoder) Flush(emit func(Reading, error)) {
	if a.inner == nil {
		a.try(true, emit)
	}
	if f, ok := a.inner.(Flusher); ok {
		f.Flush(emit)
	}
}

func (a *AutoDecoder) try(final bool, emit func(Reading, error)) {
	d, ok := Detect(a.buf, final)
	if !ok {
		if len(a.buf) > autoMaxProbe {
			if !a.failed {
				emit(Reading{}, fmt.Errorf("auto: no DSMR/D0 text, SML or Smarty frame in the first %d bytes; check the baud rate and format (DSMR 4/5 and Smarty 115200 8N1, DSMR 2.2 and D0 9600 7E1, SML 9600 8N1) or name the protocol", autoMaxProbe))
				a.failed = true
			}
			a.buf = append(a.buf[:0], a.buf[len(a.buf)-1024:]...)
		}
		return
	}
	var inner Decoder
	var err error
	switch d.Protocol {
	case "sml":
		inner = NewSMLDecoder(a.opts.SML)
	case "iec62056-21":
		inner = NewIECDecoder(a.opts)
	case "smarty":
		if len(a.opts.Key) == 0 {
			err = errors.New("auto: found encrypted Luxembourg Smarty frames but no key: pass the meter's 16-byte key (--key, 32 hex digits)")
		} else {
			inner, err = NewSmartyDecoder(a.opts)
		}
	default:
		inner = NewDSMRDecoder(a.opts)
	}
	if err != nil {
		if !a.failed {
			emit(Reading{}, err)
			a.failed = true
		}
		a.buf = a.buf[:0]
		return
	}
	a.found, a.inner = d, inner
	if a.onDetect != nil {
		a.onDetect(d)
	}
	buf := a.buf
	a.buf = nil
	if d.SevenBit {
		for i := range buf {
			buf[i] &= 0x7f
		}
		inner = sevenBit{inner}
		a.inner = inner
	}
	inner.Feed(buf, emit)
}

// sevenBit strips bit 7 (parity) from every byte before decoding.
type sevenBit struct{ Decoder }

func (s sevenBit) Feed(p []byte, emit func(Reading, error)) {
	q := make([]byte, len(p))
	for i, c := range p {
		q[i] = c & 0x7f
	}
	s.Decoder.Feed(q, emit)
}

func (s sevenBit) Flush(emit func(Reading, error)) {
	if f, ok := s.Decoder.(Flusher); ok {
		f.Flush(emit)
	}
}

// ProbeSettings are the serial settings Probe tries, in order: DSMR 4/5
// and Smarty, SML, DSMR 2.2/3 and D0 push.
var ProbeSettings = []PortConfig{
	{Baud: 115200, DataBits: 8, Parity: ParityNone, StopBits: 1},
	{Baud: 9600, DataBits: 8, Parity: ParityNone, StopBits: 1},
	{Baud: 9600, DataBits: 7, Parity: ParityEven, StopBits: 1},
}

// Probe listens on device at each of ProbeSettings for up to listen and
// returns the first protocol it recognises with the settings that showed
// it. Meters that only answer when asked (Modbus, IEC 62056-21 mode C)
// stay silent and are not found. The error is the last open error, or
// says nothing was recognised.
func Probe(ctx context.Context, open Opener, device string, listen time.Duration) (Detection, PortConfig, error) {
	var lastErr error
	for _, cfg := range ProbeSettings {
		cfg.Device = device
		if cfg.ReadTimeout == 0 {
			cfg.ReadTimeout = min(listen, DefaultReadTimeout)
		}
		port, err := open(cfg)
		if err != nil {
			lastErr = err
			var pe *PortError
			if errors.As(err, &pe) && pe.Kind != nil {
				return Detection{}, PortConfig{}, err
			}
			continue
		}
		d, ok, err := probeOne(ctx, port, listen)
		_ = port.Close()
		if ok {
			return d, cfg, nil
		}
		if err != nil {
			lastErr = err
		}
		if ctx.Err() != nil {
			return Detection{}, PortConfig{}, ctx.Err()
		}
	}
	if lastErr != nil {
		return Detection{}, PortConfig{}, fmt.Errorf("probe %s: %w", device, lastErr)
	}
	return Detection{}, PortConfig{}, fmt.Errorf("probe %s: nothing recognised in %s at 115200 8N1, 9600 8N1 or 9600 7E1 (a Modbus or mode C meter only answers when asked)", device, listen)
}

func probeOne(ctx context.Context, port Port, listen time.Duration) (Detection, bool, error) {
	deadline := time.Now().Add(listen)
	var acc []byte
	buf := make([]byte, 1024)
	for time.Now().Before(deadline) && ctx.Err() == nil && len(acc) < autoMaxProbe {
		n, err := port.Read(buf)
		acc = append(acc, buf[:n]...)
		if d, ok := Detect(acc, false); ok {
			return d, true, nil
		}
		if err != nil {
			return Detection{}, false, err
		}
	}
	d, ok := Detect(acc, true)
	return d, ok, nil
}

// nonNil turns a constructor's typed nil into a nil Decoder on error.
func nonNil[D Decoder](d D, err error) (Decoder, error) {
	if err != nil {
		return nil, err
	}
	return d, nil
}

// identLine reports whether line looks like an identification line: '/',
// a three-letter manufacturer id, then at most 120 bytes (some meters put
// control or Latin-1 bytes in it).
func identLine(line []byte) bool {
	if len(line) < 5 || len(line) > 124 || line[0] != '/' {
		return false
	}
	for _, c := range line[1:4] {
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}
