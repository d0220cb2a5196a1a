package meter

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
)

// Luxembourg Smarty P1 frames (../shared/research/meter-protocols.md §1.9):
//
//	DB 08 <system title 8> <length> 30 <frame counter 4> <ciphertext> <GCM tag 12>
//
// length (one byte, or 81 n, or 82 hi lo) counts everything after it:
// 17 + ciphertext. AES-128-GCM with IV = system title || frame counter and
// AAD = 30 || the fixed authentication key; the plaintext is a DSMR
// telegram with its own CRC-16/ARC.

// smartyAuthKey is the authentication key every Smarty meter uses.
var smartyAuthKey = []byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF}

const (
	smartyTag      = 0xDB // general-glo-ciphering
	smartySecurity = 0x30 // encrypted and authenticated, suite 0
	smartyTagSize  = 12
)

// ErrSmartyKey is wrapped by the error for a frame that does not decrypt.
var ErrSmartyKey = errors.New("decryption failed: check the key")

// ErrSmartyNoKey is returned by NewSmartyDecoder without a 16-byte key.
var ErrSmartyNoKey = errors.New("smarty: the decryption key must be 16 bytes (32 hex digits); ask your grid operator (Creos) for the P1 key")

// SmartyDecoder decrypts Luxembourg Smarty P1 frames and decodes the DSMR
// telegram inside. It never logs or prints the key.
type SmartyDecoder struct {
	aead  cipher.AEAD
	inner *DSMRDecoder
	buf   []byte
	max   int
}

// NewSmartyDecoder returns a decoder for frames encrypted with opts.Key.
func NewSmartyDecoder(opts DecoderOptions) (*SmartyDecoder, error) {
	if len(opts.Key) != 16 {
		return nil, ErrSmartyNoKey
	}
	block, err := aes.NewCipher(opts.Key)
	if err != nil {
		return nil, fmt.Errorf("smarty: %w", err)
	}
	aead, err := cipher.NewGCMWithTagSize(block, smartyTagSize)
	if err != nil {
		return nil, fmt.Errorf("smarty: %w", err)
	}
	inner := opts
	inner.Key = nil
	return &SmartyDecoder{aead: aead, inner: NewDSMRDecoder(inner), max: opts.maxFrame()}, nil
}

// Protocol returns "smarty".
func (d *SmartyDecoder) Protocol() string { return "smarty" }

// smartyHeader parses the frame header at the start of b. It returns the
// header length (through the length field) and the frame's total length;
// total == 0 means b is too short to tell, ok == false that b does not
// start a frame.
func smartyHeader(b []byte, max int) (hdr, total int, ok bool) {
	if len(b) < 11 {
		return 0, 0, len(b) < 2 || b[0] == smartyTag && b[1] == 0x08
	}
	if b[0] != smartyTag || b[1] != 0x08 {
		return 0, 0, false
	}
	n := 0
	switch l := b[10]; {
	case l < 0x80:
		hdr, n = 11, int(l)
	case l == 0x81 && len(b) >= 12:
		hdr, n = 12, int(b[11])
	case l == 0x82 && len(b) >= 13:
		hdr, n = 13, int(b[11])<<8|int(b[12])
	case l == 0x81 || l == 0x82:
		return 0, 0, true
	default:
		return 0, 0, false
	}
	if n < 5+smartyTagSize+1 || hdr+n > max {
		return 0, 0, false
	}
	if len(b) > hdr && b[hdr] != smartySecurity {
		return 0, 0, false
	}
	return hdr, hdr + n, true
}

// Feed consumes p and emits one result per frame: the decrypted
// telegram's reading, or why the frame was rejected.
func (d *SmartyDecoder) Feed(p []byte, emit func(Reading, error)) {
	d.buf = append(d.buf, p...)
	for {
		s := bytes.IndexByte(d.buf, smartyTag)
		if s < 0 {
			d.buf = d.buf[:0]
			return
		}
		if s > 0 {
			d.buf = append(d.buf[:0], d.buf[s:]...)
		}
		hdr, total, ok := smartyHeader(d.buf, d.max)
		if !ok {
			d.buf = d.buf[1:]
			continue
		}
		if total == 0 || len(d.buf) < total {
			return
		}
		plain, err := d.open(d.buf[:total], hdr)
		if err != nil {
			emit(Reading{}, err)
			// Resync one byte on: a false start inside a cut frame
			// must not swallow the next real one.
			d.buf = d.buf[1:]
			continue
		}
		d.buf = d.buf[total:]
		relabel := func(r Reading, err error) {
			if err == nil {
				r.Protocol = "smarty"
			}
			emit(r, err)
		}
		d.inner.Feed(plain, relabel)
		d.inner.Flush(relabel)
	}
}

// open decrypts and authenticates one frame whose header is hdr bytes.
func (d *SmartyDecoder) open(frame []byte, hdr int) ([]byte, error) {
	title := frame[2:10]
	nonce := make([]byte, 0, 12)
	nonce = append(append(nonce, title...), frame[hdr+1:hdr+5]...)
	aad := append([]byte{smartySecurity}, smartyAuthKey...)
	plain, err := d.aead.Open(nil, nonce, frame[hdr+5:], aad)
	if err != nil {
		counter := uint32(frame[hdr+1])<<24 | uint32(frame[hdr+2])<<16 | uint32(frame[hdr+3])<<8 | uint32(frame[hdr+4])
		return nil, fmt.Errorf("smarty frame from meter %X (counter %d): %w", title, counter, ErrSmartyKey)
	}
	return plain, nil
}
