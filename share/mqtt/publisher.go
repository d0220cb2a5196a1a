// Package mqtt publishes a running household to Home Assistant over MQTT:
// live power, the meter's energy registers, per-phase values, the meter's
// health and the commons figures, each announced with Home Assistant's
// MQTT discovery (retained configs under
// <discovery_prefix>/<component>/commons_<household id>/<object>/config),
// with an availability topic that the broker sets to "offline" through
// the connection's Last Will when the daemon disappears.
//
// Nothing is published unless the daemon is given a broker (--mqtt or the
// config's "mqtt" block): live power tells who is home. A broker that is
// down or refuses the credentials never stops the household: the client
// reconnects with backoff, the state is logged once per change and shown
// by State.
package mqtt

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/commons-energy/commons/meter"
	"github.com/commons-energy/commons/share/household"
)

// Defaults of Options.
const (
	DefaultPowerEvery   = 10 * time.Second
	DefaultCommonsEvery = time.Minute
	defaultTick         = 5 * time.Second
	connectTimeout      = 10 * time.Second
	maxBackoff          = 2 * time.Minute
	writeTimeout        = 5 * time.Second
	keepAlive           = 30 * time.Second
	qos                 = 1
)

// Options tune a Publisher; zero values mean the defaults.
type Options struct {
	// URL is the broker from --mqtt; "" means the config's "mqtt.url".
	URL string
	// Version is the program's version for the device block.
	Version string
	// PowerEvery bounds how often live power, per-phase values and the
	// last reading time are published (never more often than the meter
	// sends readings); default 10 s. Tests set it lower.
	PowerEvery time.Duration
	// CommonsEvery is how often the commons figures are recomputed when
	// nothing changed (the day rolls over); default 1 minute.
	CommonsEvery time.Duration
	// Tick is how often health and pending commons changes are checked;
	// default 5 s.
	Tick time.Duration
}

// Source is what the publisher reads from the running household;
// *node.Node implements it.
type Source interface {
	Identity() household.Identity
	Calendar() household.Calendar
	Latest() (r meter.Reading, ok bool, health meter.Status, running bool)
	MeterClockSkew() (skew time.Duration, ok bool)
	Subscribe(ctx context.Context) <-chan household.Event
	Pledges(ctx context.Context, openOnly bool) ([]household.Pledge, error)
}

// State is the broker connection as `commons status --json` shows it.
type State = household.MQTTState

// Publisher publishes one household. Make it with New, run it with Run.
type Publisher struct {
	set    *Settings
	src    Source
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	topics topics
	id     household.Identity
	client paho.Client

	mu    sync.Mutex
	state State

	connected chan struct{} // a connection came up: announce everything again

	// Owned by Run's goroutine.
	sent        map[string]string // payload last published per object id, this connection
	announced   map[string]bool   // discovery config published, this connection
	lastPower   time.Time
	lastCommons time.Time
	commonsDue  bool
}

// New prepares a publisher of src to the broker in set; it connects when
// Run runs. now is the clock (nil: time.Now).
func New(set *Settings, src Source, opts Options, log *slog.Logger, now func() time.Time) *Publisher {
	if opts.PowerEvery <= 0 {
		opts.PowerEvery = DefaultPowerEvery
	}
	if opts.CommonsEvery <= 0 {
		opts.CommonsEvery = DefaultCommonsEvery
	}
	if opts.Tick <= 0 {
		opts.Tick = defaultTick
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	id := src.Identity()
	p := &Publisher{
		set: set, src: src, opts: opts, log: log, now: now, id: id,
		topics:    newTopics(set, id.ID),
		state:     State{URL: set.Redacted()},
		connected: make(chan struct{}, 1),
	}
	co := paho.NewClientOptions().
		AddBroker(set.Broker.String()).
		SetClientID(clientID(id.ID)).
		SetCleanSession(true).
		SetKeepAlive(keepAlive).
		SetConnectTimeout(connectTimeout).
		SetWriteTimeout(writeTimeout).
		SetAutoReconnect(true).
		SetConnectRetry(false).
		SetMaxReconnectInterval(maxBackoff).
		SetWill(p.topics.availability(), payloadOffline, qos, true).
		SetConnectionNotificationHandler(p.notified)
	if set.Username != "" {
		co.SetUsername(set.Username)
		co.SetPassword(set.Password)
	}
	if set.TLS != nil {
		co.SetTLSConfig(set.TLS.Clone())
	}
	p.client = paho.NewClient(co)
	return p
}

// clientID is the MQTT client id: one per household.
func clientID(householdID string) string {
	if len(householdID) > 16 {
		householdID = householdID[:16]
	}
	return "commons-" + householdID
}

// State returns the broker connection's state.
func (p *Publisher) State() State {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

// AvailabilityTopic is where "online" and the Last Will "offline" go.
func (p *Publisher) AvailabilityTopic() string { return p.topics.availability() }

// notified follows the connection: it updates State and logs each change
// of state once (not every failed attempt of a broker that stays down).
func (p *Publisher) notified(_ paho.Client, n paho.ConnectionNotification) {
	var err error
	switch n := n.(type) {
	case paho.ConnectionNotificationConnected:
		p.mu.Lock()
		was := p.state.Connected
		p.state.Connected, p.state.LastError, p.state.Failures = true, "", 0
		p.mu.Unlock()
		if !was {
			p.log.Info("mqtt connected", "broker", p.set.Redacted())
		}
		select {
		case p.connected <- struct{}{}:
		default:
		}
		return
	case paho.ConnectionNotificationFailed:
		err = n.Reason
	case paho.ConnectionNotificationLost:
		err = n.Reason
		if err == nil {
			err = errors.New("connection lost")
		}
	default:
		return
	}
	msg := "unknown error"
	if err != nil {
		msg = err.Error()
	}
	p.mu.Lock()
	was, last := p.state.Connected, p.state.LastError
	p.state.Connected, p.state.LastError = false, msg
	if _, failed := n.(paho.ConnectionNotificationFailed); failed {
		p.state.Failures++
	}
	p.mu.Unlock()
	switch {
	case was:
		p.log.Warn("mqtt connection lost; reconnecting", "broker", p.set.Redacted(), "err", msg)
	case msg != last:
		p.log.Warn("mqtt broker not reachable; retrying with backoff", "broker", p.set.Redacted(), "err", msg)
	}
}

// Run publishes until ctx ends. The broker being down or refusing the
// credentials is not an error: Run keeps trying. On return the
// availability topic says "offline" (when connected) and the connection
// is closed.
func (p *Publisher) Run(ctx context.Context) error {
	p.log.Info("mqtt publishing to Home Assistant", "broker", p.set.Redacted(),
		"state_topics", p.topics.base+"/#", "discovery_prefix", p.set.DiscoveryPrefix)
	if p.set.Password != "" && p.set.TLS == nil {
		p.log.Warn("mqtt password sent without TLS: anyone on the network path can read it; use mqtts:// where the broker offers it", "broker", p.set.Redacted())
	}
	if p.set.PasswordFileOpen() {
		p.log.Warn("mqtt password file is readable by other users; chmod 600 it", "file", p.set.PasswordFile)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.connect(ctx)
	}()
	defer func() {
		wg.Wait()
		p.close()
	}()

	events := p.src.Subscribe(ctx)
	tick := time.NewTicker(p.opts.Tick)
	defer tick.Stop()
	p.reset()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.connected:
			p.reset()
			p.publish(p.topics.availability(), payloadOnline)
			p.publishAll(ctx)
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			switch ev.Kind {
			case household.EventLive:
				p.reading(false)
			case household.EventState:
				p.health()
				p.commonsDue = true
			}
		case <-tick.C:
			p.health()
			if p.commonsDue || p.now().Sub(p.lastCommons) >= p.opts.CommonsEvery {
				p.commons(ctx)
			}
		}
	}
}

// connect makes the first connection, retrying with backoff until it
// succeeds or ctx ends; after that paho reconnects by itself.
func (p *Publisher) connect(ctx context.Context) {
	backoff := time.Second
	for {
		tok := p.client.Connect()
		for !tok.WaitTimeout(200 * time.Millisecond) {
			if ctx.Err() != nil {
				return
			}
		}
		if tok.Error() == nil {
			return
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// close says "offline" on the availability topic and disconnects. A
// disconnect that the client asks for does not trigger the Last Will, so
// the offline state is published here.
func (p *Publisher) close() {
	if p.client.IsConnectionOpen() {
		tok := p.client.Publish(p.topics.availability(), qos, true, payloadOffline)
		tok.WaitTimeout(2 * time.Second)
	}
	p.client.Disconnect(250)
	p.mu.Lock()
	p.state.Connected = false
	p.mu.Unlock()
}

// reset forgets what this connection has published.
func (p *Publisher) reset() {
	p.sent, p.announced = map[string]string{}, map[string]bool{}
}

// publishAll publishes every value there is now, regardless of the rate
// bounds: after a (re)connection the broker and Home Assistant may have
// lost them.
func (p *Publisher) publishAll(ctx context.Context) {
	p.reading(true)
	p.health()
	p.commons(ctx)
}

// reading publishes the latest reading: the energy registers when they
// changed, power and phases at most once per PowerEvery.
func (p *Publisher) reading(force bool) {
	r, ok, h, running := p.src.Latest()
	if !ok || !running {
		return
	}
	power, energy := readingValues(r, h.LastTelegram)
	p.publishValues(energy)
	// The bound counts in the readings' own arrival times (the box
	// clock when the reading came), so it never publishes faster than
	// the meter sends and does not depend on how late this runs.
	at := h.LastTelegram
	if at.IsZero() {
		at = p.now()
	}
	if force || p.lastPower.IsZero() || at.Sub(p.lastPower) >= p.opts.PowerEvery || at.Before(p.lastPower) {
		if p.publishValues(power) {
			p.lastPower = at
		}
	}
}

// health publishes the meter's health when it changed.
func (p *Publisher) health() {
	_, _, h, running := p.src.Latest()
	skew, known := p.src.MeterClockSkew()
	p.publishValues(healthValues(running && h.Online, skew, known))
}

// commons recomputes the commons figures and publishes those that changed.
func (p *Publisher) commons(ctx context.Context) {
	ps, err := p.src.Pledges(ctx, false)
	if err != nil {
		p.log.Debug("mqtt: commons figures not read", "err", err)
		return
	}
	now := p.now()
	loc := p.src.Calendar().Location
	if loc == nil {
		loc = time.Local
	}
	p.publishValues(CommonsFigures(ps, now, loc).values())
	p.lastCommons, p.commonsDue = now, false
}

// publishValues publishes each value that differs from what this
// connection last published, announcing its entity first. Nothing is
// published while disconnected: the next connection publishes all. It
// reports whether it was connected.
func (p *Publisher) publishValues(vs values) bool {
	if !p.client.IsConnectionOpen() {
		return false
	}
	for _, object := range sortedKeys(vs) {
		v := vs[object]
		if prev, ok := p.sent[object]; ok && prev == v {
			continue
		}
		e := mustEntity(object)
		if !p.announced[object] {
			p.publish(p.topics.config(e), string(p.topics.configPayload(e, p.id, p.opts.Version)))
			p.announced[object] = true
		}
		p.publish(p.topics.state(object), v)
		p.sent[object] = v
	}
	return true
}

// publish sends one retained message without waiting for the broker's
// acknowledgement (paho completes it in the background; a failure shows
// as a lost connection).
func (p *Publisher) publish(topic, payload string) {
	p.client.Publish(topic, qos, true, payload)
}
