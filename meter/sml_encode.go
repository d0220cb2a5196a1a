package meter

import "bytes"

// SMLEntry is one value of an SML GetListResponse: raw x 10^Scaler in the
// DLMS unit Unit (27 W, 30 Wh, 33 A, 35 V).
type SMLEntry struct {
	OBIS   [6]byte // e.g. {1, 0, 16, 7, 0, 255}
	Unit   byte
	Scaler int8
	Value  int64
}

// SML unit codes.
const (
	SMLUnitW  = 27
	SMLUnitWh = 30
	SMLUnitA  = 33
	SMLUnitV  = 35
)

// EncodeSMLFile returns one SML 1.04 transport frame holding an
// OpenResponse, a GetListResponse with entries and a CloseResponse, with
// message CRCs, escaping, padding and the transport CRC-16/X-25 as a meter
// sends them. The simulator and the tests use it.
func EncodeSMLFile(serverID []byte, fileID uint32, entries []SMLEntry) []byte {
	var payload []byte
	tx := func(n byte) []byte {
		return []byte{byte(fileID >> 24), byte(fileID >> 16), byte(fileID >> 8), byte(fileID), n}
	}
	fid := tx(0)[:4]
	// OpenResponse: codepage, clientId, reqFileId, serverId, refTime, smlVersion.
	open := smlListTL(nil, 6)
	open = append(open, 0x01, 0x01)
	open = smlOctetsTLV(open, fid)
	open = smlOctetsTLV(open, serverID)
	open = append(open, 0x01, 0x01)
	payload = smlAppendMessage(payload, tx(1), 0x0101, open)

	// GetListResponse: clientId, serverId, listName, actSensorTime,
	// valList, listSignature, actGatewayTime.
	gl := smlListTL(nil, 7)
	gl = append(gl, 0x01)
	gl = smlOctetsTLV(gl, serverID)
	gl = smlOctetsTLV(gl, []byte{1, 0, 98, 1, 0, 255})
	gl = append(gl, 0x01)
	gl = smlListTL(gl, len(entries))
	for _, e := range entries {
		gl = smlListTL(gl, 7)
		gl = smlOctetsTLV(gl, e.OBIS[:])
		gl = append(gl, 0x01, 0x01) // status, valTime
		gl = append(gl, 0x62, e.Unit)
		gl = append(gl, 0x52, byte(e.Scaler))
		gl = smlIntTLV(gl, e.Value)
		gl = append(gl, 0x01) // valueSignature
	}
	gl = append(gl, 0x01, 0x01)
	payload = smlAppendMessage(payload, tx(2), 0x0701, gl)

	// CloseResponse: globalSignature.
	payload = smlAppendMessage(payload, tx(3), 0x0201, []byte{0x71, 0x01})

	pad := (4 - len(payload)%4) % 4
	payload = append(payload, make([]byte, pad)...)
	out := append([]byte(nil), smlStart...)
	for p := 0; p < len(payload); p += 4 {
		blk := payload[p : p+4]
		out = append(out, blk...)
		if bytes.Equal(blk, smlEscape) {
			out = append(out, blk...)
		}
	}
	out = append(out, 0x1b, 0x1b, 0x1b, 0x1b, 0x1a, byte(pad))
	crc := CRC16X25(out)
	return append(out, byte(crc), byte(crc>>8))
}

func smlListTL(b []byte, n int) []byte {
	if n < 16 {
		return append(b, 0x70|byte(n))
	}
	return append(b, 0xf0|byte(n>>4&0x0f), byte(n&0x0f))
}

func smlOctetsTLV(b []byte, s []byte) []byte {
	n := len(s) + 1
	if n < 16 {
		b = append(b, byte(n))
	} else {
		n++
		b = append(b, 0x80|byte(n>>4&0x0f), byte(n&0x0f))
	}
	return append(b, s...)
}

// smlIntTLV writes v as a signed integer of the smallest width.
func smlIntTLV(b []byte, v int64) []byte {
	n := 1
	for n < 8 {
		lim := int64(1) << (8*n - 1)
		if v >= -lim && v < lim {
			break
		}
		n++
	}
	b = append(b, 0x50|byte(n+1))
	for i := n - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// smlAppendMessage appends one message with its CRC to b.
func smlAppendMessage(b []byte, txID []byte, tag uint16, body []byte) []byte {
	start := len(b)
	b = append(b, 0x76)
	b = smlOctetsTLV(b, txID)
	b = append(b, 0x62, 0x00, 0x62, 0x00) // groupNo, abortOnError
	b = append(b, 0x72, 0x63, byte(tag>>8), byte(tag))
	b = append(b, body...)
	crc := CRC16X25(b[start:])
	return append(b, 0x63, byte(crc), byte(crc>>8), 0x00)
}
