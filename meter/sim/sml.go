package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/commons-energy/commons/meter"
)

// SMLFrame advances the registers to now and returns the SML 1.04 frame a
// German modern meter would push for this household at now: import and
// export energy (1.8.0/1.8.1/1.8.2, 2.8.0/2.8.1/2.8.2 in 0.1 Wh), signed sum
// power 16.7.0, and per phase the signed power (36/56/76.7.0), voltage
// (32/52/72.7.0, 0.1 V) and current (31/51/71.7.0, 0.01 A). The SML decoder
// reads it back as SMLReading(now) says.
func (m *Meter) SMLFrame(now time.Time) []byte {
	r := m.Reading(now)
	return meter.EncodeSMLFile(m.smlServerID(), uint32(now.Unix()), smlEntries(r))
}

// SMLReading is the reading the SML decoder makes of SMLFrame(now): the
// DSMR-side values without time, tariff indicator or gas, which SML does
// not carry.
func (m *Meter) SMLReading(now time.Time) meter.Reading {
	r := m.Reading(now)
	out := meter.Reading{
		Protocol:     "sml",
		MeterID:      fmt.Sprintf("%X", m.smlServerID()),
		ChecksumOK:   true,
		EnergyImport: r.EnergyImport,
		EnergyExport: r.EnergyExport,
	}
	net := r.PowerImportW.V - r.PowerExportW.V
	out.PowerImportW, out.PowerExportW = meter.Some(max(net, 0)), meter.Some(max(-net, 0))
	for i, ph := range r.Phases {
		if !ph.Present() {
			continue
		}
		n := ph.PowerImportW.V - ph.PowerExportW.V
		out.Phases[i] = meter.Phase{
			VoltageMV:    meter.Some(ph.VoltageMV.V / 100 * 100),
			CurrentMA:    meter.Some(ph.CurrentMA.V / 10 * 10),
			PowerImportW: meter.Some(max(n, 0)),
			PowerExportW: meter.Some(max(-n, 0)),
		}
	}
	return out
}

func (m *Meter) smlServerID() []byte {
	// A DIN 43863-5 style server id: 0A 01 "SIM" then the meter number.
	id := []byte{0x0a, 0x01, 'S', 'I', 'M', 0x00}
	for i := 0; i < 4 && i < len(m.idHex); i++ {
		id = append(id, m.idHex[len(m.idHex)-1-i])
	}
	return id
}

func smlEntries(r meter.Reading) []meter.SMLEntry {
	obis := func(c, d, e byte) [6]byte { return [6]byte{1, 0, c, d, e, 255} }
	wh := func(c, e byte, v int64) meter.SMLEntry {
		return meter.SMLEntry{OBIS: obis(c, 8, e), Unit: meter.SMLUnitWh, Scaler: -1, Value: v * 10}
	}
	es := []meter.SMLEntry{
		wh(1, 0, r.EnergyImport.Total.V), wh(1, 1, r.EnergyImport.Tariff1.V), wh(1, 2, r.EnergyImport.Tariff2.V),
		wh(2, 0, r.EnergyExport.Total.V), wh(2, 1, r.EnergyExport.Tariff1.V), wh(2, 2, r.EnergyExport.Tariff2.V),
		{OBIS: obis(16, 7, 0), Unit: meter.SMLUnitW, Value: r.PowerImportW.V - r.PowerExportW.V},
	}
	for i, ph := range r.Phases {
		if !ph.Present() {
			continue
		}
		c := byte(20 * i)
		es = append(es,
			meter.SMLEntry{OBIS: obis(36+c, 7, 0), Unit: meter.SMLUnitW, Value: ph.PowerImportW.V - ph.PowerExportW.V},
			meter.SMLEntry{OBIS: obis(32+c, 7, 0), Unit: meter.SMLUnitV, Scaler: -1, Value: ph.VoltageMV.V / 100},
			meter.SMLEntry{OBIS: obis(31+c, 7, 0), Unit: meter.SMLUnitA, Scaler: -2, Value: ph.CurrentMA.V / 10},
		)
	}
	return es
}

// ServeSMLPTY is ServePTY for a German meter: it pushes m's SML frames on a
// pseudo-terminal (9600 8N1 on a real IR head) until ctx ends.
func ServeSMLPTY(ctx context.Context, m *Meter, opts ServeOptions) (*Server, error) {
	return serveFrames(ctx, opts, m.Start(), func(dst []byte, now time.Time) []byte {
		return append(dst, m.SMLFrame(now)...)
	})
}
