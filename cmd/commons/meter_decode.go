package main

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/commons-energy/commons/meter"
)

// decodeOptions are the flags of `commons meter decode`.
type decodeOptions struct {
	protocol string
	keyHex   string
	json     bool
}

// newMeterDecodeCmd builds `commons meter decode`.
func newMeterDecodeCmd(g *globalFlags) *cobra.Command {
	var o decodeOptions
	cmd := &cobra.Command{
		Use:   "decode [--protocol P] [--key HEX] [--json] FILE...",
		Short: "Decode captured meter bytes (telegrams, frames) from files",
		Long: `Decode captured meter bytes. A file may hold a stream with several telegrams
and garbage between them; every valid telegram is printed, rejected ones are
counted and the last reason is shown on stderr. "-" reads standard input.

Exit codes: 0 every file held at least one valid telegram; 2 usage error
(unknown protocol, bad --key, a directory given); 3 a file does not exist;
1 a file could not be read; 4 a file held no valid telegram (garbage, empty,
truncated, wrong CRC).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMeterDecode(cmd.OutOrStdout(), cmd.ErrOrStderr(), cmd.InOrStdin(), o, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.protocol, "protocol", "auto", "meter protocol: "+knownProtocols())
	f.StringVar(&o.keyHex, "key", "", "Luxembourg Smarty decryption key, 32 hex digits")
	f.BoolVar(&o.json, "json", false, "print one JSON object per reading")
	return cmd
}

// knownProtocols lists the --protocol values, auto included.
func knownProtocols() string {
	names := meter.Protocols()
	if !slices.Contains(names, "auto") {
		names = append([]string{"auto"}, names...)
	}
	return strings.Join(names, ", ")
}

// decodeProtocol maps the --protocol flag to a registered decoder name;
// "auto" means DSMR until an auto-detecting decoder is registered.
func decodeProtocol(name string) (string, error) {
	for _, p := range meter.Protocols() {
		if p == name {
			return name, nil
		}
	}
	if name == "auto" {
		return "dsmr", nil
	}
	return "", fmt.Errorf("unknown --protocol %q; use one of %s", name, knownProtocols())
}

func runMeterDecode(stdout, stderr io.Writer, stdin io.Reader, o decodeOptions, files []string) error {
	protocol, err := decodeProtocol(o.protocol)
	if err != nil {
		return withCode(exitUsage, err)
	}
	var opts meter.DecoderOptions
	if o.keyHex != "" {
		key, err := hex.DecodeString(strings.TrimSpace(o.keyHex))
		if err != nil || len(key) != 16 {
			return failf(exitUsage, "--key must be 32 hex digits (the meter's 16-byte AES key from the grid operator), got %d characters", len(o.keyHex))
		}
		opts.Key = key
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	code := exitOK
	for _, name := range files {
		c, msg := decodeFile(out, stdin, name, protocol, opts, o.json)
		if msg != "" {
			out.Flush()
			fmt.Fprintln(stderr, "commons: "+msg)
		}
		if c != exitOK && code == exitOK {
			code = c
		}
	}
	if err := out.Flush(); err != nil {
		return failf(exitFailure, "write output: %v", err)
	}
	if code != exitOK {
		return &exitError{code: code}
	}
	return nil
}

// decodeFile decodes one file and returns its exit code and the line to
// print on stderr ("" for none).
func decodeFile(out *bufio.Writer, stdin io.Reader, name, protocol string, opts meter.DecoderOptions, asJSON bool) (int, string) {
	var in io.Reader
	if name == "-" {
		in = stdin
		name = "standard input"
	} else {
		fi, err := os.Stat(name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return exitNotFound, fmt.Sprintf("%s: no such file; give the path of a captured telegram file", name)
		case err != nil:
			return exitFailure, fmt.Sprintf("%s: %v", name, unwrapPathError(err))
		case fi.IsDir():
			return exitUsage, fmt.Sprintf("%s is a directory; give capture files, e.g. %s/*.txt", name, strings.TrimRight(name, "/"))
		}
		f, err := os.Open(name)
		if err != nil {
			return exitFailure, fmt.Sprintf("%s: cannot open: %v", name, unwrapPathError(err))
		}
		defer f.Close()
		in = f
	}

	// What auto-detection recognised is printed with the first reading it
	// explains (text output only: the JSON carries "protocol", and a
	// failed decode keeps stdout empty).
	var detected string
	if protocol == "auto" && !asJSON {
		opts.OnDetect = func(d meter.Detection) { detected = d.String() }
	}
	dec, err := meter.NewDecoder(protocol, opts)
	if err != nil {
		return exitUsage, err.Error()
	}
	offsetOf, _ := dec.(interface{ FrameOffset() int64 })
	var (
		valid, rejected int
		lastErr         error
		size            int64
		high            int // bytes >= 0x80 or NUL, to tell binary input
		buf             []byte
	)
	emit := func(r meter.Reading, err error) {
		if err != nil {
			rejected++
			lastErr = err
			return
		}
		valid++
		if asJSON {
			buf = r.AppendJSON(buf[:0])
			buf = append(buf, '\n')
			out.Write(buf)
			return
		}
		if detected != "" {
			fmt.Fprintf(out, "%s: detected %s\n", name, detected)
			detected = ""
		}
		off := int64(-1)
		if offsetOf != nil {
			off = offsetOf.FrameOffset()
		}
		writeReadingText(out, name, off, &r)
	}
	chunk := make([]byte, 32<<10)
	for {
		n, err := in.Read(chunk)
		if n > 0 {
			for _, c := range chunk[:n] {
				if c == 0 || c >= 0x80 {
					high++
				}
			}
			size += int64(n)
			dec.Feed(chunk[:n], emit)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return exitFailure, fmt.Sprintf("%s: read failed after %d bytes: %v", name, size, unwrapPathError(err))
		}
	}
	if fl, ok := dec.(meter.Flusher); ok {
		fl.Flush(emit)
	}

	switch {
	case valid > 0 && rejected == 0:
		return exitOK, ""
	case valid > 0:
		return exitOK, fmt.Sprintf("%s: %d %s decoded, %d rejected (last: %v)", name, valid, plural(valid, "telegram"), rejected, lastErr)
	case size == 0:
		return exitIntegrity, fmt.Sprintf("%s: empty file, no telegram to decode", name)
	case lastErr != nil && rejected == 1:
		return exitIntegrity, fmt.Sprintf("%s: no valid telegram: %v", name, lastErr)
	case lastErr != nil:
		return exitIntegrity, fmt.Sprintf("%s: no valid telegram, %d rejected (last: %v)", name, rejected, lastErr)
	case high*10 > int(min(size, 1<<30)):
		return exitIntegrity, fmt.Sprintf("%s: %s in %d bytes of binary data; if this is another meter's capture, try --protocol (%s)",
			name, noTelegram(protocol), size, knownProtocols())
	default:
		return exitIntegrity, fmt.Sprintf("%s: %s in %d bytes (no telegram start found); if this is another meter's capture, try --protocol (%s)",
			name, noTelegram(protocol), size, knownProtocols())
	}
}

func noTelegram(protocol string) string {
	if protocol == "auto" {
		return "no telegram of any known protocol"
	}
	return "no " + protocol + " telegram"
}

// unwrapPathError drops the "open NAME:" prefix a *fs.PathError repeats.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// writeReadingText renders a reading for people: one header line, then
// one labelled line per group of values the meter sent.
func writeReadingText(w *bufio.Writer, name string, off int64, r *meter.Reading) {
	fmt.Fprintf(w, "%s", name)
	if off >= 0 {
		fmt.Fprintf(w, " @%d", off)
	}
	fmt.Fprintf(w, ": %s", r.Protocol)
	if r.Version != "" {
		fmt.Fprintf(w, " %s", r.Version)
	}
	if r.Header != "" {
		fmt.Fprintf(w, " /%s", headerText(r.Header))
	}
	if r.ChecksumOK {
		fmt.Fprint(w, ", checksum ok")
	} else {
		fmt.Fprint(w, ", no checksum")
	}
	fmt.Fprintln(w)
	line := func(label, format string, args ...any) {
		fmt.Fprintf(w, "  %-9s %s\n", label, fmt.Sprintf(format, args...))
	}
	switch {
	case r.Time.IsZero():
		line("time", "none")
	case r.Time.Location() == meter.Floating:
		line("time", "%s (meter wall clock, offset unknown)", r.Time.Format("2006-01-02 15:04:05"))
	default:
		line("time", "%s", r.Time.Format(time.RFC3339))
	}
	if r.MeterID != "" {
		line("meter", "%s", r.MeterID)
	}
	if r.PowerImportW.OK || r.PowerExportW.OK {
		line("power", "import %s, export %s", optW(r.PowerImportW), optW(r.PowerExportW))
	}
	if r.PowerAbsW.OK {
		line("power", "%d W (direction not sent)", r.PowerAbsW.V)
	}
	for _, e := range []struct {
		label string
		g     meter.Registers
	}{{"import", r.EnergyImport}, {"export", r.EnergyExport}} {
		if e.g.Present() {
			line(e.label, "total %s, tariff 1 %s, tariff 2 %s", optKWh(e.g.Total), optKWh(e.g.Tariff1), optKWh(e.g.Tariff2))
		}
	}
	if r.Tariff > 0 {
		line("tariff", "%d", r.Tariff)
	}
	for i, p := range r.Phases {
		if !p.Present() {
			continue
		}
		var parts []string
		if p.VoltageMV.OK {
			parts = append(parts, milliText(p.VoltageMV.V)+" V")
		}
		if p.CurrentMA.OK {
			parts = append(parts, milliText(p.CurrentMA.V)+" A")
		}
		if p.PowerImportW.OK {
			parts = append(parts, "import "+optW(p.PowerImportW))
		}
		if p.PowerExportW.OK {
			parts = append(parts, "export "+optW(p.PowerExportW))
		}
		line(fmt.Sprintf("L%d", i+1), "%s", strings.Join(parts, ", "))
	}
	for _, s := range []struct {
		label string
		m     *meter.SubMeter
	}{{"gas", r.Gas}, {"water", r.Water}, {"heat", r.Heat}} {
		if s.m == nil {
			continue
		}
		at := "no time"
		switch {
		case s.m.Time.IsZero():
		case s.m.Time.Location() == meter.Floating:
			at = s.m.Time.Format("2006-01-02 15:04:05") + " (wall clock)"
		default:
			at = s.m.Time.Format(time.RFC3339)
		}
		line(s.label, "%s %s at %s (M-Bus channel %d, device type %d)", milliText(s.m.Milli), s.m.Unit, at, s.m.Channel, s.m.DeviceType)
	}
	for _, g := range r.Registers {
		line("register", "%s = %s %s", g.ID, g.Value, g.Unit)
	}
}

// headerText shows a meter's identification line: printable ASCII as is,
// other bytes as \xNN.
func headerText(h string) string {
	var b strings.Builder
	for i := 0; i < len(h); i++ {
		if c := h[i]; c >= 0x20 && c < 0x7f {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, `\x%02X`, c)
		}
	}
	return b.String()
}

func optW(o meter.Optional) string {
	if !o.OK {
		return "-"
	}
	return strconv.FormatInt(o.V, 10) + " W"
}

// optKWh shows integer Wh as exact kWh.
func optKWh(o meter.Optional) string {
	if !o.OK {
		return "-"
	}
	return milliText(o.V) + " kWh"
}

// milliText writes v/1000 exactly, keeping at least one decimal when there
// is a fraction: 236900 -> "236.9", 10000 -> "10", 6657461 -> "6657.461".
func milliText(v int64) string {
	neg := v < 0
	u := uint64(v)
	if neg {
		u = uint64(-v)
	}
	s := strconv.FormatUint(u/1000, 10)
	if frac := u % 1000; frac != 0 {
		f := strings.TrimRight(fmt.Sprintf("%03d", frac), "0")
		s += "." + f
	}
	if neg {
		s = "-" + s
	}
	return s
}
