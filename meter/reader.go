package meter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Reader defaults.
const (
	DefaultSilenceTimeout = 30 * time.Second
	DefaultBackoffMin     = 250 * time.Millisecond
	DefaultBackoffMax     = 5 * time.Second
)

// readBufSize is the size of one Read from the port: larger than a whole
// DSMR telegram (~0.9-1.7 kB), so one Read usually carries one telegram.
const readBufSize = 4096

// ReaderConfig configures a Reader.
type ReaderConfig struct {
	// Port is the serial device and its settings. DataBits 7 makes the
	// Reader strip bit 7 of every byte (parity that a pty, a network
	// bridge or an odd adapter left in place).
	Port PortConfig
	// Open opens the port; nil means OpenSerial (tarm/serial).
	Open Opener
	// NewDecoder returns a fresh decoder for every (re)opened port, so no
	// partial frame survives a reconnect. Required.
	NewDecoder func() Decoder
	// SilenceTimeout is how long the port may go without a valid telegram
	// before the Reader reports the meter offline and reopens the port.
	// 0 means DefaultSilenceTimeout. DSMR 5 sends every second, DSMR 2.2
	// to 4.2 every ten.
	SilenceTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait between reopen attempts;
	// the wait doubles after each failure and resets after a valid
	// telegram. 0 means the defaults.
	BackoffMin, BackoffMax time.Duration
	// OnReading receives every valid reading, on the Reader's goroutine.
	// The Reading is the caller's to keep. It must not block for long:
	// hand it to a bounded queue if the work is slow.
	OnReading func(Reading)
	// OnStatus receives the status whenever the meter goes online or
	// offline or the last error changes (not on every telegram; poll
	// Reader.Status for the counters).
	OnStatus func(Status)
	// Logger logs opens, errors and reconnects; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock for the times in Status; nil means time.Now. The
	// silence timeout and the backoff always run on the real clock, so a
	// simulated or frozen Now cannot take a live meter offline.
	Now func() time.Time
}

// Status is the health of a meter connection.
type Status struct {
	Online       bool      // valid telegrams are arriving
	Since        time.Time // when Online last changed (the Reader's start at first)
	Port         string    // device path
	Protocol     string    // decoder protocol, e.g. "dsmr"
	LastTelegram time.Time // when the last valid telegram arrived; zero if none yet
	Telegrams    uint64    // valid telegrams decoded
	Rejected     uint64    // frames the decoder rejected (bad CRC, truncated, ...)
	Reconnects   uint64    // times the port was reopened after a loss
	LastError    string    // the last open, read or decode error; "" if none
}

// Reader owns one serial port and one decoder. Run reads until its context
// ends, reopening the port with backoff when the device disappears or goes
// silent.
type Reader struct {
	cfg ReaderConfig
	log *slog.Logger
	now func() time.Time

	mu     sync.Mutex
	status Status
}

// NewReader checks cfg and returns a Reader. It does not open the port.
func NewReader(cfg ReaderConfig) (*Reader, error) {
	if cfg.NewDecoder == nil {
		return nil, errors.New("meter reader: no decoder")
	}
	if cfg.Port.Device == "" {
		return nil, errors.New("meter reader: no serial device given")
	}
	if cfg.Open == nil {
		cfg.Open = OpenSerial
	}
	if cfg.SilenceTimeout <= 0 {
		cfg.SilenceTimeout = DefaultSilenceTimeout
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = DefaultBackoffMin
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = DefaultBackoffMax
	}
	cfg.BackoffMax = max(cfg.BackoffMax, cfg.BackoffMin)
	cfg.Port = cfg.Port.withDefaults()
	r := &Reader{cfg: cfg, log: cfg.Logger, now: cfg.Now}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.now == nil {
		r.now = time.Now
	}
	r.status = Status{Port: cfg.Port.Device, Protocol: cfg.NewDecoder().Protocol()}
	return r, nil
}

// Status returns a snapshot of the connection's health.
func (r *Reader) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// errSilent is the session error when no valid telegram arrived in time.
type errSilent time.Duration

func (e errSilent) Error() string {
	return fmt.Sprintf("no valid telegram for %s", time.Duration(e))
}

// Run reads the meter until ctx ends and returns ctx's error. Open and
// read errors never end Run: the Reader reports the meter offline and
// reopens the port with backoff. The port is closed when Run returns.
func (r *Reader) Run(ctx context.Context) error {
	r.mu.Lock()
	r.status.Since = r.now()
	r.mu.Unlock()
	backoff := r.cfg.BackoffMin
	opened := false
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		port, err := r.cfg.Open(r.cfg.Port)
		if err == nil {
			if opened {
				r.mu.Lock()
				r.status.Reconnects++
				r.mu.Unlock()
			}
			opened = true
			r.log.Debug("meter port open", "port", r.cfg.Port.String())
			var good bool
			good, err = r.session(ctx, port)
			if cerr := port.Close(); cerr != nil {
				r.log.Warn("meter port close", "port", r.cfg.Port.Device, "err", cerr)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if good {
				backoff = r.cfg.BackoffMin
			}
		}
		r.setOffline(err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, r.cfg.BackoffMax)
	}
}

// session reads one opened port until an error, silence or ctx ends. good
// reports whether any valid telegram arrived.
func (r *Reader) session(ctx context.Context, port Port) (good bool, err error) {
	dec := r.cfg.NewDecoder()
	buf := make([]byte, readBufSize)
	strip := r.cfg.Port.DataBits == 7
	lastValid := time.Now()
	emit := func(rd Reading, derr error) {
		now := r.now()
		if derr != nil {
			r.mu.Lock()
			r.status.Rejected++
			changed := r.status.LastError != derr.Error()
			r.status.LastError = derr.Error()
			st := r.status
			r.mu.Unlock()
			r.log.Debug("meter telegram rejected", "port", r.cfg.Port.Device, "err", derr)
			if changed {
				r.notify(st)
			}
			return
		}
		good = true
		lastValid = time.Now()
		r.mu.Lock()
		r.status.Telegrams++
		r.status.LastTelegram = now
		changed := !r.status.Online
		if changed {
			r.status.Online = true
			r.status.Since = now
			r.status.LastError = ""
		}
		st := r.status
		r.mu.Unlock()
		if changed {
			r.log.Info("meter online", "port", r.cfg.Port.Device, "protocol", st.Protocol)
			r.notify(st)
		}
		if r.cfg.OnReading != nil {
			r.cfg.OnReading(rd.Clone())
		}
	}
	if p, ok := dec.(Poller); ok {
		// Request/response meters (Modbus, IEC 62056-21 mode C): the
		// decoder asks and times out itself.
		err := p.Poll(ctx, port, r.cfg.Port.Device, emit)
		return good, err
	}
	for {
		if ctx.Err() != nil {
			return good, ctx.Err()
		}
		n, err := port.Read(buf)
		if n > 0 {
			p := buf[:n]
			if strip {
				for i := range p {
					p[i] &= 0x7f
				}
			}
			dec.Feed(p, emit)
		}
		if err != nil {
			return good, err
		}
		if time.Since(lastValid) > r.cfg.SilenceTimeout {
			return good, errSilent(r.cfg.SilenceTimeout)
		}
	}
}

// setOffline records that the meter is not delivering, because of err.
func (r *Reader) setOffline(err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	r.mu.Lock()
	changed := r.status.Online || r.status.LastError != msg
	if r.status.Online {
		r.status.Online = false
		r.status.Since = r.now()
	}
	r.status.LastError = msg
	st := r.status
	r.mu.Unlock()
	if changed {
		r.log.Warn("meter offline", "port", r.cfg.Port.Device, "since", st.Since, "err", msg)
		r.notify(st)
	}
}

func (r *Reader) notify(st Status) {
	if r.cfg.OnStatus != nil {
		r.cfg.OnStatus(st)
	}
}
