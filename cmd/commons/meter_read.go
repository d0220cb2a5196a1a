package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/commons-energy/commons/meter"
)

// readOptions are the flags of `commons meter read`.
type readOptions struct {
	port     string
	baud     int
	format   string
	protocol string
	once     bool
	count    int
	timeout  time.Duration
	json     bool
}

// defaultReadTimeout bounds --once and --count when --timeout is not given.
const defaultReadTimeout = time.Minute

// newMeterReadCmd builds `commons meter read`.
func newMeterReadCmd(g *globalFlags) *cobra.Command {
	var o readOptions
	cmd := &cobra.Command{
		Use:   "read --port DEV [--baud N] [--format 8N1|7E1] [--protocol P] [--once|--count N] [--timeout D] [--json]",
		Short: "Read a live meter on a serial port",
		Long: `Read a live meter on a serial port and print every valid reading until
stopped (Ctrl-C), until --once / --count N readings arrived, or for --timeout.

Serial settings follow the protocol: DSMR 4/5, Fluvius and Smarty use 115200
baud 8N1; --baud 9600 with DSMR means a DSMR 2.2/3 meter at 7E1. --format
overrides the character format. When the cable is pulled the reader says
the meter is offline on stderr and picks it up again when it comes back.

Exit codes: 0 done (or stopped); 3 the port does not exist; 1 the port could
not be opened (permissions, busy); 5 --timeout passed before the readings
arrived (--once and --count wait one minute unless --timeout says otherwise).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.once {
				if cmd.Flags().Changed("count") && o.count != 1 {
					return withCode(exitUsage, errors.New("--once and --count disagree; give one of them"))
				}
				o.count = 1
			}
			return runMeterRead(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o, meter.OpenSerial)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.port, "port", "", "serial `DEVICE`, e.g. /dev/ttyUSB0 (list them with: commons meter ports)")
	f.IntVar(&o.baud, "baud", 0, "baud rate (default from the protocol: 115200 for DSMR 4/5)")
	f.StringVar(&o.format, "format", "", "character format such as 8N1 or 7E1 (default from the protocol and baud)")
	f.StringVar(&o.protocol, "protocol", "auto", "meter protocol: "+knownProtocols())
	f.BoolVar(&o.once, "once", false, "print one reading and exit")
	f.IntVar(&o.count, "count", 0, "print N readings and exit (0: until stopped)")
	f.DurationVar(&o.timeout, "timeout", 0, "give up after this long with exit code 5 (e.g. 30s)")
	f.BoolVar(&o.json, "json", false, "print one JSON object per reading")
	_ = cmd.MarkFlagRequired("port")
	return cmd
}

// readPortConfig works out the serial settings from the flags.
func readPortConfig(o readOptions) (meter.PortConfig, error) {
	c, err := meter.SerialSettings(o.protocol)
	if err != nil {
		c, _ = meter.SerialSettings("dsmr")
	}
	if o.baud < 0 {
		return c, fmt.Errorf("--baud %d: must be positive", o.baud)
	}
	if o.baud > 0 {
		if o.baud == 9600 && c.Baud == 115200 && o.format == "" {
			// A DSMR meter at 9600 baud is DSMR 2.2/3: 7E1.
			c, _ = meter.SerialSettings("dsmr2.2")
		}
		c.Baud = o.baud
	}
	if o.format != "" {
		if c, err = c.WithFormat(o.format); err != nil {
			return c, err
		}
	}
	c.Device = o.port
	return c, nil
}

func runMeterRead(ctx context.Context, stdout, stderr io.Writer, o readOptions, open meter.Opener) error {
	if o.port == "" {
		return withCode(exitUsage, errors.New("--port is required (list the ports with `commons meter ports`)"))
	}
	if o.count < 0 {
		return withCode(exitUsage, fmt.Errorf("--count %d: must be 0 or more", o.count))
	}
	if o.timeout < 0 {
		return withCode(exitUsage, fmt.Errorf("--timeout %v: must be positive", o.timeout))
	}
	protocol, err := decodeProtocol(o.protocol)
	if err != nil {
		return withCode(exitUsage, err)
	}
	if _, err := meter.NewDecoder(protocol, meter.DecoderOptions{}); err != nil {
		return withCode(exitUsage, err)
	}
	pc, err := readPortConfig(o)
	if err != nil {
		return withCode(exitUsage, err)
	}
	// Open once up front so a wrong path or missing permission fails at
	// once with its own exit code instead of retrying forever.
	p, err := open(pc)
	if err != nil {
		if errors.Is(err, meter.ErrPortNotFound) {
			return withCode(exitNotFound, err)
		}
		return withCode(exitFailure, err)
	}
	if err := p.Close(); err != nil {
		return withCode(exitFailure, err)
	}

	timeout := o.timeout
	if timeout == 0 && o.count > 0 {
		timeout = defaultReadTimeout
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var timedOut atomic.Bool
	if timeout > 0 {
		t := time.AfterFunc(timeout, func() { timedOut.Store(true); cancel() })
		defer t.Stop()
	}

	out := bufio.NewWriter(stdout)
	var mu sync.Mutex // guards out and printed
	printed := 0
	buf := make([]byte, 0, 1024)
	r, err := meter.NewReader(meter.ReaderConfig{
		Port: pc,
		Open: open,
		NewDecoder: func() meter.Decoder {
			d, _ := meter.NewDecoder(protocol, meter.DecoderOptions{})
			return d
		},
		Logger: slog.New(slog.DiscardHandler),
		OnReading: func(rd meter.Reading) {
			mu.Lock()
			defer mu.Unlock()
			if o.count > 0 && printed >= o.count {
				return
			}
			printed++
			if o.json {
				buf = rd.AppendJSON(buf[:0])
				out.Write(buf)
				out.WriteByte('\n')
			} else {
				writeReadingText(out, pc.Device, -1, &rd)
			}
			out.Flush()
			if o.count > 0 && printed >= o.count {
				cancel()
			}
		},
		OnStatus: func(st meter.Status) {
			switch {
			case st.Online && st.Reconnects > 0:
				fmt.Fprintf(stderr, "commons: meter on %s online again\n", st.Port)
			case st.Online:
			case st.LastError != "":
				fmt.Fprintf(stderr, "commons: meter on %s offline since %s: %s\n", st.Port, st.Since.Format(time.TimeOnly), st.LastError)
			}
		},
	})
	if err != nil {
		return withCode(exitFailure, err)
	}
	_ = r.Run(runCtx)
	mu.Lock()
	defer mu.Unlock()
	if o.count > 0 && printed >= o.count || o.count == 0 && printed > 0 {
		return nil // all readings asked for, or a --timeout read window with readings
	}
	if timedOut.Load() {
		st := r.Status()
		why := ""
		if st.LastError != "" {
			why = "; last error: " + st.LastError
		}
		return failf(exitTimeout, "%d of %d readings from %s within %v (%s at %d baud%s); check --baud/--format and the cable, or list ports with `commons meter ports`",
			printed, max(o.count, 1), pc.Device, timeout, pc.Format(), pc.Baud, why)
	}
	return nil // stopped by a signal
}
