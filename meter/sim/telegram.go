package sim

import (
	"time"

	"github.com/commons-energy/commons/meter"
)

// Telegram advances the registers to now and returns the DSMR 5 telegram
// the meter sends at now, CRC included. It decodes to Reading(now).
func (m *Meter) Telegram(now time.Time) []byte {
	return m.AppendTelegram(make([]byte, 0, 1024), now)
}

// AppendTelegram is Telegram appending to dst.
func (m *Meter) AppendTelegram(dst []byte, now time.Time) []byte {
	r := m.Reading(now)
	three := m.p.Phases == 3
	start := len(dst)
	b := append(dst, '/')
	b = append(b, m.p.Header...)
	b = append(b, "\r\n\r\n1-3:0.2.8(50)\r\n0-0:1.0.0("...)
	b = appendTST(b, r.Time)
	b = append(b, ")\r\n0-0:96.1.1("...)
	b = append(b, r.MeterID...)
	b = append(b, ")\r\n"...)
	b = appendKWh(b, "1-0:1.8.1", r.EnergyImport.Tariff1.V)
	b = appendKWh(b, "1-0:1.8.2", r.EnergyImport.Tariff2.V)
	b = appendKWh(b, "1-0:2.8.1", r.EnergyExport.Tariff1.V)
	b = appendKWh(b, "1-0:2.8.2", r.EnergyExport.Tariff2.V)
	b = append(b, "0-0:96.14.0(000"...)
	b = append(b, byte('0'+r.Tariff))
	b = append(b, ")\r\n"...)
	b = appendKW(b, "1-0:1.7.0", r.PowerImportW.V)
	b = appendKW(b, "1-0:2.7.0", r.PowerExportW.V)
	b = append(b, "0-0:96.7.21(00004)\r\n0-0:96.7.9(00002)\r\n1-0:99.97.0(0)(0-0:96.7.19)\r\n"...)
	if three {
		b = append(b, "1-0:32.32.0(00002)\r\n1-0:52.32.0(00001)\r\n1-0:72.32.0(00001)\r\n"+
			"1-0:32.36.0(00000)\r\n1-0:52.36.0(00000)\r\n1-0:72.36.0(00000)\r\n"...)
	} else {
		b = append(b, "1-0:32.32.0(00002)\r\n1-0:32.36.0(00000)\r\n"...)
	}
	b = append(b, "0-0:96.13.0()\r\n"...)
	n := 1
	if three {
		n = 3
	}
	for i := range n {
		b = appendVolt(b, obis(i, "32.7.0", "52.7.0", "72.7.0"), r.Phases[i].VoltageMV.V)
	}
	for i := range n {
		b = appendAmp(b, obis(i, "31.7.0", "51.7.0", "71.7.0"), r.Phases[i].CurrentMA.V)
	}
	for i := range n {
		b = appendKW(b, obis(i, "21.7.0", "41.7.0", "61.7.0"), r.Phases[i].PowerImportW.V)
	}
	for i := range n {
		b = appendKW(b, obis(i, "22.7.0", "42.7.0", "62.7.0"), r.Phases[i].PowerExportW.V)
	}
	if g := r.Gas; g != nil {
		b = append(b, "0-1:24.1.0(003)\r\n0-1:96.1.0("...)
		b = appendHex(b, m.p.GasID)
		b = append(b, ")\r\n0-1:24.2.1("...)
		b = appendTST(b, g.Time)
		b = append(b, ")("...)
		b = appendFixed(b, g.Milli, 5)
		b = append(b, "*m3)\r\n"...)
	}
	b = append(b, '!')
	crc := meter.CRC16ARC(b[start:])
	const digits = "0123456789ABCDEF"
	b = append(b, digits[crc>>12], digits[crc>>8&15], digits[crc>>4&15], digits[crc&15], '\r', '\n')
	return b
}

func obis(i int, l1, l2, l3 string) string {
	switch i {
	case 0:
		return "1-0:" + l1
	case 1:
		return "1-0:" + l2
	}
	return "1-0:" + l3
}

// appendTST appends a DSMR timestamp YYMMDDhhmmssX, X = S in summer time.
func appendTST(b []byte, t time.Time) []byte {
	b = appendPad(b, int64(t.Year()%100), 2)
	b = appendPad(b, int64(t.Month()), 2)
	b = appendPad(b, int64(t.Day()), 2)
	b = appendPad(b, int64(t.Hour()), 2)
	b = appendPad(b, int64(t.Minute()), 2)
	b = appendPad(b, int64(t.Second()), 2)
	if _, off := t.Zone(); off == 7200 {
		return append(b, 'S')
	}
	return append(b, 'W')
}

// appendFixed appends milli/1000 with intDigits zero-padded integer digits
// and three decimals.
func appendFixed(b []byte, milli int64, intDigits int) []byte {
	b = appendPad(b, milli/1000, intDigits)
	b = append(b, '.')
	return appendPad(b, milli%1000, 3)
}

func appendKWh(b []byte, code string, wh int64) []byte {
	b = append(b, code...)
	b = append(b, '(')
	b = appendFixed(b, wh, 6)
	return append(b, "*kWh)\r\n"...)
}

func appendKW(b []byte, code string, w int64) []byte {
	b = append(b, code...)
	b = append(b, '(')
	b = appendFixed(b, w, 2)
	return append(b, "*kW)\r\n"...)
}

func appendVolt(b []byte, code string, mv int64) []byte {
	b = append(b, code...)
	b = append(b, '(')
	b = appendPad(b, mv/1000, 3)
	b = append(b, '.', byte('0'+mv/100%10))
	return append(b, "*V)\r\n"...)
}

func appendAmp(b []byte, code string, ma int64) []byte {
	b = append(b, code...)
	b = append(b, '(')
	b = appendPad(b, ma/1000, 3)
	return append(b, "*A)\r\n"...)
}

func appendHex(b []byte, s string) []byte {
	const digits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		b = append(b, digits[s[i]>>4], digits[s[i]&15])
	}
	return b
}

// appendPad appends v (>= 0) in decimal, zero-padded to width digits.
func appendPad(b []byte, v int64, width int) []byte {
	var buf [20]byte
	i := len(buf)
	for v > 0 || i == len(buf) {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	for range width - (len(buf) - i) {
		b = append(b, '0')
	}
	return append(b, buf[i:]...)
}
