package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/commons-energy/commons/meter"
	"github.com/commons-energy/commons/meter/sim"
)

// TestMeterSerialCLI builds the real binary once and runs the read,
// simulate and ports commands as real processes.
func TestMeterSerialCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "commons")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Run("simulate and read", func(t *testing.T) { testMeterSimulateAndRead(t, bin) })
	for _, proto := range []string{"sml", "modbus"} {
		t.Run("simulate and read "+proto, func(t *testing.T) { testMeterSimulateProtocol(t, bin, proto) })
	}
	t.Run("read errors", func(t *testing.T) { testMeterReadErrors(t, bin) })
	t.Run("simulate errors", func(t *testing.T) { testMeterSimulateErrors(t, bin) })
	t.Run("ports json", func(t *testing.T) { testMeterPortsJSON(t, bin) })
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// testMeterSimulateAndRead runs `commons meter simulate --link` and
// `commons meter read --json` as two real processes over a real pty, then
// stops the simulator with SIGTERM: it must exit 0 and remove its link.
func testMeterSimulateAndRead(t *testing.T, bin string) {
	link := filepath.Join(t.TempDir(), "meter")
	simCmd := exec.Command(bin, "meter", "simulate", "--link", link, "--speed", "20", "--profile", "solar-roof")
	stdout, err := simCmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var simErr bytes.Buffer
	simCmd.Stderr = &simErr
	if err := simCmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer simCmd.Process.Kill()
	dev, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("no device path on stdout: %v (stderr %q)", err, simErr.String())
	}
	dev = strings.TrimSpace(dev)
	if target, err := os.Readlink(link); err != nil || target != dev {
		t.Fatalf("link %s -> %q (%v), device %q", link, target, err, dev)
	}

	var out, errOut bytes.Buffer
	read := exec.Command(bin, "meter", "read", "--port", link, "--count", "3", "--json", "--timeout", "30s")
	read.Stdout, read.Stderr = &out, &errOut
	if err := read.Run(); err != nil {
		t.Fatalf("meter read: %v\nstderr: %s", err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), out.String())
	}
	var prev time.Time
	for _, l := range lines {
		var r struct {
			Time       time.Time      `json:"time"`
			Protocol   string         `json:"protocol"`
			Version    string         `json:"version"`
			Import     map[string]int `json:"energy_import_wh"`
			Phases     []any          `json:"phases"`
			ChecksumOK bool           `json:"checksum_ok"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("not JSON: %v: %s", err, l)
		}
		if r.Protocol != "dsmr" || r.Version != "50" || !r.ChecksumOK || len(r.Phases) != 3 || r.Import["total"] != r.Import["tariff1"]+r.Import["tariff2"] {
			t.Fatalf("odd reading %s", l)
		}
		if !r.Time.After(prev) {
			t.Fatalf("time %v not after %v", r.Time, prev)
		}
		prev = r.Time
	}

	if err := simCmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := simCmd.Wait(); err != nil {
		t.Fatalf("simulator exit: %v\n%s", err, simErr.String())
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Fatalf("link left behind after SIGTERM: %v", err)
	}
}

// testMeterSimulateProtocol runs the SML and Modbus simulators as real
// processes and reads them back with the matching decoder; SIGTERM must
// stop the simulator even after a reader has come and gone.
func testMeterSimulateProtocol(t *testing.T, bin, proto string) {
	link := filepath.Join(t.TempDir(), "meter")
	simCmd := exec.Command(bin, "meter", "simulate", "--protocol", proto, "--link", link, "--speed", "10")
	stdout, err := simCmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var simErr bytes.Buffer
	simCmd.Stderr = &simErr
	if err := simCmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer simCmd.Process.Kill()
	if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil {
		t.Fatalf("no device path: %v (%s)", err, simErr.String())
	}
	var out, errOut bytes.Buffer
	read := exec.Command(bin, "meter", "read", "--port", link, "--protocol", proto, "--count", "2", "--json", "--timeout", "30s")
	read.Stdout, read.Stderr = &out, &errOut
	if err := read.Run(); err != nil {
		t.Fatalf("meter read: %v\nstderr: %s", err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), out.String())
	}
	for _, l := range lines {
		var r struct {
			Protocol   string         `json:"protocol"`
			Import     map[string]int `json:"energy_import_wh"`
			ChecksumOK bool           `json:"checksum_ok"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.Protocol != proto || r.Import == nil {
			t.Fatalf("reading %s (%v)", l, err)
		}
	}
	if err := simCmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- simCmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("simulator exit: %v\n%s", err, simErr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("simulator ignored SIGTERM")
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Fatalf("link left behind: %v", err)
	}
}

func testMeterReadErrors(t *testing.T, bin string) {
	p, err := sim.OpenPTY("")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	missing := filepath.Join(t.TempDir(), "ttyUSB0")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"missing port", []string{"--port", missing, "--once"}, 3, "commons meter ports"},
		{"silent port", []string{"--port", p.Path(), "--once", "--timeout", "700ms"}, 5, "0 of 1 readings from " + p.Path()},
		{"bad format", []string{"--port", p.Path(), "--format", "8Q1"}, 2, "parity"},
		{"unknown protocol", []string{"--port", p.Path(), "--protocol", "morse"}, 2, "morse"},
		{"odd baud", []string{"--port", p.Path(), "--baud", "250000", "--once"}, 1, "250000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			cmd := exec.Command(bin, append([]string{"meter", "read"}, tc.args...)...)
			cmd.Stdout, cmd.Stderr = &out, &errOut
			code := exitCode(cmd.Run())
			msg := errOut.String()
			if code != tc.code || !strings.Contains(msg, tc.stderr) || strings.Count(msg, "\n") != 1 || strings.Contains(msg, "goroutine") {
				t.Fatalf("exit %d, stderr %q; want exit %d and one line with %q", code, msg, tc.code, tc.stderr)
			}
			if out.Len() != 0 {
				t.Fatalf("stdout %q", out.String())
			}
		})
	}
}

func testMeterSimulateErrors(t *testing.T, bin string) {
	file := filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(file, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown profile", []string{"--profile", "castle"}, 2, "castle"},
		{"bad speed", []string{"--speed", "0"}, 2, "--speed"},
		{"link over a file", []string{"--link", file}, 1, "not a symbolic link"},
		{"link in a missing folder", []string{"--link", filepath.Join(file+".d", "x", "meter")}, 1, "link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var errOut bytes.Buffer
			cmd := exec.Command(bin, append([]string{"meter", "simulate"}, tc.args...)...)
			cmd.Stderr = &errOut
			code := exitCode(cmd.Run())
			if code != tc.code || !strings.Contains(errOut.String(), tc.want) || strings.Count(errOut.String(), "\n") != 1 {
				t.Fatalf("exit %d, stderr %q; want %d with %q", code, errOut.String(), tc.code, tc.want)
			}
		})
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep me" {
		t.Fatalf("the file under --link was touched: %q %v", b, err)
	}
}

// TestMeterPortsProbe probes a simulated DSMR meter on a pty and a silent
// pty through the ports command's probe path.
func TestMeterPortsProbe(t *testing.T) {
	p, err := sim.LoadProfile("home")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := sim.ServePTY(ctx, sim.New(p, 1, time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)), sim.ServeOptions{Speed: 20})
	if err != nil {
		t.Fatal(err)
	}
	silent, err := sim.OpenPTY("")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if srv.Path() == silent.Path() {
		t.Fatalf("the meter and the silent line share the device %s", srv.Path())
	}
	ports := []meter.PortInfo{{Device: srv.Path(), Name: "pts-meter"}, {Device: silent.Path(), Name: "pts-silent"}}
	var out, errOut bytes.Buffer
	if err := runMeterPorts(ctx, &out, &errOut, ports, portsOptions{json: true, probe: true, listen: 500 * time.Millisecond}, meter.OpenSerial); err != nil {
		t.Fatal(err)
	}
	var got []portEntry
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if len(got) != 2 || got[0].Detected != "dsmr" || got[0].Settings != "115200 8N1" || got[1].Detected != "" || got[1].ProbeError == "" {
		t.Fatalf("probe result %+v", got)
	}
	cancel()
	<-srv.Done()
}

func testMeterPortsJSON(t *testing.T, bin string) {
	out, err := exec.Command(bin, "meter", "ports", "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var ports []map[string]any
	if err := json.Unmarshal(out, &ports); err != nil {
		t.Fatalf("not a JSON array: %v: %s", err, out)
	}
	for _, p := range ports {
		if dev, _ := p["device"].(string); !strings.HasPrefix(dev, "/dev/") {
			t.Fatalf("entry without device: %v", p)
		}
	}
}
