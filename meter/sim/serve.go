package sim

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// MinInterval is the shortest real time between two telegrams ServePTY
// sends, however high the speed.
const MinInterval = 10 * time.Millisecond

// ServeOptions configures ServePTY.
type ServeOptions struct {
	// Link, when not "", becomes a symbolic link to the device while the
	// server runs.
	Link string
	// Speed is simulated seconds per real second; 0 means 1. At speed 60
	// an hour of the household passes in a minute.
	Speed float64
	// Interval is the real time between telegrams; 0 means one telegram
	// per simulated second (1s/Speed), but never less than MinInterval.
	Interval time.Duration
	// Now is the real clock; nil means time.Now.
	Now func() time.Time
}

// Server emits a simulated meter's telegrams on a pseudo-terminal.
type Server struct {
	pty       *PTY
	done      chan struct{}
	err       error
	telegrams atomic.Uint64
	mu        sync.Mutex
}

// ServePTY opens a pseudo-terminal and writes m's telegrams to it until
// ctx ends; then it closes the device and removes the link. The simulated
// clock starts at m.Start() and runs Speed times faster than the real one.
func ServePTY(ctx context.Context, m *Meter, opts ServeOptions) (*Server, error) {
	return serveFrames(ctx, opts, m.Start(), m.AppendTelegram)
}

// Path returns the device readers open.
func (s *Server) Path() string { return s.pty.Path() }

// Link returns the symbolic link to the device, or "".
func (s *Server) Link() string { return s.pty.Link() }

// Telegrams returns how many telegrams were written so far.
func (s *Server) Telegrams() uint64 { return s.telegrams.Load() }

// Done is closed when the server has stopped and closed the device.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err returns why the server stopped (nil when its context ended); valid
// after Done is closed.
func (s *Server) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// serveFrames writes frame(now) on a new pseudo-terminal every interval of
// real time, with the simulated clock starting at simStart and running
// opts.Speed times faster.
func serveFrames(ctx context.Context, opts ServeOptions, simStart time.Time, frame func(dst []byte, now time.Time) []byte) (*Server, error) {
	if opts.Speed == 0 {
		opts.Speed = 1
	}
	if opts.Speed < 0 || opts.Speed > 1e6 {
		return nil, fmt.Errorf("simulator speed %v out of range (0 < speed <= 1000000)", opts.Speed)
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Duration(float64(time.Second) / opts.Speed)
	}
	opts.Interval = max(opts.Interval, MinInterval)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p, err := OpenPTY(opts.Link)
	if err != nil {
		return nil, err
	}
	s := &Server{pty: p, done: make(chan struct{})}
	go func() {
		var err error
		defer func() {
			if cerr := s.pty.Close(); err == nil {
				err = cerr
			}
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			close(s.done)
		}()
		realStart := opts.Now()
		t := time.NewTicker(opts.Interval)
		defer t.Stop()
		var buf []byte
		for {
			now := simStart.Add(time.Duration(float64(opts.Now().Sub(realStart)) * opts.Speed))
			buf = frame(buf[:0], now)
			if _, werr := s.pty.Write(buf); werr != nil {
				err = fmt.Errorf("simulated meter %s: %w", s.pty.Path(), werr)
				return
			}
			s.telegrams.Add(1)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s, nil
}
