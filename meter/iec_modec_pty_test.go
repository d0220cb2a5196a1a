package meter_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/commons-energy/commons/meter"
)

// TestIECModeCOverPTY runs the mode C sign-on against a fake meter on a
// real pseudo-terminal through tarm/serial: 300 baud 7E1 request, the
// meter's echo and identification, the acknowledgement choosing 9600 baud,
// the port closed and opened again, the readout with its BCC.
func TestIECModeCOverPTY(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer slave.Close() // held open so the line keeps what the meter sends while the reader reopens
	tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Lflag &^= unix.ECHO | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Oflag &^= unix.OPOST
	tio.Iflag &^= unix.ICRNL | unix.INLCR | unix.IGNCR
	if err := unix.IoctlSetTermios(int(slave.Fd()), unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}

	body := "F.F(00)\r\n1.8.0(000219.252*kWh)\r\n2.8.0(000001.500*kWh)\r\n16.7(-000.42*kW)\r\n32.7(233*V)\r\n!\r\n\x03"
	bcc := byte(0)
	for i := 0; i < len(body); i++ {
		bcc ^= body[i]
	}
	readout := "\x02" + body + string(bcc)

	meterDone := make(chan error, 1)
	var sawAck []byte
	go func() {
		meterDone <- func() error {
			var got []byte
			buf := make([]byte, 64)
			step := 0
			for step < 2 {
				n, err := master.Read(buf)
				if err != nil {
					return err
				}
				got = append(got, buf[:n]...)
				switch {
				case step == 0 && bytes.Contains(got, []byte("/?!\r\n")):
					// An IR head echoes what it sends; then the meter answers.
					if _, err := master.Write([]byte("/?!\r\n/LGZ5ZMD120\r\n")); err != nil {
						return err
					}
					got, step = nil, 1
				case step == 1 && len(got) >= 6:
					sawAck = append([]byte(nil), got[:6]...)
					if _, err := master.Write([]byte(readout)); err != nil {
						return err
					}
					step = 2
				}
			}
			return nil
		}()
	}()

	var opened []meter.PortConfig
	open := func(cfg meter.PortConfig) (meter.Port, error) {
		opened = append(opened, cfg)
		return meter.OpenSerial(cfg)
	}
	r, err := meter.IECModeC{Open: open, Port: meter.PortConfig{Device: slave.Name(), ReadTimeout: 100 * time.Millisecond}, Timeout: 5 * time.Second}.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := <-meterDone; err != nil {
		t.Fatal(err)
	}
	if string(sawAck) != "\x06050\r\n" {
		t.Errorf("acknowledgement %q, want ACK 0 5 0 CR LF", sawAck)
	}
	if len(opened) != 2 || opened[0].Baud != 300 || opened[0].Format() != "7E1" || opened[1].Baud != 9600 || opened[1].Format() != "7E1" {
		t.Errorf("opened %v, want 300 7E1 then 9600 7E1", opened)
	}
	if !r.ChecksumOK || r.EnergyImport.Total != meter.Some(219252) || r.EnergyExport.Total != meter.Some(1500) ||
		r.PowerExportW != meter.Some(420) || r.PowerImportW != meter.Some(0) || r.Phases[0].VoltageMV != meter.Some(233000) {
		t.Errorf("reading %+v", r)
	}
	if r.Header != "LGZ5ZMD120" {
		t.Errorf("header %q", r.Header)
	}
}
