package meter

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// Modbus RTU for Eastron SDM120/SDM630-style energy meters
// (../shared/research/meter-protocols.md §4): the host sends
// slave, function, start register, count and CRC-16/MODBUS (low byte
// first); the meter answers slave, function, byte count, registers, CRC.
// Every SDM value is an IEEE-754 float32 in two input registers, high word
// first.
//
// github.com/simonvetter/modbus opens the serial device itself (through
// goburrow/serial) and cannot run over our Port, so the Reader's reconnect,
// the pty tests and the simulator could not use it. The RTU framing is a
// few dozen lines, written here against Port.

// Modbus function codes used here.
const (
	ModbusReadHolding = 0x03
	ModbusReadInput   = 0x04
)

// Poller is implemented by decoders of request/response protocols. The
// Reader calls Poll on every opened port instead of reading and feeding
// bytes; Poll asks the meter, emits readings and errors, and returns when
// ctx ends or the meter stops answering (the Reader then reopens the port).
type Poller interface {
	Poll(ctx context.Context, port Port, device string, emit func(Reading, error)) error
}

// ModbusFrame is one RTU frame without its CRC.
type ModbusFrame struct {
	Slave    byte
	Function byte
	Data     []byte // the PDU after the function code
}

// EncodeModbusRTU returns the RTU frame for slave, function and data with
// its CRC-16/MODBUS, low byte first.
func EncodeModbusRTU(slave, function byte, data []byte) []byte {
	b := make([]byte, 0, len(data)+4)
	b = append(b, slave, function)
	b = append(b, data...)
	c := CRC16Modbus(b)
	return append(b, byte(c), byte(c>>8))
}

// ModbusReadRequest returns the request reading count registers from addr
// with function 3 (holding) or 4 (input).
func ModbusReadRequest(slave, function byte, addr, count uint16) []byte {
	return EncodeModbusRTU(slave, function, []byte{byte(addr >> 8), byte(addr), byte(count >> 8), byte(count)})
}

// ErrModbusCRC is wrapped by errors about frames whose CRC does not match.
var ErrModbusCRC = errors.New("modbus CRC mismatch")

// DecodeModbusRTU checks the CRC of one complete frame and splits it.
func DecodeModbusRTU(b []byte) (ModbusFrame, error) {
	if len(b) < 4 {
		return ModbusFrame{}, fmt.Errorf("modbus: frame of %d bytes is too short", len(b))
	}
	n := len(b) - 2
	sent := uint16(b[n]) | uint16(b[n+1])<<8
	if got := CRC16Modbus(b[:n]); got != sent {
		return ModbusFrame{}, fmt.Errorf("%w: frame says %04X, bytes give %04X", ErrModbusCRC, sent, got)
	}
	return ModbusFrame{Slave: b[0], Function: b[1], Data: b[2:n]}, nil
}

// ModbusRequest is a decoded read request.
type ModbusRequest struct {
	Slave, Function byte
	Start, Count    uint16
}

// Request reads f as a read-registers request (function 3 or 4).
func (f ModbusFrame) Request() (ModbusRequest, bool) {
	if (f.Function != ModbusReadHolding && f.Function != ModbusReadInput) || len(f.Data) != 4 {
		return ModbusRequest{}, false
	}
	return ModbusRequest{Slave: f.Slave, Function: f.Function,
		Start: binary.BigEndian.Uint16(f.Data), Count: binary.BigEndian.Uint16(f.Data[2:])}, true
}

// Registers returns the register bytes of a read response.
func (f ModbusFrame) Registers() ([]byte, error) {
	if f.Function&0x80 != 0 {
		code := byte(0)
		if len(f.Data) > 0 {
			code = f.Data[0]
		}
		return nil, fmt.Errorf("modbus: slave %d answered exception %d (%s)", f.Slave, code, modbusException(code))
	}
	if len(f.Data) < 1 || int(f.Data[0]) != len(f.Data)-1 || f.Data[0]%2 != 0 {
		return nil, fmt.Errorf("modbus: slave %d: malformed read response", f.Slave)
	}
	return f.Data[1:], nil
}

func modbusException(code byte) string {
	switch code {
	case 1:
		return "illegal function"
	case 2:
		return "illegal data address: the meter does not have these registers, check the model"
	case 3:
		return "illegal data value"
	case 4:
		return "slave device failure"
	case 6:
		return "slave busy"
	}
	return "unknown"
}

// ModbusOptions configure a Modbus meter.
type ModbusOptions struct {
	Slave   byte          // slave id 1..247; 0 = 1
	Model   string        // "sdm630" (three phases, default) or "sdm120" (one phase)
	Period  time.Duration // time between polls; 0 = 1s
	Timeout time.Duration // wait for one answer; 0 = 1s
	Tries   int           // attempts per request before giving up; 0 = 3
	// MaxFailures is how many polls in a row may fail before Poll returns
	// and the Reader reopens the port; 0 = 5.
	MaxFailures int
}

func (o ModbusOptions) withDefaults() ModbusOptions {
	if o.Slave == 0 {
		o.Slave = 1
	}
	if o.Model == "" {
		o.Model = "sdm630"
	}
	if o.Period <= 0 {
		o.Period = time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	if o.Tries <= 0 {
		o.Tries = 3
	}
	if o.MaxFailures <= 0 {
		o.MaxFailures = 5
	}
	return o
}

// sdmBlock is one read request of a poll.
type sdmBlock struct{ start, count uint16 }

// sdmBlocks lists what one poll reads per model: voltages, currents and
// per-phase power (0x0000..0x0011), total system power (0x0034), import
// and export energy (0x0048, 0x004A).
var sdmBlocks = map[string][]sdmBlock{
	"sdm630": {{0x0000, 18}, {0x0034, 2}, {0x0048, 4}},
	"sdm120": {{0x0000, 2}, {0x0006, 2}, {0x000C, 2}, {0x0048, 4}},
}

// SDMModels returns the models SDM polling knows.
func SDMModels() []string { return []string{"sdm630", "sdm120"} }

// ModbusSDM reads an Eastron SDM meter. As a Poller it polls the meter over
// a port; as a Decoder it decodes captured RTU traffic (requests followed
// by their responses) into readings.
type ModbusSDM struct {
	opts ModbusOptions
	buf  []byte
	req  *ModbusRequest // the last request seen by Feed
}

// NewModbusSDM returns an SDM reader with the given options.
func NewModbusSDM(opts ModbusOptions) (*ModbusSDM, error) {
	opts = opts.withDefaults()
	if _, ok := sdmBlocks[opts.Model]; !ok {
		return nil, fmt.Errorf("modbus: unknown meter model %q (known: sdm630, sdm120)", opts.Model)
	}
	if opts.Slave > 247 {
		return nil, fmt.Errorf("modbus: slave id %d out of range 1..247", opts.Slave)
	}
	return &ModbusSDM{opts: opts}, nil
}

// Protocol returns "modbus".
func (m *ModbusSDM) Protocol() string { return "modbus" }

// sdmApply sets the fields of r that the float32 registers from start hold.
func sdmApply(r *Reading, start uint16, regs []byte, model string) {
	for i := 0; i+4 <= len(regs); i += 4 {
		addr := start + uint16(i/2)
		f := float64(math.Float32frombits(binary.BigEndian.Uint32(regs[i:])))
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e15 {
			continue
		}
		round := func(scale float64) int64 { return int64(math.Round(f * scale)) }
		switch {
		case addr <= 0x0004 && addr%2 == 0:
			if model == "sdm120" && addr > 0 {
				continue
			}
			r.Phases[addr/2].VoltageMV = Some(round(1000))
		case addr >= 0x0006 && addr <= 0x000A && addr%2 == 0:
			if model == "sdm120" && addr > 0x0006 {
				continue
			}
			r.Phases[(addr-6)/2].CurrentMA = Some(round(1000))
		case addr >= 0x000C && addr <= 0x0010 && addr%2 == 0:
			if model == "sdm120" {
				if addr == 0x000C {
					w := round(1)
					signed(w, &r.Phases[0].PowerImportW, &r.Phases[0].PowerExportW)
					signed(w, &r.PowerImportW, &r.PowerExportW)
				}
				continue
			}
			i := (addr - 0x0C) / 2
			signed(round(1), &r.Phases[i].PowerImportW, &r.Phases[i].PowerExportW)
		case addr == 0x0034:
			signed(round(1), &r.PowerImportW, &r.PowerExportW)
		case addr == 0x0048:
			r.EnergyImport.Total = Some(round(1000))
		case addr == 0x004A:
			r.EnergyExport.Total = Some(round(1000))
		}
	}
}

// Feed decodes captured RTU traffic: each read-input response that follows
// its request becomes a reading with the SDM fields it carries. A response
// whose request was not captured cannot be interpreted and is reported.
func (m *ModbusSDM) Feed(p []byte, emit func(Reading, error)) {
	m.buf = append(m.buf, p...)
	for len(m.buf) >= 4 {
		// A request is 8 bytes; a response 5 + byte count; an exception 5.
		if len(m.buf) >= 8 {
			if f, err := DecodeModbusRTU(m.buf[:8]); err == nil {
				if rq, ok := f.Request(); ok {
					m.req = &rq
					m.buf = m.buf[8:]
					continue
				}
			}
		}
		fn := m.buf[1]
		n := 5
		if fn&0x80 == 0 {
			n = 5 + int(m.buf[2])
		}
		if fn != ModbusReadInput && fn != ModbusReadHolding && fn != ModbusReadInput|0x80 && fn != ModbusReadHolding|0x80 {
			m.buf = m.buf[1:] // not a frame start
			continue
		}
		if len(m.buf) < n {
			if len(m.buf) > 300 {
				m.buf = m.buf[1:]
				continue
			}
			return
		}
		f, err := DecodeModbusRTU(m.buf[:n])
		if err != nil {
			if len(m.buf) < 8 {
				return // maybe the first part of a request: wait
			}
			emit(Reading{}, err)
			m.buf = m.buf[n:]
			continue
		}
		m.buf = m.buf[n:]
		regs, err := f.Registers()
		if err != nil {
			emit(Reading{}, err)
			continue
		}
		rq := m.req
		m.req = nil
		if rq == nil || rq.Slave != f.Slave || rq.Function != f.Function || int(rq.Count)*2 != len(regs) {
			emit(Reading{}, fmt.Errorf("modbus: response from slave %d without the request it answers", f.Slave))
			continue
		}
		r := Reading{Protocol: "modbus", ChecksumOK: true, MeterID: fmt.Sprintf("slave %d", f.Slave)}
		sdmApply(&r, rq.Start, regs, m.opts.Model)
		emit(r, nil)
	}
	if len(m.buf) > 512 {
		m.buf = m.buf[len(m.buf)-256:]
	}
}

// ReadOnce polls the meter once over port and returns one reading with
// every value of the model.
func (m *ModbusSDM) ReadOnce(ctx context.Context, port Port, device string) (Reading, error) {
	r := Reading{Protocol: "modbus", ChecksumOK: true, Header: m.opts.Model, MeterID: fmt.Sprintf("slave %d", m.opts.Slave)}
	c := ModbusClient{Port: port, Device: device, Timeout: m.opts.Timeout, Tries: m.opts.Tries}
	for _, b := range sdmBlocks[m.opts.Model] {
		regs, err := c.ReadRegisters(ctx, m.opts.Slave, ModbusReadInput, b.start, b.count)
		if err != nil {
			return Reading{}, err
		}
		sdmApply(&r, b.start, regs, m.opts.Model)
	}
	return r, nil
}

// Poll reads the meter every period until ctx ends. Failed polls are
// emitted as errors; after MaxFailures in a row Poll returns the last one.
func (m *ModbusSDM) Poll(ctx context.Context, port Port, device string, emit func(Reading, error)) error {
	fails := 0
	next := time.Now()
	for {
		r, err := m.ReadOnce(ctx, port, device)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			var pe portFailure
			if errors.As(err, &pe) {
				return err // the device is gone: reopen
			}
			fails++
			emit(Reading{}, err)
			if fails >= m.opts.MaxFailures {
				return err
			}
		} else {
			fails = 0
			emit(r, nil)
		}
		next = next.Add(m.opts.Period)
		if now := time.Now(); next.Before(now) {
			next = now
		}
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// portFailure marks errors from the port itself (not from the meter).
type portFailure struct{ err error }

func (e portFailure) Error() string { return e.err.Error() }
func (e portFailure) Unwrap() error { return e.err }

// ModbusClient sends read requests over a port and waits for the answers.
type ModbusClient struct {
	Port    Port
	Device  string        // named in errors
	Timeout time.Duration // per attempt; 0 = 1s
	Tries   int           // attempts; 0 = 3
}

// ReadRegisters reads count registers from start with function 3 or 4 and
// returns their bytes. A meter that does not answer in time after every
// try gives an error naming the slave and the port.
func (c ModbusClient) ReadRegisters(ctx context.Context, slave, function byte, start, count uint16) ([]byte, error) {
	timeout, tries := c.Timeout, c.Tries
	if timeout <= 0 {
		timeout = time.Second
	}
	if tries <= 0 {
		tries = 3
	}
	req := ModbusReadRequest(slave, function, start, count)
	var last error
	for try := range tries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if try > 0 {
			// A late answer to the failed try must not pass for the
			// answer to the next one: drain the line first.
			if err := c.drain(); err != nil {
				return nil, err
			}
		}
		if _, err := c.Port.Write(req); err != nil {
			return nil, portFailure{fmt.Errorf("modbus slave %d on %s: send request: %w", slave, c.Device, err)}
		}
		f, err := c.readResponse(ctx, req, int(count), time.Now().Add(timeout))
		if err == nil {
			regs, err := f.Registers()
			if err != nil {
				return nil, fmt.Errorf("modbus slave %d on %s: registers 0x%04X+%d: %w", slave, c.Device, start, count, err)
			}
			if len(regs) != 2*int(count) {
				return nil, fmt.Errorf("modbus slave %d on %s: asked for %d registers, got %d", slave, c.Device, count, len(regs)/2)
			}
			return regs, nil
		}
		var pf portFailure
		if errors.As(err, &pf) || ctx.Err() != nil {
			return nil, err
		}
		last = err
	}
	if errors.Is(last, errModbusTimeout) {
		return nil, fmt.Errorf("modbus slave %d on %s: no answer within %s (%d tries); check the RS-485 wiring (A/B), the slave id, baud rate and parity", slave, c.Device, timeout, tries)
	}
	return nil, fmt.Errorf("modbus slave %d on %s: %w (after %d tries)", slave, c.Device, last, tries)
}

var errModbusTimeout = errors.New("timeout")

// drain reads and discards input until a read times out empty.
func (c ModbusClient) drain() error {
	buf := make([]byte, 256)
	for range 64 {
		n, err := c.Port.Read(buf)
		if err != nil {
			return portFailure{fmt.Errorf("modbus on %s: read: %w", c.Device, err)}
		}
		if n == 0 {
			return nil
		}
	}
	return nil
}

// readResponse reads the answer to req: 5 + 2*count bytes, or 5 for an
// exception. Bytes from other slaves and the echo of req (RS-485 adapters
// that hear themselves) are skipped.
func (c ModbusClient) readResponse(ctx context.Context, req []byte, count int, deadline time.Time) (ModbusFrame, error) {
	slave, function := req[0], req[1]
	buf := make([]byte, 0, 5+2*count+len(req))
	tmp := make([]byte, 5+2*count)
	for {
		buf = bytes.TrimPrefix(buf, req)
		// Drop bytes until the frame starts with our slave and function.
		for len(buf) >= 2 && (buf[0] != slave || buf[1]&0x7f != function) {
			buf = buf[1:]
		}
		if len(buf) == 1 && buf[0] != slave {
			buf = buf[:0]
		}
		want := 5 + 2*count
		if len(buf) >= 2 && buf[1]&0x80 != 0 {
			want = 5
		}
		// A buffer that is the beginning of req is an echo still arriving.
		if len(buf) >= want && !bytes.HasPrefix(req, buf) {
			return DecodeModbusRTU(buf[:want])
		}
		if err := ctx.Err(); err != nil {
			return ModbusFrame{}, err
		}
		if time.Now().After(deadline) {
			return ModbusFrame{}, errModbusTimeout
		}
		n, err := c.Port.Read(tmp[:want-len(buf)])
		buf = append(buf, tmp[:n]...)
		if err != nil {
			return ModbusFrame{}, portFailure{fmt.Errorf("modbus slave %d on %s: read: %w", slave, c.Device, err)}
		}
	}
}
