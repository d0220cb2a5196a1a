package meter_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/commons-energy/commons/meter"
	"github.com/commons-energy/commons/meter/sim"
)

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func openPTY(t *testing.T, link string) *sim.PTY {
	t.Helper()
	p, err := sim.OpenPTY(link)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func simMeter(t testing.TB) *sim.Meter {
	t.Helper()
	p, err := sim.LoadProfile("home")
	if err != nil {
		t.Fatal(err)
	}
	return sim.New(p, 1, time.Date(2025, 6, 10, 9, 0, 0, 0, time.UTC))
}

func dsmrDecoder() meter.Decoder {
	d, err := meter.NewDecoder("dsmr", meter.DecoderOptions{})
	if err != nil {
		panic(err)
	}
	return d
}

// TestSerialRoundTrip writes a telegram into a pty and reads it back
// through the tarm/serial adapter, byte for byte.
func TestSerialRoundTrip(t *testing.T) {
	p := openPTY(t, "")
	port, err := meter.OpenSerial(meter.PortConfig{Device: p.Path(), Baud: 115200, ReadTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	m := simMeter(t)
	want := m.Telegram(time.Date(2025, 6, 10, 12, 0, 0, 0, time.UTC))
	if _, err := p.Write(want); err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 256)
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < len(want) && time.Now().Before(deadline) {
		n, err := port.Read(buf)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read back %q\nwant %q", got, want)
	}
	// Nothing more to read: a timeout is (0, nil), never io.EOF.
	n, err := port.Read(buf)
	if n != 0 || err != nil {
		t.Fatalf("idle read = (%d, %v), want (0, nil)", n, err)
	}
}

// TestSerialCloseDuringRead closes the port while another goroutine is
// blocked in Read on a silent line: Close must return and the reader must
// get ErrPortClosed or a timeout, not hang.
func TestSerialCloseDuringRead(t *testing.T) {
	p := openPTY(t, "")
	port, err := meter.OpenSerial(meter.PortConfig{Device: p.Path(), Baud: 115200, ReadTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	readerDone := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		close(started)
		buf := make([]byte, 64)
		for {
			n, err := port.Read(buf)
			if err != nil || n > 0 {
				readerDone <- err
				return
			}
		}
	}()
	<-started
	closed := make(chan error, 1)
	go func() { closed <- port.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung while a Read was pending")
	}
	select {
	case err := <-readerDone:
		if !errors.Is(err, meter.ErrPortClosed) {
			t.Fatalf("read after close: %v, want ErrPortClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not return after Close")
	}
	if err := port.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

// TestSerialHangup closes the pty's far end: the open port reports the
// device gone instead of endless timeouts.
func TestSerialHangup(t *testing.T) {
	p, err := sim.OpenPTY("")
	if err != nil {
		t.Fatal(err)
	}
	port, err := meter.OpenSerial(meter.PortConfig{Device: p.Path(), Baud: 115200, ReadTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	p.Close()
	buf := make([]byte, 64)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := port.Read(buf)
		if err != nil {
			if !errors.Is(err, meter.ErrHangup) && !strings.Contains(err.Error(), "input/output error") {
				t.Fatalf("read after hang-up: %v", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("hang-up never reported")
		}
	}
}

func TestOpenMissingPort(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "ttyUSB9")
	_, err := meter.OpenSerial(meter.PortConfig{Device: dev, Baud: 115200})
	if !errors.Is(err, meter.ErrPortNotFound) {
		t.Fatalf("err = %v, want ErrPortNotFound", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, dev) || !strings.Contains(msg, "commons meter ports") || strings.Contains(msg, "\n") {
		t.Fatalf("message %q should name the port and `commons meter ports` on one line", msg)
	}
	if _, err := meter.OpenSerial(meter.PortConfig{Device: dev, Baud: 250000}); err == nil || !strings.Contains(err.Error(), "250000") {
		t.Fatalf("odd baud rate: %v", err)
	}
}

func TestSerialSettings(t *testing.T) {
	for _, tc := range []struct {
		protocol, want string
	}{
		{"dsmr2.2", " 9600 7E1"}, {"dsmr3", " 9600 7E1"},
		{"dsmr", " 115200 8N1"}, {"dsmr4", " 115200 8N1"}, {"dsmr5", " 115200 8N1"},
		{"fluvius", " 115200 8N1"}, {"smarty", " 115200 8N1"},
	} {
		c, err := meter.SerialSettings(tc.protocol)
		if err != nil || c.String() != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.protocol, c.String(), err, tc.want)
		}
	}
	if _, err := meter.SerialSettings("morse"); err == nil {
		t.Error("unknown protocol accepted")
	}
	c, err := meter.PortConfig{Device: "/dev/x", Baud: 9600}.WithFormat("7e1")
	if err != nil || c.Format() != "7E1" {
		t.Errorf("WithFormat 7e1: %v %v", c, err)
	}
	for _, bad := range []string{"", "8X1", "9N1", "8N3", "8N1x"} {
		if _, err := c.WithFormat(bad); err == nil {
			t.Errorf("WithFormat(%q) accepted", bad)
		}
	}
}

// readerRecorder collects what a Reader delivers.
type readerRecorder struct {
	mu       sync.Mutex
	readings []meter.Reading
	statuses []meter.Status
}

func (rec *readerRecorder) config(dev string) meter.ReaderConfig {
	return meter.ReaderConfig{
		Port:       meter.PortConfig{Device: dev, Baud: 115200, ReadTimeout: 100 * time.Millisecond},
		NewDecoder: dsmrDecoder,
		BackoffMin: 5 * time.Millisecond,
		BackoffMax: 40 * time.Millisecond,
		OnReading: func(r meter.Reading) {
			rec.mu.Lock()
			rec.readings = append(rec.readings, r)
			rec.mu.Unlock()
		},
		OnStatus: func(s meter.Status) {
			rec.mu.Lock()
			rec.statuses = append(rec.statuses, s)
			rec.mu.Unlock()
		},
	}
}

func (rec *readerRecorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.readings)
}

func startReader(t *testing.T, cfg meter.ReaderConfig) (*meter.Reader, func()) {
	t.Helper()
	r, err := meter.NewReader(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stop := func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run returned %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	}
	return r, stop
}

// TestReaderSimulatorRoundTrip runs the simulator on a real pty and reads
// it back through tarm/serial, the Reader and the DSMR decoder: every
// reading equals the model's own reading for that instant.
func TestReaderSimulatorRoundTrip(t *testing.T) {
	link := filepath.Join(t.TempDir(), "meter")
	m := simMeter(t)
	twin := simMeter(t)
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := sim.ServePTY(ctx, m, sim.ServeOptions{Link: link, Speed: 50})
	if err != nil {
		t.Fatal(err)
	}
	rec := &readerRecorder{}
	r, stop := startReader(t, rec.config(link))
	eventually(t, 20*time.Second, "30 readings", func() bool { return rec.count() >= 30 })
	stop()
	cancel()
	<-srv.Done()
	if err := srv.Err(); err != nil {
		t.Fatalf("server: %v", err)
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Errorf("link %s left behind: %v", link, err)
	}
	st := r.Status()
	if st.Telegrams < 30 || st.Port != link || st.Protocol != "dsmr" || st.LastTelegram.IsZero() {
		t.Errorf("status %+v", st)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var prev time.Time
	for i, got := range rec.readings {
		if got.Time.Before(prev) {
			t.Fatalf("reading %d at %v before %v", i, got.Time, prev)
		}
		prev = got.Time
		want := twin.Reading(got.Time)
		if !got.Time.Equal(want.Time) || got.Gas == nil || want.Gas == nil || *got.Gas != *want.Gas && !got.Gas.Time.Equal(want.Gas.Time) {
			t.Fatalf("reading %d: time/gas %v %+v, want %v %+v", i, got.Time, got.Gas, want.Time, want.Gas)
		}
		got.Time, want.Time, got.Gas, want.Gas = time.Time{}, time.Time{}, nil, nil
		got.Registers, want.Registers = nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("reading %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
}

// withParity sets bit 7 of every byte to its even parity bit, as a 7E1
// line delivers characters to a port that does not strip parity.
func withParity(p []byte) []byte {
	out := make([]byte, len(p))
	for i, b := range p {
		ones := 0
		for x := b & 0x7f; x != 0; x &= x - 1 {
			ones++
		}
		out[i] = b & 0x7f
		if ones%2 == 1 {
			out[i] |= 0x80
		}
	}
	return out
}

// Test7E1StripsParity feeds telegram bytes with the parity bit set, as a
// pty or a network bridge hands on a DSMR 2.2/3 meter's 7E1 line: a 7-bit
// Reader strips it and decodes, an 8-bit one rejects the telegram.
func Test7E1StripsParity(t *testing.T) {
	m := simMeter(t)
	tg := m.Telegram(time.Date(2025, 6, 10, 12, 0, 0, 0, time.UTC))
	noisy := withParity(tg)
	if bytes.Equal(noisy, tg) {
		t.Fatal("no byte got a parity bit; the test would prove nothing")
	}
	// One write: the telegram with parity bits, then the same telegram
	// clean. Once the clean one is decoded the noisy one has been judged.
	payload := append(append([]byte{}, noisy...), tg...)
	for _, tc := range []struct {
		format string
		want   uint64 // telegrams decoded
	}{{"7E1", 2}, {"8N1", 1}} {
		t.Run(tc.format, func(t *testing.T) {
			p := openPTY(t, "")
			rec := &readerRecorder{}
			cfg := rec.config(p.Path())
			var err error
			if cfg.Port, err = cfg.Port.WithFormat(tc.format); err != nil {
				t.Fatal(err)
			}
			cfg.Port.Baud = 9600
			if _, err := p.Write(payload); err != nil {
				t.Fatal(err)
			}
			r, stop := startReader(t, cfg)
			defer stop()
			eventually(t, 20*time.Second, "the clean telegram", func() bool { return r.Status().Telegrams >= tc.want })
			if st := r.Status(); st.Telegrams != tc.want {
				t.Fatalf("%s reader decoded %d telegrams, want %d: %+v", tc.format, st.Telegrams, tc.want, st)
			}
		})
	}
}

func fdCount(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestReaderReplug pulls the cable 100 times: the pty behind a symlink
// closes (the reader must report offline), a new pty appears at the same
// path (the reader must resume on its own). No goroutine or file
// descriptor may leak.
func TestReaderReplug(t *testing.T) {
	cycles := 100
	if testing.Short() {
		cycles = 10
	}
	// No garbage collection: an *os.File's finalizer would close a leaked
	// descriptor and hide the leak.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	link := filepath.Join(t.TempDir(), "meter")
	m := simMeter(t)
	now := time.Date(2025, 6, 10, 12, 0, 0, 0, time.UTC)
	rec := &readerRecorder{}
	cfg := rec.config(link)
	cfg.SilenceTimeout = time.Minute // only the hang-up may take it offline
	var goroutines, fds int
	var r *meter.Reader
	var stop func()
	for i := range cycles + 1 {
		p, err := sim.OpenPTY(link)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			r, stop = startReader(t, cfg)
		}
		before := r.Status().Telegrams
		eventually(t, 20*time.Second, "a telegram after replug", func() bool {
			if r.Status().Telegrams > before {
				return true
			}
			now = now.Add(time.Second)
			if _, err := p.Write(m.Telegram(now)); err != nil {
				t.Fatal(err)
			}
			return false
		})
		if !r.Status().Online {
			t.Fatalf("cycle %d: telegrams arrive but status offline: %+v", i, r.Status())
		}
		if i == 1 {
			// Baseline once the reader, the runtime's poller and the
			// first pty have settled, with one pty open as in every cycle.
			goroutines, fds = runtime.NumGoroutine(), fdCount(t)
		}
		unplugged := time.Now()
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		eventually(t, 20*time.Second, "offline after unplug", func() bool { return !r.Status().Online })
		st := r.Status()
		if st.Since.Before(unplugged) || st.LastError == "" {
			t.Fatalf("cycle %d: offline status %+v (unplugged at %v)", i, st, unplugged)
		}
		if i > 1 {
			if g := runtime.NumGoroutine(); g > goroutines+1 {
				t.Fatalf("cycle %d: %d goroutines, %d at the start", i, g, goroutines)
			}
		}
	}
	st := r.Status()
	if st.Reconnects < uint64(cycles) {
		t.Errorf("reconnects %d, want >= %d", st.Reconnects, cycles)
	}
	// One more pty so the fd baseline (taken with one open) compares.
	p := openPTY(t, link)
	_ = p
	eventually(t, 20*time.Second, "goroutines back to the baseline", func() bool { return runtime.NumGoroutine() <= goroutines })
	eventually(t, 20*time.Second, "file descriptors back to the baseline", func() bool { return fdCount(t) <= fds })
	stop()
	rec.mu.Lock()
	n := len(rec.statuses)
	rec.mu.Unlock()
	if n < 2*cycles {
		t.Errorf("%d status changes for %d cycles", n, cycles)
	}
}

// TestReaderSilence: a device that stays but stops sending is reported
// offline after the silence timeout and is read again when it resumes.
func TestReaderSilence(t *testing.T) {
	p := openPTY(t, "")
	m := simMeter(t)
	rec := &readerRecorder{}
	cfg := rec.config(p.Path())
	cfg.SilenceTimeout = 300 * time.Millisecond
	r, stop := startReader(t, cfg)
	defer stop()
	now := time.Date(2025, 6, 10, 12, 0, 0, 0, time.UTC)
	send := func() {
		now = now.Add(time.Second)
		if _, err := p.Write(m.Telegram(now)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 20*time.Second, "online", func() bool { send(); return r.Status().Online })
	eventually(t, 20*time.Second, "offline when silent", func() bool { return !r.Status().Online })
	if st := r.Status(); !strings.Contains(st.LastError, "no valid telegram") {
		t.Fatalf("silent status %+v", st)
	}
	eventually(t, 20*time.Second, "online again", func() bool { send(); return r.Status().Online })
	if st := r.Status(); st.Reconnects == 0 {
		t.Fatalf("silence should reopen the port: %+v", st)
	}
}

// TestReaderMissingPort: the reader keeps trying and says why.
func TestReaderMissingPort(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "ttyUSB0")
	rec := &readerRecorder{}
	r, stop := startReader(t, rec.config(dev))
	eventually(t, 10*time.Second, "an error status", func() bool { return r.Status().LastError != "" })
	st := r.Status()
	if st.Online || !strings.Contains(st.LastError, dev) || !strings.Contains(st.LastError, "commons meter ports") {
		t.Fatalf("status %+v", st)
	}
	// Plug it in: a pty appears at the path.
	p := openPTY(t, dev)
	m := simMeter(t)
	now := time.Date(2025, 6, 10, 12, 0, 0, 0, time.UTC)
	eventually(t, 20*time.Second, "online once plugged in", func() bool {
		now = now.Add(time.Second)
		if _, err := p.Write(m.Telegram(now)); err != nil {
			t.Fatal(err)
		}
		return r.Status().Online
	})
	stop()
}

// TestReaderFastClock: a simulated clock running 1000 times faster (the
// demo's) is only for status times; it must not make the silence timeout
// take a meter that sends every few milliseconds offline.
func TestReaderFastClock(t *testing.T) {
	p := openPTY(t, "")
	m := simMeter(t)
	rec := &readerRecorder{}
	cfg := rec.config(p.Path())
	base := time.Now()
	cfg.Now = func() time.Time { return base.Add(time.Since(base) * 1000) }
	cfg.SilenceTimeout = 2 * time.Second
	r, stop := startReader(t, cfg)
	defer stop()
	now := time.Date(2025, 6, 10, 12, 0, 0, 0, time.UTC)
	for i := range 12 {
		if i > 1 {
			// The meter's send interval (the scenario, not a wait for a
			// result): 250 ms real, longer than the read timeout, is
			// 250 s on the fast clock, far past the silence timeout.
			time.Sleep(250 * time.Millisecond)
		}
		before := r.Status().Telegrams
		eventually(t, 20*time.Second, "the next telegram", func() bool {
			if r.Status().Telegrams > before {
				return true
			}
			now = now.Add(time.Second)
			if _, err := p.Write(m.Telegram(now)); err != nil {
				t.Fatal(err)
			}
			return false
		})
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, st := range rec.statuses {
		if !st.Online {
			t.Fatalf("went offline with telegrams arriving: %+v", st)
		}
	}
	if st := r.Status(); st.LastTelegram.Before(base.Add(time.Minute)) {
		t.Errorf("status times should come from the configured clock: last telegram %v, start %v", st.LastTelegram, base)
	}
}
