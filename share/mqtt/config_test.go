package mqtt

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/commons-energy/commons/share/node"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		in, broker, user string
		err              string // substring of the error; "" = valid
	}{
		{"mqtt://broker", "mqtt://broker:1883", "", ""},
		{"mqtt://broker:1884", "mqtt://broker:1884", "", ""},
		{"MQTT://Broker.LAN:1883/", "mqtt://Broker.LAN:1883", "", ""},
		{"tcp://10.0.0.5", "mqtt://10.0.0.5:1883", "", ""},
		{"mqtts://broker", "mqtts://broker:8883", "", ""},
		{"ssl://broker:8884", "mqtts://broker:8884", "", ""},
		{"tls://broker", "mqtts://broker:8883", "", ""},
		{"mqtt://[::1]:1883", "mqtt://[::1]:1883", "", ""},
		{"mqtt://[::1]", "mqtt://[::1]:1883", "", ""},
		{"mqtt://ha@homeassistant.local", "mqtt://homeassistant.local:1883", "ha", ""},
		{"mqtt://user:secret@broker", "", "", "carries a password"},
		{"mqtt://user:@broker", "", "", "carries a password"},
		{"", "", "", "empty"},
		{"broker:1883", "", "", "not supported"},
		{"//broker:1883", "", "", "no scheme"},
		{"http://broker", "", "", "not supported"},
		{"ws://broker", "", "", "not supported"},
		{"mqtt:broker", "", "", "no host"},
		{"mqtt://", "", "", "no host"},
		{"mqtt://:1883", "", "", "no host"},
		{"mqtt://broker:0", "", "", "port"},
		{"mqtt://broker:65536", "", "", "port"},
		{"mqtt://broker:01883", "", "", "port"},
		{"mqtt://broker:", "", "", "empty port"},
		{"mqtt://broker:x", "", "", "not a URL"},
		{"mqtt://broker/topic", "", "", "path"},
		{"mqtt://broker?x=1", "", "", "query"},
		{"mqtt://broker#f", "", "", "fragment"},
		{"mqtt://bro ker", "", "", "spaces"},
		{"mqtt://bro%20ker", "", "", "not a URL"},
		{"mqtt://broker\n", "", "", "control"},
		{"mqtt://" + strings.Repeat("a", 1100), "", "", "long"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			u, user, err := ParseURL(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseURL(%q) = %v, %q, %v; want an error with %q", tt.in, u, user, err, tt.err)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Fatalf("the error repeats the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseURL(%q): %v", tt.in, err)
			}
			if u.String() != tt.broker || user != tt.user {
				t.Fatalf("ParseURL(%q) = %s, %q; want %s, %q", tt.in, u, user, tt.broker, tt.user)
			}
		})
	}
}

// FuzzParseURL: any input either fails without repeating its user info
// or gives a broker with a known scheme, a host, a port and no user info.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"mqtt://broker", "mqtts://u@h:8883", "mqtt://u:p@h", "tcp://[::1]:1", "mqtt://h:99999", "ssl://a.b/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, _, err := ParseURL(raw)
		if err != nil {
			if i := strings.Index(raw, "://"); i >= 0 {
				if at := strings.LastIndex(raw, "@"); at > i {
					info := raw[i+3 : at]
					if _, pw, ok := strings.Cut(info, ":"); ok && len(pw) >= 4 && strings.Contains(err.Error(), pw) {
						t.Fatalf("error %q repeats the password %q", err, pw)
					}
				}
			}
			return
		}
		if u.Scheme != "mqtt" && u.Scheme != "mqtts" {
			t.Fatalf("scheme %q", u.Scheme)
		}
		if u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("broker %v keeps user info, path, query or fragment", u)
		}
		if u.Hostname() == "" || u.Port() == "" {
			t.Fatalf("broker %v without host or port", u)
		}
		again, _, err := ParseURL(u.String())
		if err != nil || again.String() != u.String() {
			t.Fatalf("the broker %v does not parse to itself: %v, %v", u, again, err)
		}
	})
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("pw", "s3cret\nsecond line\n")
	write("pw-crlf", "s3cret\r\n")
	write("empty", "\n")
	write("ca.pem", string(testCA(t)))
	write("bad.pem", "not a certificate")

	if s, err := Resolve("", nil, dir); s != nil || err != nil {
		t.Fatalf("no flag, no config: %v, %v; want nothing", s, err)
	}
	if s, err := Resolve("", &node.MQTTConfig{Username: "x"}, dir); s != nil || err != nil {
		t.Fatalf("a config block without url: %v, %v; want nothing", s, err)
	}

	s, err := Resolve("mqtt://flag:1883", &node.MQTTConfig{URL: "mqtt://config", Username: "ha", PasswordFile: "pw"}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Redacted() != "mqtt://flag:1883" || s.Username != "ha" || s.Password != "s3cret" || s.TLS != nil ||
		s.TopicPrefix != "commons" || s.DiscoveryPrefix != "homeassistant" {
		t.Fatalf("flag over config: %+v", s)
	}
	s, err = Resolve("", &node.MQTTConfig{URL: "mqtts://u@broker.lan", PasswordFile: filepath.Join(dir, "pw-crlf"), CAFile: "ca.pem",
		TopicPrefix: "home/energy", DiscoveryPrefix: "ha"}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Redacted() != "mqtts://broker.lan:8883" || s.Username != "u" || s.Password != "s3cret" || s.TLS == nil ||
		s.TLS.RootCAs == nil || s.TLS.ServerName != "broker.lan" || s.TopicPrefix != "home/energy" || s.DiscoveryPrefix != "ha" {
		t.Fatalf("config with TLS: %+v", s)
	}
	if strings.Contains(s.Redacted(), "u@") {
		t.Fatalf("redacted URL %s shows the user", s.Redacted())
	}

	bad := []struct {
		flag string
		c    node.MQTTConfig
		want string
	}{
		{"mqtt://a:b@h", node.MQTTConfig{}, "password"},
		{"", node.MQTTConfig{URL: "mqtt://h", PasswordFile: "missing"}, "password_file"},
		{"", node.MQTTConfig{URL: "mqtt://h", Username: "u", PasswordFile: "empty"}, "empty"},
		{"", node.MQTTConfig{URL: "mqtt://h", PasswordFile: "pw"}, "no user name"},
		{"", node.MQTTConfig{URL: "mqtt://h", CAFile: "ca.pem"}, "mqtts"},
		{"", node.MQTTConfig{URL: "mqtts://h", CAFile: "bad.pem"}, "no PEM"},
		{"", node.MQTTConfig{URL: "mqtts://h", CAFile: "nope.pem"}, "ca_file"},
		{"", node.MQTTConfig{URL: "mqtt://h", TopicPrefix: "a/#"}, "wildcard"},
		{"", node.MQTTConfig{URL: "mqtt://h", TopicPrefix: "/a"}, "empty topic level"},
		{"", node.MQTTConfig{URL: "mqtt://h", DiscoveryPrefix: "ha/"}, "empty topic level"},
		{"", node.MQTTConfig{URL: "mqtt://h", DiscoveryPrefix: "h+a"}, "wildcard"},
		{"", node.MQTTConfig{URL: "mqtt://h", TopicPrefix: "a\x00b"}, "control"},
	}
	for _, tt := range bad {
		c := tt.c
		if _, err := Resolve(tt.flag, &c, dir); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Resolve(%q, %+v) = %v; want an error with %q", tt.flag, tt.c, err, tt.want)
		}
	}
}

// testCA returns a self-signed CA certificate in PEM.
func testCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
