// Package node is the household: its home folder and config, its identity,
// its ledger, and the operations the CLI, the dashboard and the daemon use
// on it (neighbours, pledges and their lifecycle, status, message export and
// import, settlement). One process at a time owns a household; it holds the
// ledger's exclusive lock for as long as the Node is open.
package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// File names inside a home.
const (
	ConfigFile = "config.json"  // the household's settings, see Config
	KeyFile    = "identity.key" // the Ed25519 identity, mode 0600
	LedgerFile = "ledger.db"    // the SQLite ledger (WAL files next to it)
	LockFile   = "lock"         // the exclusive single-writer lock
	SocketFile = "commons.sock" // the daemon's local API, mode 0600
)

// Home says where one household keeps its files. With --home DIR (or
// COMMONS_HOME) everything lives in DIR; otherwise the config and key live
// under $XDG_CONFIG_HOME/commons and the ledger, lock and socket under
// $XDG_DATA_HOME/commons.
type Home struct {
	ConfigDir string // config and identity key
	DataDir   string // ledger, lock and socket
}

// ResolveHome returns the home for dir, or the XDG default home when dir is
// empty. It does not create anything.
func ResolveHome(dir string) (Home, error) {
	if dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return Home{}, fmt.Errorf("home %s: %w", dir, err)
		}
		return Home{ConfigDir: abs, DataDir: abs}, nil
	}
	cfg, err := xdgDir("XDG_CONFIG_HOME", ".config")
	if err != nil {
		return Home{}, err
	}
	data, err := xdgDir("XDG_DATA_HOME", filepath.Join(".local", "share"))
	if err != nil {
		return Home{}, err
	}
	return Home{ConfigDir: filepath.Join(cfg, "commons"), DataDir: filepath.Join(data, "commons")}, nil
}

func xdgDir(env, fallback string) (string, error) {
	if d := os.Getenv(env); d != "" && filepath.IsAbs(d) {
		return d, nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no home folder: set --home DIR or COMMONS_HOME (%w)", err)
	}
	return filepath.Join(h, fallback), nil
}

// String names the home for messages: the one folder, or both.
func (h Home) String() string {
	if h.ConfigDir == h.DataDir {
		return h.ConfigDir
	}
	return h.ConfigDir + " and " + h.DataDir
}

// ConfigPath is the config file's path.
func (h Home) ConfigPath() string { return filepath.Join(h.ConfigDir, ConfigFile) }

// KeyPath is the identity key file's path.
func (h Home) KeyPath() string { return filepath.Join(h.ConfigDir, KeyFile) }

// LedgerPath is the ledger database's path.
func (h Home) LedgerPath() string { return filepath.Join(h.DataDir, LedgerFile) }

// LockPath is the single-writer lock file's path.
func (h Home) LockPath() string { return filepath.Join(h.DataDir, LockFile) }

// RelayCursorPath is the file keeping how far the household read the
// community hub's stream.
func (h Home) RelayCursorPath() string { return filepath.Join(h.DataDir, "relay-cursor.json") }

// SocketPath is the daemon's local socket path.
func (h Home) SocketPath() string { return filepath.Join(h.DataDir, SocketFile) }

// ErrNotInitialised is returned when a home has no config yet.
var ErrNotInitialised = errors.New("household not initialised")

// Initialised reports whether the home holds a config file.
func (h Home) Initialised() bool {
	_, err := os.Stat(h.ConfigPath())
	return err == nil
}

// mkdirs creates the home's folders, private to the user.
func (h Home) mkdirs() error {
	for _, d := range []string{h.ConfigDir, h.DataDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create home %s: %w", d, err)
		}
	}
	return nil
}
