package sim

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/commons-energy/commons/meter"
)

// Every SML frame the simulator sends decodes, through the real SML
// decoder, to the reading the model says it holds.
func TestSMLFrameDecodesToSMLReading(t *testing.T) {
	start := time.Date(2025, 6, 21, 10, 0, 0, 0, time.UTC)
	for _, name := range ProfileNames() {
		p, err := LoadProfile(name)
		if err != nil {
			t.Fatal(err)
		}
		m := New(p, 7, start)
		twin := New(p, 7, start)
		for i := range 16 {
			now := start.Add(time.Duration(i) * 7 * time.Minute)
			frame := m.SMLFrame(now)
			var got []meter.Reading
			dec := meter.NewSMLDecoder(meter.SMLOptions{})
			dec.Feed(frame, func(r meter.Reading, err error) {
				if err != nil {
					t.Fatalf("%s %v: %v", name, now, err)
				}
				got = append(got, r)
			})
			if len(got) != 1 {
				t.Fatalf("%s %v: %d readings", name, now, len(got))
			}
			r := got[0]
			r.Registers = nil
			want := twin.SMLReading(now)
			if !reflect.DeepEqual(r, want) {
				t.Fatalf("%s %v:\n got %+v\nwant %+v", name, now, r, want)
			}
			// The SML values are the DSMR values: the grid meter's
			// import minus export is the household's net power.
			s := twin.Power(now)
			if net, _ := r.NetPowerW(); net != s.ImportW-s.ExportW {
				t.Fatalf("%s %v: net %d, model %d", name, now, net, s.ImportW-s.ExportW)
			}
		}
	}
}

func TestSDMAnswer(t *testing.T) {
	p, err := LoadProfile("solar-roof")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2025, 6, 21, 0, 0, 0, 0, time.UTC)
	sdm, err := NewSDM(New(p, 1, start), "sdm630")
	if err != nil {
		t.Fatal(err)
	}
	noon := start.Add(11 * time.Hour)
	resp := sdm.Answer(1, meter.ModbusReadRequest(1, meter.ModbusReadInput, 0x0034, 2), noon)
	f, err := meter.DecodeModbusRTU(resp)
	if err != nil {
		t.Fatal(err)
	}
	regs, err := f.Registers()
	if err != nil || len(regs) != 4 {
		t.Fatalf("registers %x %v", regs, err)
	}
	if sdm.Answer(2, meter.ModbusReadRequest(1, meter.ModbusReadInput, 0, 2), noon) != nil {
		t.Error("answered a request for another slave")
	}
	exc, _ := meter.DecodeModbusRTU(sdm.Answer(1, meter.ModbusReadRequest(1, meter.ModbusReadInput, 1, 2), noon))
	if _, err := exc.Registers(); err == nil {
		t.Error("odd register address not refused")
	}
	if _, err := NewSDM(New(p, 1, start), "x"); err == nil {
		t.Error("unknown model accepted")
	}
}

// Probe, as `commons meter ports` uses it, recognises an SML meter on a
// real pty from the bytes it pushes.
func TestProbeFindsSMLOnPTY(t *testing.T) {
	p, err := LoadProfile("home")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := ServeSMLPTY(ctx, New(p, 3, time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)), ServeOptions{Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	d, cfg, err := meter.Probe(ctx, meter.OpenSerial, srv.Path(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if d.Protocol != "sml" || cfg.Device != srv.Path() || !strings.Contains(d.String(), "SML start sequence") {
		t.Errorf("probe found %v with %v", d, cfg)
	}
}
