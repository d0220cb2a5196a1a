package node

// MQTTConfig is the "mqtt" block of config.json: where `commons daemon`
// publishes the household for Home Assistant (docs/DAEMON.md); the
// in-process dashboard and the demo never publish. The daemon
// checks it when it starts (share/mqtt.Resolve); `--mqtt URL` overrides
// URL. Relative file names are taken from the home's config folder.
type MQTTConfig struct {
	// URL is the broker: mqtt://host[:1883] or mqtts://host[:8883], with
	// an optional user name (mqtt://user@host). "" = publish only when
	// the daemon runs with --mqtt.
	URL string `json:"url,omitempty"`
	// Username overrides a user name in URL.
	Username string `json:"username,omitempty"`
	// PasswordFile holds the broker password (its first line); "" = none.
	PasswordFile string `json:"password_file,omitempty"`
	// CAFile is a PEM file of the certificate authorities that sign the
	// broker's certificate (mqtts://); "" = the system's.
	CAFile string `json:"ca_file,omitempty"`
	// TopicPrefix starts every state topic; default "commons".
	TopicPrefix string `json:"topic_prefix,omitempty"`
	// DiscoveryPrefix is Home Assistant's discovery prefix; default
	// "homeassistant".
	DiscoveryPrefix string `json:"discovery_prefix,omitempty"`
}
