package assets

import (
	"bytes"
	_ "embed"
)

//go:embed systemd/commons.service
var systemdUnit []byte

// SystemdUnit returns the systemd unit that runs `commons daemon` as a
// dedicated user in the dialout group, with the home in
// /var/lib/commons. docs/DAEMON.md says how to install it.
func SystemdUnit() []byte { return bytes.Clone(systemdUnit) }
