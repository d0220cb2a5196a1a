package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/commons-energy/commons/ledger"
	"github.com/commons-energy/commons/meter"
	"github.com/commons-energy/commons/share"
	"github.com/commons-energy/commons/share/input"
	"github.com/commons-energy/commons/share/relay"
)

// Config is the household's settings file (config.json in the home). It is
// plain JSON so a person can read and edit it.
type Config struct {
	Name   string `json:"name"`             // display name shown to neighbours
	Listen string `json:"listen,omitempty"` // where neighbours reach this box directly, host:port
	Relay  string `json:"relay,omitempty"`  // a community hub URL, e.g. nats://hub:4222
	// RelayAuth holds the credentials and TLS files for Relay; nil when
	// the URL carries what the hub needs (or it needs nothing).
	RelayAuth *RelayAuthConfig `json:"relay_auth,omitempty"`
	// RelayDomain is the hub's JetStream domain ("" for none): needed
	// when the relay URL is a local leaf node of the hub.
	RelayDomain string          `json:"relay_domain,omitempty"`
	Meter       MeterConfig     `json:"meter"`              // the serial meter
	Community   CommunityConfig `json:"community"`          // settings every member of the community shares
	Timezone    string          `json:"timezone,omitempty"` // IANA zone for "today" and HH:MM windows; "" = the system's
	// AutoAccept lets a running household accept incoming pledges by
	// itself; nil (the default) leaves them for the household to answer.
	AutoAccept *AutoAcceptConfig `json:"auto_accept,omitempty"`
	// ProductionMeter is an optional second meter on the solar inverter's
	// line (e.g. an Eastron SDM630 over Modbus RTU); nil = none. With it
	// the household sees production and consumption as measured.
	// Settlement keeps using the grid meter only.
	ProductionMeter *ProductionMeterConfig `json:"production_meter,omitempty"`
	// FuseA is the main fuse rating per phase in amperes, for the
	// dashboard's phase bars; 0 = unknown.
	FuseA int `json:"fuse_a,omitempty"`
	// Storage bounds what neighbours can store in this household's
	// ledger; nil = the defaults.
	Storage *StorageConfig `json:"storage,omitempty"`
	// MQTT publishes the household to Home Assistant over MQTT (a
	// running daemon only); nil = nothing is published.
	MQTT *MQTTConfig `json:"mqtt,omitempty"`
	// Status sets how much the signed statuses tell the neighbours about
	// this household's power; nil = the defaults.
	Status *StatusConfig `json:"status,omitempty"`
}

// StatusConfig is the privacy setting of the household's signed statuses
// (docs/PROTOCOL.md §8.8): each neighbour sees the surplus or need, and
// figures that are exact and frequent tell when people are home and what
// they run. Zero fields mean the defaults.
type StatusConfig struct {
	// Off publishes no statuses: neighbours see no surplus or need.
	Off bool `json:"off,omitempty"`
	// PrecisionW rounds the published watts down to a multiple of it;
	// default DefaultStatusPrecisionW, 1 = exact.
	PrecisionW int64 `json:"precision_w,omitempty"`
	// MinIntervalS is the least time between two statuses in seconds,
	// however much the power moves; default DefaultStatusMinInterval.
	MinIntervalS int `json:"min_interval_s,omitempty"`
}

// Status privacy defaults: 100 W steps, at most one status in 2 minutes.
const (
	DefaultStatusPrecisionW  = 100
	DefaultStatusMinInterval = 2 * time.Minute
	maxStatusPrecisionW      = 100_000
	maxStatusMinIntervalS    = 24 * 3600
)

// Precision returns the step published watts are rounded down to.
func (s *StatusConfig) Precision() int64 {
	if s == nil || s.PrecisionW == 0 {
		return DefaultStatusPrecisionW
	}
	return s.PrecisionW
}

// MinInterval returns the least time between two statuses.
func (s *StatusConfig) MinInterval() time.Duration {
	if s == nil || s.MinIntervalS == 0 {
		return DefaultStatusMinInterval
	}
	return time.Duration(s.MinIntervalS) * time.Second
}

// Publish reports whether statuses are published at all.
func (s *StatusConfig) Publish() bool { return s == nil || !s.Off }

func (s *StatusConfig) validate() error {
	if s.PrecisionW < 0 || s.PrecisionW > maxStatusPrecisionW {
		return fmt.Errorf("status precision_w %d is out of range; use 1 (exact) to %d W, or leave it out for %d W", s.PrecisionW, maxStatusPrecisionW, DefaultStatusPrecisionW)
	}
	if s.MinIntervalS < 0 || s.MinIntervalS > maxStatusMinIntervalS {
		return fmt.Errorf("status min_interval_s %d is out of range; use 1 to %d seconds, or leave it out for %d", s.MinIntervalS, maxStatusMinIntervalS, int(DefaultStatusMinInterval/time.Second))
	}
	return nil
}

// StorageConfig bounds the disk space neighbours can take (a receiver
// policy, see docs/PROTOCOL.md). Zero fields mean the defaults. This
// household's own messages are never limited.
type StorageConfig struct {
	NeighbourMiB   int `json:"neighbour_mib,omitempty"`    // chain messages stored per neighbour; default 32
	UnknownKindMiB int `json:"unknown_kind_mib,omitempty"` // of those, kinds this version does not know; default 1
	ReserveMiB     int `json:"reserve_mib,omitempty"`      // free disk space kept for this household's own messages; default 64
}

// MaxStorageMiB bounds each StorageConfig field.
const MaxStorageMiB = 1 << 20

// Quota returns the ledger quota the settings describe.
func (s *StorageConfig) Quota() ledger.Quota {
	if s == nil {
		return ledger.Quota{}
	}
	return ledger.Quota{
		AuthorBytes:      int64(s.NeighbourMiB) << 20,
		UnknownKindBytes: int64(s.UnknownKindMiB) << 20,
		ReserveBytes:     int64(s.ReserveMiB) << 20,
	}
}

func (s *StorageConfig) validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"neighbour_mib", s.NeighbourMiB}, {"unknown_kind_mib", s.UnknownKindMiB}, {"reserve_mib", s.ReserveMiB}} {
		if f.v < 0 || f.v > MaxStorageMiB {
			return fmt.Errorf("storage %s %d is out of range; use 1 to %d MiB, or 0 (or leave it out) for the default", f.name, f.v, MaxStorageMiB)
		}
	}
	return nil
}

// RelayAuthConfig is how the household proves itself to the community
// hub and checks the hub's certificate. The config file is mode 0600;
// none of this is ever logged or shown by status.
type RelayAuthConfig struct {
	User      string `json:"user,omitempty"`
	Password  string `json:"password,omitempty"`
	Token     string `json:"token,omitempty"`
	CredsFile string `json:"creds_file,omitempty"` // a NATS .creds file (JWT + NKey seed)
	CAFile    string `json:"ca_file,omitempty"`    // PEM CA bundle the hub's TLS certificate must chain to
	CertFile  string `json:"cert_file,omitempty"`  // client certificate, when the hub asks for one
	KeyFile   string `json:"key_file,omitempty"`
}

// ListenNone as the config's listen (or init's --listen) means no peer
// server: neighbours are reached through the community hub only.
const ListenNone = "none"

// ListenAddr is the address the peer server listens on; "" for none.
func (c *Config) ListenAddr() string {
	if c.Listen == ListenNone {
		return ""
	}
	return c.Listen
}

// ProductionMeterConfig says how to read the production meter.
type ProductionMeterConfig struct {
	Port     string `json:"port"`               // serial device of the RS-485 adapter, e.g. /dev/ttyUSB1
	Protocol string `json:"protocol,omitempty"` // "modbus" (the default), or dsmr, sml, iec62056-21 for a pushing sub-meter
	Baud     int    `json:"baud,omitempty"`     // 0 = the model's default (SDM630 9600, SDM120 2400)
	Format   string `json:"format,omitempty"`   // character format as set on the meter: "8N1" (default) or "8E1"
	Slave    int    `json:"slave,omitempty"`    // Modbus slave id 1..247; 0 = 1
	Model    string `json:"model,omitempty"`    // Modbus register map: "sdm630" (default) or "sdm120"
	PollMS   int    `json:"poll_ms,omitempty"`  // Modbus polling period in milliseconds; 0 = 1000
	// Invert swaps the directions: for a meter wired so that production
	// counts as export (reverse) energy.
	Invert bool `json:"invert,omitempty"`
}

// productionProtocols are the protocols a production meter may speak.
var productionProtocols = []string{"modbus", "dsmr", "sml", "iec62056-21"}

// productionModels are the Modbus register maps a production meter may use.
var productionModels = []string{"sdm630", "sdm120"}

// MaxFuseA bounds the fuse rating a config may give.
const MaxFuseA = 1000

func (p *ProductionMeterConfig) validate() error {
	if strings.TrimSpace(p.Port) == "" {
		return errors.New("production_meter port is empty; give the serial device of the inverter's meter, e.g. /dev/ttyUSB1, or remove production_meter")
	}
	if p.Protocol != "" && !slices.Contains(productionProtocols, p.Protocol) {
		return fmt.Errorf("production_meter protocol %q is not supported; use one of %s", p.Protocol, strings.Join(productionProtocols, ", "))
	}
	if p.Baud < 0 || p.Baud > 4_000_000 {
		return fmt.Errorf("production_meter baud %d is out of range; use e.g. 9600 (SDM630) or 2400 (SDM120)", p.Baud)
	}
	if p.Format != "" {
		if _, err := (meter.PortConfig{}).WithFormat(p.Format); err != nil {
			return fmt.Errorf("production_meter format %q: %v; use 8N1 or 8E1 as set on the meter", p.Format, err)
		}
	}
	if p.Slave < 0 || p.Slave > 247 {
		return fmt.Errorf("production_meter slave %d is out of range; use the meter's Modbus id, 1 to 247", p.Slave)
	}
	if p.Model != "" && !slices.Contains(productionModels, p.Model) {
		return fmt.Errorf("production_meter model %q is unknown; use one of %s", p.Model, strings.Join(productionModels, ", "))
	}
	if p.PollMS != 0 && (p.PollMS < 20 || p.PollMS > 60_000) {
		return fmt.Errorf("production_meter poll_ms %d is out of range; use 20 to 60000 (default 1000)", p.PollMS)
	}
	return nil
}

// AutoAcceptConfig says which incoming pledges a running household
// accepts without asking.
type AutoAcceptConfig struct {
	MaxWh int64    `json:"max_wh"`         // accept pledges of at most this many Wh; 0 = any size
	From  []string `json:"from,omitempty"` // only from these neighbours (names or ids); empty = any neighbour
}

// MeterConfig says how to read the household's meter.
type MeterConfig struct {
	Port     string `json:"port,omitempty"`     // serial device, e.g. /dev/ttyUSB0; "" = no meter yet
	Protocol string `json:"protocol,omitempty"` // auto, dsmr, sml, iec62056-21, smarty, modbus
	Baud     int    `json:"baud,omitempty"`     // 0 = the protocol's default
}

// CommunityConfig holds the community's shared settlement settings.
type CommunityConfig struct {
	Name          string `json:"name"`           // community name; part of the community id, the same for every member
	SlotSeconds   int    `json:"slot_seconds"`   // settlement slot length; 900 by default
	AllocationKey string `json:"allocation_key"` // how competing pledges share a slot's export: "pro-rata"
	// Genesis is the community's random value (share.Manifest.Genesis),
	// drawn by `commons init` for a new community and taken from the
	// invite by `commons init --join`; "" is a version 1 community.
	Genesis string `json:"genesis,omitempty"`
}

// Defaults of a new household.
const (
	DefaultCommunity     = "commons"
	DefaultSlotSeconds   = 900
	DefaultAllocationKey = "pro-rata"
	DefaultListen        = "127.0.0.1:7420"
	MaxNameLen           = 64
)

// knownProtocols are the meter protocol names the config accepts.
var knownProtocols = []string{"auto", "dsmr", "sml", "iec62056-21", "smarty", "modbus"}

// allocationKeys are the allocation keys the config accepts.
var allocationKeys = []string{"pro-rata"}

// DefaultConfig returns the settings of a new household called name.
func DefaultConfig(name string) Config {
	return Config{
		Name:      name,
		Listen:    DefaultListen,
		Meter:     MeterConfig{Protocol: "auto"},
		Community: CommunityConfig{Name: DefaultCommunity, SlotSeconds: DefaultSlotSeconds, AllocationKey: DefaultAllocationKey},
	}
}

// Validate checks every field and says which one is wrong and what to use.
func (c *Config) Validate() error {
	if err := ValidateName(c.Name); err != nil {
		return err
	}
	if c.Meter.Protocol != "" && !slices.Contains(knownProtocols, c.Meter.Protocol) {
		return fmt.Errorf("meter protocol %q is unknown; use one of %s", c.Meter.Protocol, strings.Join(knownProtocols, ", "))
	}
	if c.Meter.Baud < 0 || c.Meter.Baud > 4_000_000 {
		return fmt.Errorf("meter baud %d is out of range; use e.g. 115200 (DSMR 4/5) or 9600 (DSMR 2/3)", c.Meter.Baud)
	}
	if err := ValidateName(c.Community.Name); err != nil {
		return fmt.Errorf("community %w", err)
	}
	s := c.Community.SlotSeconds
	if s < 60 || s > 86400 || 86400%s != 0 {
		return fmt.Errorf("community slot_seconds %d must divide a day and be at least 60; use 900 (15 min), 1800 or 3600", s)
	}
	if !slices.Contains(allocationKeys, c.Community.AllocationKey) {
		return fmt.Errorf("community allocation_key %q is unknown; use one of %s", c.Community.AllocationKey, strings.Join(allocationKeys, ", "))
	}
	if err := c.Manifest().Validate(); err != nil {
		return fmt.Errorf("community genesis %q is not 32 lowercase hex digits; copy it from a neighbour's config, or join with commons init --join INVITE", c.Community.Genesis)
	}
	if _, err := c.Location(); err != nil {
		return err
	}
	if c.ProductionMeter != nil {
		if err := c.ProductionMeter.validate(); err != nil {
			return err
		}
	}
	if c.Relay != "" {
		if err := relay.ValidateURL(c.Relay); err != nil {
			return err
		}
	}
	if a := c.RelayAuth; a != nil {
		if (a.CertFile == "") != (a.KeyFile == "") {
			return errors.New("relay_auth: cert_file and key_file go together; give both or neither")
		}
		if a.Password != "" && a.User == "" {
			return errors.New("relay_auth: a password needs a user")
		}
	}
	if c.FuseA < 0 || c.FuseA > MaxFuseA {
		return fmt.Errorf("fuse_a %d is out of range; use the main fuse per phase in amperes, e.g. 25, or 0 for unknown", c.FuseA)
	}
	if c.Status != nil {
		if err := c.Status.validate(); err != nil {
			return err
		}
	}
	if c.Storage != nil {
		if err := c.Storage.validate(); err != nil {
			return err
		}
	}
	if a := c.AutoAccept; a != nil {
		if a.MaxWh < 0 || a.MaxWh > input.MaxPledgeWh {
			return fmt.Errorf("auto_accept max_wh %d is out of range; use 0 (any) up to %d", a.MaxWh, input.MaxPledgeWh)
		}
		for _, f := range a.From {
			if strings.TrimSpace(f) == "" {
				return errors.New("auto_accept from has an empty entry; list neighbour names or ids")
			}
		}
	}
	return nil
}

// ValidateName checks a household or neighbour display name.
func ValidateName(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return errors.New("name is empty; give a display name such as --name Alice")
	case len(name) > MaxNameLen:
		return fmt.Errorf("name %.20q... is %d bytes long; keep it under %d", name, len(name), MaxNameLen)
	case strings.ContainsAny(name, "\x00\r\n\t"):
		return fmt.Errorf("name %q contains control characters; use plain text", name)
	}
	return nil
}

// Location returns the household's time zone.
func (c *Config) Location() (*time.Location, error) {
	if c.Timezone == "" || c.Timezone == "Local" {
		return time.Local, nil
	}
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return nil, fmt.Errorf("timezone %q is unknown (%v); use an IANA name such as Europe/Brussels", c.Timezone, err)
	}
	return loc, nil
}

// Manifest returns the community manifest the settings describe; its id
// is the community id every message carries.
func (c *Config) Manifest() share.Manifest {
	return share.Manifest{Name: c.Community.Name, SlotLen: int64(c.Community.SlotSeconds), Key: c.Community.AllocationKey, Genesis: c.Community.Genesis}
}

// SlotLength is the community's slot length.
func (c *Config) SlotLength() time.Duration {
	return time.Duration(c.Community.SlotSeconds) * time.Second
}

// LoadConfig reads and validates the config of home.
func LoadConfig(h Home) (Config, error) {
	b, err := os.ReadFile(h.ConfigPath())
	if errors.Is(err, fs.ErrNotExist) {
		return Config{}, fmt.Errorf("%w: no %s; run 'commons --home %s init --name NAME' first", ErrNotInitialised, h.ConfigPath(), h.ConfigDir)
	}
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	var c Config
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("config %s: %v; fix the JSON or move it away and run init again", h.ConfigPath(), err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", h.ConfigPath(), err)
	}
	return c, nil
}

// SaveConfig writes c to home atomically (temporary file, fsync, rename).
func SaveConfig(h Home, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	return writeFileAtomic(h.ConfigPath(), append(b, '\n'), 0o600)
}

// writeFileAtomic writes data to path via a synced temporary file and a
// rename, then syncs the folder, so a crash leaves the old or the new file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
