package daemon

// RelayTransport reports whether this build's Runtime carries messages
// through the community hub named by the config's "relay" URL. It is the
// one switch callers consult (the headless demo street refuses --relay
// while it is false): set it to true in the change that makes Run use
// the relay, and `commons demo --headless --relay URL` runs over it.
const RelayTransport = false
