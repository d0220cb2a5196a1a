package peer

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/commons-energy/commons/share"
)

// Wire format of a batch of messages (push request bodies and range
// responses): each message is a 4-byte big-endian length followed by the
// message's exact signed bytes. Messages are self-authenticating, so the
// framing carries nothing else; they are never re-serialised.
const (
	// BatchContentType is the media type of a framed batch.
	BatchContentType = "application/x-commons-messages"

	// MaxMessageSize bounds one framed message: the largest valid
	// envelope (158-byte header, 64-byte signature, 8 KiB content).
	MaxMessageSize = share.MaxMessageSize
)

// ErrBatch marks a malformed batch (bad framing, too many messages, a
// message too large).
var ErrBatch = errors.New("malformed batch")

// errTooMany is wrapped in ErrBatch when a batch holds more messages than
// allowed.
var errTooMany = errors.New("too many messages")

// WriteBatch writes raws in the batch framing.
func WriteBatch(w io.Writer, raws [][]byte) error {
	var hdr [4]byte
	for i, raw := range raws {
		if len(raw) == 0 || len(raw) > MaxMessageSize {
			return fmt.Errorf("message %d: %d bytes, want 1..%d", i, len(raw), MaxMessageSize)
		}
		binary.BigEndian.PutUint32(hdr[:], uint32(len(raw)))
		if _, err := w.Write(hdr[:]); err != nil {
			return err
		}
		if _, err := w.Write(raw); err != nil {
			return err
		}
	}
	return nil
}

// ReadBatch reads a framed batch of at most maxCount messages until EOF.
// Malformed framing, an empty or oversized message, a truncated message or
// more than maxCount messages give an error wrapping ErrBatch; errors of r
// itself (for example http.MaxBytesError) are returned wrapped as they are.
func ReadBatch(r io.Reader, maxCount int) ([][]byte, error) {
	br := bufio.NewReader(r)
	var raws [][]byte
	var hdr [4]byte
	for {
		_, err := io.ReadFull(br, hdr[:])
		if err == io.EOF {
			return raws, nil
		}
		if err != nil {
			return nil, framingErr(len(raws), "length", err)
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n == 0 || n > MaxMessageSize {
			return nil, fmt.Errorf("%w: message %d is %d bytes, want 1..%d", ErrBatch, len(raws), n, MaxMessageSize)
		}
		if len(raws) >= maxCount {
			return nil, fmt.Errorf("%w: %w: more than %d messages", ErrBatch, errTooMany, maxCount)
		}
		raw := make([]byte, n)
		if _, err := io.ReadFull(br, raw); err != nil {
			return nil, framingErr(len(raws), "body", err)
		}
		raws = append(raws, raw)
	}
}

func framingErr(i int, part string, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: message %d: truncated %s", ErrBatch, i, part)
	}
	return fmt.Errorf("read message %d %s: %w", i, part, err)
}
