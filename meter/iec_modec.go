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
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	cfg := m.Port
	cfg.Baud, cfg.DataBits, cfg.Parity, cfg.StopBits = 300, 7, ParityEven, 1
	port, err := m.Open(cfg)
	if err != nil {
		return Reading{}, err
	}
	defer func() { _ = port.Close() }()

	req := "/?" + m.Address + "!\r\n"
	if _, err := port.Write([]byte(req)); err != nil {
		return Reading{}, fmt.Errorf("iec62056-21 on %s: send request: %w", cfg.Device, err)
	}
	ident, rest, err := iecReadIdent(ctx, port, time.Now().Add(timeout))
	if err != nil {
		return Reading{}, fmt.Errorf("iec62056-21 on %s: no identification within %s after %q: %w; check the IR head sits on the meter's optical port", cfg.Device, timeout, req[:len(req)-2], err)
	}
	z := ident[4]
	baud, modeC := iecBauds[z]
	if modeC && m.MaxBaud > 0 && baud > m.MaxBaud {
		// Ask for the highest allowed speed instead.
		for c := z; c >= '0'; c-- {
			if iecBauds[c] <= m.MaxBaud {
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
			return Reading{}, ctx.Err()
		case <-time.After(wait):
		}
		if _, err := port.Write([]byte{iecACK, '0', z, '0', '\r', '\n'}); err != nil {
			return Reading{}, fmt.Errorf("iec62056-21 on %s: send acknowledgement: %w", cfg.Device, err)
		}
		if baud != cfg.Baud {
			if err := port.Close(); err != nil {
				return Reading{}, fmt.Errorf("iec62056-21 on %s: close before switching to %d baud: %w", cfg.Device, baud, err)
			}
			cfg.Baud = baud
			if port, err = m.Open(cfg); err != nil {
				return Reading{}, fmt.Errorf("iec62056-21 on %s: reopen at %d baud: %w", cfg.Device, baud, err)
			}
		}
		rest = nil // anything read before the switch is not the readout
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
			return Reading{}, err
		}
		if time.Now().After(deadline) {
			dec.Flush(emit)
			if !done {
				return Reading{}, fmt.Errorf("iec62056-21 on %s: readout of %s not complete within %s at %d baud", cfg.Device, ident, timeout, cfg.Baud)
			}
			break
		}
		n, err := port.Read(buf)
		if n > 0 {
			dec.Feed(buf[:n], emit)
		}
		if err != nil && !done {
			return Reading{}, fmt.Errorf("iec62056-21 on %s: read: %w", cfg.Device, err)
		}
	}
	if gerr != nil {
		return Reading{}, fmt.Errorf("iec62056-21 on %s: %w", cfg.Device, gerr)
	}
	return got, nil
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
