package meter

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// listPorts reads the ttys under sys/class/tty that have a device behind
// them; dev is where their nodes live.
func listPorts(sys, dev string) ([]PortInfo, error) {
	classDir := filepath.Join(sys, "class", "tty")
	entries, err := os.ReadDir(classDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return []PortInfo{}, nil
		}
		return nil, fmt.Errorf("list serial ports: %w", err)
	}
	ports := []PortInfo{}
	for _, e := range entries {
		name := e.Name()
		ttyDir := filepath.Join(classDir, name)
		devLink := filepath.Join(ttyDir, "device")
		devDir, err := filepath.EvalSymlinks(devLink)
		if err != nil {
			continue // virtual terminals, ptys: no device behind them
		}
		p := PortInfo{Device: filepath.Join(dev, name), Name: name}
		// Since Linux 6.5 a UART's device is a port on the serial-base bus
		// under its controller; the driver worth showing is the controller's.
		hw := devDir
		for linkBase(filepath.Join(hw, "subsystem")) == "serial-base" && len(hw) > len(sys) {
			hw = filepath.Dir(hw)
		}
		p.Driver = linkBase(filepath.Join(hw, "driver"))
		p.Subsystem = linkBase(filepath.Join(hw, "subsystem"))
		// The legacy 8250 driver registers ports that are not there;
		// their UART type reads 0 ("unknown").
		if p.Driver == "serial8250" || strings.HasPrefix(name, "ttyS") {
			if t := readAttr(filepath.Join(ttyDir, "type")); t == "0" || (t == "" && p.Driver == "serial8250") {
				continue
			}
		}
		// USB attributes sit on the usb_device a few levels up.
		for d := devDir; len(d) > len(sys) && d != "/"; d = filepath.Dir(d) {
			if vid := readAttr(filepath.Join(d, "idVendor")); vid != "" {
				p.VendorID = vid
				p.ProductID = readAttr(filepath.Join(d, "idProduct"))
				p.Serial = readAttr(filepath.Join(d, "serial"))
				p.Manufacturer = readAttr(filepath.Join(d, "manufacturer"))
				p.Product = readAttr(filepath.Join(d, "product"))
				break
			}
		}
		ports = append(ports, p)
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i].Device < ports[j].Device })
	return ports, nil
}

// linkBase returns the last element of the symlink target of path, or "".
func linkBase(path string) string {
	t, err := os.Readlink(path)
	if err != nil {
		return ""
	}
	return filepath.Base(t)
}

// readAttr returns a sysfs attribute's text without the trailing newline,
// or "" when it cannot be read. Attributes are small; read at most 256
// bytes.
func readAttr(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var buf [256]byte
	n, _ := f.Read(buf[:])
	return strings.TrimSpace(string(buf[:n]))
}
