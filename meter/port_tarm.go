package meter

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/tarm/serial"
)

// This file is the only one that knows github.com/tarm/serial. Its sharp
// edges, measured on a pty (../shared/research/tui-anchors.md §5), and how
// the adapter handles them:
//
//   - A Read without a timeout blocks Close forever: the adapter always
//     opens with a read timeout (VMIN=0, VTIME>0), and Close waits for the
//     pending Read, which the timeout bounds, before closing the file.
//   - A timed-out Read comes back as (0, io.EOF): mapped to (0, nil).
//   - A hung-up tty (USB cable pulled, pty master closed) also reads as
//     (0, io.EOF) or EIO, but at once instead of after the timeout: a zero
//     read that returns in less than half the timeout is reported as
//     ErrHangup so the Reader reopens the device.

// tarm's timeout granularity and range (VTIME deciseconds, 1..255).
const (
	tarmMinTimeout = 100 * time.Millisecond
	tarmMaxTimeout = 25500 * time.Millisecond
)

// OpenSerial opens a serial device with github.com/tarm/serial. It is the
// production Opener. Errors are *PortError values that name the device and
// say what to try.
func OpenSerial(c PortConfig) (Port, error) {
	c = c.withDefaults()
	timeout := c.ReadTimeout.Truncate(tarmMinTimeout)
	timeout = min(max(timeout, tarmMinTimeout), tarmMaxTimeout)
	par := serial.ParityNone
	switch c.Parity {
	case ParityEven:
		par = serial.ParityEven
	case ParityOdd:
		par = serial.ParityOdd
	case ParityNone:
	default:
		return nil, fmt.Errorf("open serial port %s: unsupported parity %q (use N, E or O)", c.Device, c.Parity)
	}
	stop := serial.Stop1
	if c.StopBits == 2 {
		stop = serial.Stop2
	}
	p, err := serial.OpenPort(&serial.Config{
		Name:        c.Device,
		Baud:        c.Baud,
		Size:        byte(c.DataBits),
		Parity:      par,
		StopBits:    stop,
		ReadTimeout: timeout,
	})
	if err != nil {
		if err.Error() == "Unrecognized baud rate" {
			return nil, fmt.Errorf("open serial port %s: baud rate %d is not a standard rate (DSMR uses 115200, or 9600 for DSMR 2.2/3)", c.Device, c.Baud)
		}
		return nil, openError(c.Device, err)
	}
	t := &tarmPort{device: c.Device, p: p, timeout: timeout}
	t.idle = sync.NewCond(&t.mu)
	return t, nil
}

// tarmPort adapts *serial.Port to the Port rules.
type tarmPort struct {
	device  string
	p       *serial.Port
	timeout time.Duration

	mu      sync.Mutex
	idle    *sync.Cond // signalled when reading drops to 0
	reading int        // Reads in flight
	closed  bool
}

func (t *tarmPort) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return 0, ErrPortClosed
	}
	t.reading++
	t.mu.Unlock()

	start := time.Now()
	n, err := t.p.Read(b)
	elapsed := time.Since(start)

	t.mu.Lock()
	t.reading--
	if t.reading == 0 {
		t.idle.Broadcast()
	}
	t.mu.Unlock()

	if n > 0 {
		// A pending error shows up again on the next Read.
		return n, nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		if elapsed < t.timeout/2 {
			return 0, fmt.Errorf("read %s: %w", t.device, ErrHangup)
		}
		return 0, nil
	}
	return 0, fmt.Errorf("read %s: %w", t.device, err)
}

func (t *tarmPort) Write(b []byte) (int, error) {
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return 0, ErrPortClosed
	}
	n, err := t.p.Write(b)
	if err != nil {
		return n, fmt.Errorf("write %s: %w", t.device, err)
	}
	return n, nil
}

// Close marks the port closed, waits for a Read in flight to return (at
// most one read timeout, plus scheduling), then closes the file. Closing
// twice is harmless.
func (t *tarmPort) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	for t.reading > 0 {
		t.idle.Wait()
	}
	t.mu.Unlock()
	if err := t.p.Close(); err != nil {
		return fmt.Errorf("close %s: %w", t.device, err)
	}
	return nil
}
