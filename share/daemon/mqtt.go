package daemon

import (
	"fmt"

	"github.com/commons-energy/commons/share/mqtt"
)

// setupMQTT prepares the Home Assistant publisher when --mqtt or the
// config's "mqtt" block names a broker; otherwise nothing is published.
func (rt *Runtime) setupMQTT() error {
	if rt.opts.MQTT == nil {
		return nil
	}
	set, err := mqtt.Resolve(rt.opts.MQTT.URL, rt.n.Config().MQTT, rt.n.Home().ConfigDir)
	if err != nil {
		return fmt.Errorf("mqtt: %w", err)
	}
	if set == nil {
		return nil
	}
	rt.mqtt = mqtt.New(set, rt.n, *rt.opts.MQTT, rt.log.With("part", "mqtt"), rt.opts.Now)
	return nil
}

// MQTTState returns the broker connection's state; ok is false when the
// household publishes nothing over MQTT.
func (rt *Runtime) MQTTState() (st mqtt.State, ok bool) {
	if rt.mqtt == nil {
		return mqtt.State{}, false
	}
	return rt.mqtt.State(), true
}
