package mqtt

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/commons-energy/commons/share/node"
)

// Defaults of the "mqtt" config block.
const (
	DefaultTopicPrefix     = "commons"
	DefaultDiscoveryPrefix = "homeassistant"
	defaultPort            = "1883"
	defaultTLSPort         = "8883"
	maxURLLen              = 1024
	maxPrefixLen           = 128
	maxPasswordFile        = 4096
	maxCAFile              = 1 << 20
)

// Settings is a checked MQTT configuration, ready to connect. Password is
// never logged or shown; Redacted is the broker as logs and status show it.
type Settings struct {
	Broker          *url.URL // mqtt://host:port or mqtts://host:port, without user info
	Username        string
	Password        string
	TLS             *tls.Config // set for mqtts://
	TopicPrefix     string
	DiscoveryPrefix string
	// PasswordFile is the file the password came from ("" = none), to
	// name it in messages.
	PasswordFile string
}

// Redacted returns the broker URL without any user name or password.
func (s *Settings) Redacted() string { return s.Broker.String() }

// ParseURL checks a broker URL as given to --mqtt or in the config's
// "mqtt.url": mqtt://host[:port] (plain TCP, default port 1883) or
// mqtts://host[:port] (TLS, default port 8883); tcp://, ssl:// and tls://
// are accepted as their synonyms. A user name may come with it
// (mqtt://user@host); a password may not, since a command line and the
// config file are easy to read: it goes in a password file. It returns
// the broker without user info, and the user name.
//
// Errors never repeat the URL's user info.
func ParseURL(raw string) (broker *url.URL, username string, err error) {
	if raw == "" {
		return nil, "", errors.New("the broker URL is empty; give e.g. mqtt://homeassistant.local:1883")
	}
	if len(raw) > maxURLLen {
		return nil, "", fmt.Errorf("the broker URL is %d bytes long; keep it under %d", len(raw), maxURLLen)
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f }) || !utf8.ValidString(raw) {
		return nil, "", errors.New("the broker URL contains spaces or control characters; give e.g. mqtt://homeassistant.local:1883")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "", errors.New("the broker URL is not a URL; give e.g. mqtt://homeassistant.local:1883 or mqtts://broker.example:8883")
	}
	var scheme, port string
	switch strings.ToLower(u.Scheme) {
	case "mqtt", "tcp":
		scheme, port = "mqtt", defaultPort
	case "mqtts", "ssl", "tls":
		scheme, port = "mqtts", defaultTLSPort
	case "":
		return nil, "", errors.New("the broker URL has no scheme; give mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
	default:
		return nil, "", fmt.Errorf("broker URL scheme %q is not supported; use mqtt:// (TCP) or mqtts:// (TLS)", printable(u.Scheme))
	}
	if u.Opaque != "" || u.Host == "" {
		return nil, "", fmt.Errorf("the broker URL has no host; give %s://HOST[:PORT]", scheme)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.RawFragment != "" {
		return nil, "", fmt.Errorf("the broker URL has a path, query or fragment; give only %s://HOST[:PORT]", scheme)
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			return nil, "", errors.New("the broker URL carries a password; anyone on this machine can read a command line, so put the password in a file (mode 0600) and name it in config.json's \"mqtt\": {\"password_file\": ...}")
		}
		username = u.User.Username()
	}
	host := u.Hostname()
	if host == "" {
		return nil, "", fmt.Errorf("the broker URL has no host; give %s://HOST[:PORT]", scheme)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 || p[0] == '0' {
			return nil, "", fmt.Errorf("broker port %q is not a port number (1 to 65535)", printable(p))
		}
		port = p
	} else if strings.HasSuffix(u.Host, ":") {
		return nil, "", errors.New("the broker URL has an empty port; give HOST:PORT or leave the port out")
	}
	if !validHost(host) {
		return nil, "", errors.New("the broker host is not a host name or an IP address")
	}
	return &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port)}, username, nil
}

// validHost accepts a DNS name (letters, digits, '.', '-', '_') or an IP
// address.
func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for _, c := range []byte(h) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// printable shortens s and quotes nothing: for error messages.
func printable(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}

// checkPrefix checks a topic prefix: MQTT topic levels without wildcards,
// not starting or ending with '/'.
func checkPrefix(key, p string) error {
	switch {
	case p == "":
		return fmt.Errorf("mqtt %s is empty; leave it out for the default", key)
	case len(p) > maxPrefixLen:
		return fmt.Errorf("mqtt %s is %d bytes long; keep it under %d", key, len(p), maxPrefixLen)
	case !utf8.ValidString(p) || strings.ContainsFunc(p, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return fmt.Errorf("mqtt %s contains control characters", key)
	case strings.ContainsAny(p, "+#"):
		return fmt.Errorf("mqtt %s %q contains a wildcard (+ or #); use plain topic levels such as commons", key, p)
	case strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.Contains(p, "//"):
		return fmt.Errorf("mqtt %s %q has an empty topic level; use e.g. commons or home/commons", key, p)
	}
	return nil
}

// Resolve combines --mqtt (flagURL, "" when not given) with the config's
// "mqtt" block (nil when none). It returns nil, nil when neither names a
// broker: then nothing is published. Files named in the config are read
// now, relative to configDir.
func Resolve(flagURL string, c *node.MQTTConfig, configDir string) (*Settings, error) {
	var cfg node.MQTTConfig
	if c != nil {
		cfg = *c
	}
	raw := cfg.URL
	if flagURL != "" {
		raw = flagURL
	}
	if raw == "" {
		return nil, nil
	}
	broker, user, err := ParseURL(raw)
	if err != nil {
		return nil, err
	}
	s := &Settings{Broker: broker, Username: user, TopicPrefix: DefaultTopicPrefix, DiscoveryPrefix: DefaultDiscoveryPrefix}
	if cfg.Username != "" {
		s.Username = cfg.Username
	}
	if cfg.TopicPrefix != "" {
		s.TopicPrefix = cfg.TopicPrefix
	}
	if cfg.DiscoveryPrefix != "" {
		s.DiscoveryPrefix = cfg.DiscoveryPrefix
	}
	if err := checkPrefix("topic_prefix", s.TopicPrefix); err != nil {
		return nil, err
	}
	if err := checkPrefix("discovery_prefix", s.DiscoveryPrefix); err != nil {
		return nil, err
	}
	if cfg.PasswordFile != "" {
		path := inDir(configDir, cfg.PasswordFile)
		pw, err := readPassword(path)
		if err != nil {
			return nil, err
		}
		s.Password, s.PasswordFile = pw, path
		if s.Username == "" {
			return nil, fmt.Errorf("mqtt password_file %s is set but no user name; give \"username\" in the mqtt block or mqtt://USER@HOST", path)
		}
	}
	if broker.Scheme == "mqtts" {
		s.TLS = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: broker.Hostname()}
	}
	if cfg.CAFile != "" {
		if s.TLS == nil {
			return nil, errors.New("mqtt ca_file is set but the broker URL is mqtt://; use mqtts://HOST:8883 for TLS")
		}
		path := inDir(configDir, cfg.CAFile)
		pool, err := readCAs(path)
		if err != nil {
			return nil, err
		}
		s.TLS.RootCAs = pool
	}
	return s, nil
}

func inDir(dir, name string) string {
	if filepath.IsAbs(name) || dir == "" {
		return name
	}
	return filepath.Join(dir, name)
}

// readPassword returns the first line of the file at path, without its
// line end.
func readPassword(path string) (string, error) {
	b, err := readSmall(path, maxPasswordFile)
	if err != nil {
		return "", fmt.Errorf("mqtt password_file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", fmt.Errorf("mqtt password_file %s is empty; write the broker password on its first line", path)
	}
	return line, nil
}

// readCAs reads a PEM file of certificate authorities.
func readCAs(path string) (*x509.CertPool, error) {
	b, err := readSmall(path, maxCAFile)
	if err != nil {
		return nil, fmt.Errorf("mqtt ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("mqtt ca_file %s holds no PEM certificate", path)
	}
	return pool, nil
}

func readSmall(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s is %d bytes; expected at most %d", path, fi.Size(), limit)
	}
	return os.ReadFile(path)
}

// PasswordFileOpen reports whether the password file can be read by
// others than its owner and group (a warning, not an error).
func (s *Settings) PasswordFileOpen() bool {
	if s.PasswordFile == "" {
		return false
	}
	fi, err := os.Stat(s.PasswordFile)
	return err == nil && fi.Mode().Perm()&0o004 != 0
}
