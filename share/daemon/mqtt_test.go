package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/commons-energy/commons/meter"
	"github.com/commons-energy/commons/meter/sim"
	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/mqtt"
	"github.com/commons-energy/commons/share/node"
)

// mosquittoBin returns the mosquitto broker's path. Missing, it fails the
// test under CI (CI=true) and skips it elsewhere: ./test.sh installs it.
func mosquittoBin(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
		if p := filepath.Join(dir, name); fileExists(p) {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found: install the Debian package mosquitto (./test.sh does)", name)
	}
	t.Skipf("%s not found: install the Debian package mosquitto (./test.sh does) to run this test", name)
	return ""
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// broker is a real mosquitto running for one test.
type broker struct {
	addr string
	log  *syncBuffer
}

// startMosquitto runs mosquitto on a free loopback port with the given
// extra configuration lines; it is stopped when the test ends.
func startMosquitto(t *testing.T, extra string) *broker {
	t.Helper()
	bin := mosquittoBin(t, "mosquitto")
	dir := t.TempDir()
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	conf := "listener " + port + " 127.0.0.1\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n" + extra
	if os.Getuid() == 0 {
		conf += "user root\n" // do not drop to the mosquitto user, who cannot read the test's files
	}
	cp := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(cp, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	b := &broker{addr: addr, log: &syncBuffer{}}
	cmd := exec.Command(bin, "-c", cp)
	cmd.Stdout, cmd.Stderr = b.log, b.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", b.log.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return b
		}
		select {
		case <-exited:
			t.Fatalf("mosquitto exited: %s", b.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto does not listen on %s: %v\n%s", addr, err, b.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func slogText(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// mqttMsg is one message a recorder received.
type mqttMsg struct {
	topic, payload string
	retained       bool
}

// recorder is a paho client subscribed to every topic.
type recorder struct {
	mu   sync.Mutex
	msgs []mqttMsg
}

// subscribeAll connects a subscriber to "#" and returns what it receives.
func subscribeAll(t *testing.T, addr, user, pass string) *recorder {
	t.Helper()
	rec := &recorder{}
	var seq atomic.Int64
	o := paho.NewClientOptions().AddBroker("tcp://" + addr).
		SetClientID(fmt.Sprintf("test-sub-%d-%d", time.Now().UnixNano(), seq.Add(1))).
		SetUsername(user).SetPassword(pass).SetAutoReconnect(false).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {})
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	tok := c.Subscribe("#", 1, func(_ paho.Client, m paho.Message) {
		rec.mu.Lock()
		rec.msgs = append(rec.msgs, mqttMsg{m.Topic(), string(m.Payload()), m.Retained()})
		rec.mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return rec
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// all returns the payloads received on topic, in order.
func (r *recorder) all(topic string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.msgs {
		if m.topic == topic {
			out = append(out, m.payload)
		}
	}
	return out
}

// last returns the latest payload on topic.
func (r *recorder) last(topic string) (string, bool) {
	all := r.all(topic)
	if len(all) == 0 {
		return "", false
	}
	return all[len(all)-1], true
}

// latest returns the latest payload of every topic under prefix.
func (r *recorder) latest(prefix string) map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]string{}
	for _, m := range r.msgs {
		if strings.HasPrefix(m.topic, prefix) {
			out[m.topic] = m.payload
		}
	}
	return out
}

// proxy forwards TCP connections to a target and can cut them all, as a
// failing network or a crashed box would: the broker sees the connection
// drop without an MQTT DISCONNECT.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	refuse bool
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			refuse := p.refuse
			p.mu.Unlock()
			if refuse {
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

// cut closes every connection through the proxy.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) setRefuse(v bool) {
	p.mu.Lock()
	p.refuse = v
	p.mu.Unlock()
}

// testClock is a clock the test moves.
type testClock struct{ ns atomic.Int64 }

func (c *testClock) set(t time.Time) { c.ns.Store(t.UnixNano()) }
func (c *testClock) now() time.Time  { return time.Unix(0, c.ns.Load()).UTC() }

// initHomeAt creates a household whose clock is now, with a simulated
// meter on port and the config changed by edit.
func initHomeAt(t *testing.T, name, port string, now func() time.Time, edit func(*node.Config)) node.Home {
	t.Helper()
	h, err := node.ResolveHome(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	cfg := node.DefaultConfig(name)
	cfg.Listen, cfg.Timezone = "", "UTC"
	cfg.Meter.Port, cfg.Meter.Protocol = port, "dsmr"
	if edit != nil {
		edit(&cfg)
	}
	if _, err := node.InitWithClock(context.Background(), h, cfg, now); err != nil {
		t.Fatal(err)
	}
	return h
}

// meterFeed writes simulated telegrams into a pseudo-terminal that a
// household reads as its meter, moving the household's clock along.
type meterFeed struct {
	t    *testing.T
	pty  *sim.PTY
	m    *sim.Meter
	clk  *testClock
	at   time.Time
	last meter.Reading // of the latest telegram written
}

func newMeterFeed(t *testing.T, profile string, start time.Time, clk *testClock) *meterFeed {
	t.Helper()
	pty, err := sim.OpenPTY("")
	if err != nil {
		t.Skipf("no pseudo-terminal on this machine: %v", err)
	}
	t.Cleanup(func() { pty.Close() })
	p, err := sim.LoadProfile(profile)
	if err != nil {
		t.Fatal(err)
	}
	clk.set(start)
	return &meterFeed{t: t, pty: pty, m: sim.New(p, 7, start), clk: clk, at: start}
}

// next moves the clock by d, writes the telegram of that instant and
// returns the reading it holds.
func (f *meterFeed) next(d time.Duration) meter.Reading {
	f.at = f.at.Add(d)
	f.clk.set(f.at)
	if _, err := f.pty.Write(f.m.Telegram(f.at)); err != nil {
		f.t.Fatal(err)
	}
	f.last = f.m.Reading(f.at) // the registers already stand at f.at: the same values
	return f.last
}

// read waits until the household has read the telegram of r.
func (f *meterFeed) read(n *node.Node, r meter.Reading) {
	f.t.Helper()
	eventually(f.t, "the household to read the telegram of "+r.Time.String(), func() bool {
		got, ok, _, _ := n.Latest()
		return ok && got.Time.Equal(r.Time)
	})
}

// untilOnline writes telegrams until cond holds (what is written before
// the reader opened the port is lost, as on a real line).
func (f *meterFeed) untilOnline(what string, step time.Duration, cond func() bool) {
	f.t.Helper()
	eventually(f.t, what, func() bool {
		f.next(step) // one telegram per poll
		return cond()
	})
}

// exactMilli parses a decimal with exactly three decimals ("2192.317")
// into thousandths, without floating point.
func exactMilli(t *testing.T, s string) int64 {
	t.Helper()
	whole, frac, ok := strings.Cut(s, ".")
	if !ok || len(frac) != 3 {
		t.Fatalf("%q has not exactly three decimals", s)
	}
	v, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return v
}

// Home Assistant's rules for the device classes this program uses: the
// units each accepts and the state classes allowed with it
// (homeassistant/components/sensor/const.py DEVICE_CLASS_UNITS and
// DEVICE_CLASS_STATE_CLASSES). The Energy dashboard takes grid
// consumption and return from energy sensors with state_class total or
// total_increasing.
var (
	haUnits = map[string][]string{
		"power":     {"mW", "W", "kW", "MW", "GW", "TW", "BTU/h"},
		"energy":    {"J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh", "cal", "kcal", "Mcal", "Gcal"},
		"voltage":   {"µV", "mV", "V", "kV", "MV"},
		"current":   {"mA", "A"},
		"timestamp": {""},
	}
	haStateClasses = map[string][]string{
		"power":     {"measurement"},
		"energy":    {"total", "total_increasing"},
		"voltage":   {"measurement"},
		"current":   {"measurement"},
		"timestamp": {""},
	}
	haBinaryClasses = []string{"connectivity", "problem"}
	haIDPart        = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
)

// haConfig is a discovery payload as Home Assistant reads it.
type haConfig struct {
	Name                string `json:"name"`
	UniqueID            string `json:"unique_id"`
	StateTopic          string `json:"state_topic"`
	AvailabilityTopic   string `json:"availability_topic"`
	PayloadAvailable    string `json:"payload_available"`
	PayloadNotAvailable string `json:"payload_not_available"`
	DeviceClass         string `json:"device_class"`
	StateClass          string `json:"state_class"`
	Unit                string `json:"unit_of_measurement"`
	PayloadOn           string `json:"payload_on"`
	PayloadOff          string `json:"payload_off"`
	EntityCategory      string `json:"entity_category"`
	Device              struct {
		Identifiers  []string `json:"identifiers"`
		Name         string   `json:"name"`
		Manufacturer string   `json:"manufacturer"`
		SWVersion    string   `json:"sw_version"`
	} `json:"device"`
}

// checkDiscovery checks every retained discovery config under prefix
// against Home Assistant's MQTT discovery schema and returns them by
// object id.
func checkDiscovery(t *testing.T, rec *recorder, prefix, householdID, household, version string) map[string]haConfig {
	t.Helper()
	out := map[string]haConfig{}
	unique := map[string]string{}
	topicRE := regexp.MustCompile("^" + regexp.QuoteMeta(prefix) + `/(sensor|binary_sensor)/([^/]+)/([^/]+)/config$`)
	for topic, payload := range rec.latest(prefix + "/") {
		m := topicRE.FindStringSubmatch(topic)
		if m == nil {
			t.Errorf("discovery topic %s is not <prefix>/<component>/<node_id>/<object_id>/config", topic)
			continue
		}
		component, nodeID, object := m[1], m[2], m[3]
		if !haIDPart.MatchString(nodeID) || !haIDPart.MatchString(object) {
			t.Errorf("%s: node_id and object_id may hold only [a-zA-Z0-9_-]", topic)
		}
		var raw map[string]any
		if err := json.Unmarshal([]byte(payload), &raw); err != nil {
			t.Errorf("%s: not JSON: %v", topic, err)
			continue
		}
		var c haConfig
		if err := json.Unmarshal([]byte(payload), &c); err != nil {
			t.Errorf("%s: %v", topic, err)
			continue
		}
		for _, k := range []string{"name", "unique_id", "state_topic", "availability_topic", "device"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("%s: no %q", topic, k)
			}
		}
		if c.UniqueID == "" || !strings.Contains(c.UniqueID, householdID) {
			t.Errorf("%s: unique_id %q does not name the household %s", topic, c.UniqueID, householdID)
		}
		if other, dup := unique[c.UniqueID]; dup {
			t.Errorf("unique_id %q of %s is also that of %s", c.UniqueID, topic, other)
		}
		unique[c.UniqueID] = topic
		if len(c.Device.Identifiers) == 0 || !strings.Contains(c.Device.Identifiers[0], householdID) ||
			c.Device.Name != household || c.Device.Manufacturer != "commons" || c.Device.SWVersion != version {
			t.Errorf("%s: device block %+v; want identifiers from %s, name %q, manufacturer commons, sw_version %q", topic, c.Device, householdID, household, version)
		}
		if c.PayloadAvailable != "online" || c.PayloadNotAvailable != "offline" {
			t.Errorf("%s: availability payloads %q/%q", topic, c.PayloadAvailable, c.PayloadNotAvailable)
		}
		switch component {
		case "sensor":
			units, known := haUnits[c.DeviceClass]
			if !known {
				t.Errorf("%s: device_class %q is not one this test knows", topic, c.DeviceClass)
				break
			}
			if !slices.Contains(units, c.Unit) {
				t.Errorf("%s: unit %q is not valid for device_class %s (%v)", topic, c.Unit, c.DeviceClass, units)
			}
			if !slices.Contains(haStateClasses[c.DeviceClass], c.StateClass) {
				t.Errorf("%s: state_class %q is not valid for device_class %s", topic, c.StateClass, c.DeviceClass)
			}
		case "binary_sensor":
			if !slices.Contains(haBinaryClasses, c.DeviceClass) || c.Unit != "" || c.StateClass != "" {
				t.Errorf("%s: binary sensor with device_class %q, unit %q, state_class %q", topic, c.DeviceClass, c.Unit, c.StateClass)
			}
			if c.PayloadOn != "ON" || c.PayloadOff != "OFF" {
				t.Errorf("%s: payloads %q/%q", topic, c.PayloadOn, c.PayloadOff)
			}
		}
		if _, dup := out[object]; dup {
			t.Errorf("object id %s announced twice", object)
		}
		out[object] = c
	}
	// The grid's energy registers are what the Energy dashboard needs.
	for _, object := range []string{"energy_import", "energy_export"} {
		c, ok := out[object]
		if !ok {
			t.Errorf("no %s entity", object)
			continue
		}
		if c.DeviceClass != "energy" || c.StateClass != "total_increasing" || (c.Unit != "kWh" && c.Unit != "Wh") {
			t.Errorf("%s: %s/%s/%s cannot feed the Energy dashboard", object, c.DeviceClass, c.StateClass, c.Unit)
		}
	}
	return out
}

// wantStates returns the state every entity should show for reading r,
// read by the box at lastReading: the simulator's exact integers.
func checkStates(t *testing.T, got map[string]string, r meter.Reading, lastReading time.Time) []string {
	t.Helper()
	var bad []string
	expect := func(object string, want int64, milli bool) {
		s, ok := got[object]
		if !ok {
			bad = append(bad, object+" missing")
			return
		}
		var v int64
		if milli {
			v = exactMilli(t, s)
		} else {
			var err error
			if v, err = strconv.ParseInt(s, 10, 64); err != nil {
				bad = append(bad, fmt.Sprintf("%s %q is not an integer", object, s))
				return
			}
		}
		if v != want {
			bad = append(bad, fmt.Sprintf("%s = %q, want %d%s", object, s, want, map[bool]string{true: " thousandths"}[milli]))
		}
	}
	expect("power_import", r.PowerImportW.V, false)
	expect("power_export", r.PowerExportW.V, false)
	expect("power_net", r.PowerImportW.V-r.PowerExportW.V, false)
	expect("energy_import", r.EnergyImport.Total.V, true) // kWh with 3 decimals = Wh
	expect("energy_export", r.EnergyExport.Total.V, true)
	expect("energy_import_tariff1", r.EnergyImport.Tariff1.V, true)
	expect("energy_import_tariff2", r.EnergyImport.Tariff2.V, true)
	expect("energy_export_tariff1", r.EnergyExport.Tariff1.V, true)
	expect("energy_export_tariff2", r.EnergyExport.Tariff2.V, true)
	for i, ph := range r.Phases {
		if !ph.Present() {
			continue
		}
		l := strconv.Itoa(i + 1)
		expect("voltage_l"+l, ph.VoltageMV.V, true) // V with 3 decimals = mV
		expect("current_l"+l, ph.CurrentMA.V, true)
		expect("power_import_l"+l, ph.PowerImportW.V, false)
		expect("power_export_l"+l, ph.PowerExportW.V, false)
	}
	if s := got["meter_last_reading"]; s != lastReading.UTC().Format(time.RFC3339) {
		bad = append(bad, fmt.Sprintf("meter_last_reading = %q, want %s", s, lastReading.UTC().Format(time.RFC3339)))
	}
	for object, want := range map[string]string{"meter_online": "ON", "meter_clock_problem": "OFF",
		"pledged_today": "0", "given_today": "0", "received_today": "0", "given_total": "0", "received_total": "0"} {
		if got[object] != want {
			bad = append(bad, fmt.Sprintf("%s = %q, want %q", object, got[object], want))
		}
	}
	return bad
}

// states returns the latest state of every entity under base by object id.
func states(rec *recorder, base string) map[string]string {
	out := map[string]string{}
	for topic, v := range rec.latest(base + "/") {
		out[strings.TrimPrefix(topic, base+"/")] = v
	}
	return out
}

// TestMQTTNothingWithoutTheFlag runs a household with a meter next to a
// broker that a subscriber watches: without --mqtt nothing is published.
func TestMQTTNothingWithoutTheFlag(t *testing.T) {
	b := startMosquitto(t, "allow_anonymous true\n")
	rec := subscribeAll(t, b.addr, "", "")
	clk := &testClock{}
	feed := newMeterFeed(t, "solar-roof", time.Date(2025, 6, 10, 10, 0, 0, 0, time.UTC), clk)
	h := initHomeAt(t, "Quiet", feed.pty.Path(), clk.now, nil)
	r := start(t, h, Options{Listen: ListenOff, Now: clk.now, MQTT: &mqtt.Options{}}) // as commons daemon without --mqtt
	n := r.rt.Node()
	feed.untilOnline("the meter to come online", 10*time.Second, func() bool { _, ok, _, _ := n.Latest(); return ok })
	for range 3 {
		feed.read(n, feed.next(10*time.Second))
	}
	if _, on := r.rt.MQTTState(); on {
		t.Fatal("MQTT is on without --mqtt or a config block")
	}
	if s, err := connect(t, h).Status(context.Background()); err != nil || s.MQTT != nil {
		t.Fatalf("status without --mqtt: mqtt %+v, %v; want none", s.MQTT, err)
	}
	r.shutdown(t)
	// The subscriber's own connection is up: a probe it sends arrives,
	// so anything the household had published would have arrived before.
	probe := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + b.addr).SetClientID("probe"))
	if tok := probe.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	probe.Publish("probe", 1, false, "x").WaitTimeout(10 * time.Second)
	probe.Disconnect(100)
	eventually(t, "the probe", func() bool { _, ok := rec.last("probe"); return ok })
	if n := rec.count(); n != 1 {
		t.Fatalf("the broker got %d messages without --mqtt: %v", n-1, rec.latest(""))
	}
}

// TestMQTTHomeAssistant runs a household with a simulated meter on a real
// pseudo-terminal and --mqtt pointing at a real mosquitto (through a
// proxy that can cut the connection), and reads everything it publishes
// with a paho subscriber: the discovery configs against Home Assistant's
// schema, the states against the simulator's exact integers, the rate
// bound on live power, the Last Will when the connection drops, the
// reconnection, and "offline" on a clean stop.
func TestMQTTHomeAssistant(t *testing.T) {
	b := startMosquitto(t, "allow_anonymous true\n")
	rec := subscribeAll(t, b.addr, "", "")
	prx := startProxy(t, b.addr)
	clk := &testClock{}
	feed := newMeterFeed(t, "solar-roof", time.Date(2025, 6, 10, 10, 0, 0, 0, time.UTC), clk)
	h := initHomeAt(t, "Alice", feed.pty.Path(), clk.now, nil)
	befriend(t, h, initHomeAt(t, "Bob", "", clk.now, nil))
	logs := &syncBuffer{}
	r := start(t, h, Options{Listen: ListenOff, Now: clk.now, Logger: slogText(logs),
		MQTT: &mqtt.Options{URL: "mqtt://" + prx.addr(), Version: "9.8.7-test", Tick: 100 * time.Millisecond}})
	n := r.rt.Node()
	id := n.Identity().ID
	base := "commons/" + id
	avail := base + "/availability"

	eventually(t, "the daemon to connect", func() bool { st, _ := r.rt.MQTTState(); return st.Connected })
	eventually(t, "availability online", func() bool { v, _ := rec.last(avail); return v == "online" })

	// Readings 10 s apart (the default bound on live power): every one
	// is published in full, with the simulator's exact values.
	feed.untilOnline("the first reading on MQTT", 10*time.Second, func() bool { _, ok := rec.last(base + "/energy_import"); return ok })
	// The clock moved on while the household caught up: from here on,
	// each telegram is read before the clock moves again.
	feed.read(n, feed.last)
	var want meter.Reading
	for range 3 {
		want = feed.next(10 * time.Second)
		feed.read(n, want)
		var bad []string
		eventually(t, "the states of the latest reading", func() bool {
			bad = checkStates(t, states(rec, base), want, clk.now())
			return len(bad) == 0
		})
	}
	if want.PowerExportW.V == 0 {
		t.Fatalf("the simulated roof exports nothing at %v: pick another time", clk.now())
	}

	// Discovery: one valid config per state published, and a state for
	// every config.
	cfgs := checkDiscovery(t, rec, "homeassistant", id, "Alice", "9.8.7-test")
	st := states(rec, base)
	delete(st, "availability")
	for object, c := range cfgs {
		if c.StateTopic != base+"/"+object {
			t.Errorf("%s: state_topic %s, want %s", object, c.StateTopic, base+"/"+object)
		}
		if c.AvailabilityTopic != avail {
			t.Errorf("%s: availability_topic %s, want %s", object, c.AvailabilityTopic, avail)
		}
		if _, ok := st[object]; !ok {
			t.Errorf("%s is announced but has no state", object)
		}
	}
	for object := range st {
		if _, ok := cfgs[object]; !ok {
			t.Errorf("state %s has no discovery config", object)
		}
	}
	phases := 0
	for _, ph := range want.Phases {
		if ph.Present() {
			phases++
		}
	}
	if wantN := 9 + 3 + 5 + 4*phases; len(cfgs) != wantN {
		t.Errorf("%d entities announced, want %d (power 3, energy 6, meter 3, commons 5, 4 per phase x %d)", len(cfgs), wantN, phases)
	}

	// Live power is bounded: readings 1 s apart for 9 s publish no
	// power and no reading time; the 10th second does.
	lastTopic := base + "/meter_last_reading"
	before := len(rec.all(lastTopic))
	for range 9 {
		feed.read(n, feed.next(time.Second))
	}
	want = feed.next(time.Second)
	feed.read(n, want)
	eventually(t, "the reading 10 s later", func() bool { return len(checkStates(t, states(rec, base), want, clk.now())) == 0 })
	if got := rec.all(lastTopic)[before:]; len(got) != 1 {
		t.Errorf("meter_last_reading published %d times over 10 readings in 10 s: %v; want once", len(got), got)
	}

	// The connection drops without a DISCONNECT: the broker publishes
	// the Last Will, retained, and the daemon comes back by itself.
	prx.setRefuse(true)
	prx.cut()
	eventually(t, "the Last Will", func() bool { v, _ := rec.last(avail); return v == "offline" })
	late := subscribeAll(t, b.addr, "", "")
	eventually(t, "the retained offline", func() bool { v, _ := late.last(avail); return v == "offline" })
	eventually(t, "the daemon to see the connection gone", func() bool { st, _ := r.rt.MQTTState(); return !st.Connected && st.LastError != "" })
	_, stillReads, _, _ := n.Latest()
	if !stillReads {
		t.Fatal("the household lost its reading with the broker")
	}
	prx.setRefuse(false)
	eventually(t, "the reconnection", func() bool { st, _ := r.rt.MQTTState(); return st.Connected })
	eventually(t, "availability online again", func() bool { v, _ := rec.last(avail); return v == "online" })
	want = feed.next(10 * time.Second)
	feed.read(n, want)
	eventually(t, "states after the reconnection", func() bool { return len(checkStates(t, states(rec, base), want, clk.now())) == 0 })

	// A pledge for later today counts in the commons figures.
	day := clk.now().Truncate(24 * time.Hour)
	if _, err := n.Pledge(context.Background(), household.PledgeRequest{To: "Bob", EnergyWh: 1234,
		Start: day.Add(20 * time.Hour), End: day.Add(21 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pledged_today", func() bool { v, _ := rec.last(base + "/pledged_today"); return v == "1234" })
	if v, _ := rec.last(base + "/given_today"); v != "0" {
		t.Errorf("given_today %q after a pledge that is not settled", v)
	}

	// A clean stop says offline itself (no Last Will on a DISCONNECT).
	r.shutdown(t)
	eventually(t, "offline after the stop", func() bool { v, _ := rec.last(avail); return v == "offline" })
	for _, l := range []string{"mqtt connected", "mqtt connection lost"} {
		if !strings.Contains(logs.String(), l) {
			t.Errorf("the log has no %q:\n%s", l, logs.String())
		}
	}
}

// TestMQTTCredentials runs a household against a mosquitto that wants a
// user name and password, configured through config.json's "mqtt" block
// with a password file. A wrong password leaves the household running
// (meter, local socket) with the refusal in its MQTT state, logged once;
// the right one connects. The password is never logged.
func TestMQTTCredentials(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "passwd")
	const user, pass, wrong = "alice", "right-horse-battery", "wrong-staple-42"
	if out, err := exec.Command(mosquittoBin(t, "mosquitto_passwd"), "-b", "-c", pwFile, user, pass).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
	}
	b := startMosquitto(t, "allow_anonymous false\npassword_file "+pwFile+"\n")
	rec := subscribeAll(t, b.addr, user, pass)

	clk := &testClock{}
	feed := newMeterFeed(t, "home", time.Date(2025, 1, 12, 18, 0, 0, 0, time.UTC), clk)
	h := initHomeAt(t, "Bob", feed.pty.Path(), clk.now, func(c *node.Config) {
		c.MQTT = &node.MQTTConfig{URL: "mqtt://" + b.addr, Username: user, PasswordFile: "mqtt-password", TopicPrefix: "street/bob"}
	})
	secret := filepath.Join(h.ConfigDir, "mqtt-password")
	if err := os.WriteFile(secret, []byte(wrong+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	r := start(t, h, Options{Listen: ListenOff, Now: clk.now, Logger: slogText(logs), MQTT: &mqtt.Options{}})
	n := r.rt.Node()
	eventually(t, "the refusal, retried", func() bool {
		st, on := r.rt.MQTTState()
		return on && !st.Connected && st.LastError != "" && st.Failures >= 2
	})
	st, _ := r.rt.MQTTState()
	if !strings.Contains(strings.ToLower(st.LastError), "author") && !strings.Contains(st.LastError, "password") {
		t.Errorf("last error %q does not say the login was refused", st.LastError)
	}
	if st.URL != "mqtt://"+b.addr {
		t.Errorf("state URL %q", st.URL)
	}
	// The household runs on: meter, local socket.
	feed.untilOnline("the meter to come online", 10*time.Second, func() bool { _, ok, _, _ := n.Latest(); return ok })
	c := connect(t, h)
	s, err := c.Status(context.Background())
	if err != nil || s.Reading == nil {
		t.Fatalf("status through the socket with the broker refusing: %v, %v", s.Reading, err)
	}
	if m := s.MQTT; m == nil || m.Connected || m.LastError == "" || m.URL != "mqtt://"+b.addr {
		t.Errorf("status shows MQTT as %+v; want the broker, not connected, with the error", m)
	}
	if j, _ := json.Marshal(s); strings.Contains(string(j), wrong) || !strings.Contains(string(j), `"mqtt":{"url":`) {
		t.Errorf("status JSON: %s", j)
	}
	if k := strings.Count(logs.String(), "mqtt broker not reachable"); k != 1 {
		t.Errorf("the refusal is logged %d times over %d attempts; want once:\n%s", k, st.Failures, logs.String())
	}
	if strings.Contains(logs.String(), wrong) {
		t.Errorf("the log shows the password:\n%s", logs.String())
	}
	if got := rec.count(); got != 0 {
		t.Errorf("the broker passed on %d messages from a refused login", got)
	}
	r.shutdown(t)

	// The right password: connected, and published under the prefix.
	if err := os.WriteFile(secret, []byte(pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = start(t, h, Options{Listen: ListenOff, Now: clk.now, Logger: slogText(logs), MQTT: &mqtt.Options{}})
	eventually(t, "the login", func() bool { st, _ := r.rt.MQTTState(); return st.Connected && st.LastError == "" })
	avail := "street/bob/" + r.rt.Node().Identity().ID + "/availability"
	eventually(t, "availability online", func() bool { v, _ := rec.last(avail); return v == "online" })
	if strings.Contains(logs.String(), pass) {
		t.Errorf("the log shows the password:\n%s", logs.String())
	}
}
