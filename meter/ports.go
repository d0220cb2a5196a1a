package meter

// PortInfo describes a serial port found on the system.
type PortInfo struct {
	Device       string `json:"device"`                 // e.g. /dev/ttyUSB0
	Name         string `json:"name"`                   // kernel name, e.g. ttyUSB0
	Driver       string `json:"driver,omitempty"`       // kernel driver, e.g. ftdi_sio, cp210x, cdc_acm, pl2303
	Subsystem    string `json:"subsystem,omitempty"`    // bus, e.g. usb-serial, usb, platform, pnp
	VendorID     string `json:"vendor_id,omitempty"`    // USB vendor id, 4 hex digits
	ProductID    string `json:"product_id,omitempty"`   // USB product id, 4 hex digits
	Serial       string `json:"serial,omitempty"`       // USB serial number
	Manufacturer string `json:"manufacturer,omitempty"` // USB manufacturer string
	Product      string `json:"product,omitempty"`      // USB product string
}

// USB reports whether the port sits on a USB adapter.
func (p PortInfo) USB() bool { return p.VendorID != "" }

// ListPorts returns the serial ports of this machine, sorted by device.
// On Linux it reads sysfs (/sys/class/tty/*/device); elsewhere it returns
// an empty list.
func ListPorts() ([]PortInfo, error) { return listPorts("/sys", "/dev") }
