//go:build race

package peer

// raceEnabled: the race detector makes TLS handshakes and signature
// checks several times slower.
const raceEnabled = true
