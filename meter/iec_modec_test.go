package meter

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeModeCMeter plays a mode C meter behind an IR head: it echoes what it
// is sent (half-duplex head), answers the request with its identification
// at 300 baud, and after the acknowledgement sends the readout only to a
// port opened at the speed it announced.
type fakeModeCMeter struct {
	mu      sync.Mutex
	ident   string
	readout string
	opens   []PortConfig
	written []string
	acked   byte
}

type fakeModeCPort struct {
	m      *fakeModeCMeter
	cfg    PortConfig
	out    []byte
	closed bool
}

func (m *fakeModeCMeter) open(cfg PortConfig) (Port, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.opens = append(m.opens, cfg)
	p := &fakeModeCPort{m: m, cfg: cfg}
	if m.acked != 0 && cfg.Baud == iecBauds[m.acked] && cfg.DataBits == 7 && cfg.Parity == ParityEven {
		p.out = []byte(m.readout)
	}
	return p, nil
}

func (p *fakeModeCPort) Write(b []byte) (int, error) {
	p.m.mu.Lock()
	defer p.m.mu.Unlock()
	if p.closed {
		return 0, ErrPortClosed
	}
	s := string(b)
	p.m.written = append(p.m.written, s)
	p.out = append(p.out, b...) // the IR head's echo
	switch {
	case strings.HasPrefix(s, "/?") && p.cfg.Baud == 300 && p.cfg.DataBits == 7 && p.cfg.Parity == ParityEven:
		p.out = append(p.out, "\x7f"+p.m.ident+"\r\n"...)
	case len(s) == 6 && s[0] == iecACK && s[1] == '0' && s[3] == '0' && s[4:] == "\r\n":
		p.m.acked = s[2]
		if iecBauds[s[2]] == p.cfg.Baud { // no speed change: answer on this port
			p.out = append(p.out, p.m.readout...)
		}
	}
	return len(b), nil
}

func (p *fakeModeCPort) Read(b []byte) (int, error) {
	p.m.mu.Lock()
	defer p.m.mu.Unlock()
	if p.closed {
		return 0, ErrPortClosed
	}
	if len(p.out) == 0 {
		return 0, nil // read timeout
	}
	n := copy(b, p.out[:min(len(p.out), 7)])
	p.out = p.out[n:]
	return n, nil
}

func (p *fakeModeCPort) Close() error {
	p.m.mu.Lock()
	defer p.m.mu.Unlock()
	p.closed = true
	return nil
}

func modeCReadout(body string) string {
	bcc := byte(0)
	data := body + "!\r\n\x03"
	for i := 0; i < len(data); i++ {
		bcc ^= data[i]
	}
	return "\x02" + data + string(bcc)
}

func TestIECModeCHandshake(t *testing.T) {
	m := &fakeModeCMeter{
		ident:   "/LGZ4ZMF100AC.M27",
		readout: modeCReadout("1.8.0(000219.252*kWh)\r\n2.8.0(000001.000*kWh)\r\n16.7(001.66*kW)\r\n"),
	}
	r, err := IECModeC{Open: m.open, Port: PortConfig{Device: "/dev/fake"}, Timeout: 2 * time.Second}.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.EnergyImport.Total != Some(219252) || r.PowerImportW != Some(1660) || !r.ChecksumOK {
		t.Errorf("reading %+v", r)
	}
	if r.Header != "LGZ4ZMF100AC.M27" {
		t.Errorf("header %q", r.Header)
	}
	if len(m.written) != 2 || m.written[0] != "/?!\r\n" || m.written[1] != "\x06040\r\n" {
		t.Errorf("sent %q, want the request and ACK 0 4 0", m.written)
	}
	if len(m.opens) != 2 || m.opens[0].Baud != 300 || m.opens[1].Baud != 4800 || m.opens[1].Format() != "7E1" {
		t.Errorf("opens %v, want 300 7E1 then 4800 7E1", m.opens)
	}
}

func TestIECModeCMaxBaudAndBadBCC(t *testing.T) {
	ro := modeCReadout("1.8.0(000001.000*kWh)\r\n")
	ro = ro[:len(ro)-1] + string(ro[len(ro)-1]^0x55)
	m := &fakeModeCMeter{ident: "/HAg6ABC", readout: ro}
	_, err := IECModeC{Open: m.open, Port: PortConfig{Device: "/dev/fake"}, MaxBaud: 9600, Timeout: 2 * time.Second}.Read(context.Background())
	if err == nil || !strings.Contains(err.Error(), "BCC mismatch") || !strings.Contains(err.Error(), "/dev/fake") {
		t.Fatalf("error %v, want a BCC mismatch naming the port", err)
	}
	if m.acked != '5' {
		t.Errorf("acknowledged speed %q, want '5' (9600, the cap)", m.acked)
	}
}

func TestIECModeCNoAnswer(t *testing.T) {
	m := &fakeModeCMeter{} // answers nothing: ident empty never matches
	open := func(cfg PortConfig) (Port, error) {
		p, _ := m.open(cfg)
		return &silentPort{p.(*fakeModeCPort)}, nil
	}
	_, err := IECModeC{Open: open, Port: PortConfig{Device: "/dev/ir0"}, Timeout: 50 * time.Millisecond}.Read(context.Background())
	if err == nil || !strings.Contains(err.Error(), "/dev/ir0") || !strings.Contains(err.Error(), "no identification") {
		t.Fatalf("error %v", err)
	}
	var pe *PortError
	if errors.As(err, &pe) {
		t.Fatalf("a silent meter is not a port error: %v", err)
	}
}

// silentPort swallows writes and never answers.
type silentPort struct{ *fakeModeCPort }

func (s *silentPort) Write(b []byte) (int, error) { return len(b), nil }

// The polled mode C decoder signs on over the Reader's own 300 baud port
// and asks the meter to stay at 300 baud.
func TestIECModeCPollerStaysAt300(t *testing.T) {
	m := &fakeModeCMeter{
		ident:   "/LGZ4ZMF100AC.M27",
		readout: modeCReadout("1.8.0(000219.252*kWh)\r\n16.7(-000.50*kW)\r\n"),
	}
	d, err := NewDecoder("iec62056-21-c", DecoderOptions{IEC: IECOptions{Period: time.Millisecond, Timeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	port, _ := m.open(PortConfig{Device: "/dev/ir0", Baud: 300, DataBits: 7, Parity: ParityEven})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []Reading
	err = d.(Poller).Poll(ctx, port, "/dev/ir0", func(r Reading, err error) {
		if err != nil {
			t.Errorf("poll error: %v", err)
		}
		got = append(got, r)
		cancel()
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Poll returned %v", err)
	}
	if len(got) != 1 || got[0].PowerExportW != Some(500) || got[0].EnergyImport.Total != Some(219252) || !got[0].ChecksumOK {
		t.Fatalf("readings %+v", got)
	}
	if len(m.written) != 2 || m.written[1] != "\x06000\r\n" || len(m.opens) != 1 {
		t.Errorf("sent %q over %d opens, want ACK 0 0 0 on the one port", m.written, len(m.opens))
	}
}
