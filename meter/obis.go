package meter

//lint:file-ignore SA4016 OBIS codes are spelled group by group, zeros included, so each reads as A-B:C.D.E.

// obisKey packs an OBIS code A-B:C.D.E into one integer so a telegram's
// objects are matched without building strings. Each group is 0..255.
type obisKey uint64

func obis(a, b, c, d, e uint64) obisKey {
	return obisKey(a<<32 | b<<24 | c<<16 | d<<8 | e)
}

// channel returns group B, the M-Bus channel of 0-n:... objects.
func (k obisKey) channel() int { return int(k >> 24 & 0xff) }

// withoutChannel clears group B.
func (k obisKey) withoutChannel() obisKey { return k &^ (0xff << 24) }

// The objects the DSMR decoder reads (../shared/research/meter-protocols.md §1.5).
const (
	obisVersion      obisKey = 1<<32 | 3<<24 | 0<<16 | 2<<8 | 8   // P1 version (NL)
	obisVersionBE    obisKey = 0<<32 | 0<<24 | 96<<16 | 1<<8 | 4  // e-MUCS version (BE)
	obisTime         obisKey = 0<<32 | 0<<24 | 1<<16 | 0<<8 | 0   // telegram timestamp
	obisEquipment    obisKey = 0<<32 | 0<<24 | 96<<16 | 1<<8 | 1  // equipment identifier
	obisEquipmentAlt obisKey = 0<<32 | 0<<24 | 96<<16 | 1<<8 | 0  // equipment identifier (older, HU)
	obisDeviceName   obisKey = 0<<32 | 0<<24 | 42<<16 | 0<<8 | 0  // Luxembourg / E.ON device name
	obisTariff       obisKey = 0<<32 | 0<<24 | 96<<16 | 14<<8 | 0 // tariff indicator
	obisImportTotal  obisKey = 1<<32 | 0<<24 | 1<<16 | 8<<8 | 0
	obisImportT1     obisKey = 1<<32 | 0<<24 | 1<<16 | 8<<8 | 1
	obisImportT2     obisKey = 1<<32 | 0<<24 | 1<<16 | 8<<8 | 2
	obisExportTotal  obisKey = 1<<32 | 0<<24 | 2<<16 | 8<<8 | 0
	obisExportT1     obisKey = 1<<32 | 0<<24 | 2<<16 | 8<<8 | 1
	obisExportT2     obisKey = 1<<32 | 0<<24 | 2<<16 | 8<<8 | 2
	obisPowerImport  obisKey = 1<<32 | 0<<24 | 1<<16 | 7<<8 | 0
	obisPowerExport  obisKey = 1<<32 | 0<<24 | 2<<16 | 7<<8 | 0
	obisL1Import     obisKey = 1<<32 | 0<<24 | 21<<16 | 7<<8 | 0
	obisL2Import     obisKey = 1<<32 | 0<<24 | 41<<16 | 7<<8 | 0
	obisL3Import     obisKey = 1<<32 | 0<<24 | 61<<16 | 7<<8 | 0
	obisL1Export     obisKey = 1<<32 | 0<<24 | 22<<16 | 7<<8 | 0
	obisL2Export     obisKey = 1<<32 | 0<<24 | 42<<16 | 7<<8 | 0
	obisL3Export     obisKey = 1<<32 | 0<<24 | 62<<16 | 7<<8 | 0
	obisL1Voltage    obisKey = 1<<32 | 0<<24 | 32<<16 | 7<<8 | 0
	obisL2Voltage    obisKey = 1<<32 | 0<<24 | 52<<16 | 7<<8 | 0
	obisL3Voltage    obisKey = 1<<32 | 0<<24 | 72<<16 | 7<<8 | 0
	obisL1Current    obisKey = 1<<32 | 0<<24 | 31<<16 | 7<<8 | 0
	obisL2Current    obisKey = 1<<32 | 0<<24 | 51<<16 | 7<<8 | 0
	obisL3Current    obisKey = 1<<32 | 0<<24 | 71<<16 | 7<<8 | 0
	obisDemandAvg    obisKey = 1<<32 | 0<<24 | 1<<16 | 4<<8 | 0  // e-MUCS: running quarter-hour average demand
	obisDemandPeak   obisKey = 1<<32 | 0<<24 | 1<<16 | 6<<8 | 0  // e-MUCS: the month's peak demand (TST)(kW)
	obisDemandHist   obisKey = 0<<32 | 0<<24 | 98<<16 | 1<<8 | 0 // e-MUCS: past months' peaks
	obisMBusType     obisKey = 0<<32 | 0<<24 | 24<<16 | 1<<8 | 0 // 0-n:24.1.0 device type, channel cleared
	obisMBusValue    obisKey = 0<<32 | 0<<24 | 24<<16 | 2<<8 | 1 // 0-n:24.2.1 last reading
	obisMBusValueBE  obisKey = 0<<32 | 0<<24 | 24<<16 | 2<<8 | 3 // 0-n:24.2.3 Belgian gas
	obisMBusValueV2  obisKey = 0<<32 | 0<<24 | 24<<16 | 3<<8 | 0 // 0-n:24.3.0 DSMR 2.2/3 gas, value on the next line
)

// obisCurrent is the value group F of a current value: 255 ("not used").
// An absent F group means the same.
const obisCurrent = 255

// parseOBIS reads "A-B:C.D.E" (optionally "*F") from the start of line and
// returns the key, the value group F (obisCurrent when absent; 256 when it
// does not fit a byte) and the rest of the line, which starts at the first
// '('. ok is false when the line does not start with an OBIS code.
//
// F other than 255 names a past value, such as 1-0:1.8.0*96 (yesterday) or
// *0..99 (a billing period): it must never fill a current register.
func parseOBIS(line []byte) (key obisKey, f int, rest []byte, ok bool) {
	var groups [5]uint64
	seps := [4]byte{'-', ':', '.', '.'}
	i := 0
	for g := 0; g < 5; g++ {
		start := i
		var v uint64
		for i < len(line) && line[i] >= '0' && line[i] <= '9' {
			v = v*10 + uint64(line[i]-'0')
			if v > 255 {
				return 0, 0, nil, false
			}
			i++
		}
		if i == start {
			return 0, 0, nil, false
		}
		groups[g] = v
		if g < 4 {
			if i >= len(line) || line[i] != seps[g] {
				return 0, 0, nil, false
			}
			i++
		}
	}
	f = obisCurrent
	if i < len(line) && (line[i] == '*' || line[i] == '&') { // value group F, as IEC 62056-21 writes it
		i++
		start := i
		f = 0
		for i < len(line) && line[i] >= '0' && line[i] <= '9' {
			if f <= 255 {
				f = f*10 + int(line[i]-'0')
			}
			i++
		}
		if i == start || f > 255 {
			f = 256 // not a value group: not a current value either
		}
	}
	if i >= len(line) || line[i] != '(' {
		return 0, 0, nil, false
	}
	return obis(groups[0], groups[1], groups[2], groups[3], groups[4]), f, line[i:], true
}
