package sim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"time"

	"github.com/commons-energy/commons/meter"
)

// SDM simulates an Eastron SDM Modbus meter on the household's inverter
// line: it measures the solar production of its Meter. Production flows
// in the meter's forward direction, so total power is positive and the
// import register (0x0048) counts the energy produced. An SDM needs a
// Meter of its own (same profile and seed give the same sun as the grid
// meter's): Meter is not safe for concurrent use.
type SDM struct {
	m     *Meter
	model string
	cur   int64 // unix second the energy is integrated to
	ws    int64 // produced energy in watt-seconds since the start
}

// NewSDM returns an SDM ("sdm630" or "sdm120") measuring m's production,
// with its energy register at zero at m.Start().
func NewSDM(m *Meter, model string) (*SDM, error) {
	if model == "" {
		model = "sdm630"
	}
	if model != "sdm630" && model != "sdm120" {
		return nil, fmt.Errorf("simulated Modbus meter: unknown model %q (sdm630, sdm120)", model)
	}
	return &SDM{m: m, model: model, cur: m.Start().Unix()}, nil
}

// advance integrates production up to now.
func (s *SDM) advance(now time.Time) {
	for t := s.cur; t < now.Unix(); t++ {
		s.ws += s.m.Power(time.Unix(t, 0)).SolarW
	}
	s.cur = max(s.cur, now.Unix())
}

// Registers returns the input registers (address -> float32) at now.
func (s *SDM) Registers(now time.Time) map[uint16]float32 {
	s.advance(now)
	smp := s.m.Power(now)
	regs := map[uint16]float32{
		0x0046: 50,
		0x0048: float32(float64(s.ws) / 3600 / 1000),
		0x004A: 0,
		0x0156: float32(float64(s.ws) / 3600 / 1000),
	}
	phases := 3
	if s.model == "sdm120" {
		phases = 1
	}
	var total int64
	for i := range phases {
		ph := smp.Phases[i]
		v := float64(ph.VoltageMV) / 1000
		if s.model == "sdm120" {
			ph.SolarW = smp.SolarW
		}
		w := ph.SolarW
		total += w
		regs[uint16(2*i)] = float32(v)
		if v > 0 {
			regs[0x0006+uint16(2*i)] = float32(float64(w) / v)
		}
		regs[0x000C+uint16(2*i)] = float32(w)
	}
	regs[0x0034] = float32(total)
	return regs
}

// Reading is what a Modbus reader polling the SDM at now decodes, with the
// same float32 rounding.
func (s *SDM) Reading(now time.Time) meter.Reading {
	regs := s.Registers(now)
	f := func(a uint16) float64 { return float64(regs[a]) }
	r := meter.Reading{Protocol: "modbus", ChecksumOK: true}
	net := int64(math.Round(f(0x0034)))
	if s.model == "sdm120" {
		net = int64(math.Round(f(0x000C)))
	}
	r.PowerImportW, r.PowerExportW = meter.Some(max(net, 0)), meter.Some(max(-net, 0))
	r.EnergyImport.Total = meter.Some(int64(math.Round(f(0x0048) * 1000)))
	r.EnergyExport.Total = meter.Some(int64(math.Round(f(0x004A) * 1000)))
	return r
}

// Answer returns the RTU response to one request frame, or nil when the
// request is not for slave (a real slave stays silent then).
func (s *SDM) Answer(slave byte, req []byte, now time.Time) []byte {
	f, err := meter.DecodeModbusRTU(req)
	if err != nil || f.Slave != slave {
		return nil
	}
	rq, ok := f.Request()
	if !ok || rq.Function != meter.ModbusReadInput {
		return meter.EncodeModbusRTU(slave, f.Function|0x80, []byte{1}) // illegal function
	}
	if rq.Count == 0 || rq.Count > 80 || rq.Start%2 != 0 || rq.Count%2 != 0 {
		return meter.EncodeModbusRTU(slave, f.Function|0x80, []byte{2}) // illegal data address
	}
	regs := s.Registers(now)
	data := []byte{byte(2 * rq.Count)}
	for a := rq.Start; a < rq.Start+rq.Count; a += 2 {
		data = binary.BigEndian.AppendUint32(data, math.Float32bits(regs[a]))
	}
	return meter.EncodeModbusRTU(slave, rq.Function, data)
}

// ModbusServeOptions configures ServeModbusPTY.
type ModbusServeOptions struct {
	Link  string           // symbolic link to the device while serving; "" = none
	Speed float64          // simulated seconds per real second; 0 = 1
	Slave byte             // slave id; 0 = 1
	Now   func() time.Time // real clock; nil = time.Now
}

// ModbusServer is a simulated SDM answering on a pseudo-terminal.
type ModbusServer struct {
	pty     *PTY
	done    chan struct{}
	mu      sync.Mutex
	err     error
	answers uint64
}

// Path returns the device readers open.
func (s *ModbusServer) Path() string { return s.pty.Path() }

// Done is closed when the server has stopped and closed the device.
func (s *ModbusServer) Done() <-chan struct{} { return s.done }

// Answers returns how many requests were answered.
func (s *ModbusServer) Answers() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.answers
}

// Err returns why the server stopped (nil when its context ended).
func (s *ModbusServer) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// ServeModbusPTY opens a pseudo-terminal and answers Modbus RTU read-input
// requests for opts.Slave with sdm's registers until ctx ends.
func ServeModbusPTY(ctx context.Context, sdm *SDM, opts ModbusServeOptions) (*ModbusServer, error) {
	if opts.Speed == 0 {
		opts.Speed = 1
	}
	if opts.Speed < 0 || opts.Speed > 1e6 {
		return nil, fmt.Errorf("simulator speed %v out of range (0 < speed <= 1000000)", opts.Speed)
	}
	if opts.Slave == 0 {
		opts.Slave = 1
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p, err := OpenPTY(opts.Link)
	if err != nil {
		return nil, err
	}
	s := &ModbusServer{pty: p, done: make(chan struct{})}
	go s.run(ctx, sdm, opts)
	return s, nil
}

func (s *ModbusServer) run(ctx context.Context, sdm *SDM, opts ModbusServeOptions) {
	var err error
	stop := context.AfterFunc(ctx, func() { _ = s.pty.master.SetReadDeadline(time.Now()) })
	defer func() {
		stop()
		if cerr := s.pty.Close(); err == nil {
			err = cerr
		}
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(s.done)
	}()
	simStart, realStart := sdm.m.Start(), opts.Now()
	var acc []byte
	buf := make([]byte, 256)
	for {
		n, rerr := s.pty.master.Read(buf)
		if ctx.Err() != nil {
			return
		}
		if rerr != nil {
			if errors.Is(rerr, os.ErrDeadlineExceeded) {
				continue
			}
			err = fmt.Errorf("simulated Modbus meter %s: %w", s.pty.Path(), rerr)
			return
		}
		acc = append(acc, buf[:n]...)
		// Requests are 8 bytes; resync by dropping a byte when the CRC
		// does not match.
		for len(acc) >= 8 {
			if _, derr := meter.DecodeModbusRTU(acc[:8]); derr != nil {
				acc = acc[1:]
				continue
			}
			now := simStart.Add(time.Duration(float64(opts.Now().Sub(realStart)) * opts.Speed))
			if resp := sdm.Answer(opts.Slave, acc[:8], now); resp != nil {
				if _, werr := s.pty.Write(resp); werr != nil {
					err = fmt.Errorf("simulated Modbus meter %s: %w", s.pty.Path(), werr)
					return
				}
				s.mu.Lock()
				s.answers++
				s.mu.Unlock()
			}
			acc = acc[8:]
		}
		if len(acc) > 64 {
			acc = acc[len(acc)-8:]
		}
	}
}
