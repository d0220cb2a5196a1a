package meter

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"time"
)

// Port is a serial port as the meter reader sees it. Implementations must
// follow three rules the Reader depends on:
//
//   - Read returns (0, nil) when its read timeout passes without data; it
//     never reports a timeout as io.EOF.
//   - Read returns a non-nil error when the device is gone (unplugged, pty
//     closed); the Reader then closes the port and reopens it.
//   - Close returns within about one read timeout even while another
//     goroutine is blocked in Read, and releases the file descriptor.
type Port interface {
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	Close() error
}

// Opener opens a serial port. OpenSerial is the production opener; tests
// may pass their own.
type Opener func(PortConfig) (Port, error)

// Parity is the parity bit setting of a serial line.
type Parity byte

// Parity settings.
const (
	ParityNone Parity = 'N'
	ParityEven Parity = 'E'
	ParityOdd  Parity = 'O'
)

// DefaultReadTimeout is the read timeout a PortConfig gets when it sets
// none. It bounds how long Close, and so a Reader's shutdown, waits for a
// pending Read. Every timeout wakes the process: at 2 s a Reader on a DSMR
// 5 meter costs about half of what it does at 0.5 s (docs/BENCHMARKS.md).
const DefaultReadTimeout = 2 * time.Second

// PortConfig says which serial device to open and how.
type PortConfig struct {
	Device      string        // device path, e.g. /dev/ttyUSB0 or a symlink to one
	Baud        int           // bits per second, e.g. 115200
	DataBits    int           // 7 or 8; 0 means 8
	Parity      Parity        // 'N', 'E' or 'O'; 0 means 'N'
	StopBits    int           // 1 or 2; 0 means 1
	ReadTimeout time.Duration // how long one Read waits for data; 0 means DefaultReadTimeout
}

// withDefaults fills the zero fields of c.
func (c PortConfig) withDefaults() PortConfig {
	if c.DataBits == 0 {
		c.DataBits = 8
	}
	if c.Parity == 0 {
		c.Parity = ParityNone
	}
	if c.StopBits == 0 {
		c.StopBits = 1
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	return c
}

// Format returns the character format in the usual short form, e.g. "8N1".
func (c PortConfig) Format() string {
	c = c.withDefaults()
	return fmt.Sprintf("%d%c%d", c.DataBits, c.Parity, c.StopBits)
}

// String describes the configuration, e.g. "/dev/ttyUSB0 115200 8N1".
func (c PortConfig) String() string {
	return fmt.Sprintf("%s %d %s", c.Device, c.Baud, c.Format())
}

// WithFormat returns c with the character format from a string such as
// "8N1" or "7E1".
func (c PortConfig) WithFormat(format string) (PortConfig, error) {
	f := strings.ToUpper(strings.TrimSpace(format))
	if len(f) != 3 {
		return c, fmt.Errorf("serial format %q: want data bits, parity and stop bits such as 8N1 or 7E1", format)
	}
	bits, par, stop := int(f[0]-'0'), Parity(f[1]), int(f[2]-'0')
	if bits < 5 || bits > 8 {
		return c, fmt.Errorf("serial format %q: data bits must be 5 to 8", format)
	}
	if par != ParityNone && par != ParityEven && par != ParityOdd {
		return c, fmt.Errorf("serial format %q: parity must be N, E or O", format)
	}
	if stop != 1 && stop != 2 {
		return c, fmt.Errorf("serial format %q: stop bits must be 1 or 2", format)
	}
	c.DataBits, c.Parity, c.StopBits = bits, par, stop
	return c, nil
}

// SerialSettings returns the serial settings a meter protocol uses (device
// and read timeout left empty):
//
//   - DSMR 2.2 and 3.0 ("dsmr2.2", "dsmr22", "dsmr3", "dsmr30"): 9600 baud 7E1
//   - DSMR 4 and 5, Belgian e-MUCS, Luxembourg Smarty ("dsmr", "dsmr4",
//     "dsmr5", "fluvius", "emucs", "smarty", "auto"): 115200 baud 8N1
//   - SML push meters ("sml") and Modbus SDM meters ("modbus"): 9600 8N1
//   - IEC 62056-21 optical heads ("iec62056-21"): 9600 baud 7E1 for meters
//     pushing in mode D (mode C readouts start at 300 baud by themselves)
func SerialSettings(protocol string) (PortConfig, error) {
	switch strings.ToLower(strings.TrimSpace(protocol)) {
	case "dsmr2.2", "dsmr22", "dsmr2", "dsmr3", "dsmr3.0", "dsmr30":
		return PortConfig{Baud: 9600, DataBits: 7, Parity: ParityEven, StopBits: 1}, nil
	case "sml", "modbus":
		return PortConfig{Baud: 9600, DataBits: 8, Parity: ParityNone, StopBits: 1}, nil
	case "iec62056-21", "iec":
		return PortConfig{Baud: 9600, DataBits: 7, Parity: ParityEven, StopBits: 1}, nil
	case "", "auto", "dsmr", "dsmr4", "dsmr4.0", "dsmr4.2", "dsmr42", "dsmr5", "dsmr5.0", "dsmr50",
		"fluvius", "emucs", "e-mucs", "smarty":
		return PortConfig{Baud: 115200, DataBits: 8, Parity: ParityNone, StopBits: 1}, nil
	}
	return PortConfig{}, fmt.Errorf("no serial settings known for protocol %q (known: dsmr2.2, dsmr3, dsmr, dsmr4, dsmr5, fluvius, smarty, sml, modbus, iec62056-21)", protocol)
}

// Errors that say why a port could not be opened or read. Test them with
// errors.Is on the error an Opener or Port returns.
var (
	ErrPortNotFound   = errors.New("no such serial port")
	ErrPortBusy       = errors.New("serial port busy")
	ErrPortPermission = errors.New("permission denied")
	ErrPortClosed     = errors.New("serial port closed")
	ErrHangup         = errors.New("serial device hung up (unplugged or closed at the other end)")
)

// PortError is an error opening a serial port. Its message names the
// device and says what to try.
type PortError struct {
	Device string
	Kind   error // ErrPortNotFound, ErrPortBusy, ErrPortPermission or nil
	Err    error // the underlying error
}

func (e *PortError) Error() string {
	switch e.Kind {
	case ErrPortNotFound:
		return fmt.Sprintf("serial port %s does not exist; list the ports with `commons meter ports` and check the cable is plugged in", e.Device)
	case ErrPortBusy:
		return fmt.Sprintf("serial port %s is busy: another program has it open (another commons, ModemManager, a terminal program); stop it and retry", e.Device)
	case ErrPortPermission:
		return fmt.Sprintf("no permission to open serial port %s; add your user to the port's group (usually dialout: `sudo usermod -aG dialout $USER`, then log in again)", e.Device)
	}
	return fmt.Sprintf("open serial port %s: %v", e.Device, e.Err)
}

// Unwrap returns both the kind and the underlying error for errors.Is.
func (e *PortError) Unwrap() []error {
	if e.Kind == nil {
		return []error{e.Err}
	}
	return []error{e.Kind, e.Err}
}

// openError classifies an error from opening device.
func openError(device string, err error) error {
	pe := &PortError{Device: device, Err: err}
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENXIO), errors.Is(err, syscall.ENODEV), errors.Is(err, syscall.EIO):
		pe.Kind = ErrPortNotFound
	case errors.Is(err, syscall.EBUSY):
		pe.Kind = ErrPortBusy
	case errors.Is(err, fs.ErrPermission):
		pe.Kind = ErrPortPermission
	}
	return pe
}
