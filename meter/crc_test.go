package meter

import "testing"

// The check values are the CRC catalogue's "check" for the ASCII string
// "123456789" (reveng.sourceforge.io/crc-catalogue/16.htm).
func TestCRCCheckValues(t *testing.T) {
	in := []byte("123456789")
	tests := []struct {
		name string
		fn   func([]byte) uint16
		want uint16
	}{
		{"CRC-16/ARC", CRC16ARC, 0xBB3D},
		{"CRC-16/X-25", CRC16X25, 0x906E},
		{"CRC-16/MODBUS", CRC16Modbus, 0x4B37},
	}
	for _, tt := range tests {
		if got := tt.fn(in); got != tt.want {
			t.Errorf("%s(%q) = %#04x, want %#04x", tt.name, in, got, tt.want)
		}
	}
}
