package meter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
)

// iecBauds maps the baud character of a mode C identification ('0'..'6')
// to the speed the meter switches to after the acknowledgement.
var iecBauds = map[byte]int{'0': 300, '1': 600, '2': 1200, '3': 2400, '4': 4800, '5': 9600, '6': 19200}

// IECModeC reads a meter through the IEC 62056-21 mode C sign-on: the
// request "/?!" CR LF at 300 baud 7E1, the meter's identification, the
// acknowledgement ACK '0' Z '0' CR LF choosing the announced speed Z, and
// the data readout at that speed. tarm/serial cannot change the speed of
// an open port, so the port is closed and opened again at the new speed.
type IECModeC struct {
	Open    Opener
	Port    PortConfig    // Device and ReadTimeout; speed and format are the handshake's
	Address string        // device address for "/?address!"; "" asks any meter
	MaxBaud int           // highest speed to accept; 0 = whatever the meter offers
	Timeout time.Duration // for the identification and for the readout each; 0 = 10s
}

// Read performs one sign-on and readout and returns the reading. The port
// is closed when Read returns.
func (m IECModeC) Read(ctx context.Context) (Reading, error) {
	cfg := m.Port
	cfg.Baud, cfg.DataBits, cfg.Parity, cfg.StopBits = 300, 7, ParityEven, 1
	port, err := m.Open(cfg)
	if err != nil {
		return Reading{}, err
	}
	r, last, err := m.readout(ctx, port, cfg, m.Open)
	_ = last.Close()
	return r, err
}

// readout runs the sign-on on port, opened at 300 baud 7E1 as cfg says.
// With reopen it switches to the speed the meter offers (within MaxBaud)
// by closing port and opening a new one; without, it asks the meter to
// stay at 300 baud. It returns the port in use at the end.
func (m IECModeC) readout(ctx context.Context, port Port, cfg PortConfig, reopen Opener) (Reading, Port, error) {
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	req := "/?" + m.Address + "!\r\n"
	if _, err := port.Write([]byte(req)); err != nil {
		return Reading{}, port, fmt.Errorf("iec62056-21 on %s: send request: %w", cfg.Device, err)
	}
	ident, rest, err := iecReadIdent(ctx, port, time.Now().Add(timeout))
	if err != nil {
		return Reading{}, port, fmt.Errorf("iec62056-21 on %s: no identification within %s after %q: %w; check the IR head sits on the meter's optical port", cfg.Device, timeout, req[:len(req)-2], err)
	}
	z := ident[4]
	baud, modeC := iecBauds[z]
	var ack []byte
	maxBaud := m.MaxBaud
	if reopen == nil {
		maxBaud = cfg.Baud
	}
	if modeC && maxBaud > 0 && baud > maxBaud {
		// Ask for the highest allowed speed instead.
		for c := z; c >= '0'; c-- {
			if iecBauds[c] <= maxBaud {
				z, baud = c, iecBauds[c]
				break
			}
		}
	}
	if modeC {
		// Reaction time: 20 ms when the third letter of the
		// manufacturer id is lower case, otherwise 200 ms (vzlogger).
		wait := 200 * time.Millisecond
		if c := ident[3]; c >= 'a' && c <= 'z' {
			wait = 20 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return Reading{}, port, ctx.Err()
		case <-time.After(wait):
		}
		ack = []byte{iecACK, '0', z, '0', '\r', '\n'}
		if _, err := port.Write(ack); err != nil {
			return Reading{}, port, fmt.Errorf("iec62056-21 on %s: send acknowledgement: %w", cfg.Device, err)
		}
		if baud != cfg.Baud {
			if err := port.Close(); err != nil {
				return Reading{}, port, fmt.Errorf("iec62056-21 on %s: close before switching to %d baud: %w", cfg.Device, baud, err)
			}
			cfg.Baud = baud
			np, err := reopen(cfg)
			if err != nil {
				return Reading{}, port, fmt.Errorf("iec62056-21 on %s: reopen at %d baud: %w", cfg.Device, baud, err)
			}
			port = np
			ack = nil // the echo went with the old port
		}
		rest = nil // anything read before the acknowledgement is not the readout
	}

	dec := NewIECDecoder(DecoderOptions{})
	var (
		got  Reading
		gerr error
		done bool
	)
	emit := func(r Reading, err error) {
		if !done {
			got, gerr, done = r, err, true
		}
	}
	// Feed the identification again so the decoder sees a whole readout.
	dec.Feed(append(append([]byte(nil), ident...), "\r\n"...), emit)
	dec.Feed(rest, emit)
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 256)
	for !done {
		if err := ctx.Err(); err != nil {
			return Reading{}, port, err
		}
		if time.Now().After(deadline) {
			dec.Flush(emit)
			if !done {
				return Reading{}, port, fmt.Errorf("iec62056-21 on %s: readout of %s not complete within %s at %d baud", cfg.Device, ident, timeout, cfg.Baud)
			}
			break
		}
		n, err := port.Read(buf)
		data := buf[:n]
		if len(ack) > 0 && n > 0 {
			// Drop the IR head's echo of the acknowledgement.
			k := 0
			for len(ack) > 0 && k < len(data) && data[k] == ack[0] {
				ack, k = ack[1:], k+1
			}
			if k < len(data) {
				ack = nil // the echo is over (or there was none)
			}
			data = data[k:]
		}
		if len(data) > 0 {
			dec.Feed(data, emit)
		}
		if err != nil && !done {
			return Reading{}, port, portFailure{fmt.Errorf("iec62056-21 on %s: read: %w", cfg.Device, err)}
		}
	}
	if gerr != nil {
		return Reading{}, port, fmt.Errorf("iec62056-21 on %s: %w", cfg.Device, gerr)
	}
	return got, port, nil
}

// IECOptions configure IEC 62056-21 mode C polling through the Reader.
type IECOptions struct {
	Address     string        // device address for "/?address!"; "" asks any meter
	Period      time.Duration // time between readouts; 0 = 30s
	Timeout     time.Duration // for the identification and for the readout each; 0 = 10s at 300 baud: 60s
	MaxFailures int           // readouts in a row that may fail before Poll returns; 0 = 3
}

// IECModeCPoller reads a mode C meter through the Reader: it signs on
// over the port the Reader opened, which must run at 300 baud 7E1, and
// asks the meter to answer at 300 baud, because the Reader's port cannot
// change speed. A readout of a few hundred bytes then takes about ten
// seconds; for faster readouts use IECModeC.Read, which reopens the port.
type IECModeCPoller struct {
	opts IECOptions
	dec  *IECDecoder // for Feed
}

// NewIECModeCPoller returns a mode C poller.
func NewIECModeCPoller(opts IECOptions) *IECModeCPoller {
	if opts.Period <= 0 {
		opts.Period = 30 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 60 * time.Second
	}
	if opts.MaxFailures <= 0 {
		opts.MaxFailures = 3
	}
	return &IECModeCPoller{opts: opts}
}

// Protocol returns "iec62056-21".
func (p *IECModeCPoller) Protocol() string { return "iec62056-21" }

// Feed decodes captured readouts like IECDecoder does.
func (p *IECModeCPoller) Feed(b []byte, emit func(Reading, error)) {
	if p.dec == nil {
		p.dec = NewIECDecoder(DecoderOptions{})
	}
	p.dec.Feed(b, emit)
}

// Flush flushes what Feed holds, like IECDecoder.Flush.
func (p *IECModeCPoller) Flush(emit func(Reading, error)) {
	if p.dec != nil {
		p.dec.Flush(emit)
	}
}

// Poll signs on and reads the meter every period until ctx ends.
func (p *IECModeCPoller) Poll(ctx context.Context, port Port, device string, emit func(Reading, error)) error {
	m := IECModeC{Address: p.opts.Address, Timeout: p.opts.Timeout}
	cfg := PortConfig{Device: device, Baud: 300, DataBits: 7, Parity: ParityEven, StopBits: 1}
	fails := 0
	for {
		r, _, err := m.readout(ctx, port, cfg, nil)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			var pf portFailure
			if errors.As(err, &pf) {
				return err
			}
			fails++
			emit(Reading{}, err)
			if fails >= p.opts.MaxFailures {
				return err
			}
		} else {
			fails = 0
			emit(r, nil)
		}
		t := time.NewTimer(p.opts.Period)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// iecReadIdent reads lines until the meter's identification "/XXXZ...",
// skipping the echo of the request and noise. It returns the ident line
// and any bytes read after it.
func iecReadIdent(ctx context.Context, port Port, deadline time.Time) (ident, rest []byte, err error) {
	var acc []byte
	buf := make([]byte, 64)
	for {
		for {
			nl := bytes.IndexAny(acc, "\r\n")
			if nl < 0 {
				break
			}
			line := acc[:nl]
			acc = acc[nl+1:]
			if s := bytes.IndexByte(line, '/'); s >= 0 {
				line = line[s:]
				if identLine(line) {
					return append([]byte(nil), line...), append([]byte(nil), acc...), nil
				}
			}
		}
		if len(acc) > 256 {
			acc = acc[len(acc)-128:]
		}
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		if time.Now().After(deadline) {
			return nil, nil, errors.New("timed out")
		}
		n, err := port.Read(buf)
		acc = append(acc, buf[:n]...)
		if err != nil {
			return nil, nil, err
		}
	}
}
