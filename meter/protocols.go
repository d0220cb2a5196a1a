package meter

import (
	"fmt"
	"strings"
)

// DefaultMaxFrame is the number of bytes a decoder keeps of one partial
// frame when DecoderOptions.MaxFrame is 0. The largest DSMR telegrams
// (Belgian e-MUCS with a 13-month peak history, a 1024-character text
// message hex-encoded) stay well below it.
const DefaultMaxFrame = 16 << 10

// DecoderOptions configures a decoder made by NewDecoder.
type DecoderOptions struct {
	// Key is the 16-byte AES-128 key of an encrypted Luxembourg Smarty
	// meter. Decoders of plaintext protocols ignore it.
	Key []byte
	// MaxFrame bounds the bytes kept of one partial frame between Feed
	// calls; a longer frame is dropped with ErrTooLong. 0 means
	// DefaultMaxFrame.
	MaxFrame int
	// SML holds the per-meter options of the SML decoder (the DZG
	// unsigned-16 power workaround).
	SML SMLOptions
	// Modbus holds the slave id, model, poll period, timeout and retries
	// of a Modbus meter.
	Modbus ModbusOptions
	// OnDetect, when set, is told what the "auto" decoder recognised.
	OnDetect func(Detection)
	// IEC holds the address, period and timeout of IEC 62056-21 mode C
	// polling ("iec62056-21-c").
	IEC IECOptions
}

func (o DecoderOptions) maxFrame() int {
	if o.MaxFrame <= 0 {
		return DefaultMaxFrame
	}
	return o.MaxFrame
}

// Flusher is implemented by decoders that may hold a frame which only the
// end of the input completes (a DSMR 2.2 telegram ending in "!" at the end
// of a file). Call Flush once the input has ended; a frame cut short is
// then reported as an error.
type Flusher interface {
	Flush(emit func(Reading, error))
}

// protocolEntry is one decoder the registry can build.
type protocolEntry struct {
	name    string
	summary string
	new     func(DecoderOptions) (Decoder, error)
}

// protocolTable lists the protocols NewDecoder knows, in the order
// Protocols reports them. Add a protocol by adding a line.
var protocolTable = []protocolEntry{
	{"dsmr", "DSMR P1 2.2-5.0, Belgian e-MUCS, plaintext Luxembourg Smarty and DSMR-like dialects",
		func(o DecoderOptions) (Decoder, error) { return NewDSMRDecoder(o), nil }},
	{"sml", "SML 1.04: German eHZ, EDL21 and modern meters through an IR head (9600 8N1 push)",
		func(o DecoderOptions) (Decoder, error) { return NewSMLDecoder(o.SML), nil }},
	{"iec62056-21", "IEC 62056-21 (D0) optical readout: mode D push and mode C readout text",
		func(o DecoderOptions) (Decoder, error) { return NewIECDecoder(o), nil }},
	{"iec62056-21-c", "IEC 62056-21 mode C, polled: sign-on and readout every period over a 300 baud 7E1 port",
		func(o DecoderOptions) (Decoder, error) { return NewIECModeCPoller(o.IEC), nil }},
	{"modbus", "Modbus RTU Eastron SDM120/SDM630, polled (decoding reads captured request+response traffic)",
		func(o DecoderOptions) (Decoder, error) { return nonNil(NewModbusSDM(o.Modbus)) }},
	{"smarty", "Luxembourg Smarty encrypted P1 (AES-128-GCM, needs the meter's key)",
		func(o DecoderOptions) (Decoder, error) { return nonNil(NewSmartyDecoder(o)) }},
	{"auto", "recognise DSMR/D0 text, SML or Smarty from the first bytes",
		func(o DecoderOptions) (Decoder, error) { return NewAutoDecoder(o, o.OnDetect), nil }},
}

// Protocols returns the names NewDecoder accepts.
func Protocols() []string {
	names := make([]string, len(protocolTable))
	for i, e := range protocolTable {
		names[i] = e.name
	}
	return names
}

// ProtocolSummary returns a one-line description of a registered protocol,
// or "" when the name is unknown.
func ProtocolSummary(name string) string {
	for _, e := range protocolTable {
		if e.name == name {
			return e.summary
		}
	}
	return ""
}

// NewDecoder returns a fresh decoder for the named protocol.
func NewDecoder(protocol string, opts DecoderOptions) (Decoder, error) {
	for _, e := range protocolTable {
		if e.name == protocol {
			return e.new(opts)
		}
	}
	return nil, fmt.Errorf("unknown meter protocol %q (known: %s)", protocol, strings.Join(Protocols(), ", "))
}

// Clone returns a copy of r that shares no memory with it. Decoders reuse
// the storage behind Gas, Water, Heat and DemandPeakHistory between frames, so a reading kept
// past its emit call must be cloned.
func (r Reading) Clone() Reading {
	c := r
	if r.Gas != nil {
		g := *r.Gas
		c.Gas = &g
	}
	if r.Water != nil {
		w := *r.Water
		c.Water = &w
	}
	if r.Heat != nil {
		h := *r.Heat
		c.Heat = &h
	}
	if r.Registers != nil {
		c.Registers = append([]Register(nil), r.Registers...)
	}
	if r.DemandPeakHistory != nil {
		c.DemandPeakHistory = append([]DemandPeak(nil), r.DemandPeakHistory...)
	}
	return c
}
