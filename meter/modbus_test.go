package meter

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestModbusFixtures(t *testing.T) {
	dir, names, exp := fxLoad(t, "modbus")
	for _, name := range names {
		e := exp[name]
		t.Run(filepath.Base(name), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := hex.DecodeString(e.FrameHex); string(want) != string(data) {
				t.Fatalf("frame_hex does not match the file")
			}
			f, err := DecodeModbusRTU(data)
			if e.Expect == "reject_crc" {
				if !errors.Is(err, ErrModbusCRC) || !strings.Contains(err.Error(), "frame says "+*e.CRC+", bytes give "+*e.CRCComputed) {
					t.Fatalf("error %v, want a CRC mismatch %s/%s", err, *e.CRC, *e.CRCComputed)
				}
				// The stream decoder rejects it too, even after its request.
				rs, errs := fxFeed(mustSDM(t, ModbusOptions{}), append(ModbusReadRequest(1, 4, 0, 2), data...), 0)
				if len(rs) != 0 || len(errs) != 1 {
					t.Fatalf("decoder: %d readings, errors %v", len(rs), errs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			v := e.Values
			if float64(f.Slave) != v["slave"].(float64) || float64(f.Function) != v["function"].(float64) {
				t.Errorf("slave %d function %d, want %v", f.Slave, f.Function, v)
			}
			switch v["kind"] {
			case "request":
				rq, ok := f.Request()
				if !ok || float64(rq.Start) != v["start_register"].(float64) || float64(rq.Count) != v["register_count"].(float64) {
					t.Errorf("request %+v ok %v, want %v", rq, ok, v)
				}
				rs, errs := fxFeed(mustSDM(t, ModbusOptions{}), data, 1)
				if len(rs)+len(errs) != 0 {
					t.Errorf("a request alone emitted %v %v", rs, errs)
				}
			case "response":
				regs, err := f.Registers()
				if err != nil || len(regs) != int(v["byte_count"].(float64)) {
					t.Fatalf("registers %x, %v", regs, err)
				}
				got := float64(math.Float32frombits(binary.BigEndian.Uint32(regs)))
				reg := uint16(v["register"].(float64))
				// Decode it as the answer to its request through the stream decoder.
				stream := append(ModbusReadRequest(f.Slave, f.Function, reg, 2), data...)
				rs, errs := fxFeed(mustSDM(t, ModbusOptions{}), stream, 3)
				if len(rs) != 1 || len(errs) != 0 {
					t.Fatalf("decoder: %d readings, errors %v", len(rs), errs)
				}
				r := rs[0]
				switch {
				case v["voltage_l1_v"] != nil:
					if got != v["voltage_l1_v"].(float64) || r.Phases[0].VoltageMV != Some(int64(math.Round(got*1000))) {
						t.Errorf("voltage %v, reading %+v", got, r.Phases[0])
					}
				case v["total_power_w"] != nil:
					if got != v["total_power_w"].(float64) {
						t.Errorf("power %v", got)
					}
					fxCheckReading(t, r, e)
				default:
					t.Fatalf("no value to check in %v", v)
				}
			default:
				t.Fatalf("unknown kind %v", v["kind"])
			}
		})
	}
}

func mustSDM(t testing.TB, o ModbusOptions) *ModbusSDM {
	t.Helper()
	m, err := NewModbusSDM(o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// fakeSDMPort is an SDM slave on an in-memory line: it answers read-input
// requests for its slave id from a register image.
type fakeSDMPort struct {
	mu     sync.Mutex
	slave  byte
	regs   map[uint16]float32
	out    []byte
	silent bool
	echo   bool // an RS-485 adapter that hears its own requests
	reqs   int
	// corrupt damages the CRC of the first n answers.
	corrupt int
}

func (p *fakeSDMPort) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reqs++
	if p.echo {
		p.out = append(p.out, b...)
	}
	f, err := DecodeModbusRTU(b)
	if err != nil || p.silent || f.Slave != p.slave {
		return len(b), nil
	}
	rq, _ := f.Request()
	data := []byte{byte(2 * rq.Count)}
	for a := rq.Start; a < rq.Start+rq.Count; a += 2 {
		data = binary.BigEndian.AppendUint32(data, math.Float32bits(p.regs[a]))
	}
	resp := EncodeModbusRTU(p.slave, rq.Function, data)
	if p.corrupt > 0 {
		p.corrupt--
		resp[len(resp)-1] ^= 0xff
	}
	p.out = append(p.out, resp...)
	return len(b), nil
}

func (p *fakeSDMPort) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.out) == 0 {
		return 0, nil
	}
	n := copy(b, p.out[:min(len(p.out), 3)])
	p.out = p.out[n:]
	return n, nil
}

func (p *fakeSDMPort) Close() error { return nil }

func TestModbusSDM630Poll(t *testing.T) {
	port := &fakeSDMPort{slave: 7, corrupt: 1, echo: true, regs: map[uint16]float32{
		0x00: 230.5, 0x02: 231.25, 0x04: 229.75,
		0x06: 1.5, 0x08: 2.25, 0x0A: 0.125,
		0x0C: -345.5, 0x0E: 100, 0x10: -1.25,
		0x34: -246.75,
		0x48: 12345.678, 0x4A: 9.25,
	}}
	m := mustSDM(t, ModbusOptions{Slave: 7, Timeout: 50 * time.Millisecond})
	r, err := m.ReadOnce(context.Background(), port, "/dev/ttyUSB1")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		got  Optional
		want int64
	}{
		{"power export", r.PowerExportW, 247},
		{"power import", r.PowerImportW, 0},
		{"import Wh", r.EnergyImport.Total, 12345678},
		{"export Wh", r.EnergyExport.Total, 9250},
		{"L1 V", r.Phases[0].VoltageMV, 230500},
		{"L3 V", r.Phases[2].VoltageMV, 229750},
		{"L2 A", r.Phases[1].CurrentMA, 2250},
		{"L1 export", r.Phases[0].PowerExportW, 346},
		{"L2 import", r.Phases[1].PowerImportW, 100},
		{"L3 export", r.Phases[2].PowerExportW, 1},
	}
	for _, c := range checks {
		if c.got != Some(c.want) {
			t.Errorf("%s = %+v, want %d", c.name, c.got, c.want)
		}
	}
	if port.reqs != 4 { // 3 blocks + 1 retry after the corrupted answer
		t.Errorf("%d requests, want 4", port.reqs)
	}
}

func TestModbusNoAnswerNamesSlaveAndPort(t *testing.T) {
	port := &fakeSDMPort{slave: 3, silent: true}
	m := mustSDM(t, ModbusOptions{Slave: 3, Model: "sdm120", Timeout: 20 * time.Millisecond, Tries: 2, MaxFailures: 2, Period: time.Millisecond})
	var errs []error
	err := m.Poll(context.Background(), port, "/dev/ttyUSB1", func(r Reading, err error) { errs = append(errs, err) })
	if err == nil || len(errs) != 2 {
		t.Fatalf("Poll returned %v after %d emits; want an error after 2 failed polls", err, len(errs))
	}
	for _, want := range []string{"slave 3", "/dev/ttyUSB1", "no answer", "2 tries"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if port.reqs != 4 {
		t.Errorf("%d requests, want 2 polls x 2 tries", port.reqs)
	}
}

func TestModbusSDM120(t *testing.T) {
	port := &fakeSDMPort{slave: 1, regs: map[uint16]float32{0x00: 240, 0x06: 5, 0x0C: 1200.4, 0x48: 1.5, 0x4A: 0}}
	r, err := mustSDM(t, ModbusOptions{Model: "sdm120"}).ReadOnce(context.Background(), port, "x")
	if err != nil {
		t.Fatal(err)
	}
	if r.PowerImportW != Some(1200) || r.Phases[0].VoltageMV != Some(240000) || r.Phases[1].Present() || r.EnergyImport.Total != Some(1500) {
		t.Errorf("reading %+v", r)
	}
	if _, err := NewModbusSDM(ModbusOptions{Model: "abb"}); err == nil {
		t.Error("unknown model accepted")
	}
}

func FuzzModbusDecoder(f *testing.F) {
	dir := fxDir(f)
	files, _ := filepath.Glob(filepath.Join(dir, "modbus", "*.bin"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append(ModbusReadRequest(1, 4, 0x34, 2), b...), uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		m, _ := NewModbusSDM(ModbusOptions{})
		rs, _ := fxFeed(m, data, int(chunk))
		for _, r := range rs {
			if !r.ChecksumOK {
				t.Fatal("reading without CRC")
			}
		}
		_, _ = DecodeModbusRTU(data)
		if len(m.buf) > 512+len(data) {
			t.Fatalf("buffer %d", len(m.buf))
		}
	})
}

func BenchmarkModbusDecode(b *testing.B) {
	regs := make([]byte, 0, 37)
	regs = append(regs, 36)
	for i := range 9 {
		regs = binary.BigEndian.AppendUint32(regs, math.Float32bits(float32(i)*10.5))
	}
	stream := append(ModbusReadRequest(1, 4, 0, 18), EncodeModbusRTU(1, 4, regs)...)
	m, _ := NewModbusSDM(ModbusOptions{})
	n := 0
	emit := func(r Reading, err error) {
		if err == nil {
			n++
		}
	}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		m.Feed(stream, emit)
	}
	if n != b.N {
		b.Fatalf("%d readings for %d responses", n, b.N)
	}
}
