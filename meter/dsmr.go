package meter

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// Reasons a DSMR telegram is rejected. A *TelegramError wraps one of them;
// test with errors.Is.
var (
	ErrChecksum   = errors.New("CRC mismatch")
	ErrNoChecksum = errors.New("CRC missing")
	ErrTruncated  = errors.New("truncated")
	ErrTooLong    = errors.New("too long")
	ErrLineEnding = errors.New("lines end in LF only")
	ErrNoObjects  = errors.New("no data objects")
	ErrParity     = errors.New("bytes with bit 7 set")
)

// TelegramError says why one DSMR telegram was rejected.
type TelegramError struct {
	Offset   int64  // stream offset of the telegram's '/'
	Header   string // identification line without '/', as sent (may hold any byte)
	Err      error  // one of ErrChecksum, ErrNoChecksum, ErrTruncated, ErrTooLong, ErrLineEnding, ErrNoObjects, ErrParity
	Sent     uint16 // ErrChecksum: the CRC the telegram carries
	Computed uint16 // ErrChecksum: the CRC of the bytes received
	Digits   int    // ErrChecksum: how many hex digits the sent CRC had
	Detail   string // extra explanation, may be empty
}

// Error says which telegram was rejected and why, on one line.
func (e *TelegramError) Error() string {
	msg := "telegram /" + printable(e.Header) + " at byte " + strconv.FormatInt(e.Offset, 10) + ": " + e.Err.Error()
	if errors.Is(e.Err, ErrChecksum) {
		digits := max(e.Digits, 4)
		msg += fmt.Sprintf(": sent %0*X, computed %04X", digits, e.Sent, e.Computed)
	}
	if e.Detail != "" {
		msg += " (" + e.Detail + ")"
	}
	return msg
}

// Unwrap returns the reason, one of the Err* values.
func (e *TelegramError) Unwrap() error { return e.Err }

// printable renders header bytes for a message: printable ASCII as is,
// anything else as \xNN, at most 64 bytes.
func printable(s string) string {
	const limit = 64
	var b []byte
	for i := 0; i < len(s) && i < limit; i++ {
		c := s[i]
		if c >= 0x20 && c < 0x7f {
			b = append(b, c)
		} else {
			b = append(b, fmt.Sprintf(`\x%02X`, c)...)
		}
	}
	if len(s) > limit {
		b = append(b, "..."...)
	}
	return string(b)
}

// DSMRDecoder is a streaming decoder for DSMR P1 telegrams (NL 2.2-5.0,
// Belgian e-MUCS, plaintext Luxembourg Smarty and the Swedish, Hungarian
// and Irish dialects). It starts anywhere in a stream, restarts at every
// line-initial '/', checks the CRC-16/ARC that DSMR 4+ telegrams carry and
// keeps at most DecoderOptions.MaxFrame bytes of a partial telegram.
//
// A DSMRDecoder is not safe for concurrent use.
type DSMRDecoder struct {
	maxFrame int
	buf      []byte // the partial telegram, starting with '/'; empty when hunting
	scan     int    // bytes of buf already examined
	bang     int    // index of '!' in buf, -1 while not seen
	total    int64  // bytes fed so far
	frameOff int64  // offset of the frame being emitted
	p        dsmrParser
}

// NewDSMRDecoder returns a decoder in its hunting state.
func NewDSMRDecoder(opts DecoderOptions) *DSMRDecoder {
	return &DSMRDecoder{maxFrame: opts.maxFrame(), bang: -1}
}

// Protocol returns "dsmr".
func (d *DSMRDecoder) Protocol() string { return "dsmr" }

// FrameOffset is the stream offset of the '/' that starts the telegram
// being emitted; it is meaningful inside an emit call.
func (d *DSMRDecoder) FrameOffset() int64 { return d.frameOff }

// Feed consumes p, calling emit once per complete telegram with its
// reading or the reason it was rejected. Bytes before the first '/' are
// skipped silently.
func (d *DSMRDecoder) Feed(p []byte, emit func(Reading, error)) {
	if len(p) == 0 {
		return
	}
	var data []byte
	i := 0 // scan position in data
	start := -1
	fromBuf := len(d.buf) > 0
	if fromBuf {
		d.buf = append(d.buf, p...)
		data = d.buf
		i = d.scan
		start = 0
	} else {
		data = p
	}
	base := d.total - int64(len(data)-len(p)) // stream offset of data[0]
	d.total += int64(len(p))

	for {
		if start < 0 { // hunting
			j := bytes.IndexByte(data[i:], '/')
			if j < 0 {
				i = len(data)
				break
			}
			start = i + j
			i = start + 1
			d.bang = -1
		}
		if d.bang < 0 {
			k := bytes.IndexByte(data[i:], '!')
			end := len(data)
			if k >= 0 {
				end = i + k
			}
			// A line-initial '/' before the '!' starts a new telegram:
			// the one in progress was cut. Only the first maxFrame bytes
			// count, so that the outcome does not depend on chunking.
			from := max(start, i-1)
			if r := bytes.Index(data[from:min(end, start+d.maxFrame+1)], []byte("\n/")); r >= 0 {
				next := from + r + 1
				d.frameOff = base + int64(start)
				emit(Reading{}, d.cutError(data[start:next], "a new telegram started before its '!'"))
				start = next
				i = start + 1
				continue
			}
			if end-start > d.maxFrame {
				// Drop exactly maxFrame bytes and hunt again after them.
				d.frameOff = base + int64(start)
				emit(Reading{}, d.tooLong(data[start:start+d.maxFrame]))
				i = start + d.maxFrame + 1
				start = -1
				continue
			}
			if k < 0 {
				i = len(data)
				break
			}
			d.bang = end - start
			i = end + 1
		}
		// After '!': up to four hex digits, ended by any other byte.
		n := 0
		for i+n < len(data) && n < 4 && isHex(data[i+n]) {
			n++
		}
		if n < 4 && i+n == len(data) {
			break // wait for the terminator or more digits
		}
		d.frameOff = base + int64(start)
		d.finish(data[start:start+d.bang+1], data[i:i+n], emit)
		start = -1
		i += n
		d.bang = -1
	}

	// Keep the partial telegram, if any, for the next call.
	if start < 0 {
		d.buf = d.buf[:0]
		d.scan = 0
		return
	}
	if !fromBuf {
		d.buf = append(d.buf[:0], data[start:]...)
	} else {
		n := copy(d.buf, data[start:])
		d.buf = d.buf[:n]
	}
	d.scan = i - start
	if cap(d.buf) > 2*d.maxFrame { // a huge chunk grew it: do not keep that memory
		d.buf = append([]byte(nil), d.buf...)
	}
}

// Flush ends the input: a telegram whose '!' has arrived is completed
// with whatever CRC digits came; one without '!' is reported as truncated.
func (d *DSMRDecoder) Flush(emit func(Reading, error)) {
	if len(d.buf) == 0 {
		return
	}
	data := d.buf
	d.frameOff = d.total - int64(len(data))
	if d.bang >= 0 {
		digits := data[d.bang+1:]
		d.finish(data[:d.bang+1], digits, emit)
	} else {
		emit(Reading{}, d.cutError(data, "the input ended before its '!'"))
	}
	d.buf = d.buf[:0]
	d.scan = 0
	d.bang = -1
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' || c >= 'a' && c <= 'f'
}

func hexValue(digits []byte) uint16 {
	var v uint16
	for _, c := range digits {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint16(c-'0')
		case c >= 'A' && c <= 'F':
			v = v<<4 | uint16(c-'A'+10)
		default:
			v = v<<4 | uint16(c-'a'+10)
		}
	}
	return v
}

// headerOf returns the identification line of frame without '/' and CR.
func headerOf(frame []byte) []byte {
	h := frame[1:]
	if j := bytes.IndexByte(h, '\n'); j >= 0 {
		h = h[:j]
	}
	for len(h) > 0 && (h[len(h)-1] == '\r' || h[len(h)-1] == '!') {
		h = h[:len(h)-1]
	}
	return h
}

func (d *DSMRDecoder) cutError(frame []byte, why string) error {
	return &TelegramError{Offset: d.frameOff, Header: string(headerOf(frame)), Err: ErrTruncated,
		Detail: fmt.Sprintf("%s; %d bytes received", why, len(frame))}
}

func (d *DSMRDecoder) tooLong(frame []byte) error {
	return &TelegramError{Offset: d.frameOff, Header: string(headerOf(frame)), Err: ErrTooLong,
		Detail: fmt.Sprintf("no '!' within %d bytes", d.maxFrame)}
}

// finish checks and decodes one complete telegram: frame runs from '/'
// through '!', digits are the hex CRC digits that followed (maybe none).
func (d *DSMRDecoder) finish(frame, digits []byte, emit func(Reading, error)) {
	r, err := d.p.decode(frame, digits, d.frameOff)
	emit(r, err)
}

// DecodeDSMRTelegram decodes one complete telegram: '/' through '!' and the
// CRC digits that follow (trailing CR LF allowed). The result shares no
// memory with the decoder that made it.
func DecodeDSMRTelegram(telegram []byte) (Reading, error) {
	var p dsmrParser
	s := bytes.IndexByte(telegram, '/')
	if s < 0 {
		return Reading{}, fmt.Errorf("dsmr: no '/' header in %d bytes", len(telegram))
	}
	frame := telegram[s:]
	e := bytes.LastIndexByte(frame, '!')
	if e < 0 {
		return Reading{}, &TelegramError{Header: string(headerOf(frame)), Err: ErrTruncated, Detail: "no '!'"}
	}
	digits := frame[e+1:]
	n := 0
	for n < len(digits) && n < 4 && isHex(digits[n]) {
		n++
	}
	r, err := p.decode(frame[:e+1], digits[:n], int64(s))
	return r.Clone(), err
}
