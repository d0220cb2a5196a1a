package meter

import (
	"math/rand/v2"
	"testing"
)

// TestCRC16ARCFast checks the slicing-by-8 CRC against the byte-wise one
// and the catalogue check value, for every length up to 300.
func TestCRC16ARCFast(t *testing.T) {
	if got := crc16ARCFast([]byte("123456789")); got != 0xBB3D {
		t.Fatalf("check value: got %04X, want BB3D", got)
	}
	rng := rand.New(rand.NewPCG(7, 9))
	buf := make([]byte, 300)
	for i := range buf {
		buf[i] = byte(rng.UintN(256))
	}
	for n := range len(buf) + 1 {
		if got, want := crc16ARCFast(buf[:n]), CRC16ARC(buf[:n]); got != want {
			t.Fatalf("length %d: got %04X, want %04X", n, got, want)
		}
	}
}
