package meter

// crcARCTable is the lookup table for CRC-16/ARC: polynomial 0x8005
// reflected (0xA001), initial value 0, no final XOR. DSMR 4+ and e-MUCS P1
// telegrams carry it over every byte from '/' through '!'
// (../shared/research/meter-protocols.md §1.3).
var crcARCTable = makeReflectedTable(0xA001)

// crcX25Table serves CRC-16/X-25 (0x1021 reflected = 0x8408, init 0xFFFF,
// final XOR 0xFFFF), the SML transport checksum.
var crcX25Table = makeReflectedTable(0x8408)

func makeReflectedTable(poly uint16) *[256]uint16 {
	var t [256]uint16
	for i := range t {
		c := uint16(i)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ poly
			} else {
				c >>= 1
			}
		}
		t[i] = c
	}
	return &t
}

// CRC16ARC returns the CRC-16/ARC of p, the DSMR P1 telegram checksum.
func CRC16ARC(p []byte) uint16 {
	var c uint16
	for _, b := range p {
		c = c>>8 ^ crcARCTable[byte(c)^b]
	}
	return c
}

// CRC16X25 returns the CRC-16/X-25 of p, the SML transport checksum.
func CRC16X25(p []byte) uint16 {
	c := uint16(0xFFFF)
	for _, b := range p {
		c = c>>8 ^ crcX25Table[byte(c)^b]
	}
	return ^c
}

// CRC16Modbus returns the CRC-16/MODBUS of p (0xA001 reflected, init
// 0xFFFF, no final XOR), sent low byte first on the wire.
func CRC16Modbus(p []byte) uint16 {
	c := uint16(0xFFFF)
	for _, b := range p {
		c = c>>8 ^ crcARCTable[byte(c)^b]
	}
	return c
}
