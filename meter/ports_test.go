//go:build linux

package meter

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// fakeSysfs builds the parts of a sysfs tree listPorts reads: a USB FTDI
// cable, a CDC-ACM device, a real and a phantom 8250 UART, a pty-like tty
// without device.
func fakeSysfs(t *testing.T) string {
	t.Helper()
	sys := t.TempDir()
	mk := func(path, content string) {
		full := filepath.Join(sys, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, path string) {
		full := filepath.Join(sys, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(sys, target), full); err != nil {
			t.Fatal(err)
		}
	}
	usb := "devices/pci0000:00/0000:00:14.0/usb1/1-2"
	mk(usb+"/idVendor", "0403\n")
	mk(usb+"/idProduct", "6001\n")
	mk(usb+"/serial", "A10KZP45\n")
	mk(usb+"/manufacturer", "FTDI\n")
	mk(usb+"/product", "FT232R USB UART\n")
	mk(usb+"/1-2:1.0/ttyUSB0/uevent", "")
	link("bus/usb-serial/drivers/ftdi_sio", usb+"/1-2:1.0/ttyUSB0/driver")
	link("bus/usb-serial", usb+"/1-2:1.0/ttyUSB0/subsystem")
	link(usb+"/1-2:1.0/ttyUSB0", "class/tty/ttyUSB0/device")

	acm := "devices/pci0000:00/0000:00:14.0/usb1/1-3"
	mk(acm+"/idVendor", "2341\n")
	mk(acm+"/idProduct", "0043\n")
	mk(acm+"/1-3:1.0/uevent", "")
	link("bus/usb/drivers/cdc_acm", acm+"/1-3:1.0/driver")
	link("bus/usb", acm+"/1-3:1.0/subsystem")
	link(acm+"/1-3:1.0", "class/tty/ttyACM0/device")

	// Linux 6.5+: controller (pnp) > serial-base ctrl > serial-base port.
	mk("devices/pnp0/00:01/00:01:0/00:01:0.0/uevent", "")
	link("bus/pnp/drivers/serial", "devices/pnp0/00:01/driver")
	link("bus/pnp", "devices/pnp0/00:01/subsystem")
	link("bus/serial-base/drivers/ctrl", "devices/pnp0/00:01/00:01:0/driver")
	link("bus/serial-base", "devices/pnp0/00:01/00:01:0/subsystem")
	link("bus/serial-base/drivers/port", "devices/pnp0/00:01/00:01:0/00:01:0.0/driver")
	link("bus/serial-base", "devices/pnp0/00:01/00:01:0/00:01:0.0/subsystem")
	link("devices/pnp0/00:01/00:01:0/00:01:0.0", "class/tty/ttyS0/device")
	mk("class/tty/ttyS0/type", "4\n")

	mk("devices/platform/serial8250/uevent", "")
	link("bus/platform/drivers/serial8250", "devices/platform/serial8250/driver")
	link("devices/platform/serial8250", "class/tty/ttyS1/device")
	mk("class/tty/ttyS1/type", "0\n")

	mk("class/tty/tty1/dev", "4:1\n")
	return sys
}

func TestListPortsSysfs(t *testing.T) {
	got, err := listPorts(fakeSysfs(t), "/dev")
	if err != nil {
		t.Fatal(err)
	}
	want := []PortInfo{
		{Device: "/dev/ttyACM0", Name: "ttyACM0", Driver: "cdc_acm", Subsystem: "usb", VendorID: "2341", ProductID: "0043"},
		{Device: "/dev/ttyS0", Name: "ttyS0", Driver: "serial", Subsystem: "pnp"},
		{Device: "/dev/ttyUSB0", Name: "ttyUSB0", Driver: "ftdi_sio", Subsystem: "usb-serial",
			VendorID: "0403", ProductID: "6001", Serial: "A10KZP45", Manufacturer: "FTDI", Product: "FT232R USB UART"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	if !got[2].USB() || got[1].USB() {
		t.Error("USB() wrong")
	}
}

func TestListPortsNoSysfs(t *testing.T) {
	got, err := listPorts(filepath.Join(t.TempDir(), "missing"), "/dev")
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("got %v, %v; want an empty list", got, err)
	}
}

func TestListPortsThisMachine(t *testing.T) {
	ports, err := ListPorts()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ports {
		if p.Name == "" || p.Device != "/dev/"+p.Name {
			t.Errorf("odd entry %+v", p)
		}
	}
}
